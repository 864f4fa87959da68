"""Colorization (pix2pix paper §4.2, the official repository's `colorization` model): pix2pix's
objective (conditional GAN + lambda * L1, methods/pix2pix.py) on L -> ab, the lightness and colour
channels of CIE Lab (data/colorization.py). What differs from pix2pix is only what a trained model
is shown and used as: sample grids convert back to RGB (grey input | colourised | real photo), and
inference takes any grey or colour photo and returns an RGB colourisation at its size (the
"colorization" translator, inference/colorization.py).
"""

from __future__ import annotations

from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.data.colorization import INPUT_NC, OUTPUT_NC, grey_to_rgb, lab_tensors_to_rgb
from pixtrans.methods.pix2pix import Pix2Pix
from pixtrans.registry import METHODS


@METHODS.register("colorization")
class Colorization(Pix2Pix):
    translator = "colorization"

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> Colorization:
        if (input_nc, output_nc) != (INPUT_NC, OUTPUT_NC):
            raise PixtransError(
                f"method colorization maps L (1 channel) to ab (2 channels), but data.input_nc={input_nc} "
                f"and data.output_nc={output_nc}; set data.input_nc=1 data.output_nc=2 and "
                "data.dataset=colorization (the pix2pix/colorization preset does)"
            )
        return super().from_config(cfg, input_nc, output_nc)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cols = super().visuals(batch)  # L, predicted ab, real ab
        lightness = cols["input"]
        out: dict[str, Any] = {
            "grey input": grey_to_rgb(lightness),
            "colourised": lab_tensors_to_rgb(lightness, cols["output"]),
            "real photo": lab_tensors_to_rgb(lightness, cols["target"]),
        }
        return out

    def scored_pair(
        self, cols: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # metrics compare photos (RGB), as a viewer does, not the ab channels
        return cols["colourised"], cols["real photo"]
