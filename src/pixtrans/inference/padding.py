"""Any image size through a generator that needs sides in multiples of its stride."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad [B,C,H,W] so H and W are multiples of `multiple`, centred; returns (padded, (top, left)).

    Reflect padding where it fits (a pad must be smaller than the side), replicate where not.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    top, left = ph // 2, pw // 2
    if ph:
        mode = "reflect" if max(top, ph - top) < h else "replicate"
        x = F.pad(x, (0, 0, top, ph - top), mode=mode)
    if pw:
        mode = "reflect" if max(left, pw - left) < w else "replicate"
        x = F.pad(x, (left, pw - left, 0, 0), mode=mode)
    return x, (top, left)
