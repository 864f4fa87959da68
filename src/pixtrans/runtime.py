"""The machine a run executes on: device choice, synchronisation and allocator tuning.

One place for what training, inference, evaluation and benchmarks all need, so none of them
imports another just to pick a device.
"""

from __future__ import annotations

import ctypes
import sys

import torch

from pixtrans import PixtransError


def resolve_device(
    name: str | torch.device = "auto", *, local_rank: int = 0, key: str = "--device"
) -> torch.device:
    """ "auto" (CUDA when visible, else the CPU; `local_rank` picks the GPU of a torchrun process),
    "cpu", "cuda", "cuda:N" or any torch device name -> torch.device. Errors name `key`, the
    setting the name came from (e.g. "config key 'train.device'")."""
    if isinstance(name, torch.device):
        return name
    if str(name) == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise PixtransError(f"{key}: unknown device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PixtransError(f"{key} is '{name}' but no CUDA device is visible; use cpu (or auto)")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): timings need it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - not on our CI
        torch.mps.synchronize()
    elif device.type == "xpu":  # pragma: no cover
        torch.xpu.synchronize(device)


def tune_malloc() -> bool:
    """Keep large CPU allocations on the heap instead of fresh ``mmap``\\ s.

    glibc serves blocks above ``M_MMAP_THRESHOLD`` (dynamic, <= 32 MiB) with a fresh ``mmap`` and
    unmaps them on free, so every training step pays page faults + zeroing for each large
    temporary (weight gradients, oneDNN weight reorders, im2col buffers). For pix2pix's unet_256
    (218 MB of weights) that costs ~10-15 % of a CPU step. This sets ``M_MMAP_MAX=0`` (never
    mmap), ``M_TRIM_THRESHOLD=1 GiB`` and ``M_TOP_PAD=64 MiB``. Call it once, early, before big
    tensors are allocated. Process-wide; returns False (and does nothing) where glibc's
    ``mallopt`` is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
    ok = mallopt(M_MMAP_MAX, 0) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    ok &= mallopt(M_TOP_PAD, 64 << 20) == 1
    return bool(ok)
