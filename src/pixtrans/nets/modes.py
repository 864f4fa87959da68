"""Inference modes shared by training samples and the translator."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def paper_mode(net: nn.Module):
    """pix2pix's test-time mode: dropout on and BatchNorm normalising with the batch's own
    statistics (train() behaviour), without changing any buffer (running stats, counters).

    Buffers are snapshotted and restored, so sampling during training or translating with a
    loaded model never alters the weights a checkpoint or export holds.
    """
    saved_modes = {m: m.training for m in net.modules()}
    saved_buffers = [(b, b.detach().clone()) for b in net.buffers()]
    net.train()
    try:
        yield net
    finally:
        with torch.no_grad():
            for buf, copy in saved_buffers:
                buf.copy_(copy)
        for m, mode in saved_modes.items():
            m.training = mode
