"""Translate images of any size with bounded memory: overlapping tiles, blended without seams.

    y = translate_tiled(run, image, tile=512, overlap=64, size_multiple=m, output_nc=3)

The image is padded to the generator's multiple exactly as a whole-image translation pads it
(centred; reflect, replicate where the pad is wider than the image), cut into tiles of `tile`
pixels whose starts are multiples of `size_multiple` where the overlap allows (so every tile sees
the same pixel grid as the whole image: strided convs are shift-equivariant only for shifts by
their stride; see tile_alignment for strides wider than the overlap), each tile
is translated alone, and the results are blended with a separable window normalised by the
summed weights:

    y(p) = sum_t w_t(p) G(x_t)(p) / sum_t w_t(p),   w_t(i, j) = a(i) * b(j)

where a, b are 1 on a tile's inside and on sides that touch the image border, and on a side
shared with a neighbour rise as a raised cosine sin^2 over the middle half of the overlap, with
zero weight on its outer quarter (the pixels whose receptive field the tile cut off). Adjacent
ramps sum to one (sin^2 + cos^2), so a net whose receptive field fits in that quarter gives
exactly the whole-image result, and any other eval-mode net gets no visible seam.

Memory: tiles run one at a time and rows of tiles are finished in order, so beyond the input and
output images (uint8/uint16, as stored) only one band of tile height x image width is held in
float: 8192 x 8192 needs about what 2048 x 2048 needs plus the two images.

Eval mode only. Paper mode (dropout noise, BatchNorm on the image's own statistics) would
normalise every tile by its own statistics and draw different noise per tile, so neighbouring
tiles would disagree and the seams would show; asking for it is refused. Nets with InstanceNorm
(CycleGAN's ResNet, pix2pixHD) normalise each tile by its own statistics even in eval mode: the
blend hides the seams, but the result differs slightly from a whole-image run; larger tiles
bring it closer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pixtrans import PixtransError

RunTile = Callable[[torch.Tensor], torch.Tensor]  # [1,C,h,w] in [-1,1] -> [1,C',h,w]


def check_tile_mode(mode: str) -> None:
    if mode != "eval":
        raise PixtransError(
            f"tiled translation runs eval mode only, not '{mode}': in paper mode every tile would be "
            "normalised by its own statistics and get its own dropout noise, so neighbouring tiles "
            "would disagree and seams would show; use --mode eval with --tile"
        )


def tile_alignment(overlap: int, size_multiple: int) -> int:
    """The step tile starts are multiples of: the net's stride when the overlap can hold it, else
    the largest divisor of the stride that fits the overlap (the U-Net's stride is 256: with a
    64-pixel overlap tiles start on multiples of 64; its receptive field spans the whole tile
    anyway, so no alignment could make tiles exact there)."""
    m = max(int(size_multiple), 1)
    if overlap <= 0 or m <= overlap:
        return m
    return max(d for d in range(1, overlap + 1) if m % d == 0)


def check_tiling(tile: int, overlap: int, size_multiple: int) -> tuple[int, int, int]:
    """(tile rounded up to the stride, overlap rounded up to the start alignment, the alignment)."""
    m = max(int(size_multiple), 1)
    if tile <= 0 or overlap < 0:
        raise PixtransError(f"--tile must be > 0 and --overlap >= 0, got tile {tile}, overlap {overlap}")
    align = tile_alignment(overlap, m)
    tile_r, overlap_r = -(-tile // m) * m, -(-overlap // align) * align
    if 2 * overlap_r >= tile_r:
        raise PixtransError(
            f"--overlap {overlap} must be less than half of --tile {tile} (after rounding: overlap "
            f"{overlap_r}, tile {tile_r}, a multiple of the generator's {m}); use a larger tile or a "
            "smaller overlap"
        )
    return tile_r, overlap_r, align


def tile_starts(total: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Starts of tiles of `tile` px covering [0, total): stride tile - overlap, the last tile
    flush with the end (total and tile are multiples of `multiple`, so every start is too)."""
    if total <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, total - tile, stride))
    starts.append(total - tile)
    assert all(s % multiple == 0 for s in starts)
    return starts


def ramp(length: int, overlap: int) -> np.ndarray:
    """Weights for the `length` pixels next to a shared tile edge, from the edge inwards: 0 on
    the outer quarter of the overlap, sin^2 over its middle half, 1 after."""
    margin = overlap // 4
    rise = overlap - 2 * margin
    d = np.arange(length, dtype=np.float64)
    w = np.ones(length)
    w[d < margin] = 0.0
    inside = (d >= margin) & (d < margin + rise)
    w[inside] = np.sin(0.5 * np.pi * (d[inside] - margin + 0.5) / max(rise, 1)) ** 2
    return w


