"""The page in a real browser: Debian's headless Chromium driven by Selenium against a live
server. Draw strokes and see the translation appear; switch CycleGAN's direction; select a
pix2pixHD object, change its style and see the output change; screenshots of each page go to
docs/serve_*.png. A missing browser FAILS this test (CI installs chromium + chromium-driver)."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from serve_fixtures import LiveServer, tiny_models  # noqa: F401 - fixtures

from pixtrans.serve import create_app, load_models

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing or shutil.which("chromium") is None and not CHROMIUM.is_file():
        pytest.fail(
            f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser test needs selenium: pip install 'pixtrans[test]'", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,820"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tiny_models):  # noqa: F811
    models = load_models([tiny_models["pix2pix"], tiny_models["cyclegan"], tiny_models["pix2pixhd"]])
    with LiveServer(create_app(models)) as srv:
        yield srv


def wait_for(driver, script: str, timeout: float = 30.0, *args):
    """Poll a JS expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};", *args)
        if value:
            return value
        time.sleep(0.05)
    status = driver.execute_script("return document.getElementById('status').textContent;")
    raise AssertionError(f"timed out waiting for {script!r} (page status: {status!r})")


def open_model(driver, server, name: str) -> None:
    driver.get(f"{server.url}/#{name}")
    driver.refresh()  # a new hash alone does not reload the page
    wait_for(driver, f"document.getElementById('model').value === '{name}'")


def out_version(driver, img_id: str) -> int:
    return int(
        driver.execute_script(f"return Number(document.getElementById('{img_id}').dataset.version || 0);")
    )


def wait_new_output(driver, img_id: str, after: int) -> int:
    wait_for(
        driver,
        f"Number(document.getElementById('{img_id}').dataset.version || 0) > {after} && "
        f"document.getElementById('{img_id}').complete && "
        f"document.getElementById('{img_id}').naturalWidth > 0",
    )
    return out_version(driver, img_id)


def image_digest(driver, img_id: str) -> str:
    """A hash of the decoded pixels of an <img> (drawn to a canvas in the page)."""
    data = driver.execute_script(
        """const im = document.getElementById(arguments[0]);
        const c = document.createElement('canvas'); c.width = im.naturalWidth; c.height = im.naturalHeight;
        const x = c.getContext('2d'); x.drawImage(im, 0, 0);
        return Array.from(x.getImageData(0, 0, c.width, c.height).data).join(',');""",
        img_id,
    )
    return hashlib.sha1(data.encode()).hexdigest()


def canvas_pixel(driver, canvas_id: str, x: int, y: int) -> list[int]:
    return driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).getContext('2d')"
        ".getImageData(arguments[1], arguments[2], 1, 1).data).slice(0, 3);",
        canvas_id,
        x,
        y,
    )


def offset_of(driver, canvas_id: str, x: float, y: float) -> tuple[int, int]:
    """Selenium offset (from the element's centre) of canvas pixel (x, y)."""
    w, h, cw, ch = driver.execute_script(
        "const c = document.getElementById(arguments[0]); const r = c.getBoundingClientRect();"
        "return [c.width, c.height, r.width, r.height];",
        canvas_id,
    )
    s = min(cw / w, ch / h)
    return round((x + 0.5) * s - cw / 2), round((y + 0.5) * s - ch / 2)


