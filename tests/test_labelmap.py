"""pix2pixHD data: the labelmap dataset, one-hot / instance-edge inputs, `pixtrans prepare cityscapes`."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import torch
from conftest import SHARED
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.config import DataConfig
from pixtrans.data import (
    LabelMapDataset,
    dataset_kwargs,
    input_channels,
    instance_edges,
    label_input,
    one_hot_labels,
)
from pixtrans.prepare import prepare_cityscapes
from pixtrans.registry import DATASETS

H, W = 32, 64  # tiny Cityscapes-shaped frames (1:2)
FRAME_IDS = [f"{city}_{seq:06d}_000019" for city in ("aachen", "bochum") for seq in range(2)]
SAMPLE = SHARED / "datasets" / "pix2pixhd_cityscapes_sample"


def block_label(k: int) -> np.ndarray:
    """[H,W] uint8 class ids 0..33 in 8x8 blocks, different for each k."""
    y, x = np.mgrid[0:H, 0:W]
    return (((x // 8) + 8 * (y // 8) + k) % 34).astype(np.uint8)


def instances_of(label: np.ndarray) -> np.ndarray:
    """Cityscapes-style instance ids: class*1000+1 for "things" (ids >= 24), the class id otherwise."""
    lab = label.astype(np.uint16)
    return np.where(lab >= 24, lab * 1000 + 1, lab).astype(np.uint16)


def photo_of(label: np.ndarray) -> np.ndarray:
    """[H,W,3] uint8 photo whose red channel is label*7: checks crops and flips line up."""
    lab = label.astype(np.int32)
    return np.stack([lab * 7, 255 - lab * 7, np.full_like(lab, 128)], axis=-1).astype(np.uint8)


def save_png(arr: np.ndarray, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_pix2pixhd(root, split: str = "train", ids=FRAME_IDS, photos: bool = True, feat: bool = False):
    for k, frame in enumerate(ids):
        label = block_label(k)
        save_png(label, root / f"{split}_label" / f"{frame}_gtFine_labelIds.png")
        save_png(instances_of(label), root / f"{split}_inst" / f"{frame}_gtFine_instanceIds.png")
        if photos:
            save_png(photo_of(label), root / f"{split}_img" / f"{frame}_leftImg8bit.png")
        if feat:
            save_png(
                photo_of(label)[..., ::-1].copy(), root / f"{split}_feat" / f"{frame}_gtFine_labelIds.png"
            )
    return root


def write_download(src, splits=("train", "val")):
    """A tiny Cityscapes download: leftImg8bit/{split}/{city}/... and gtFine/{split}/{city}/..."""
    for split in splits:
        for k, frame in enumerate(FRAME_IDS):
            city = frame.split("_")[0]
            label = block_label(k)
            save_png(photo_of(label), src / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png")
            gt = src / "gtFine" / split / city
            save_png(label, gt / f"{frame}_gtFine_labelIds.png")
            save_png(instances_of(label), gt / f"{frame}_gtFine_instanceIds.png")
            save_png(photo_of(label)[..., ::-1].copy(), gt / f"{frame}_gtFine_color.png")
    return src


def dataset(root, **kw) -> LabelMapDataset:
    args = dict(root=root, label_nc=35, preprocess="crop", load_size=W, crop_size=16, num_threads=1)
    args.update(kw)
    return LabelMapDataset(**args)


# ----------------------------------------------------------------------------------------------
# Dataset items


def test_items_shapes_dtypes_and_names(tmp_path):
    ds = dataset(write_pix2pixhd(tmp_path), preprocess="scale_width", load_size=32, crop_size=16)
    assert len(ds) == 4 and ds.parts == ["input", "inst", "target"]
    item = ds[(1, 7)]
    assert item["label"].shape == (1, 16, 32) and item["label"].dtype == torch.int64
    assert item["inst"].shape == (1, 16, 32) and item["inst"].dtype == torch.int32
    assert item["real_b"].shape == (3, 16, 32) and item["real_b"].dtype == torch.float32
    assert -1.0 <= float(item["real_b"].min()) and float(item["real_b"].max()) <= 1.0
    assert item["name"] == f"{FRAME_IDS[1]}_gtFine_labelIds" and "feat" not in item
    # nearest resize: no new ids, and label/inst still agree pixel by pixel
    label, inst = item["label"][0].numpy(), item["inst"][0].numpy()
    assert set(np.unique(label)) <= set(np.unique(block_label(1)))
    assert set(np.unique(inst)) <= set(np.unique(instances_of(block_label(1))))
    assert np.array_equal(instances_of(label.astype(np.uint8)), inst)
    # a batch feeds the model's input encoding
    batch = torch.utils.data.default_collate([ds[0], ds[(2, 3)]])
    x = label_input(batch["label"], batch["inst"], 35, use_instance=True)
    assert x.shape == (2, input_channels(35, False, True), 16, 32) == (2, 36, 16, 32)


def test_same_crop_and_flip_for_every_map(tmp_path):
    ds = dataset(write_pix2pixhd(tmp_path, feat=True), features=True, crop_size=16)
    original = block_label(0)
    flips = set()
    for seed in range(12):
        item = ds[(0, seed)]
        label = item["label"][0].numpy()
        # the inst map and the photo show exactly the crop (and flip) of the label map
        assert np.array_equal(item["inst"][0].numpy(), instances_of(label.astype(np.uint8)))
        red = ((item["real_b"][0] + 1) / 2 * 255).round().numpy()
        assert np.array_equal(red, label * 7.0)
        blue_feat = ((item["feat"][2] + 1) / 2 * 255).round().numpy()  # feat = photo with R/B swapped
        assert np.array_equal(blue_feat, label * 7.0)
        # ... and that crop exists in the original at some position, flipped or not
        hits = [
            (x, y, f)
            for x, y, f in itertools.product(range(W - 15), range(H - 15), (False, True))
            if np.array_equal(original[y : y + 16, x : x + 16][:, :: -1 if f else 1], label)
        ]
        assert hits
        flips |= {f for _, _, f in hits}
    assert flips == {False, True}  # flips did happen for some seeds
    # index access: the deterministic centre crop, never flipped
    centre = ds[0]["label"][0].numpy()
    assert np.array_equal(centre, original[8:24, 24:40])


def test_registry_and_config_kwargs(tmp_path):
    write_pix2pixhd(tmp_path)
    data = DataConfig(
        dataset="labelmap", root=str(tmp_path), label_nc=35, preprocess="crop", load_size=64, crop_size=16
    )
    ds = DATASETS.get("labelmap")(**dataset_kwargs(data, split="train"))
    assert isinstance(ds, LabelMapDataset) and ds.label_nc == 35 and ds.instance
    assert sorted(ds[0]) == ["index", "inst", "label", "name", "path", "real_b"]
    data.instance = False
    ds = DATASETS.get("labelmap")(**dataset_kwargs(data, split="train"))
    assert "inst" not in ds[0]


def test_rgb_pairs_when_label_nc_is_zero(tmp_path):
    for k, frame in enumerate(FRAME_IDS[:2]):
        save_png(photo_of(block_label(k)), tmp_path / "train_A" / f"{frame}.png")
        save_png(photo_of(block_label(k + 1)), tmp_path / "train_B" / f"{frame}.jpg")
    ds = dataset(tmp_path, label_nc=0, instance=False)
    item = ds[(0, 1)]
    assert item["real_a"].shape == (3, 16, 16) and item["real_a"].dtype == torch.float32
    assert item["real_b"].shape == (3, 16, 16) and "label" not in item
    x = label_input(item["real_a"][None], None, 0, use_instance=False)
    assert x.shape[1] == input_channels(0, False, False) == 3


def test_dontcare_maps_255_to_an_extra_class(tmp_path):
    write_pix2pixhd(tmp_path)
    path = tmp_path / "train_label" / f"{FRAME_IDS[0]}_gtFine_labelIds.png"
    label = block_label(0)
    label[:8, :8] = 255
    save_png(label, path)
    with pytest.raises(PixtransError, match=r"class id 255.*data.dontcare_label=true"):
        dataset(tmp_path)
    ds = dataset(tmp_path, dontcare_label=True)
    assert int(ds[0]["label"].max()) <= 35
    full = dataset(tmp_path, dontcare_label=True, preprocess="none", instance=False)
    ids = full[0]["label"]
    assert int(ids.max()) == 35
    assert one_hot_labels(ids[None], 35, dontcare_label=True).shape == (1, 36, H, W)


def test_test_split_without_photos(tmp_path):
    write_pix2pixhd(tmp_path, split="test", photos=False)
    with pytest.raises(PixtransError, match=r"test_img.*missing or empty"):
        dataset(tmp_path, split="test")
    ds = dataset(tmp_path, split="test", need_images=False)
    assert "real_b" not in ds[0] and ds.parts == ["input", "inst"]


def test_unreadable_photo_skip_or_fail(tmp_path):
    write_pix2pixhd(tmp_path)
    bad = tmp_path / "train_img" / f"{FRAME_IDS[2]}_leftImg8bit.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    with pytest.raises(PixtransError, match=FRAME_IDS[2]):
        dataset(tmp_path)
    ds = dataset(tmp_path, bad_files="skip")
    assert len(ds) == 3 and ds.dropped == [str(bad)]


# ----------------------------------------------------------------------------------------------
# Errors at construction


def test_label_id_out_of_range(tmp_path):
    write_pix2pixhd(tmp_path)
    label = block_label(3)
    label[0, 0] = 40
    save_png(label, tmp_path / "train_label" / f"{FRAME_IDS[3]}_gtFine_labelIds.png")
    with pytest.raises(PixtransError) as err:
        dataset(tmp_path)
    msg = str(err.value)
    assert FRAME_IDS[3] in msg and "class id 40" in msg and "data.label_nc" in msg and "\n" not in msg
    assert len(dataset(tmp_path, label_nc=41)) == 4


def test_colour_label_map_refused(tmp_path):
    write_pix2pixhd(tmp_path)
    save_png(photo_of(block_label(0)), tmp_path / "train_label" / f"{FRAME_IDS[0]}_gtFine_labelIds.png")
    with pytest.raises(PixtransError, match=r"3 channels.*labelIds"):
        dataset(tmp_path)


def test_missing_instance_map(tmp_path):
    write_pix2pixhd(tmp_path)
    (tmp_path / "train_inst" / f"{FRAME_IDS[1]}_gtFine_instanceIds.png").unlink()
    with pytest.raises(PixtransError) as err:
        dataset(tmp_path)
    msg = str(err.value)
    assert f"{FRAME_IDS[1]}_gtFine_labelIds.png" in msg and "data.instance=false" in msg
    assert len(dataset(tmp_path, instance=False)) == 4
    (tmp_path / "train_inst").rename(tmp_path / "elsewhere")
    with pytest.raises(PixtransError, match=r"train_inst.*data.instance=false"):
        dataset(tmp_path)


def test_unmatched_names(tmp_path):
    write_pix2pixhd(tmp_path)
    photo = tmp_path / "train_img" / f"{FRAME_IDS[1]}_leftImg8bit.png"
    photo.rename(photo.with_name("bochum_000009_000019_leftImg8bit.png"))
    with pytest.raises(PixtransError, match=rf"{FRAME_IDS[1]}_gtFine_labelIds.png' has no photo"):
        dataset(tmp_path)


def test_size_mismatch_names_both_files(tmp_path):
    write_pix2pixhd(tmp_path)
    save_png(photo_of(block_label(0))[:, :48], tmp_path / "train_img" / f"{FRAME_IDS[0]}_leftImg8bit.png")
    for cache in ("on", "off"):  # decoded, and checked from the headers only
        with pytest.raises(PixtransError) as err:
            dataset(tmp_path, cache=cache)
        msg = str(err.value)
        assert (
            "64x32" in msg and "48x32" in msg and "_gtFine_labelIds.png" in msg and "_leftImg8bit.png" in msg
        )


def test_missing_folder_and_crop_too_big(tmp_path):
    with pytest.raises(PixtransError, match=r"train_label' not found.*train_inst.*train_img"):
        dataset(tmp_path)
    write_pix2pixhd(tmp_path)
    with pytest.raises(PixtransError, match=r"train_A' not found.*train_label' exists.*data.label_nc"):
        dataset(tmp_path, label_nc=0)
    with pytest.raises(PixtransError, match=r"gtFine_labelIds.png' is 64x32, smaller than data.crop_size=48"):
        dataset(tmp_path, crop_size=48)


# ----------------------------------------------------------------------------------------------
# Network input


def test_one_hot_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 6, (2, 1, 5, 7), generator=g)
    out = one_hot_labels(label, 6)
    expected = torch.zeros(2, 6, 5, 7)
    for b, y, x in itertools.product(range(2), range(5), range(7)):
        expected[b, label[b, 0, y, x], y, x] = 1.0
    assert torch.equal(out, expected)
    assert one_hot_labels(label, 6, dontcare_label=True).shape == (2, 7, 5, 7)


def test_instance_edges_match_get_edges_semantics():
    g = torch.Generator().manual_seed(1)
    inst = torch.randint(0, 3, (2, 1, 6, 9), generator=g).int() * 1000
    edges = instance_edges(inst)
    assert edges.dtype == torch.float32 and edges.shape == inst.shape
    expected = torch.zeros(2, 1, 6, 9)
    for b, y, x in itertools.product(range(2), range(6), range(9)):
        v = inst[b, 0, y, x]
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            yy, xx = y + dy, x + dx
            if 0 <= yy < 6 and 0 <= xx < 9 and inst[b, 0, yy, xx] != v:
                expected[b, 0, y, x] = 1.0
    assert torch.equal(edges, expected)
    # a single vertical boundary marks both columns beside it
    two = torch.tensor([[[[5, 5, 7, 7]]]])
    assert instance_edges(two).tolist() == [[[[0.0, 1.0, 1.0, 0.0]]]]


def test_label_input_channels():
    label = torch.randint(0, 35, (1, 1, 4, 8))
    inst = torch.randint(0, 2, (1, 1, 4, 8))
    for dontcare, use_inst in itertools.product((False, True), (False, True)):
        x = label_input(label, inst, 35, dontcare_label=dontcare, use_instance=use_inst)
        assert x.shape[1] == input_channels(35, dontcare, use_inst) == 35 + dontcare + use_inst


# ----------------------------------------------------------------------------------------------
# The real sample (NVIDIA's Cityscapes examples)


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared pix2pixHD sample not available")
def test_real_cityscapes_sample():
    ds = LabelMapDataset(
        root=SAMPLE, label_nc=35, preprocess="scale_width", load_size=256, crop_size=128, cache="off"
    )
    item = ds[(0, 0)]
    assert item["label"].shape == (1, 128, 256) and item["inst"].shape == (1, 128, 256)
    assert item["real_b"].shape == (3, 128, 256)
    assert int(item["label"].max()) < 35 and int(item["inst"].max()) > 1000  # things: class*1000+k
    test = LabelMapDataset(
        root=SAMPLE,
        split="test",
        label_nc=35,
        preprocess="scale_width",
        load_size=256,
        crop_size=128,
        need_images=False,
        max_images=2,
        cache="off",
    )
    assert len(test) == 2 and sorted(test[1]) == ["index", "inst", "label", "name", "path"]


# ----------------------------------------------------------------------------------------------
# prepare cityscapes


def test_prepare_cityscapes_both_layouts(tmp_path):
    src = write_download(tmp_path / "cityscapes")
    dst, dst2 = tmp_path / "hd", tmp_path / "p2p"
    lines = []
    counts = prepare_cityscapes(src, dst, pix2pix_dst=dst2, pix2pix_size=16, num_threads=1, echo=lines.append)
    assert counts == {"train": 4, "val": 4} and len(lines) == 2 and lines[0].startswith("train: 4 frames")
    for split in ("train", "val"):
        assert sorted(p.name for p in (dst / f"{split}_img").iterdir()) == [
            f"{f}_leftImg8bit.png" for f in FRAME_IDS
        ]
        assert (
            len(list((dst / f"{split}_label").iterdir())) == len(list((dst / f"{split}_inst").iterdir())) == 4
        )
        assert sorted(p.name for p in (dst2 / split).iterdir()) == [f"{f}.jpg" for f in FRAME_IDS]
    # 16-bit instance ids survive the copy
    inst = Image.open(dst / "train_inst" / f"{FRAME_IDS[0]}_gtFine_instanceIds.png")
    assert inst.mode.startswith("I") and np.array_equal(np.asarray(inst), instances_of(block_label(0)))
    # photo | colour labels side by side, size x size each
    pair = np.asarray(Image.open(dst2 / "train" / f"{FRAME_IDS[0]}.jpg")).astype(int)
    assert pair.shape == (16, 32, 3)
    small = np.asarray(Image.fromarray(photo_of(block_label(0))).resize((16, 16), Image.Resampling.NEAREST))
    assert np.abs(pair[:, 16:] - small[..., ::-1]).mean() < 6  # the colour image (R/B swapped), JPEG
    # the written layout trains as is
    ds = dataset(dst, split="val")
    assert len(ds) == 4 and ds[0]["real_b"].shape == (3, 16, 16)


def test_prepare_link_rerun_and_stale_files(tmp_path):
    src = write_download(tmp_path / "cs", splits=("train",))
    dst = tmp_path / "hd"
    stale = dst / "train_img" / "zurich_000000_000001_leftImg8bit.png"
    save_png(photo_of(block_label(0)), stale)
    (dst / "train_img" / "notes.txt").write_text("mine")
    prepare_cityscapes(src, dst, splits=["train"], link=True, echo=None)
    photo = dst / "train_img" / f"{FRAME_IDS[0]}_leftImg8bit.png"
    source = src / "leftImg8bit" / "train" / "aachen" / photo.name
    assert os.path.samefile(photo, source)  # hard link (same file system)
    assert not stale.exists() and (dst / "train_img" / "notes.txt").exists()
    before = source.read_bytes()
    prepare_cityscapes(src, dst, splits=["train"], echo=None)  # re-run with copies
    assert not os.path.samefile(photo, source) and photo.read_bytes() == before == source.read_bytes()
    assert not any(p.name.startswith(".") for p in (dst / "train_img").iterdir())


def test_prepare_errors(tmp_path):
    src = write_download(tmp_path / "cs", splits=("train",))
    with pytest.raises(PixtransError, match=r"split 'val' not found"):
        prepare_cityscapes(src, tmp_path / "out", echo=None)
    assert not (tmp_path / "out").exists()  # checked before writing anything
    missing = src / "gtFine" / "train" / "bochum" / f"{FRAME_IDS[3]}_gtFine_instanceIds.png"
    missing.unlink()
    with pytest.raises(PixtransError, match=rf"{FRAME_IDS[3]}_leftImg8bit.png' has no .*instanceIds"):
        prepare_cityscapes(src, tmp_path / "out", splits=["train"], echo=None)
    for city in ("aachen", "bochum"):
        for p in (src / "leftImg8bit" / "train" / city).iterdir():
            p.unlink()
    with pytest.raises(PixtransError, match=r"nothing found for split 'train'"):
        prepare_cityscapes(src, tmp_path / "out", splits=["train"], echo=None)
    (src / "gtFine").rename(tmp_path / "gt")
    with pytest.raises(PixtransError, match=r"gtFine' not found"):
        prepare_cityscapes(src, tmp_path / "out", splits=["train"], echo=None)


def test_cli_prepare(tmp_path, capsys):
    src = write_download(tmp_path / "cs", splits=("train", "val"))
    args = ["prepare", "cityscapes", str(src), str(tmp_path / "hd"), "--pix2pix", str(tmp_path / "p2p")]
    assert main([*args, "--pix2pix-size", "8", "--splits", "train"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("train: 4 frames")
    assert Image.open(tmp_path / "p2p" / "train" / f"{FRAME_IDS[0]}.jpg").size == (16, 8)
    (src / "gtFine").rename(tmp_path / "gt")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "gtFine" in err[0]
