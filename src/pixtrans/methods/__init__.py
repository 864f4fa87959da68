"""Training methods; importing this package registers them in registry.METHODS."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from pixtrans.artifacts.exports import write_export
from pixtrans.methods import colorization, cyclegan, pix2pix, pix2pixhd  # noqa: F401 - registers the methods
from pixtrans.methods.base import Method
from pixtrans.registry import METHODS

__all__ = ["Method", "export_generators"]


def export_generators(
    out_dir: str | os.PathLike,
    config: Mapping,
    generators: Mapping[str, Mapping[str, torch.Tensor] | nn.Module],
    method: str,
    *,
    specs: Mapping[str, Mapping] | None = None,
    source: Mapping | None = None,
    step: int | None = None,
) -> Path:
    """Write an export of `generators` (name -> state dict or module) of a `method` run with the
    resolved `config`; what each net reads and writes comes from the method's declaration
    (`Method.net_io`), `specs` (name -> io) overrides it. See artifacts/exports.py."""
    declaration = METHODS.get(method)
    nets = {}
    for name, state in generators.items():
        io = dict(specs[name]) if specs and name in specs else declaration.net_io(config, name)
        nets[name] = (io, state)
    return write_export(out_dir, config, nets, method, source=source, step=step)
