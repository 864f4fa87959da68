"""The pix2pix/CycleGAN preprocess modes, split into sampling and applying.

`sample_params` draws the random part (crop position, flip) once per pair; `apply_params` then
applies the identical geometry to A and to B, so a pair stays pixel-aligned. The modes follow
the official pytorch-CycleGAN-and-pix2pix code:

    resize_and_crop       resize to load_size x load_size (aspect ignored), random crop_size crop
    crop                  random crop_size crop of the original image
    scale_width           width -> load_size keeping aspect, height never below crop_size
    scale_width_and_crop  scale_width, then a random crop_size crop
    none                  sides rounded to the nearest multiple of 4 (U-Net/ResNet strides)

then an optional random horizontal flip. With `generator=None` the crop is centred and nothing
flips: the deterministic view used for evaluation and sample grids.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from pixtrans import PixtransError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
_RESAMPLE = {
    "bicubic": InterpolationMode.BICUBIC,
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST_EXACT,  # label / instance maps: no new values
}


def resample_modes() -> tuple[str, ...]:
    return tuple(_RESAMPLE)


def check_mode(mode: str) -> None:
    if mode not in PREPROCESS_MODES:
        raise PixtransError(
            f"config key 'data.preprocess': unknown mode '{mode}'; valid: {', '.join(PREPROCESS_MODES)}"
        )


def crops(mode: str) -> bool:
    return mode in ("resize_and_crop", "crop", "scale_width_and_crop")


def resized_size(mode: str, size_wh: tuple[int, int], load_size: int, crop_size: int) -> tuple[int, int]:
    """(w, h) after the resize step of `mode`, before cropping."""
    check_mode(mode)
    w, h = size_wh
    if mode == "resize_and_crop":
        return load_size, load_size
    if mode in ("scale_width", "scale_width_and_crop"):
        if w == load_size and h >= crop_size:
            return w, h
        # the official code truncates, and never lets the height drop below the crop
        return load_size, int(max(load_size * h / w, crop_size))
    if mode == "none":
        # Python's round (half to even) as the official code; at least one multiple of 4
        return max(4, int(round(w / 4) * 4)), max(4, int(round(h / 4) * 4))
    return w, h  # crop


def output_size(mode: str, size_wh: tuple[int, int], load_size: int, crop_size: int) -> tuple[int, int]:
    """(w, h) of the final tensor for an input of size `size_wh`."""
    w, h = resized_size(mode, size_wh, load_size, crop_size)
    return (crop_size, crop_size) if crops(mode) else (w, h)


def check_size(mode: str, size_wh: tuple[int, int], load_size: int, crop_size: int, path: str = "") -> None:
    """PixtransError when `mode` cannot cut a crop_size crop out of an image of `size_wh`."""
    if not crops(mode):
        return
    w, h = resized_size(mode, size_wh, load_size, crop_size)
    if w >= crop_size and h >= crop_size:
        return
    if mode == "crop":
        raise PixtransError(
            f"image '{path}' is {size_wh[0]}x{size_wh[1]}, smaller than data.crop_size={crop_size}; use "
            f"data.preprocess=resize_and_crop (or scale_width / none), or a smaller data.crop_size"
        )
    raise PixtransError(
        f"data.load_size={load_size} is smaller than data.crop_size={crop_size} for data.preprocess={mode}; "
        "set data.load_size >= data.crop_size"
    )


def sample_params(
    mode: str,
    size_wh: tuple[int, int],  # (w, h) of the image before any transform
    load_size: int,
    crop_size: int,
    flip: bool,
    generator: torch.Generator | None = None,  # None: centre crop, no flip
    path: str = "",  # named in the error for an image too small to crop
) -> dict:
    """Draw one pair's geometry: {"size_wh", "crop_xy" (None if the mode does not crop), "flip"}."""
    check_size(mode, size_wh, load_size, crop_size, path)
    w, h = resized_size(mode, size_wh, load_size, crop_size)
    crop_xy = None
    if crops(mode):
        if generator is None:
            crop_xy = ((w - crop_size) // 2, (h - crop_size) // 2)
        else:
            # inclusive ranges like the official random.randint(0, w - crop)
            x = int(torch.randint(0, w - crop_size + 1, (), generator=generator))
            y = int(torch.randint(0, h - crop_size + 1, (), generator=generator))
            crop_xy = (x, y)
    do_flip = False
    if flip and generator is not None:
        do_flip = bool(torch.rand((), generator=generator) < 0.5)
    return {"size_wh": (int(size_wh[0]), int(size_wh[1])), "crop_xy": crop_xy, "flip": do_flip}


def apply_params(
    img: torch.Tensor,  # [C,H,W] uint8, or float in [0,1]
    params: dict,  # from sample_params for an image of this size
    mode: str,
    load_size: int,
    crop_size: int,
    resample: str = "bicubic",  # bicubic | bilinear | nearest
) -> torch.Tensor:
    """Resize, crop and flip `img` as `params` says; returns [C,h,w] of the same dtype.

    uint8 input takes torch's uint8 antialiased kernels: about 4x faster than float and within
    one or two levels of PIL's resize, which the official code uses.
    """
    h0, w0 = img.shape[-2:]
    if (w0, h0) != tuple(params["size_wh"]):
        raise ValueError(f"params were sampled for {params['size_wh']} but the image is {(w0, h0)}")
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    w, h = resized_size(mode, (w0, h0), load_size, crop_size)
    if (w, h) != (w0, h0):
        img = TF.resize(img, [h, w], interpolation=_RESAMPLE[resample], antialias=resample != "nearest")
        if resample == "bicubic" and img.is_floating_point():
            img = img.clamp_(0.0, 1.0)  # bicubic overshoots at edges (uint8 saturates by itself)
    if params["crop_xy"] is not None:
        x, y = params["crop_xy"]
        img = img[..., y : y + crop_size, x : x + crop_size]
    if params["flip"]:
        img = img.flip(-1)
    return img
