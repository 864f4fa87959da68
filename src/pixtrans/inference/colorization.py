"""The "colorization" translator: any grey or colour photo in, an RGB colourisation at the
photo's own size out.

The net (L -> ab, data/colorization.py) reads the photo's CIE Lab lightness; its predicted ab is
joined with that same L, full size, and converted back to sRGB by scikit-image. A colour photo's
own colours are thrown away; a grey one's L is its lightness.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixtrans import PixtransError
from pixtrans.data.colorization import INPUT_NC, OUTPUT_NC, lab_tensors_to_rgb, lightness_of
from pixtrans.data.io import _from_pil
from pixtrans.inference.translator import Translator, _float_array, _Item, load_input
from pixtrans.registry import TRANSLATORS


def _unit_array(arr: np.ndarray, where: str) -> np.ndarray:
    """A user's array as uint8 / uint16 / float in [0,1] (the dtypes lightness_of reads)."""
    if arr.ndim not in (2, 3) or 0 in arr.shape:
        raise PixtransError(f"{where}: expected an HxW or HxWxC image array, got shape {tuple(arr.shape)}")
    if arr.dtype == np.bool_ or arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype.kind == "f":
        return _float_array(arr, where)
    raise PixtransError(
        f"{where}: array dtype {arr.dtype} is not supported; use uint8, uint16 or float in [0,1]"
    )


def _lightness_tensor(arr: np.ndarray, where: str) -> torch.Tensor:
    """Image array -> [1,H,W] float32 scaled L, what the net reads."""
    if arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4):
        raise PixtransError(f"{where}: a photo has 1 to 4 channels, this one has {arr.shape[2]}")
    return torch.from_numpy(lightness_of(_unit_array(arr, where), where))[None]


@TRANSLATORS.register("colorization")
class ColorizationTranslator(Translator):
    """A Translator whose net maps L to ab and whose users see photos: inputs of 1, 3 or 4
    channels (grey, RGB, RGBA), outputs RGB. `input_nc` and `output_nc` are 3 (photos in and
    out, so evaluation hands it the real photo); the net's own are `net_input_nc`/`net_output_nc`."""

    def __init__(self, net: nn.Module, *, input_nc: int, output_nc: int, **kwargs: Any):
        if (int(input_nc), int(output_nc)) != (INPUT_NC, OUTPUT_NC):
            raise PixtransError(
                f"a colorization model maps L (1 channel) to ab (2 channels); this one maps "
                f"{input_nc} to {output_nc}; re-export it from a colorization run"
            )
        # what users hand in and get back: photos (RGB; grey and RGBA are accepted too)
        super().__init__(net, input_nc=3, output_nc=3, **kwargs)
        self.net_input_nc, self.net_output_nc = INPUT_NC, OUTPUT_NC

    def _run(self, x: torch.Tensor, mode, seed) -> torch.Tensor:
        """[B,1,H,W] scaled L -> [B,3,H,W] RGB in [-1,1]: the predicted ab joined with the L."""
        ab = super()._run(x, mode, seed)
        return lab_tensors_to_rgb(x, ab)

    def _to_item(self, image: Any) -> _Item:
        if isinstance(image, torch.Tensor):
            if image.ndim not in (3, 4) or not image.is_floating_point() or image.shape[-3] not in (1, 3, 4):
                raise PixtransError(
                    "expected a float tensor [C,H,W] or [B,C,H,W] in [-1,1] with 1 (grey), 3 (RGB) or 4 "
                    f"(RGBA) channels, got {image.dtype} {tuple(image.shape)}"
                )
            batch = image if image.ndim == 4 else image[None]
            arrays = ((batch.detach().float().cpu() + 1.0) * 0.5).permute(0, 2, 3, 1).numpy()
            images = [_lightness_tensor(a, "tensor image") for a in arrays]
            kind = "tensor4" if image.ndim == 4 else "tensor3"
            return _Item(images, kind, dtype=image.dtype, device=image.device)
        if isinstance(image, Image.Image):
            arr = _from_pil(image, "<PIL image>")
            return _Item([_lightness_tensor(arr, "PIL image")], "pil")
        if isinstance(image, np.ndarray):
            t = _lightness_tensor(image, "numpy image")
            return _Item([t], "numpy", dtype=image.dtype if image.dtype.kind in "uf" else np.uint8)
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if not path.is_file():
                raise PixtransError(f"input image '{path}' does not exist or is not a file")
            return _Item([self._read(path)[0]], "path")
        raise PixtransError(
            f"cannot colourise a {type(image).__name__}; pass a PIL image, a path, a numpy array or a tensor"
        )

    def _read(self, path: Path) -> tuple[torch.Tensor, int]:
        """(the photo's scaled L as [1,H,W], its stored bits: 16 for uint16 files, else 8)."""
        arr = load_input(path)
        return _lightness_tensor(arr, str(path)), 16 if arr.dtype == np.uint16 else 8

    def translate_tiled(self, image: Any, **kwargs: Any):
        # tiles would be cut from the RGB image, while the net reads L: not wired up (yet)
        raise PixtransError(
            "--tile is not offered for colorization models; translate the photo whole (drop --tile)"
        )
