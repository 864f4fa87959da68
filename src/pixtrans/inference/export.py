"""Exports: generator weights in safetensors plus a config.json that describes them completely.

An export folder holds, for a method with generators named e.g. "G" (pix2pix) or "G_ab" and
"G_ba" (CycleGAN):

  config.json          format name + version, method, value range, direction, the full resolved
                       training config, and per generator: file, spec (registry name + every
                       constructor keyword), input_nc, output_nc, size_multiple, direction
  G.safetensors        plain tensors, BatchNorm running statistics included

Inference (`pixtrans.inference.Translator`) needs nothing else: no training code, no flags.
config.json is written last and removed first when an export is rewritten, so a folder with a
config.json is always complete and consistent, whenever the writer was killed.

This module must not import pixtrans.training or pixtrans.methods (inference stays light).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

import pixtrans
from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import (
    checkpoints_folder,
    find_latest,
    list_checkpoints,
    read_checkpoint,
)
from pixtrans.fsutil import atomic_write_text, atomic_write_with, fsync_dir

FORMAT = "pixtrans-export"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
VALUE_RANGE = [-1.0, 1.0]  # generators read and write images scaled to this range
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


# ----------------------------------------------------------------------------------------------
# Which generator does what: spec and channels, derived from a resolved config dict.


def _reverse(direction: str) -> str:
    return {"AtoB": "BtoA", "BtoA": "AtoB"}.get(direction, direction)


def generator_io(config: Mapping, name: str) -> dict[str, Any]:
    """Spec, channels and direction of generator `name` of a run with resolved config `config`.

    "G" / "G_ab" / "G_A" map the data's input side to its output side; "G_ba" / "G_B" (the
    CycleGAN inverse) go the other way. The spec is `model.<name>` when the config has such a
    section, else `model.G`. Methods whose generators do not fit this rule pass `specs=` to
    `export_generators` instead.
    """
    data, model = config.get("data", {}), config.get("model", {})
    if config.get("method") == "pix2pixhd" and name in ("G", "E"):
        return _pix2pixhd_io(data, model, name)
    spec = model.get(name) if isinstance(model.get(name), Mapping) else model.get("G")
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise PixtransError(f"config has no generator spec for '{name}' (expected model.G with a 'name')")
    input_nc, output_nc = int(data.get("input_nc", 3)), int(data.get("output_nc", 3))
    direction = data.get("direction", "AtoB")
    if name.lower() in ("g_ba", "g_b"):
        input_nc, output_nc, direction = output_nc, input_nc, _reverse(direction)
    return {"spec": dict(spec), "input_nc": input_nc, "output_nc": output_nc, "direction": direction}


def label_input_nc(data: Mapping) -> int:
    """Channels of pix2pixHD's label input: one-hot labels (+1 don't-care class), or the image
    itself when data.label_nc is 0, plus one instance-boundary channel when instances are on."""
    label_nc = int(data.get("label_nc", 0))
    if label_nc > 0:
        base = label_nc + int(bool(data.get("dontcare_label", False)))
    else:
        base = int(data.get("input_nc", 3))
    return base + int(bool(data.get("instance", True)))


def _pix2pixhd_io(data: Mapping, model: Mapping, name: str) -> dict[str, Any]:
    """G reads [label input | encoder features]; E reads the photo and writes feat_num channels."""
    output_nc = int(data.get("output_nc", 3))
    feat_num = int(model.get("feat_num", 3)) if model.get("E") else 0
    direction = data.get("direction", "AtoB")
    if name == "G":
        return {
            "spec": dict(model["G"]),
            "input_nc": label_input_nc(data) + feat_num,
            "output_nc": output_nc,
            "direction": direction,
        }
    if not model.get("E"):
        raise PixtransError("this pix2pixHD config has no encoder (model.E is empty)")
    return {"spec": dict(model["E"]), "input_nc": output_nc, "output_nc": feat_num, "direction": direction}


def build_generator(spec: Mapping, input_nc: int, output_nc: int) -> nn.Module:
    from pixtrans.nets import build_generator as build  # nets register themselves on import

    return build(dict(spec), input_nc, output_nc)


def full_spec(spec: Mapping) -> dict[str, Any]:
    """`spec` with every constructor keyword filled in from its default (channels excluded).

    So an export states the whole architecture, not only what differed from the defaults of the
    pixtrans version that wrote it.
    """
    from pixtrans.nets import spec_defaults
    from pixtrans.registry import GENERATORS

    out = {k: v for k, v in spec_defaults(GENERATORS, spec["name"]).items() if _is_json_value(v)}
    out.update(spec)
    return out


def _is_json_value(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def clean_state_dict(state: Mapping[str, torch.Tensor] | nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unshared copies; wrapper prefixes (DDP `module.`, compile) removed."""
    if isinstance(state, nn.Module):
        state = state.state_dict()
    out = {}
    for key, value in state.items():
        for prefix in WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value.detach().to("cpu", copy=True).contiguous()
    return out


