"""Exports and the Translator: round trips, any image size, paper mode, folders, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.config import Config
from pixtrans.inference import Translator, export_from_checkpoint, export_generators, pad_to_multiple

# num_downs 6 is the smallest U-Net with dropout (levels 4..num_downs-2); size_multiple 64
SPEC = {"name": "unet", "num_downs": 6, "ngf": 4, "norm": "batch", "dropout": True}


def _config(spec=SPEC, input_nc=3, output_nc=3, direction="AtoB", method="pix2pix") -> dict:
    cfg = Config(method=method)
    cfg.model.G = dict(spec)
    cfg.data.input_nc, cfg.data.output_nc, cfg.data.direction = input_nc, output_nc, direction
    return cfg.to_dict()


def _net(spec=SPEC, input_nc=3, output_nc=3, seed=0):
    from pixtrans.nets import build_generator

    torch.manual_seed(seed)
    net = build_generator(spec, input_nc, output_nc)
    with torch.no_grad():  # trained-looking BatchNorm statistics, so eval and paper mode differ
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(100)
    return net.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(export folder, the in-memory net it holds)."""
    net = _net()
    out = tmp_path_factory.mktemp("exp") / "export"
    export_generators(out, _config(), {"G": net.state_dict()}, "pix2pix", step=7)
    return out, net


@pytest.fixture(scope="module")
def translator(exported):
    return Translator.from_pretrained(exported[0])


# ----------------------------------------------------------------------------------------------
# (f) export -> from_pretrained


