"""Colours for showing class-id maps: the PASCAL VOC colour map (bit-interleaved ids, 0 black)
that the sample grids and pix2pixHD's label column use."""

from __future__ import annotations

import torch


def voc_colormap(n: int = 256) -> torch.Tensor:
    """[n, 3] uint8 colours; id k spreads its bits over R, G, B from the most significant down."""
    ids = torch.arange(n)
    rgb = torch.zeros(n, 3, dtype=torch.int64)
    c = ids.clone()
    for shift in range(7, -1, -1):
        for ch in range(3):
            rgb[:, ch] |= ((c >> ch) & 1) << shift
        c = c >> 3
    return rgb.to(torch.uint8)
