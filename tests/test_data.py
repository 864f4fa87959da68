"""Data: image modes, layouts, directions, preprocess modes, determinism, bad inputs, synthetic set."""

from __future__ import annotations

import logging
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.data import (
    PairedDataset,
    SyntheticDataset,
    generate_synthetic_pairs,
    image_size,
    load_array,
    output_size,
    read_image,
    sample_params,
    write_image,
)
from pixtrans.data.synth import PALETTE
from pixtrans.data.transforms import PREPROCESS_MODES, apply_params
from pixtrans.registry import DATASETS

SHARED = Path(os.environ.get("PIXTRANS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def png16(path: Path, arr: np.ndarray) -> Path:
    """Write a 16-bit PNG by hand (PIL cannot write 16-bit colour): arr HxWxC uint16, C in 1..4."""
    h, w, c = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def save(arr: np.ndarray, path: Path, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def solid(h: int, w: int, rgb) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


RED, BLUE = (255, 0, 0), (0, 0, 255)


# ----------------------------------------------------------------------------------------------
# io: every mode reads to the right values


def test_rgb_and_grey(tmp_path):
    rgb = noise(5, 7)
    t = read_image(save(rgb, tmp_path / "rgb.png"), 3)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert torch.equal(t, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    # luminance matches PIL's convert("L") exactly
    lum = np.array(Image.fromarray(rgb).convert("L"))
    assert torch.equal(read_image(tmp_path / "rgb.png", 1)[0], torch.from_numpy(lum).float() / 255)
    grey = save(rgb[..., 0].copy(), tmp_path / "l.png")
    g3 = read_image(grey, 3)
    assert g3.shape == (3, 5, 7) and torch.equal(g3[0], g3[1]) and torch.equal(g3[0], g3[2])
    assert torch.equal(g3[0], torch.from_numpy(rgb[..., 0]).float() / 255)


def test_alpha_modes(tmp_path):
    rgba = np.dstack([solid(2, 3, (10, 20, 30)), np.full((2, 3), 77, np.uint8)])
    p = save(rgba, tmp_path / "rgba.png")
    assert read_image(p, 3).shape[0] == 3
    t4 = read_image(p, 4)
    assert t4.shape[0] == 4 and torch.allclose(t4[:, 0, 0] * 255, torch.tensor([10.0, 20, 30, 77]))
    la = np.dstack([np.full((2, 3), 200, np.uint8), np.full((2, 3), 50, np.uint8)])
    p = save(la, tmp_path / "la.png", mode="LA")
    assert torch.allclose(read_image(p, 1) * 255, torch.full((1, 2, 3), 200.0))
    assert torch.allclose(read_image(p, 4)[:, 0, 0] * 255, torch.tensor([200.0, 200, 200, 50]))


def test_palette_with_and_without_transparency(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    im.putdata([0, 1, 2, 1, 1, 1, 2, 2])
    im.save(tmp_path / "p.png")
    t = read_image(tmp_path / "p.png", 3)
    assert torch.equal(t[:, 0, 1], torch.tensor([1.0, 0, 0])) and torch.equal(
        t[:, 0, 2], torch.tensor([0.0, 1, 0])
    )
    im.save(tmp_path / "pt.png", transparency=0)  # index 0 is transparent
    assert load_array(tmp_path / "pt.png").shape[2] == 4
    t4 = read_image(tmp_path / "pt.png", 4)
    assert t4[3, 0, 0] == 0 and t4[3, 0, 1] == 1


def test_cmyk_and_one_bit(tmp_path):
    cmyk = Image.new("CMYK", (2, 2), (255, 0, 0, 0))  # full cyan -> RGB (0, 255, 255)
    cmyk.save(tmp_path / "c.tif")
    t = read_image(tmp_path / "c.tif", 3)
    assert torch.equal(t[:, 0, 0], torch.tensor([0.0, 1, 1]))
    bits = Image.new("1", (3, 1))
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "b.png")
    assert torch.equal(read_image(tmp_path / "b.png", 1)[0, 0], torch.tensor([0.0, 1, 0]))


def test_16_bit(tmp_path):
    vals = np.array([[0, 1000, 65535]], np.uint16)
    Image.fromarray(vals).save(tmp_path / "g16.png")  # I;16
    t = read_image(tmp_path / "g16.png", 1)
    assert t[0, 0, 2] == 1.0 and torch.isclose(t[0, 0, 1], torch.tensor(1000 / 65535))
    assert torch.allclose(read_image(tmp_path / "g16.png", 3)[:, 0, 2], torch.ones(3))
    big = Image.frombytes("I;16B", (3, 1), vals.astype(">u2").tobytes())
    big.save(tmp_path / "b16.tif")
    assert torch.equal(read_image(tmp_path / "b16.tif", 1), t)
    Image.fromarray(vals.astype(np.int32)).save(tmp_path / "i32.tif")  # mode I holding 16-bit data
    assert torch.equal(read_image(tmp_path / "i32.tif", 1), t)
    Image.fromarray(np.array([[70000]], np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(PixtransError, match="wide.tif"):
        read_image(tmp_path / "wide.tif", 1)
    rgb16 = np.array([[[0, 30000, 65535], [65535, 1, 257]]], np.uint16)
    t = read_image(png16(tmp_path / "rgb16.png", rgb16), 3)  # PIL alone would truncate to 8 bits
    assert torch.allclose(t * 65535, torch.from_numpy(rgb16.astype(np.float32)).permute(2, 0, 1), atol=1e-2)
    assert load_array(tmp_path / "rgb16.png").dtype == np.uint16


def test_npy_channels(tmp_path):
    six = np.random.default_rng(0).integers(0, 256, (4, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "six.npy", six)
    t = read_image(tmp_path / "six.npy", 6)
    assert t.shape == (6, 4, 5) and torch.equal(t, torch.from_numpy(six).permute(2, 0, 1).float() / 255)
    with pytest.raises(PixtransError, match="six.npy.*6 channels"):
        read_image(tmp_path / "six.npy", 3)
    np.save(tmp_path / "hw16.npy", np.full((3, 2), 65535, np.uint16))
    assert torch.equal(read_image(tmp_path / "hw16.npy", 1), torch.ones(1, 3, 2))
    np.save(tmp_path / "f.npy", np.full((2, 2, 5), 0.25, np.float64))
    assert torch.equal(read_image(tmp_path / "f.npy", 5), torch.full((5, 2, 2), 0.25))
    np.save(tmp_path / "bad.npy", np.full((2, 2), 255.0))
    with pytest.raises(PixtransError, match=r"bad.npy.*\[0,1\]"):
        read_image(tmp_path / "bad.npy", 1)
    assert image_size(tmp_path / "six.npy") == (5, 4)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "missing"])
def test_unreadable_file_names_it(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "garbage":
        path.write_bytes(b"this is not an image" * 10)
    elif kind == "truncated":
        save(noise(64, 64), path)
        path.write_bytes(path.read_bytes()[:600])
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(PixtransError, match=f"'{path}'") as err:
        read_image(path, 3)
    assert "\n" not in str(err.value)


def test_write_image_round_trip(tmp_path):
    x = torch.rand(3, 6, 5) * 2 - 1
    p = write_image(x, tmp_path / "out.png")
    assert torch.allclose(read_image(p, 3) * 2 - 1, x, atol=1 / 255 + 1e-6)
    assert read_image(write_image(x[:1], tmp_path / "g.png"), 1).shape == (1, 6, 5)
    x4 = torch.rand(4, 6, 5) * 2 - 1
    assert read_image(write_image(x4, tmp_path / "a.png"), 4).shape == (4, 6, 5)
    assert Image.open(write_image(x4, tmp_path / "a.jpg")).mode == "RGB"  # no alpha in JPEG
    p = write_image(torch.zeros(5, 6, 5), tmp_path / "multi.png")
    assert p.suffix == ".npy" and torch.equal(read_image(p, 5), torch.full((5, 6, 5), 0.5))
    assert image_size(tmp_path / "out.png") == (5, 6)


# ----------------------------------------------------------------------------------------------
# transforms


@pytest.mark.parametrize(
    "mode,size,expected",
    [
        ("resize_and_crop", (300, 200), (64, 64)),
        ("crop", (300, 200), (64, 64)),
        ("scale_width", (300, 200), (80, 64)),  # height max(80 * 200 / 300 = 53, crop 64)
        ("scale_width", (300, 600), (80, 160)),
        ("scale_width_and_crop", (300, 600), (64, 64)),
        ("none", (301, 203), (300, 204)),  # nearest multiple of 4 on each side
    ],
)
def test_preprocess_output_size(mode, size, expected):
    assert output_size(mode, size, 80, 64) == expected
    img = torch.rand(3, size[1], size[0])
    for g in (None, torch.Generator().manual_seed(1)):
        params = sample_params(mode, size, 80, 64, True, generator=g)
        assert apply_params(img, params, mode, 80, 64).shape == (3, expected[1], expected[0])


def test_params_deterministic_without_generator():
    params = sample_params("crop", (100, 80), 100, 64, True, generator=None)
    assert params == {"size_wh": (100, 80), "crop_xy": (18, 8), "flip": False}
    seen = {
        (p["crop_xy"], p["flip"])
        for s in range(20)
        for p in [sample_params("crop", (100, 80), 100, 64, True, torch.Generator().manual_seed(s))]
    }
    assert len(seen) > 5 and {f for _, f in seen} == {True, False}


def test_crop_too_small_names_file():
    with pytest.raises(PixtransError, match="'x.png'.*data.crop_size"):
        sample_params("crop", (50, 80), 100, 64, False, path="x.png")


# ----------------------------------------------------------------------------------------------
# PairedDataset: layouts, directions, same geometry for A and B


def make_aligned(root: Path, split="train", n=3, size=(32, 24), a=RED, b=BLUE, ext="png"):
    w, h = size
    for i in range(n):
        ab = np.concatenate([solid(h, w, a), solid(h, w, b)], axis=1)
        save(ab, root / split / f"{i}.{ext}")
    return root


def make_folders(root: Path, combine: bool, n=3, size=(32, 24)):
    w, h = size
    for i in range(n):
        for side, colour in (("A", RED), ("B", BLUE)):
            folder = root / side / "train" if combine else root / "train" / side
            save(solid(h, w, colour), folder / f"img{i}.png")
    return root


KW = dict(preprocess="resize_and_crop", load_size=20, crop_size=16)
RED_T, BLUE_T = torch.tensor([1.0, -1, -1]), torch.tensor([-1.0, -1, 1])


@pytest.mark.parametrize("layout", ["aligned", "folders-split-first", "folders-combine"])
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_layouts_and_directions(tmp_path, layout, direction):
    if layout == "aligned":
        make_aligned(tmp_path)
    else:
        make_folders(tmp_path, combine=layout == "folders-combine")
    ds = PairedDataset(root=tmp_path, split="train", direction=direction, **KW)
    assert len(ds) == 3 and ds.layout == layout.split("-")[0]
    item = ds[(1, 7)]
    a, b = (RED_T, BLUE_T) if direction == "AtoB" else (BLUE_T, RED_T)
    assert item["real_a"].shape == (3, 16, 16) and item["real_b"].shape == (3, 16, 16)
    assert torch.allclose(item["real_a"][:, 5, 5], a) and torch.allclose(item["real_b"][:, 5, 5], b)
    assert item["index"] == 1 and isinstance(item["path"], str) and Path(item["path"]).exists()
    if layout != "aligned":  # path is the file real_a came from
        assert ("/B" in item["path"]) == (direction == "BtoA")


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_same_geometry_for_a_and_b(tmp_path, mode):
    content = noise(40, 30)
    save(np.concatenate([content, content], axis=1), tmp_path / "train" / "x.png")
    ds = PairedDataset(root=tmp_path, split="train", preprocess=mode, load_size=36, crop_size=24, flip=True)
    flips = set()
    for seed in range(8):
        item = ds[(0, seed)]
        assert torch.equal(item["real_a"], item["real_b"])
        flips.add(sample_params(mode, (30, 40), 36, 24, True, torch.Generator().manual_seed(seed))["flip"])
    assert flips == {True, False}


def test_seed_determinism_and_channels(tmp_path):
    for i in range(2):
        save(
            np.concatenate([noise(40, 40, i), noise(40, 40, i + 10)], axis=1), tmp_path / "train" / f"{i}.png"
        )
    ds = PairedDataset(root=tmp_path, split="train", input_nc=1, output_nc=3, load_size=44, crop_size=32)
    first = ds[(1, 123)]
    assert first["real_a"].shape == (1, 32, 32) and first["real_b"].shape == (3, 32, 32)
    assert -1 <= first["real_a"].min() and first["real_a"].max() <= 1
    again = PairedDataset(
        root=tmp_path, split="train", input_nc=1, output_nc=3, load_size=44, crop_size=32, cache="off"
    )[(1, 123)]
    assert torch.equal(first["real_a"], again["real_a"]) and torch.equal(first["real_b"], again["real_b"])
    others = [ds[(1, s)]["real_b"] for s in range(124, 130)]
    assert not all(torch.equal(first["real_b"], o) for o in others)
    # int index: the deterministic view, centre crop of the 44x44 resize and no flip
    b_half = torch.from_numpy(noise(40, 40, 11)).permute(2, 0, 1).contiguous()
    params = {"size_wh": (40, 40), "crop_xy": (6, 6), "flip": False}
    expect = apply_params(b_half, params, "resize_and_crop", 44, 32).float() / 127.5 - 1
    assert torch.allclose(ds[1]["real_b"], expect, atol=1e-6)


def test_dataloader_batches(tmp_path):
    make_aligned(tmp_path, n=4)
    ds = DATASETS.get("paired")(root=tmp_path, split="train", **KW)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[[(0, 1), (3, 2)], [(1, 3), (2, 4)]])
    batch = next(iter(loader))
    assert batch["real_a"].shape == (2, 3, 16, 16) and batch["path"][1].endswith("3.png")
    assert batch["index"].tolist() == [0, 3]


def test_cache_modes_and_pickle(tmp_path):
    make_aligned(tmp_path, n=3)
    on = PairedDataset(root=tmp_path, split="train", cache="on", **KW)
    assert len(on._cache) == 3 and on._cache[0][0].dtype == torch.uint8
    assert on.cache_bytes == 3 * 2 * 3 * 32 * 24
    tiny = PairedDataset(root=tmp_path, split="train", cache="auto", cache_max_gb=1e-6, **KW)
    assert tiny._cache is None
    off = PairedDataset(root=tmp_path, split="train", cache="off", **KW)
    assert torch.equal(on[(2, 9)]["real_a"], off[(2, 9)]["real_a"])
    worker_copy = pickle.loads(pickle.dumps(on))  # what a spawned DataLoader worker gets
    assert worker_copy._cache == {} and torch.equal(worker_copy[(2, 9)]["real_b"], on[(2, 9)]["real_b"])
    assert len(worker_copy._cache) == 1  # filled lazily
    assert len(PairedDataset(root=tmp_path, split="train", max_images=2, **KW)) == 2


def test_16_bit_pairs(tmp_path):
    for side in "AB":
        (tmp_path / "train" / side).mkdir(parents=True)
        png16(tmp_path / "train" / side / "x.png", np.full((8, 8, 1), 65535 if side == "A" else 0, np.uint16))
    ds = PairedDataset(root=tmp_path, split="train", preprocess="none", input_nc=1, output_nc=3, cache="on")
    assert ds._cache[0][0].dtype == torch.uint16
    item = ds[(0, 1)]
    assert torch.equal(item["real_a"], torch.ones(1, 8, 8)) and torch.equal(
        item["real_b"], -torch.ones(3, 8, 8)
    )


# ----------------------------------------------------------------------------------------------
# Bad inputs: one-line PixtransError naming the file or folder


def test_missing_and_empty(tmp_path):
    with pytest.raises(PixtransError, match="nope"):
        PairedDataset(root=tmp_path / "nope", split="train", **KW)
    with pytest.raises(PixtransError, match=r"'.*train' not found.*A\|B"):
        PairedDataset(root=tmp_path, split="train", **KW)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("x")
    with pytest.raises(PixtransError, match=r"no images in '.*train'.*\.png"):
        PairedDataset(root=tmp_path, split="train", **KW)
    (tmp_path / "train" / "A").mkdir()
    with pytest.raises(PixtransError, match=r"train/A' exists but '.*train/B' is missing"):
        PairedDataset(root=tmp_path, split="train", **KW)
    with pytest.raises(PixtransError, match="data.layout=folders"):
        PairedDataset(root=tmp_path, split="val", layout="folders", **KW)


def test_odd_width_and_too_small(tmp_path):
    save(noise(24, 63), tmp_path / "train" / "odd.png")
    with pytest.raises(PixtransError, match="odd.png' is 63x24.*even width"):
        PairedDataset(root=tmp_path, split="train", **KW)
    (tmp_path / "train" / "odd.png").unlink()
    make_aligned(tmp_path, n=1, size=(20, 12))
    with pytest.raises(PixtransError, match=r"0.png' is 20x12, smaller than data.crop_size=16.*preprocess"):
        PairedDataset(root=tmp_path, split="train", preprocess="crop", crop_size=16)
    assert (
        len(
            PairedDataset(
                root=tmp_path, split="train", preprocess="resize_and_crop", load_size=20, crop_size=16
            )
        )
        == 1
    )


def test_mismatched_folders(tmp_path):
    make_folders(tmp_path, combine=False, n=3)
    (tmp_path / "train" / "B" / "img1.png").rename(tmp_path / "train" / "B" / "other.png")
    with pytest.raises(
        PixtransError, match=r"1 file\(s\) in '.*A' have no partner in B \(first: img1.png\).*other.png"
    ):
        PairedDataset(root=tmp_path, split="train", **KW)
    (tmp_path / "train" / "B" / "other.png").rename(tmp_path / "train" / "B" / "img1.png")
    save(solid(10, 10, RED), tmp_path / "train" / "B" / "img2.png")  # B pair of a different size
    with pytest.raises(PixtransError, match="img2.png' is 32x24 but '.*img2.png' is 10x10"):
        PairedDataset(root=tmp_path, split="train", **KW)


def test_corrupt_fail_and_skip(tmp_path, caplog):
    make_aligned(tmp_path, n=5)
    for i in (1, 3):
        (tmp_path / "train" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(
        PixtransError, match=r"'.*1.png'.*\(2 of 5 pairs .* unreadable files\).*bad_files=skip"
    ) as err:
        PairedDataset(root=tmp_path, split="train", **KW)
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="pixtrans.data"):
        ds = PairedDataset(root=tmp_path, split="train", bad_files="skip", cache="off", **KW)
    assert len(ds) == 3 and [Path(p).name for p in ds.dropped] == ["1.png", "3.png"]
    assert (
        len(caplog.records) == 1 and "skipping 2 unreadable" in caplog.text and "1.png, 3.png" in caplog.text
    )
    # a file that breaks after start-up is skipped deterministically and counted
    (tmp_path / "train" / "2.png").write_bytes(b"gone bad")
    item = ds[(1, 5)]  # samples are now 0, 2, 4: index 1 (2.png) -> index 2 (4.png)
    assert item["index"] == 2 and item["path"].endswith("4.png") and ds.skipped == 1


def test_runtime_failure_with_fail_policy(tmp_path):
    make_aligned(tmp_path, n=2)
    ds = PairedDataset(root=tmp_path, split="train", cache="off", **KW)
    (tmp_path / "train" / "0.png").write_bytes(b"")
    with pytest.raises(PixtransError, match="0.png.*bad_files=skip"):
        ds[0]


# ----------------------------------------------------------------------------------------------
# Synthetic set


def test_synthetic_generation(tmp_path):
    out = generate_synthetic_pairs(tmp_path / "a", n=200, resolution=64, seed=3)
    files = sorted((out / "train").glob("*.png"))
    assert len(files) == 180 and len(list((out / "val").glob("*.png"))) == 20
    assert Image.open(files[0]).size == (128, 64)
    # deterministic, and reused (not rewritten) on a second call
    again = generate_synthetic_pairs(tmp_path / "b", n=20, resolution=64, seed=3)
    assert (again / "train" / "00005.png").read_bytes() == (out / "train" / "00005.png").read_bytes()
    mtime = files[0].stat().st_mtime_ns
    generate_synthetic_pairs(out, n=200, resolution=64, seed=3)
    assert files[0].stat().st_mtime_ns == mtime
    other = generate_synthetic_pairs(tmp_path / "c", n=20, resolution=64, seed=4)
    assert (other / "train" / "00005.png").read_bytes() != (out / "train" / "00005.png").read_bytes()
    # an interrupted generation (no manifest) and new parameters are redone in place
    (out / "manifest.json").unlink()
    generate_synthetic_pairs(out, n=10, resolution=32, seed=3)
    assert len(list((out / "train").glob("*.png"))) == 9 and Image.open(out / "val" / "00009.png").size == (
        64,
        32,
    )
    assert not list(out.glob(".tmp-*"))


def test_synthetic_refuses_foreign_folder(tmp_path):
    make_aligned(tmp_path, n=1)
    with pytest.raises(PixtransError, match="not made by pixtrans"):
        generate_synthetic_pairs(tmp_path, n=10, resolution=16, seed=0)


def test_synthetic_dataset_labels_to_photo(tmp_path):
    ds = DATASETS.get("synthetic")(
        root=tmp_path,
        split="val",
        size=20,
        resolution=32,
        seed=0,
        direction="BtoA",
        preprocess="none",
        layout="auto",
    )
    assert isinstance(ds, PairedDataset) and len(ds) == 2
    item = ds[(0, 1)]
    labels = ((item["real_a"] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).reshape(-1, 3)
    palette = {tuple(c) for c in PALETTE.tolist()}
    assert {tuple(c) for c in labels.tolist()} <= palette  # real_a is the flat label map
    assert len({tuple(c) for c in labels.tolist()}) >= 3
    assert (
        SyntheticDataset(root=tmp_path, split="train", size=20, resolution=32, seed=0, preprocess="none").root
        == ds.root
    )


# ----------------------------------------------------------------------------------------------
# The real facades set (shared/ beside the clone; skipped when absent)


@pytest.mark.skipif(
    not (SHARED / "datasets" / "facades" / "train").is_dir(), reason="shared/ facades not found"
)
def test_facades():
    root = SHARED / "datasets" / "facades"
    ds = PairedDataset(root=root, split="train", direction="BtoA", cache="off")  # decodes all 400
    assert len(ds) == 400 and ds.layout == "aligned"
    item = ds[(0, 42)]
    assert item["real_a"].shape == (3, 256, 256) and item["real_b"].shape == (3, 256, 256)
    # BtoA: real_a is the right half, the flat-coloured label map (few distinct colours)
    a = read_image(item["path"], 3)
    label_half, photo_half = a[:, :, 256:], a[:, :, :256]
    centre = ds[0]  # 286 resize, centre crop of the label half
    params = sample_params("resize_and_crop", (256, 256), 286, 256, True, generator=None)
    expect = apply_params((label_half * 255).round().to(torch.uint8), params, "resize_and_crop", 286, 256)
    assert torch.allclose(centre["real_a"], expect.float() / 127.5 - 1, atol=1e-6)
    assert not torch.allclose(centre["real_b"], expect.float() / 127.5 - 1, atol=0.1)
    assert photo_half.std() > 0