def test_export_round_trip_equals_in_memory_net(exported, translator):
    out, net = exported
    info = json.loads((out / "config.json").read_text())
    assert info["format"] == "pixtrans-export" and info["format_version"] == 1
    assert info["method"] == "pix2pix" and info["value_range"] == [-1.0, 1.0] and info["step"] == 7
    assert info["generators"]["G"] == {
        "file": "G.safetensors",
        "spec": SPEC,
        "input_nc": 3,
        "output_nc": 3,
        "size_multiple": 64,
        "direction": "AtoB",
    }
    assert info["config"]["model"]["G"] == SPEC and info["config"]["train"]["lr"] == 2e-4
    # no temp files left; README.md is the model card
    assert sorted(p.name for p in out.iterdir()) == ["G.safetensors", "README.md", "config.json"]

    x = torch.rand(2, 3, 64, 128) * 2 - 1
    with torch.no_grad():
        expected = net(x)
    torch.testing.assert_close(translator(x), expected, rtol=0, atol=0)
    for a, b in zip(translator.net.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # BN running stats included


def test_two_generator_export_and_selection(tmp_path):
    g_ab, g_ba = _net(input_nc=3, output_nc=1), _net(input_nc=1, output_nc=3, seed=1)
    cfg = _config(input_nc=3, output_nc=1, method="cyclegan")
    out = export_generators(tmp_path / "e", cfg, {"G_ab": g_ab, "G_ba": g_ba.state_dict()}, "cyclegan")
    info = json.loads((out / "config.json").read_text())
    assert {k: (v["input_nc"], v["output_nc"], v["direction"]) for k, v in info["generators"].items()} == {
        "G_ab": (3, 1, "AtoB"),
        "G_ba": (1, 3, "BtoA"),
    }
    with pytest.raises(PixtransError, match="G_ab, G_ba"):
        Translator.from_pretrained(out)
    back = Translator.from_pretrained(out, generator="G_ba")
    assert (back.input_nc, back.output_nc) == (1, 3)
    assert Translator.from_pretrained(out / "G_ab.safetensors").name == "G_ab"
    with pytest.raises(PixtransError, match="no generator 'G'"):
        Translator.from_pretrained(out, generator="G")


def test_re_export_replaces_files_and_keeps_others(tmp_path, exported):
    _, net = exported
    out = tmp_path / "e"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    export_generators(out, _config(), {"G": _net(seed=9)}, "pix2pix")
    export_generators(out, _config(), {"G": net}, "pix2pix")
    assert sorted(p.name for p in out.iterdir()) == [
        "G.safetensors",
        "README.md",
        "README.txt",
        "config.json",
    ]
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(Translator.from_pretrained(out)(x), net(x))


def test_export_rejects_weights_that_do_not_fit_the_spec(tmp_path):
    other = _net(spec={**SPEC, "ngf": 8})
    with pytest.raises(PixtransError, match="do not fit spec"):
        export_generators(tmp_path / "e", _config(), {"G": other.state_dict()}, "pix2pix")


def test_run_folder_uses_export_or_newest_checkpoint(tmp_path, exported):
    _, net = exported
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    newer = _net(seed=3)
    for step, n in ((5, net), (12, newer)):
        ckpt = {"config": _config(), "step": step, "nets": {"G": n.state_dict(), "D": {}}}
        torch.save(ckpt, run / "checkpoints" / f"step_{step:09d}.pt")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        want_old, want_new = net(x), newer(x)

    torch.testing.assert_close(Translator.from_pretrained(run)(x), want_new)  # no export yet
    torch.testing.assert_close(
        Translator.from_pretrained(run / "checkpoints" / "step_000000005.pt")(x), want_old
    )

    assert export_from_checkpoint(run) == run / "export"  # the newest checkpoint, as the loop does at the end
    info = json.loads((run / "export" / "config.json").read_text())
    assert info["step"] == 12 and info["source"]["step"] == 12
    t = Translator.from_pretrained(run)
    assert t.info.get("format") == "pixtrans-export"
    torch.testing.assert_close(t(x), want_new)

    (run / "export" / "G.safetensors").unlink()  # incomplete export -> back to the checkpoint
    assert Translator.from_pretrained(run).info["source"]["kind"] == "pixtrans-checkpoint"


# ----------------------------------------------------------------------------------------------
# (c) any size, any input kind


@pytest.mark.parametrize("hw", [(37, 53), (300, 200), (64, 64), (5, 130)])
def test_odd_sizes_come_back_at_input_size(translator, hw):
    h, w = hw
    y = translator(torch.rand(3, h, w) * 2 - 1)
    assert y.shape == (3, h, w) and y.dtype == torch.float32 and y.abs().max() <= 1
    y.add_(1.0)  # an ordinary tensor, not an inference-mode one

    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
    out = translator(im)
    assert isinstance(out, Image.Image) and out.size == (w, h) and out.mode == "RGB"


def test_padding_is_centred_reflect_or_replicate():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y, (top, left) = pad_to_multiple(x, 8)
    assert y.shape == (1, 1, 8, 8) and (top, left) == (2, 2)
    torch.testing.assert_close(y[..., top : top + 3, left : left + 4], x)
    small, _ = pad_to_multiple(torch.rand(1, 1, 6, 6), 8)  # pad 1 per side < 6: reflect
    assert small.shape[-2:] == (8, 8)


def test_input_kinds_round_trip(translator, tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    out8 = translator(rgb)
    assert out8.dtype == np.uint8 and out8.shape == (40, 30, 3)
    out16 = translator(rgb.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and out16.shape == (40, 30, 3)
    outf = translator(rgb / 255.0)
    assert outf.dtype == np.float32 and 0 <= outf.min() and outf.max() <= 1
    np.testing.assert_allclose(outf, out8 / 255.0, atol=1 / 255 + 1e-6)

    grey = Image.fromarray(rgb[..., 0])  # 1 channel in, generator takes 3: replicated
    assert translator(grey).size == (30, 40)
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    from_path = translator(path)
    assert isinstance(from_path, Image.Image)
    np.testing.assert_array_equal(np.asarray(from_path), out8)

    batch = torch.rand(3, 3, 40, 30, dtype=torch.float64) * 2 - 1
    yb = translator(batch, batch_size=2)
    assert yb.shape == (3, 3, 40, 30) and yb.dtype == torch.float64
    many = translator([rgb, Image.fromarray(rgb), batch[0]])
    assert isinstance(many, list) and isinstance(many[1], Image.Image)
    np.testing.assert_array_equal(many[0], out8)


# ----------------------------------------------------------------------------------------------
# (d) paper mode


def test_paper_mode_seeds_buffers_and_difference_from_eval(translator):
    before = {k: v.clone() for k, v in translator.net.state_dict().items()}
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    rng_before = torch.get_rng_state()

    a = translator(x, mode="paper", seed=1)
    b = translator(x, mode="paper", seed=1)
    c = translator(x, mode="paper", seed=2)
    e = translator(x, mode="eval")
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, e)
    assert torch.equal(torch.get_rng_state(), rng_before)  # seeded runs leave the global stream alone

    for k, v in translator.net.state_dict().items():
        assert torch.equal(v, before[k]), f"buffer {k} changed"
    assert not translator.net.training
    torch.testing.assert_close(translator(x, mode="eval"), e, rtol=0, atol=0)


def test_paper_mode_is_per_image(translator):
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    together = translator(x, mode="paper", seed=5)
    alone = translator(x[1], mode="paper", seed=5)
    torch.testing.assert_close(together[1], alone, rtol=0, atol=0)  # batch statistics of one image


# ----------------------------------------------------------------------------------------------
# (e) folders


def test_folder_translation_writes_relative_pngs(translator, tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)).save(src / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src / "sub" / "b.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src / "sub" / "c.png")
    Image.fromarray(rng.integers(0, 65536, (20, 21), dtype=np.uint16)).save(src / "sub" / "d16.png")
    (src / "notes.txt").write_text("not an image")

    out = src / "translated"  # inside the input folder: must not be read back in on a re-run
    for _ in range(2):
        written = translator.translate_paths([src], out, batch_size=2, progress=False)
        assert sorted(p.relative_to(out).as_posix() for p in written) == [
            "a.png",
            "sub/b.png",
            "sub/c.png",
            "sub/d16.tif",  # 16-bit in -> 16-bit out; colour at 16 bits is a TIFF (data.io.write_array)
        ]
    assert Image.open(out / "a.png").size == (47, 33)
    assert Image.open(out / "sub" / "d16.tif").size == (21, 20)

    # the same results as translating one by one
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "sub" / "c.png")), np.asarray(translator(src / "sub" / "c.png"))
    )

    # paper mode and several inputs: folders get their own subfolder
    one = tmp_path / "one.png"
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(one)
    written = translator.translate_paths(
        [src / "sub", one], tmp_path / "o2", mode="paper", seed=0, progress=False
    )
    assert sorted(p.relative_to(tmp_path / "o2").as_posix() for p in written) == [
        "one.png",
        "sub/b.png",
        "sub/c.png",
        "sub/d16.tif",
    ]


