"""Tiled translation: equal to the whole-image result where the net's receptive field fits the
blend margin, no seams where tiles disagree, eval mode only, any size, 16-bit, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pixtrans import PixtransError
from pixtrans.inference import Translator
from pixtrans.inference.tiling import check_tiling, ramp, tile_starts, window_1d
from pixtrans.nets import build_generator


def _textured(h: int, w: int) -> np.ndarray:
    """A constructed HxWx3 float image in [0,1]: oriented waves and a ramp (no noise)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack(
        [np.sin(xx / 6 + yy / 9) * 0.4 + 0.5, np.cos(yy / 5 - xx / 11) * 0.4 + 0.5, (xx + yy) / (h + w)], -1
    ).astype(np.float32)


def _column_jumps(y: np.ndarray) -> np.ndarray:
    """Mean |y[:, x+1] - y[:, x]| per column pair: a seam is a spike in this profile."""
    return np.abs(np.diff(y.astype(np.float64), axis=1)).mean(axis=(0, 2))


def test_windows_sum_to_one_across_an_overlap():
    w = ramp(32, 32)
    assert w[:8].max() == 0.0 and w[24:].min() == 1.0  # zero on the outer quarter, one inside
    assert np.allclose(w + w[::-1], 1.0)  # sin^2 + cos^2: the two tiles' weights add up to one
    assert tile_starts(100, 40, 8, 4) == [0, 32, 60]  # the last tile flush with the end
    assert tile_starts(30, 40, 8, 4) == [0]
    assert (window_1d(0, 40, 40, 8) == 1).all()  # a lone tile: no ramps


def test_tiled_equals_whole_image_where_the_receptive_field_fits_the_margin():
    """CycleGAN's ResNet without normalisation (receptive field radius 23 px): tiles of 256 with
    an overlap of 96 (zero-weight margin 24) must give the whole-image result, on a size that is
    not a multiple of the net's stride (both pad the same way)."""
    torch.manual_seed(0)
    net = build_generator({"name": "resnet", "ngf": 4, "n_blocks": 1, "norm": "none"}, 3, 3)
    t = Translator(net, input_nc=3, output_nc=3)
    img = _textured(301, 523)
    whole = t(img, mode="eval")
    tiled = t.translate_tiled(img, tile=256, overlap=96)
    assert tiled.shape == whole.shape == (301, 523, 3) and tiled.dtype == np.float32
    assert np.abs(tiled - whole).max() < 1e-5
    # a tile larger than the image: one tile, the whole-image result
    assert (
        np.abs(
            t.translate_tiled(img[:100, :120], tile=512, overlap=64) - t(img[:100, :120], mode="eval")
        ).max()
        < 1e-5
    )


def test_no_seams_where_tiles_disagree():
    """InstanceNorm normalises each tile by its own statistics, so tiles disagree everywhere. Cut
    hard (no overlap) the border shows as a jump several times the image's own; blended, the
    jumps across tile borders are no larger than those inside tiles (5% tolerance)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 3, 3), nn.InstanceNorm2d(3), nn.Tanh())
    t = Translator(net, input_nc=3, output_nc=3)
    img = _textured(128, 400)
    for overlap in (0, 48):
        y = t.translate_tiled(img, tile=128, overlap=overlap)
        jumps = _column_jumps(y)
        border = np.zeros(len(jumps), bool)
        for start in tile_starts(400, 128, overlap, 1)[1:]:
            border[start - 1 : start + overlap] = True  # the hard-cut column and the blend zone
        seam, inside = jumps[border].max(), jumps[~border].max()
        if overlap == 0:
            assert seam > 2.5 * inside  # the measure sees a seam when there is one
        else:
            assert seam <= 1.05 * inside


def test_paper_mode_and_bad_tile_settings_are_refused():
    t = Translator(
        build_generator({"name": "resnet", "ngf": 4, "n_blocks": 1}, 3, 3), input_nc=3, output_nc=3
    )
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(PixtransError, match="own statistics"):
        t.translate_tiled(img, tile=32, overlap=8, mode="paper")
    with pytest.raises(PixtransError, match="less than half"):
        t.translate_tiled(img, tile=32, overlap=16)
    with pytest.raises(PixtransError, match="tile must be > 0"):
        check_tiling(0, 0, 4)
    assert check_tiling(30, 5, 4) == (32, 8, 4)  # rounded up to the stride
    # the U-Net's stride (256) is wider than the overlap: starts on multiples of 64, not 256
    assert check_tiling(512, 64, 256) == (512, 64, 64)
    unet = build_generator({"name": "unet", "num_downs": 8, "ngf": 2}, 3, 3)
    y = Translator(unet, input_nc=3, output_nc=3).translate_tiled(img, tile=512, overlap=64)
    assert y.shape == (40, 40, 3) and y.dtype == np.uint8


def test_uint8_and_uint16_keep_their_depth():
    torch.manual_seed(0)
    net = build_generator({"name": "resnet", "ngf": 4, "n_blocks": 1, "norm": "none"}, 1, 1)
    t = Translator(net, input_nc=1, output_nc=1)
    grey16 = (_textured(90, 130)[:, :, 0] * 65535).astype(np.uint16)
    out16 = t.translate_tiled(grey16, tile=128, overlap=48)
    want16 = t(grey16, mode="eval")
    assert out16.dtype == np.uint16 and out16.shape == (90, 130, 1)
    assert np.abs(out16[:, :, 0].astype(np.int64) - want16.astype(np.int64)).max() <= 1
    out8 = t.translate_tiled((grey16 >> 8).astype(np.uint8), tile=128, overlap=48)
    assert out8.dtype == np.uint8


def test_cli_tile_flag_on_a_file_and_a_folder(tmp_path):
    from pixtrans.cli import main
    from pixtrans.config import Config
    from pixtrans.inference import export_generators

    spec = {"name": "resnet", "ngf": 4, "n_blocks": 1, "norm": "none"}
    cfg = Config(method="cyclegan")
    cfg.model.G = spec
    torch.manual_seed(0)
    nets = {"G_ab": build_generator(spec, 3, 3), "G_ba": build_generator(spec, 3, 3)}
    out = export_generators(tmp_path / "export", cfg.to_dict(), nets, "cyclegan")
    img = (_textured(200, 300) * 255).round().astype(np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "big.png")
    args = ["--direction", "ab", "--tile", "256", "--overlap", "96"]
    assert (
        main(["translate", str(out), str(tmp_path / "in" / "big.png"), str(tmp_path / "one.png"), *args]) == 0
    )
    assert main(["translate", str(out), str(tmp_path / "in"), str(tmp_path / "many"), *args]) == 0
    one = np.asarray(Image.open(tmp_path / "one.png"))
    many = np.asarray(Image.open(tmp_path / "many" / "big.png"))
    whole = Translator.from_pretrained(out, generator="G_ab")(img, mode="eval")
    assert one.shape == (200, 300, 3) and (one == many).all()
    # receptive field radius 23 < zero-weight margin 24: the whole-image result, up to rounding
    assert np.abs(one.astype(int) - whole.astype(int)).max() <= 1
    # paper mode asked for explicitly: one line, nothing written
    assert main(["translate", str(out), str(tmp_path / "in" / "big.png"), str(tmp_path / "p.png"), *args,
                 "--mode", "paper"]) == 2  # fmt: skip
    assert not (tmp_path / "p.png").exists()