def stroke(driver, canvas_id: str, points: list[tuple[float, float]]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    el = driver.find_element("id", canvas_id)
    chain = ActionChains(driver, duration=20)
    chain.move_to_element_with_offset(el, *offset_of(driver, canvas_id, *points[0])).click_and_hold()
    for p in points[1:]:
        chain.move_to_element_with_offset(el, *offset_of(driver, canvas_id, *p))
    chain.release().perform()


def click_at(driver, canvas_id: str, x: float, y: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    el = driver.find_element("id", canvas_id)
    ActionChains(driver).move_to_element_with_offset(
        el, *offset_of(driver, canvas_id, x, y)
    ).click().perform()


def click(driver, css: str) -> None:
    driver.find_element("css selector", css).click()


# ----------------------------------------------------------------------------------------------


def test_draw_strokes_and_see_the_translation(browser, server):
    d = browser
    open_model(d, server, "demo")
    v = wait_new_output(d, "draw-out", 0)  # the first example, translated on load
    click(d, "#draw-clear")
    v = wait_new_output(d, "draw-out", v)
    blank = image_digest(d, "draw-out")
    sky = canvas_pixel(d, "draw-canvas", 10, 10)
    assert sky == [0, 0, 170]  # cleared to the first class (sky)

    # a wall stroke and a roof stroke, then the translation refreshes by itself (debounced)
    click(d, "#draw-palette button[data-index='1']")
    d.execute_script("const s = document.getElementById('draw-size'); s.value = 2; s.oninput();")
    stroke(d, "draw-canvas", [(3, 14), (8, 14), (16, 15)])
    click(d, "#draw-palette button[data-index='4']")
    stroke(d, "draw-canvas", [(4, 4), (15, 5)])
    assert canvas_pixel(d, "draw-canvas", 8, 14) == [0, 85, 255]  # exactly the wall colour
    assert canvas_pixel(d, "draw-canvas", 10, 4) == [255, 0, 0]  # roof
    v = wait_new_output(d, "draw-out", v)
    wait_for(d, "document.getElementById('draw-out').naturalWidth === 20")
    assert image_digest(d, "draw-out") != blank

    # undo / redo, fill bucket, rectangle, eraser
    click(d, "#draw-undo")
    assert canvas_pixel(d, "draw-canvas", 10, 4) == [0, 0, 170]
    click(d, "#draw-redo")
    assert canvas_pixel(d, "draw-canvas", 10, 4) == [255, 0, 0]
    click(d, "#draw-palette button[data-index='2']")
    click(d, "button[data-tool='fill']")
    click_at(d, "draw-canvas", 1, 19)
    assert canvas_pixel(d, "draw-canvas", 19, 19) == [85, 255, 170]  # the sky around, now window
    click(d, "button[data-tool='rect']")
    click(d, "#draw-palette button[data-index='3']")
    stroke(d, "draw-canvas", [(12, 10), (17, 18)])
    assert canvas_pixel(d, "draw-canvas", 14, 16) == [255, 170, 0]  # door rectangle
    click(d, "button[data-tool='eraser']")
    stroke(d, "draw-canvas", [(14, 16), (14, 16)])
    assert canvas_pixel(d, "draw-canvas", 14, 16) == [0, 0, 170]
    wait_new_output(d, "draw-out", v)
    # eval mode and seed controls are sent with the drawing
    d.execute_script("document.getElementById('draw-mode').value = 'eval';")
    v = out_version(d, "draw-out")
    click(d, "#draw-go")
    wait_new_output(d, "draw-out", v)
    assert d.find_element("id", "status").text == ""
    d.save_screenshot(str(DOCS / "serve_pix2pix.png"))


def test_cyclegan_direction(browser, server):
    d = browser
    open_model(d, server, "cyclegan")
    v = wait_new_output(d, "dir-out", 0)
    ab = image_digest(d, "dir-out")
    d.execute_script("const s = document.getElementById('dir-direction'); s.value = 'G_ba'; s.onchange();")
    wait_new_output(d, "dir-out", v)
    assert image_digest(d, "dir-out") != ab
    d.execute_script("const s = document.getElementById('dir-direction'); s.value = 'G_ab'; s.onchange();")
    d.save_screenshot(str(DOCS / "serve_cyclegan.png"))


def test_pix2pixhd_select_an_object_and_change_its_style(browser, server, tiny_models, tmp_path):  # noqa: F811
    d = browser
    open_model(d, server, "city")
    v = wait_new_output(d, "hd-out", 0)
    assert "26 car •" in d.find_element("id", "hd-classes").text.split("\n")  # Cityscapes' names
    # the largest car of the example map
    inst = np.array(d.execute_script("return Array.from(hd.inst);")).reshape(32, 64)
    cars = [i for i in np.unique(inst) if i >= 26000]
    car = max(cars, key=lambda i: (inst == i).sum())
    ys, xs = np.nonzero(inst == car)
    click(d, "button[data-hdtool='select']")
    click_at(d, "hd-canvas", xs.mean(), ys.mean())
    wait_for(d, f"hd.selected === {car}")
    assert len(d.find_elements("css selector", "#hd-clusters button")) == 3
    before = image_digest(d, "hd-out")
    click(d, "#hd-clusters button[data-cluster='2']")
    v = wait_new_output(d, "hd-out", v)
    styled = image_digest(d, "hd-out")
    assert styled != before
    click(d, "#hd-clusters button[data-cluster='0']")
    v = wait_new_output(d, "hd-out", v)
    assert image_digest(d, "hd-out") not in (styled,)

    # a new object: paint a car, it is selected with its own id and gets styles
    click(d, "#hd-classes button[data-cls='26']")
    click(d, "button[data-hdtool='object']")
    d.execute_script("const s = document.getElementById('hd-size'); s.value = 3; s.oninput();")
    stroke(d, "hd-canvas", [(50, 8), (58, 8), (58, 12)])
    new_id = wait_for(d, "hd.selected")
    assert new_id > car and new_id // 1000 == 26
    v = wait_new_output(d, "hd-out", v)
    assert len(d.find_elements("css selector", "#hd-clusters button")) == 3
    # erase it: painted over with the selected class (road), no longer an object
    click(d, "#hd-classes button[data-cls='7']")
    click(d, "button[data-hdtool='erase']")
    click_at(d, "hd-canvas", 58, 10)
    wait_for(d, f"!Array.from(hd.inst).includes({new_id})")
    v = wait_new_output(d, "hd-out", v)
    # styles taken from a real photo (the example's own), through the encoder
    import httpx

    photo = tmp_path / "photo.png"
    photo.write_bytes(httpx.get(f"{server.url}/models/city/examples/0/photo.png").content)
    clustered = image_digest(d, "hd-out")
    d.find_element("id", "hd-photo").send_keys(str(photo))
    v = wait_new_output(d, "hd-out", v)
    assert image_digest(d, "hd-out") != clustered
    assert d.find_element("id", "hd-photo-clear").is_displayed()
    click(d, "#hd-photo-clear")
    v = wait_new_output(d, "hd-out", v)
    # a bad upload shows the server's one-line message
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    d.find_element("id", "hd-label-file").send_keys(str(bad))
    wait_for(d, "document.getElementById('status').className === 'error'")
    assert "not an image" in d.find_element("id", "status").text
    # re-select the first car for the screenshot
    click(d, "button[data-hdtool='select']")
    click_at(d, "hd-canvas", xs.mean(), ys.mean())
    click(d, "#hd-clusters button[data-cluster='1']")
    wait_new_output(d, "hd-out", v)
    d.execute_script("const s = document.getElementById('status'); s.textContent = ''; s.className = '';")
    d.save_screenshot(str(DOCS / "serve_pix2pixhd.png"))


def test_pix2pixhd_editor_at_512x1024(browser, server):
    d = browser
    open_model(d, server, "city")
    v = wait_new_output(d, "hd-out", 0)
    d.execute_script("document.getElementById('hd-new-size').value = '512x1024';")
    click(d, "#hd-new")
    v = wait_new_output(
        d,
        "hd-out",
        v,
    )
    assert d.execute_script("return [hd.h, hd.w];") == [512, 1024]
    click(d, "#hd-classes button[data-cls='26']")
    click(d, "button[data-hdtool='object']")
    d.execute_script("const s = document.getElementById('hd-size'); s.value = 40; s.oninput();")
    t0 = time.monotonic()
    stroke(d, "hd-canvas", [(300, 380), (700, 380)])
    wait_new_output(d, "hd-out", v)
    assert d.execute_script("return document.getElementById('hd-out').naturalWidth;") == 1024
    print(f"512x1024 edit to new output: {time.monotonic() - t0:.2f} s")


def test_api_page_renders_offline(browser, server):
    d = browser
    d.get(f"{server.url}/docs")
    wait_for(d, "document.querySelectorAll('.opblock').length >= 4")
    text = d.find_element("css selector", ".swagger-ui").text
    assert "/translate/{model}" in text and "/health" in text
    # every resource the page loaded came from this server
    urls = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert urls and all(u.startswith(server.url) for u in urls), urls
