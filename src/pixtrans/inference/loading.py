"""One route from whatever a user points at to a trained model's nets.

`open_model(path)` accepts an export folder (or its config.json, or one of its .safetensors), a
run folder (its export/ when complete and not older than the newest checkpoint, else the newest
checkpoint that loads) or a training checkpoint file, and returns a `ModelSource`: the saved
config, the method's declaration (methods/base.py), and each net's io, built and loaded on
demand. Translators, evaluation, feature clustering, `pixtrans export` and the web server all
load through it; nothing here reads a method name except to look up its registered declaration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import checkpoint_step, latest_checkpoint, load_run_checkpoint
from pixtrans.artifacts.exports import (
    CONFIG_NAME,
    clean_state_dict,
    export_step,
    is_complete_export,
    load_export_net,
    load_strict,
    read_clusters,
    read_export_info,
    write_export,
)
from pixtrans.artifacts.runs import RunFolder
from pixtrans.methods import Method
from pixtrans.nets import build_generator
from pixtrans.registry import METHODS

EXPECTED = (
    "an export folder (with config.json), a run folder (with export/ or checkpoints/) "
    "or a checkpoint .pt file"
)


def declaration(method: str | None, where: Any) -> type[Method]:
    """The registered method class of a saved model; a one-line error when it is unknown here."""
    if not method:
        raise PixtransError(f"'{where}' does not say which method trained it; re-export the model")
    if method not in METHODS:
        raise PixtransError(
            f"'{where}' was made by method '{method}', which this pixtrans does not know "
            f"(known: {', '.join(METHODS.names())}); install the package that registers it"
        )
    return METHODS.get(method)


@dataclass
class ModelSource:
    """A trained model on disk, read once: an export folder or a training checkpoint.

    `info` has the keys of an export's config.json either way ("method", "config", "step",
    "direction", "source", "generators": {name: io}); a checkpoint's is built from its config and
    the method's declaration.
    """

    path: Path
    kind: str  # "export" | "checkpoint"
    info: dict[str, Any]
    method: type[Method]
    _state: dict[str, Any] | None = field(default=None, repr=False)  # a checkpoint's contents

    @property
    def config(self) -> dict[str, Any]:
        return self.info.get("config") or {}

    @property
    def names(self) -> list[str]:
        return list(self.info["generators"])

    def io(self, name: str) -> dict[str, Any]:
        self._check(name)
        return self.info["generators"][name]

    def _check(self, name: str) -> None:
        if name not in self.info["generators"]:
            raise PixtransError(f"'{self.path}' has no generator '{name}'; it has: {', '.join(self.names)}")

    def state_dict(self, name: str) -> Mapping[str, torch.Tensor]:
        """The weights of net `name` (an export's are read from its safetensors file)."""
        self._check(name)
        if self.kind == "checkpoint":
            return clean_state_dict(self._state["nets"][name])
        return load_export_net(self.path, self.info, name).state_dict()

    def load_net(self, name: str) -> nn.Module:
        """Net `name`, built from its spec, weights loaded strictly, on the CPU."""
        self._check(name)
        if self.kind == "export":
            return load_export_net(self.path, self.info, name)
        io = self.info["generators"][name]
        net = build_generator(io["spec"], io["input_nc"], io["output_nc"])
        where = f"weights in '{self.path}' do not fit the saved spec"
        return load_strict(net, clean_state_dict(self._state["nets"][name]), where, "re-export the model")

    def clusters(self) -> dict[int, torch.Tensor] | None:
        """pix2pixHD feature clusters stored with an export (`pixtrans features`)."""
        return read_clusters(self.path, self.info) if self.kind == "export" else None


def load_backend_net(
    source: ModelSource, name: str, backend: str = "torch", device: Any = "cpu"
) -> nn.Module:
    """Net `name` of `source`: its torch weights, or for backend "onnxruntime" /
    "onnxruntime-int8" its ONNX model behind the same interface (deploy/ort_backend.py)."""
    if backend == "torch":
        return source.load_net(name)
    from pixtrans.deploy.ort_backend import load_ort_net

    return load_ort_net(source, name, backend, device=device)


def _from_export(export_dir: Path) -> ModelSource:
    info = read_export_info(export_dir)
    return ModelSource(export_dir, "export", info, declaration(info.get("method"), export_dir))


def _from_checkpoint(path: Path, state: dict[str, Any]) -> ModelSource:
    config = state["config"]
    method = declaration(config.get("method"), path)
    names = [n for n in method.exported_nets(config) if n in state["nets"]]
    if not names:
        raise PixtransError(f"checkpoint '{path}' holds no generator (nets: {', '.join(state['nets'])})")
    gens = {}
    for name in names:
        io = method.net_io(config, name)
        gens[name] = {k: io[k] for k in ("spec", "input_nc", "output_nc", "direction")}
    info = {
        "method": config.get("method"),
        "direction": config.get("data", {}).get("direction", "AtoB"),
        "step": state.get("step"),
        "source": {"kind": "pixtrans-checkpoint", "file": str(path), "step": state.get("step")},
        "generators": gens,
        "config": config,
    }
    return ModelSource(path, "checkpoint", info, method, state)


def open_model(path: str | os.PathLike) -> ModelSource:
    """The model at `path` (see the module docstring for what `path` may be)."""
    path = Path(path)
    if path.is_file():
        if path.name == CONFIG_NAME or path.suffix == ".safetensors":
            return _from_export(path.parent)
        return _from_checkpoint(*load_run_checkpoint(path))
    if not path.is_dir():
        raise PixtransError(f"model path '{path}' does not exist; expected {EXPECTED}")
    if (path / CONFIG_NAME).is_file():
        return _from_export(path)
    export, newest = RunFolder(path).export, latest_checkpoint(path)
    complete = is_complete_export(export)
    step = export_step(export) if complete else None
    # the export when it is as new as the checkpoints (or says nothing of its step)
    if complete and (newest is None or step is None or step >= (checkpoint_step(newest) or 0)):
        return _from_export(export)
    if newest is not None:
        # the newest checkpoint that loads: damaged newer files are skipped with a warning
        ckpt, state = load_run_checkpoint(path)
        if complete and step >= state["step"]:
            return _from_export(export)
        return _from_checkpoint(ckpt, state)
    raise PixtransError(
        f"'{path}' holds no config.json, complete export/ or checkpoints/step_*.pt; expected {EXPECTED}"
    )


def export_from_checkpoint(
    ckpt_path_or_run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> Path:
    """Export the nets of a training checkpoint (or a run's newest one that loads) to `out_dir`.

    out_dir defaults to RUN/export for a run folder or a checkpoint inside RUN/checkpoints.
    """
    path, state = load_run_checkpoint(ckpt_path_or_run_dir)
    source = _from_checkpoint(path, state)
    if out_dir is None:
        out_dir = RunFolder.of(path).export
    nets = {name: (source.io(name), state["nets"][name]) for name in source.names}
    step = state.get("step")
    provenance = {"kind": "pixtrans-checkpoint", "file": str(path.resolve()), "step": step}
    return write_export(out_dir, source.config, nets, source.info["method"], source=provenance, step=step)


def save_export(out_dir: str | os.PathLike, info: dict[str, Any], nets: dict[str, nn.Module]) -> Path:
    """`nets` (loaded from a model whose export info is `info`) as a new export in `out_dir`."""
    config = info.get("config") or {}
    entries = {}
    for name, net in nets.items():
        io = dict(info["generators"][name])
        io.setdefault("direction", info.get("direction", "AtoB"))
        entries[name] = ({k: io[k] for k in ("spec", "input_nc", "output_nc", "direction")}, net)
    source = {"kind": "save_pretrained", "from": info.get("source")}
    return write_export(out_dir, config, entries, info.get("method"), source=source, step=info.get("step"))
