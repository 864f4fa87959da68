"""Normalization choices shared by the pix2pix / CycleGAN networks.

Semantics follow junyanz/pytorch-CycleGAN-and-pix2pix `get_norm_layer`, so state dicts line up:

  batch     BatchNorm2d(affine=True, track_running_stats=True)  -> weight, bias, running_mean/var, counter
  instance  InstanceNorm2d(affine=False, track_running_stats=False) -> no parameters, no buffers
  none      Identity, kept as a module so Sequential indices (and so state-dict keys) do not shift
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pixtrans import PixtransError

NORM_KINDS = ("batch", "instance", "none")


def check_norm(kind: str) -> str:
    if kind not in NORM_KINDS:
        raise PixtransError(f"unknown norm '{kind}'; valid: {', '.join(NORM_KINDS)}")
    return kind


def get_norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """Return a factory `channels -> norm module` for `kind` in NORM_KINDS."""
    check_norm(kind)
    if kind == "batch":
        return lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return lambda channels: nn.Identity()


def conv_bias(kind: str) -> bool:
    """Whether a conv that feeds a norm layer of `kind` gets a bias — the official rule.

    BatchNorm has its own learned shift, so a conv bias in front of it is dead weight. The
    official code gives a bias only when the norm is instance norm (its `use_bias` test is False
    for 'none' too), and we keep that so official checkpoints of every norm load key for key.
    """
    return check_norm(kind) == "instance"
