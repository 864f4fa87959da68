"""Bad input as a new user meets it, through the command line and the Python API: each case is a
one-line error that names the file and what to do, or is handled correctly; never a traceback,
and nothing already written is lost. (Dataset-level cases in detail: test_data.py,
test_labelmap.py, test_cyclegan.py; damaged and hostile checkpoints: test_safety.py.)"""

import struct
import zlib

import numpy as np
import pytest
from conftest import tiny_overrides
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.data.io import MAX_PIXELS_ENV, image_info, load_array
from pixtrans.inference import Translator


def run_cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def one_line(code, err, *fragments):
    """Exit 2 and one error line (a progress bar before it is not part of the error)."""
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]) and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], err


def png_bomb(path, width=40000, height=40000):
    """A valid PNG of a few hundred bytes whose header promises width x height grey pixels."""
    raw = zlib.compress(b"\x00" * (width + 1) * 16)  # 16 rows; the header claims far more

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


BAD_FILES = {
    "zero-byte": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(_png_bytes()[:60]),
    "not an image": lambda p: p.write_text("this is a text file\n"),
}


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory, synth_root):
    run = tmp_path_factory.mktemp("model") / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 2})]) == 0
    return run


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_broken_image_file_is_named_everywhere(tmp_path, capsys, model, kind):
    bad = tmp_path / "in" / "broken.png"
    bad.parent.mkdir()
    BAD_FILES[kind](bad)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in" / "good.png")
    # training on a dataset holding it: stops before the run folder exists
    data = tmp_path / "ds" / "train"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(_png_bytes())
    BAD_FILES[kind](data / "broken.png")
    over = [o for o in tiny_overrides(tmp_path / "run", tmp_path / "ds", **{"data.dataset": "paired"})]
    code, err = run_cli(capsys, "train", "pix2pix/demo", *[o for o in over if "synthetic" not in o])
    one_line(code, err, "broken.png", "data.bad_files=skip")
    assert not (tmp_path / "run").exists()
    # translating it, alone or in a folder; scoring it
    for args in (
        ["translate", model, bad, tmp_path / "out.png", "--mode", "eval"],
        ["translate", model, tmp_path / "in", tmp_path / "out", "--mode", "eval"],
        ["evaluate", "--real", tmp_path / "in", "--fake", tmp_path / "in", "--metrics", "l1"],
    ):
        one_line(*run_cli(capsys, *args), "broken.png")
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(PixtransError, match="broken.png"):
        Translator.from_pretrained(model)(bad)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, capsys, model, monkeypatch):
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 2000
    for read in (load_array, image_info):
        with pytest.raises(PixtransError) as e:
            read(bomb)
        assert "40000x40000" in str(e.value) and MAX_PIXELS_ENV in str(e.value) and "\n" not in str(e.value)
    one_line(*run_cli(capsys, "translate", model, bomb, tmp_path / "o.png"), "bomb.png", MAX_PIXELS_ENV)
    # the limit is the user's to raise
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(small)
    monkeypatch.setenv(MAX_PIXELS_ENV, "500")
    with pytest.raises(PixtransError, match="30x20 = 600 pixels, over the limit of 500"):
        load_array(small)
    monkeypatch.setenv(MAX_PIXELS_ENV, "600")
    assert load_array(small).shape == (20, 30, 3)


def test_exif_orientation_is_applied(tmp_path, model):
    photo = tmp_path / "phone.jpg"
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    Image.fromarray(pixels).save(photo, exif=exif.tobytes(), quality=95)
    shown = load_array(photo)
    assert shown.shape == (40, 20, 3) and image_info(photo)[:2] == (20, 40)
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # the band is now on top
    out = Translator.from_pretrained(model)(photo)
    assert out.size == (20, 40)


def _labelmap_root(root, label_max=3, inst_size=None, photo_size=None):
    for split in ("train",):
        for i in range(2):
            ids = np.random.default_rng(i).integers(0, label_max + 1, (32, 64)).astype(np.uint8)
            (root / f"{split}_label").mkdir(parents=True, exist_ok=True)
            (root / f"{split}_inst").mkdir(parents=True, exist_ok=True)
            (root / f"{split}_img").mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids).save(root / f"{split}_label" / f"{i}.png")
            ih, iw = inst_size or (32, 64)
            Image.fromarray(np.zeros((ih, iw), np.uint8) + i).save(root / f"{split}_inst" / f"{i}.png")
            ph, pw = photo_size or (32, 64)
            Image.fromarray(np.zeros((ph, pw, 3), np.uint8)).save(root / f"{split}_img" / f"{i}.png")
    return root


def _hd_args(run, root):
    return [
        "train",
        "pix2pixhd/cityscapes_sample",
        f"run_dir={run}",
        f"data.root={root}",
        "data.label_nc=4",
        "data.load_size=64",
        "data.crop_size=32",
        "data.val_split=",
        "model.G={name: global, ngf: 4, n_downsampling: 2, n_blocks: 1}",
        "model.D={name: multiscale, ndf: 4, n_layers: 2, num_D: 1}",
        "model.E={}",
        "loss.lambda_vgg=0",
        "train.max_steps=1",
        "train.progress=false",
    ]


@pytest.mark.parametrize(
    "layout, fragments",
    [
        (dict(label_max=7), ("0.png", "class id 7", "data.label_nc")),
        (dict(inst_size=(32, 60)), ("sizes differ", "train_label", "train_inst")),
        (dict(photo_size=(16, 64)), ("sizes differ", "train_img")),
    ],
)
def test_label_maps_that_do_not_fit(tmp_path, capsys, layout, fragments):
    root = _labelmap_root(tmp_path / "ds", **layout)
    one_line(*run_cli(capsys, *_hd_args(tmp_path / "run", root)), *fragments)
    assert not (tmp_path / "run").exists()


def test_an_empty_domain_folder(tmp_path, capsys):
    for side in ("A", "B"):
        (tmp_path / "ds" / f"train{side}").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "ds" / "trainA" / "a.png")
    args = ["train", "cyclegan/summer2winter", f"run_dir={tmp_path / 'run'}", f"data.root={tmp_path / 'ds'}"]
    one_line(*run_cli(capsys, *args), "trainB")
    assert not (tmp_path / "run").exists()