def test_folder_translation_never_overwrites_inputs(translator, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(PixtransError, match="overwrite the input"):
        translator.translate_paths([tmp_path], tmp_path, progress=False)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    with pytest.raises(PixtransError, match="x.jpg"):
        translator.translate_paths([tmp_path], tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------------------------
# (g) bad inputs


def test_bad_inputs_name_the_path(translator, exported, tmp_path):
    with pytest.raises(PixtransError, match="nowhere.*export folder"):
        Translator.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PixtransError, match="empty"):
        Translator.from_pretrained(tmp_path / "empty")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(PixtransError, match="junk.pt"):
        Translator.from_pretrained(junk)
    bad_cfg = tmp_path / "badexp"
    bad_cfg.mkdir()
    (bad_cfg / "config.json").write_text("{not json")
    with pytest.raises(PixtransError, match="badexp"):
        Translator.from_pretrained(bad_cfg)

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PixtransError, match="broken.png"):
        translator.translate_paths([folder], tmp_path / "out", progress=False)
    with pytest.raises(PixtransError, match="missing.png"):
        translator.translate_paths([folder / "missing.png"], tmp_path / "out", progress=False)
    with pytest.raises(PixtransError, match="missing.png"):
        translator(folder / "missing.png")
    with pytest.raises(PixtransError, match="no image files"):
        translator.translate_paths([tmp_path / "empty"], tmp_path / "out", progress=False)

    with pytest.raises(PixtransError, match="3-channel"):
        translator(torch.rand(1, 4, 8, 8))
    with pytest.raises(PixtransError, match="mode"):
        translator(torch.rand(3, 8, 8), mode="train")
    with pytest.raises(PixtransError, match=r"\[0,1\]"):
        translator(np.full((8, 8, 3), 2.0, dtype=np.float32))


def test_translating_needs_none_of_the_training_extras(tmp_path, exported):
    """`pip install pixtrans` (no extras) translates: in a fresh process where scipy, scikit-learn,
    scikit-image, matplotlib and lpips fail to import, translation still works."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out, _ = exported
    blocked = tmp_path / "blocked"
    for name in ("scipy", "sklearn", "skimage", "matplotlib", "lpips"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    Image.new("RGB", (40, 30), (10, 120, 240)).save(tmp_path / "in.png")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(src)])}
    args = ["translate", str(out), str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--mode", "eval"]
    cmd = [sys.executable, "-m", "pixtrans.cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(tmp_path / "out.png").size == (40, 30)


# ----------------------------------------------------------------------------------------------
# precision


def test_bf16_precision_runs_under_autocast_and_returns_fp32_close_to_it(exported):
    fp32 = Translator.from_pretrained(exported[0])
    bf16 = Translator.from_pretrained(exported[0], precision="bf16")
    assert (fp32.amp_dtype, bf16.amp_dtype) == (None, torch.bfloat16) and "bf16" in repr(bf16)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    a, b = fp32(x, mode="eval"), bf16(x, mode="eval")
    assert b.dtype == torch.float32 and b.shape == a.shape
    assert 0 < (a - b).abs().max() < 0.1  # another precision, the same function to ~1e-2
    t = bf16.translate_tiled(np.full((70, 90, 3), 100, np.uint8), tile=64, overlap=16)
    assert t.dtype == np.uint8 and t.shape == (70, 90, 3)


def test_precision_auto_follows_native_bf16_and_bad_values_are_named(exported, monkeypatch):
    from pixtrans import runtime

    for native, want in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "native_bf16", lambda device, n=native: (n, "a CPU of this test"))
        assert Translator.from_pretrained(exported[0], precision="auto").amp_dtype == want
    with pytest.raises(PixtransError, match="fp16 needs a CUDA device"):
        Translator.from_pretrained(exported[0], precision="fp16")
    with pytest.raises(PixtransError, match="unknown inference precision 'int4'"):
        Translator.from_pretrained(exported[0], precision="int4")
    with runtime.inference_precision("bf16"):  # what --precision sets for translators built inside
        assert Translator.from_pretrained(exported[0]).amp_dtype == torch.bfloat16
    assert Translator.from_pretrained(exported[0]).amp_dtype is None
