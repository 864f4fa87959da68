"""Colorization: Lab conversion (scikit-image) and its round trip, the dataset, training with the
pix2pix/colorization preset, and translating grey or colour photos back to RGB."""

import builtins
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.data import ColorizationDataset, build_dataset
from pixtrans.data.colorization import lab_tensors_to_rgb, lab_to_rgb, lightness_of, rgb_to_lab
from pixtrans.inference import ColorizationTranslator, Translator

skimage_color = pytest.importorskip("skimage.color")


def photo(seed: int, w: int = 20, h: int = 20) -> np.ndarray:
    """A colourful RGB image: smooth hue ramps plus a saturated block and some noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 1 - xx * yy], axis=2) * 200 + rng.integers(0, 40, (h, w, 3))
    img[h // 4 : h // 2, w // 4 : w // 2] = (220, 30, 40)
    return img.clip(0, 255).astype(np.uint8)


def photos(folder, n=6, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(photo(i, **kw)).save(folder / f"{i}.png")
    return folder


def test_lab_round_trip_is_within_one_level():
    rng = np.random.default_rng(0)
    arrays = [photo(1, 64, 48), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)]
    arrays.append(np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))
    for rgb in arrays:
        lightness, ab = rgb_to_lab(rgb)
        assert lightness.min() >= -1 - 1e-6 and lightness.max() <= 1 + 1e-6 and np.abs(ab).max() <= 1
        back = lab_to_rgb(lightness, ab)
        assert np.abs(back - rgb / 255.0).max() <= 1 / 255
        np.testing.assert_array_equal(np.rint(back * 255).astype(np.uint8), rgb)
    # the scaling is the official one: L/50 - 1, ab/110, on scikit-image's Lab
    lab = skimage_color.rgb2lab(arrays[0] / 255.0)
    np.testing.assert_allclose(rgb_to_lab(arrays[0])[0], lab[..., 0] / 50 - 1, atol=1e-5)
    np.testing.assert_allclose(rgb_to_lab(arrays[0])[1], lab[..., 1:] / 110, atol=1e-5)


def test_dataset_gives_l_and_ab_that_rebuild_the_photo(tmp_path):
    root = photos(tmp_path / "photos")
    (root / "notes.txt").write_text("ignored")
    ds = ColorizationDataset(root=root, preprocess="none", cache="on")
    assert len(ds) == 6
    item = ds[2]
    assert item["real_a"].shape == (1, 20, 20) and item["real_b"].shape == (2, 20, 20)
    rgb = lab_tensors_to_rgb(item["real_a"][None], item["real_b"][None])[0]  # [-1,1]
    expected = torch.from_numpy(photo(2)).permute(2, 0, 1).float() / 127.5 - 1
    assert (rgb - expected).abs().max() <= 2 / 255 + 1e-6  # 1/255 in [0,1] is 2/255 in [-1,1]
    # random crops and flips are drawn from the key's seed
    ds = ColorizationDataset(root=root, load_size=20, crop_size=16)
    a, b = ds[(1, 7)], ds[(1, 7)]
    assert torch.equal(a["real_a"], b["real_a"]) and a["real_a"].shape == (1, 16, 16)


def test_dataset_finds_split_folders_and_refuses_bad_settings(tmp_path, caplog):
    photos(tmp_path / "root" / "train", n=2)
    photos(tmp_path / "root" / "val", n=1)
    assert len(ColorizationDataset(root=tmp_path / "root", split="val", preprocess="none")) == 1
    with pytest.raises(PixtransError, match="no photo folder for split 'val'"):
        ColorizationDataset(root=tmp_path / "root" / "train", split="val", preprocess="none")
    with pytest.raises(PixtransError, match="data.input_nc=1 data.output_nc=2"):
        ColorizationDataset(root=tmp_path / "root", input_nc=3, output_nc=3, preprocess="none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PixtransError, match="no photo folder for split 'train'"):
        ColorizationDataset(root=tmp_path / "empty", preprocess="none")
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(photo(0)[:, :, 0]).save(grey / "g.png")
    with caplog.at_level("WARNING"):
        ColorizationDataset(root=grey, preprocess="none")
    assert "have no colour" in caplog.text


def test_missing_scikit_image_is_a_clear_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name == "skimage" or name.startswith("skimage."):
            raise ImportError("no skimage")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    with pytest.raises(PixtransError, match=r"pip install 'pixtrans\[color\]'"):
        ColorizationDataset(root=photos(tmp_path / "p", n=1), preprocess="none")


def _train(tmp_path, extra=()):
    root = photos(tmp_path / "photos" / "train", n=6)
    photos(tmp_path / "photos" / "val", n=2)
    run = tmp_path / "run"
    args = [
        "train",
        "pix2pix/colorization",
        f"data.root={root.parent}",
        f"run_dir={run}",
        "data.load_size=20",
        "data.crop_size=16",
        "model.G={name: unet, num_downs: 4, ngf: 4, norm: batch, dropout: true}",
        "model.D={name: patchgan, ndf: 4, n_layers: 2, norm: batch}",
        "train.batch_size=2",
        "train.max_steps=4",
        "train.sample_every=4",
        "train.report_every=4",
        "train.checkpoint_every=4",
        "train.progress=false",
        *extra,
    ]
    assert main(args) == 0
    return run


def test_train_then_translate_grey_and_colour_photos(tmp_path):
    run = _train(tmp_path, ["eval.every=4", "eval.metrics=psnr"])
    # the sample grid: grey input | colourised | real photo, 3 columns of RGB
    grid = np.asarray(Image.open(sorted((run / "samples").glob("*.png"))[-1]))
    assert grid.ndim == 3 and grid.shape[2] == 3
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert any("val/psnr" in s for s in stats)  # metrics compare RGB photos
    translator = Translator.from_pretrained(run)
    assert isinstance(translator, ColorizationTranslator)
    assert (translator.input_nc, translator.output_nc) == (3, 3)  # photos in and out
    assert (translator.net_input_nc, translator.net_output_nc) == (1, 2)  # L in, ab out

    odd = photo(3, w=37, h=29)  # not a multiple of the U-Net's stride
    Image.fromarray(odd).save(tmp_path / "colour.jpg", quality=95)
    Image.fromarray(odd).convert("L").save(tmp_path / "grey.png")
    for name in ("colour.jpg", "grey.png"):
        out = tmp_path / f"out_{name}.png"
        assert main(["translate", str(run), str(tmp_path / name), str(out)]) == 0
        im = Image.open(out)
        assert im.mode == "RGB" and im.size == (37, 29)
        # the output keeps the input's lightness; only ab comes from the net
        l_in = lightness_of(np.asarray(Image.open(tmp_path / name)))
        l_out = lightness_of(np.asarray(im))
        assert np.abs(l_in - l_out).mean() < 0.05  # 2.5 L units on 0..100, gamut clipping and rounding

    with pytest.raises(PixtransError, match="--tile is not offered for colorization"):
        translator.translate_tiled(tmp_path / "colour.jpg", tile=64, overlap=16)
    # folders, numpy and tensors
    assert main(["translate", str(run), str(tmp_path / "photos" / "val"), str(tmp_path / "outs")]) == 0
    assert sorted(p.name for p in (tmp_path / "outs").iterdir()) == ["0.png", "1.png"]
    arr = translator(photo(1, w=24, h=20))
    assert arr.shape == (20, 24, 3) and arr.dtype == np.uint8
    t = torch.rand(2, 3, 16, 16) * 2 - 1
    assert translator(t).shape == (2, 3, 16, 16)
    assert translator(torch.rand(1, 16, 16) * 2 - 1).shape == (3, 16, 16)
    with pytest.raises(PixtransError, match="1 \\(grey\\), 3 \\(RGB\\) or 4"):
        translator(torch.rand(2, 16, 16))
    # evaluate: each val photo colourised from its own L and scored against itself
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--split",
                "val",
                "--metrics",
                "psnr,l1",
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["images"] == 2 and scores["metrics"]["psnr"] > 10
    # an export round trip keeps the translator kind
    exported = translator.save_pretrained(tmp_path / "export")
    assert isinstance(Translator.from_pretrained(exported), ColorizationTranslator)


def test_the_method_refuses_other_channel_counts(tmp_path, capsys):
    photos(tmp_path / "p", n=2)
    assert (
        main(
            [
                "train",
                "pix2pix/colorization",
                f"data.root={tmp_path / 'p'}",
                "data.output_nc=3",
                f"run_dir={tmp_path / 'run'}",
            ]
        )
        == 2
    )
    assert "data.input_nc=1 data.output_nc=2" in capsys.readouterr().err


def test_the_preset_builds_the_colorization_dataset(tmp_path):
    from pixtrans.config import load_config

    cfg = load_config(
        "pix2pix/colorization", [f"data.root={photos(tmp_path / 'p', n=1)}", "data.preprocess=none"]
    )
    assert (cfg.method, cfg.data.input_nc, cfg.data.output_nc) == ("colorization", 1, 2)
    assert isinstance(build_dataset(cfg, "train"), ColorizationDataset)


def test_an_official_colorization_unet_converts_to_a_colorization_export(tmp_path):
    from pixtrans.convert import convert_official
    from pixtrans.nets import build_generator

    torch.manual_seed(0)
    spec = {"name": "unet", "num_downs": 5, "ngf": 4, "norm": "batch"}
    net = build_generator(spec, 1, 2).eval()  # the official `--model colorization` G: L -> ab
    torch.save(dict(net.state_dict()), tmp_path / "latest_net_G.pth")
    out = convert_official([tmp_path / "latest_net_G.pth"], tmp_path / "export")
    translator = Translator.from_pretrained(out)
    assert isinstance(translator, ColorizationTranslator)
    # L comes from the photo, ab from the net (sides a multiple of 32: no padding)
    rgb = photo(0, w=64, h=32)
    lightness = torch.from_numpy(rgb_to_lab(rgb)[0])[None, None]
    with torch.no_grad():
        expected = lab_tensors_to_rgb(lightness, net(lightness))[0]
    got = translator(torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1)
    assert got.shape == (3, 32, 64)
    assert (got - expected).abs().max() < 1e-4