def _check_matches(
    name: str, state: Mapping[str, torch.Tensor], spec: Mapping, input_nc: int, output_nc: int
):
    """Build the net on the meta device (no memory, no init cost): key/shape check + size_multiple."""
    try:
        with torch.device("meta"):
            net = build_generator(spec, input_nc, output_nc)
    except PixtransError:
        raise
    except Exception as e:  # noqa: BLE001 - a spec the registry rejects
        raise PixtransError(f"generator '{name}': cannot build spec {dict(spec)}: {e}") from None
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))[:3]
        unexpected = sorted(set(got) - set(expected))[:3]
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])[:3]
        raise PixtransError(
            f"generator '{name}' weights do not fit spec {dict(spec)} (input_nc={input_nc}, "
            f"output_nc={output_nc}): missing {missing}, unexpected {unexpected}, wrong shape {wrong}"
        )
    return int(getattr(net, "size_multiple", 1))


# ----------------------------------------------------------------------------------------------
# Writing


def _atomic_save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), sync_dir=False)


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
    """Write `out_dir/<name>.safetensors` per generator and `out_dir/config.json`; return out_dir.

    generators: name -> state dict (or module), e.g. {"G": G.state_dict()} for pix2pix or
      {"G_ab": ..., "G_ba": ...} for CycleGAN.
    config: the full resolved config (Config.to_dict()); stored as is.
    specs: optional name -> {"spec", "input_nc", "output_nc"[, "direction"]} for generators whose
      spec/channels do not follow `generator_io`'s rule.
    source / step: provenance recorded in config.json (a checkpoint path, a converted file...).

    Crash safety: the old config.json is removed first, each file is written to a temporary name,
    fsynced and renamed into place, and the new config.json comes last. Other files in out_dir
    are left alone.
    """
    if not generators:
        raise PixtransError("export_generators needs at least one generator")
    config = json.loads(json.dumps(dict(config), default=str))  # detached, JSON-safe copy
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PixtransError(f"export folder '{out_dir}' exists and is not a folder; choose another path")

    entries, tensors = {}, {}
    for name, state in generators.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise PixtransError(f"generator name '{name}' must be letters, digits, '_', '-' or '.'")
        io = dict(specs[name]) if specs and name in specs else generator_io(config, name)
        io.setdefault("direction", config.get("data", {}).get("direction", "AtoB"))
        spec = full_spec(io["spec"])
        state = clean_state_dict(state)
        size_multiple = _check_matches(name, state, spec, io["input_nc"], io["output_nc"])
        tensors[name] = state
        entries[name] = {
            "file": f"{name}.safetensors",
            "spec": spec,
            "input_nc": int(io["input_nc"]),
            "output_nc": int(io["output_nc"]),
            "size_multiple": size_multiple,
            "direction": io["direction"],
        }

    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pixtrans_version": pixtrans.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "method": method,
        "direction": config.get("data", {}).get("direction", "AtoB"),
        "value_range": VALUE_RANGE,
        "step": step,
        "source": dict(source) if source else None,
        "generators": entries,
        "config": config,
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_NAME).unlink(missing_ok=True)  # the folder is "incomplete" from here on
    fsync_dir(out_dir)
    for name, state in tensors.items():
        meta = {"format": "pt", "pixtrans_format": FORMAT, "generator": name}
        _atomic_save_safetensors(out_dir / entries[name]["file"], state, meta)
    fsync_dir(out_dir)
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(info, indent=1) + "\n")
    fsync_dir(out_dir)
    return out_dir


# ----------------------------------------------------------------------------------------------
# Reading: export folders, run folders, checkpoints


