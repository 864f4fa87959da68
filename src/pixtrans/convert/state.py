"""Official checkpoint files: reading them safely and loading them into our nets.

Official checkpoints are plain state dicts written by torch.save; they are read with
torch.load(weights_only=True), so no code in them runs. Our nets keep the official parameter
names, so a state dict loads as is once the statistics old PyTorch saved for InstanceNorm layers
are dropped.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.artifacts.exports import load_strict
from pixtrans.nets import build_generator

# Old PyTorch (< 0.4) saved running stats for InstanceNorm layers that have none today; the
# official loader deletes them (`__patch_instance_norm_state_dict`), and so do we.
LEGACY_INSTANCE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Checkpoint:
    """One official file, read: where it is and its state dict (name -> tensor)."""

    path: Path
    state: dict[str, torch.Tensor]


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A torch.save'd state dict, read safely; `module.` (DataParallel) prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise PixtransError(f"checkpoint '{path}' does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle/zip errors of many kinds
        first = " ".join(str(e).split())[:200]
        raise PixtransError(
            f"cannot read '{path}' as a state dict saved with torch.save(net.state_dict()) "
            f"(weights_only load failed: {type(e).__name__}: {first})"
        ) from None
    if isinstance(obj, Mapping) and "nets" in obj and "config" in obj:
        raise PixtransError(
            f"'{path}' is a pixtrans training checkpoint, not an official one; use `pixtrans export`"
        )
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # some forks wrap the state dict
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PixtransError(
            f"'{path}' does not hold a state dict (name -> tensor); found {type(obj).__name__}"
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    return Checkpoint(Path(path), load_state_dict_file(path))


def sha256(path: Path) -> str:
    """Hex digest of a file's bytes, recorded in the export as the conversion's provenance."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def any_key(state: Mapping[str, torch.Tensor], pattern: str) -> bool:
    """Whether some key of `state` matches `pattern` at its start."""
    rx = re.compile(pattern)
    return any(rx.match(k) for k in state)


def drop_legacy_instance_norm_keys(
    state: Mapping[str, torch.Tensor], net: nn.Module
) -> dict[str, torch.Tensor]:
    """`state` without the running statistics old PyTorch saved for `net`'s InstanceNorm layers."""
    expected = net.state_dict()
    out = {}
    for key, value in state.items():
        module_name, _, leaf = key.rpartition(".")
        if key not in expected and leaf in LEGACY_INSTANCE_NORM_KEYS:
            try:
                module = net.get_submodule(module_name)
            except AttributeError:
                module = None
            if isinstance(module, nn.modules.instancenorm._InstanceNorm):
                continue
        out[key] = value
    return out


def build_official(file: Checkpoint, io: Mapping[str, Any], what: str) -> nn.Module:
    """Our generator for io = {"spec", "input_nc", "output_nc"} (inferred from `file`), with the
    file's weights loaded strictly; `what` names the architecture in the error."""
    net = build_generator(io["spec"], io["input_nc"], io["output_nc"])
    return load_strict(
        net,
        drop_legacy_instance_norm_keys(file.state, net),
        f"'{file.path}' does not load into the {what} {dict(io['spec'])} "
        f"({io['input_nc']} -> {io['output_nc']} channels) inferred from it",
        "is it an unmodified file saved by the official code?",
    )