def window_1d(start: int, length: int, total: int, overlap: int) -> np.ndarray:
    """A tile's weights along one axis: ramps only on sides shared with another tile."""
    w = np.ones(length)
    if overlap == 0:
        return w
    if start > 0:
        w *= ramp(length, overlap)
    if start + length < total:
        w *= ramp(length, overlap)[::-1]
    return w


def pad_array(arr: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """HxWxC numpy padded like inference.padding.pad_to_multiple pads a tensor."""
    h, w = arr.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    top, left = ph // 2, pw // 2
    if ph:
        mode = "reflect" if max(top, ph - top) < h else "edge"
        arr = np.pad(arr, ((top, ph - top), (0, 0), (0, 0)), mode=mode)
    if pw:
        mode = "reflect" if max(left, pw - left) < w else "edge"
        arr = np.pad(arr, ((0, 0), (left, pw - left), (0, 0)), mode=mode)
    return arr, (top, left)


def _to_unit(arr: np.ndarray) -> torch.Tensor:
    """HxWxC uint8 / uint16 / float in [0,1] -> [1,C,H,W] float32 in [-1,1]."""
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    elif x.dtype == torch.uint16:
        x = x.float().div_(65535.0)
    else:
        x = x.float()
    return x.mul_(2.0).sub_(1.0)[None]


def _from_unit(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """[C,h,w] float in [-1,1] -> hxwxC of `dtype` (uint8 / uint16, else float32 in [0,1])."""
    y = np.clip((y + 1.0) * 0.5, 0.0, 1.0).transpose(1, 2, 0)
    if dtype in (np.uint8, np.uint16):
        return np.rint(y * np.iinfo(dtype).max).astype(dtype)
    return y.astype(np.float32)


def translate_tiled(
    run: RunTile,
    image: np.ndarray,
    *,
    tile: int,
    overlap: int,
    size_multiple: int,
    output_nc: int,
    out_dtype: np.dtype | None = None,
) -> np.ndarray:
    """HxWxC image (uint8, uint16 or float in [0,1]; the channels the net reads) -> HxWxC'
    translation of `out_dtype` (default: the input's), computed tile by tile (module docstring)."""
    tile, overlap, align = check_tiling(tile, overlap, size_multiple)
    m = max(int(size_multiple), 1)
    out_dtype = np.dtype(out_dtype or image.dtype)
    h, w = image.shape[:2]
    padded, (top, left) = pad_array(image if image.ndim == 3 else image[:, :, None], m)
    hp, wp = padded.shape[:2]
    tile_h, tile_w = min(tile, hp), min(tile, wp)
    rows, cols = tile_starts(hp, tile_h, overlap, align), tile_starts(wp, tile_w, overlap, align)
    col_weights = [window_1d(x0, tile_w, wp, overlap) for x0 in cols]
    out = np.empty((h, w, output_nc), dtype=out_dtype)

    # the band of rows still open: [band_y, band_y + tile_h) of the padded image
    acc = np.zeros((output_nc, tile_h, wp), dtype=np.float32)
    wsum = np.zeros((tile_h, wp), dtype=np.float32)
    band_y = 0

    def emit(y0: int, y1: int) -> None:
        """Padded rows [y0, y1) are final: normalise, crop to the image, store."""
        lo, hi = max(y0, top), min(y1, top + h)
        if lo >= hi:
            return
        a, b = lo - band_y, hi - band_y
        weights = wsum[a:b, left : left + w]
        if not (weights > 0).all():
            raise AssertionError("tiling left a pixel without weight")  # a bug, never bad input
        out[lo - top : hi - top] = _from_unit(acc[:, a:b, left : left + w] / weights, out_dtype)

    for y0 in rows:
        if y0 > band_y:  # rows above this tile row are done: write them, shift the band up
            emit(band_y, y0)
            shift = y0 - band_y
            acc[:, :-shift], wsum[:-shift] = acc[:, shift:].copy(), wsum[shift:].copy()
            acc[:, -shift:], wsum[-shift:] = 0.0, 0.0
            band_y = y0
        wy = window_1d(y0, tile_h, hp, overlap)
        for x0, wx in zip(cols, col_weights, strict=True):
            x = _to_unit(padded[y0 : y0 + tile_h, x0 : x0 + tile_w])
            y = run(x)[0].float().cpu().numpy()  # [C', tile_h, tile_w]
            weight = (wy[:, None] * wx[None, :]).astype(np.float32)
            acc[:, :, x0 : x0 + tile_w] += y * weight
            wsum[:, x0 : x0 + tile_w] += weight
    emit(band_y, band_y + tile_h)
    return out