def read_export_info(export_dir: str | os.PathLike) -> dict[str, Any]:
    """Parse and check `export_dir/config.json`; every listed weight file must exist."""
    export_dir = Path(export_dir)
    path = export_dir / CONFIG_NAME
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PixtransError(
            f"'{export_dir}' has no {CONFIG_NAME}; expected a pixtrans export folder"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PixtransError(f"cannot read export config '{path}': {e}; re-export the model") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise PixtransError(f'\'{path}\' is not a pixtrans export config (no "format": "{FORMAT}")')
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise PixtransError(
            f"'{path}' has export format version {info['format_version']}, newer than this pixtrans "
            f"reads ({FORMAT_VERSION}); upgrade pixtrans"
        )
    gens = info.get("generators")
    if not isinstance(gens, dict) or not gens:
        raise PixtransError(f"'{path}' lists no generators; re-export the model")
    for name, entry in gens.items():
        if not (export_dir / entry.get("file", "")).is_file():
            raise PixtransError(
                f"export '{export_dir}' is incomplete: weights of '{name}' ({entry.get('file')}) missing"
            )
    return info


def load_export_net(export_dir: str | os.PathLike, info: Mapping[str, Any], name: str) -> nn.Module:
    """Build generator `name` of an export from its spec and load its weights strictly."""
    from safetensors.torch import load_file

    entry = info["generators"][name]
    net = build_generator(entry["spec"], entry["input_nc"], entry["output_nc"])
    file = Path(export_dir) / entry["file"]
    try:
        state = load_file(str(file), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise PixtransError(f"cannot read weights '{file}': {e}; re-export the model") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:300]
        raise PixtransError(
            f"weights in '{file}' do not fit the saved spec: {first}; re-export the model"
        ) from None
    return net


def is_complete_export(export_dir: str | os.PathLike) -> bool:
    try:
        read_export_info(export_dir)
        return True
    except PixtransError:
        return False


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """Newest file named RUN/checkpoints/step_*.pt (by step) in a run or checkpoints folder."""
    found = list_checkpoints(checkpoints_folder(folder))
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A training checkpoint file, read without running any code from it (see artifacts)."""
    return read_checkpoint(path)


def load_run_checkpoint(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """(file, state) of a checkpoint file, or of the newest checkpoint of a run / checkpoints
    folder that loads; newer damaged files are skipped with a warning that names them."""
    path = Path(path)
    if path.is_file():
        return path, read_checkpoint(path)
    if not path.is_dir():
        raise PixtransError(f"'{path}' does not exist; expected a run folder or a checkpoint .pt file")
    found = find_latest(checkpoints_folder(path))
    if found is None:
        raise PixtransError(f"no checkpoints (checkpoints/step_*.pt) in '{path}'; expected a run folder")
    for err in found.damaged:
        warnings.warn(f"{err}; using the older {found.path.name} (step {found.step})", stacklevel=2)
    return found.path, found.state


def checkpoint_generators(ckpt: Mapping) -> dict[str, Mapping[str, torch.Tensor]]:
    """The exported nets of a training checkpoint: names starting with 'G', and pix2pixHD's
    feature encoder 'E' (its styles are part of the model)."""
    hd = ckpt.get("config", {}).get("method") == "pix2pixhd"
    return {k: v for k, v in ckpt["nets"].items() if k.startswith("G") or (hd and k == "E")}


def export_from_checkpoint(
    ckpt_path_or_run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> Path:
    """Export the generators of a training checkpoint (or a run's newest one) to `out_dir`.

    out_dir defaults to RUN/export for a run folder or a checkpoint inside RUN/checkpoints.
    """
    path, ckpt = load_run_checkpoint(ckpt_path_or_run_dir)
    if out_dir is None:
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        out_dir = run / "export"
    gens = checkpoint_generators(ckpt)
    if not gens:
        raise PixtransError(f"checkpoint '{path}' holds no generator (nets: {', '.join(ckpt['nets'])})")
    config = ckpt["config"]
    step = ckpt.get("step")
    source = {"kind": "pixtrans-checkpoint", "file": str(path.resolve()), "step": step}
    return export_generators(out_dir, config, gens, config.get("method", "pix2pix"), source=source, step=step)
