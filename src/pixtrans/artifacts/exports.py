"""Exports: generator weights in safetensors plus a config.json that describes them completely.

An export folder holds, for a method with generators named e.g. "G" (pix2pix) or "G_ab" and
"G_ba" (CycleGAN):

  config.json          format name + version, method, value range, direction, the full resolved
                       training config, and per net: file, spec (registry name + every
                       constructor keyword), input_nc, output_nc, size_multiple, direction
  G.safetensors        plain tensors, BatchNorm running statistics included
  clusters.safetensors pix2pixHD only, after `pixtrans features`: K-means styles per class

Inference needs nothing else: no training code, no flags. config.json is written last and
removed first when an export is rewritten, so a folder with a config.json is always complete and
consistent, whenever the writer was killed.

This layer knows nothing of methods: whoever writes an export says what each net reads and
writes (`io`); the method's declaration (methods/base.py) is where that comes from.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

import pixtrans
from pixtrans import PixtransError
from pixtrans.artifacts.model_card import write_card
from pixtrans.data.palettes import palette_for_config
from pixtrans.fsutil import atomic_write_text, atomic_write_with, fsync_dir
from pixtrans.nets import build_generator, spec_defaults
from pixtrans.registry import GENERATORS

FORMAT = "pixtrans-export"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
CLUSTERS_NAME = "clusters.safetensors"
VALUE_RANGE = [-1.0, 1.0]  # generators read and write images scaled to this range
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


def full_spec(spec: Mapping) -> dict[str, Any]:
    """`spec` with every constructor keyword filled in from its default (channels excluded).

    So an export states the whole architecture, not only what differed from the defaults of the
    pixtrans version that wrote it.
    """
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


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], where: str, hint: str) -> nn.Module:
    """net.load_state_dict(state, strict=True), or one line: f"{where}: {what is wrong}; {hint}"."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:300]
        raise PixtransError(f"{where}: {first}; {hint}") from None
    return net


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


def write_export(
    out_dir: str | os.PathLike,
    config: Mapping,
    nets: Mapping[str, tuple[Mapping[str, Any], Mapping[str, torch.Tensor] | nn.Module]],
    method: str,
    *,
    source: Mapping | None = None,
    step: int | None = None,
) -> Path:
    """Write `out_dir/<name>.safetensors` per net and `out_dir/config.json`; return out_dir.

    nets: name -> (io, state dict or module); io = {"spec", "input_nc", "output_nc",
      "direction"}, what the net reads and writes (a method's `net_io`).
    config: the full resolved config (Config.to_dict()); stored as is.
    source / step: provenance recorded in config.json (a checkpoint path, a converted file...).

    Crash safety: the old config.json is removed first, each file is written to a temporary name,
    fsynced and renamed into place, and the new config.json comes last. Other files in out_dir
    are left alone.
    """
    if not nets:
        raise PixtransError("an export needs at least one net")
    config = json.loads(json.dumps(dict(config), default=str))  # detached, JSON-safe copy
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PixtransError(f"export folder '{out_dir}' exists and is not a folder; choose another path")

    entries, tensors = {}, {}
    for name, (io, state) in nets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise PixtransError(f"generator name '{name}' must be letters, digits, '_', '-' or '.'")
        io = dict(io)
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
        # what the input looks like (label classes and colours, edges, photos), for drawing pages
        "palette": palette_for_config(config),
        "config": config,
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_NAME).unlink(missing_ok=True)  # the folder is "incomplete" from here on
    fsync_dir(out_dir)
    for name, state in tensors.items():
        meta = {"format": "pt", "pixtrans_format": FORMAT, "generator": name}
        _atomic_save_safetensors(out_dir / entries[name]["file"], state, meta)
    write_card(out_dir, info)  # README.md: what the model is, how it was made and scored
    fsync_dir(out_dir)
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(info, indent=1) + "\n")
    fsync_dir(out_dir)
    return out_dir


def refresh_card(export_dir: str | os.PathLike) -> Path | None:
    """Rewrite a complete export's model card (e.g. after `pixtrans evaluate` scored its run)."""
    try:
        info = read_export_info(export_dir)
    except PixtransError:
        return None
    return write_card(export_dir, info)


# ----------------------------------------------------------------------------------------------
# Reading


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
    entry = info["generators"][name]
    net = build_generator(entry["spec"], entry["input_nc"], entry["output_nc"])
    file = Path(export_dir) / entry["file"]
    try:
        state = load_file(str(file), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise PixtransError(f"cannot read weights '{file}': {e}; re-export the model") from None
    return load_strict(net, state, f"weights in '{file}' do not fit the saved spec", "re-export the model")


def is_complete_export(export_dir: str | os.PathLike) -> bool:
    try:
        read_export_info(export_dir)
        return True
    except PixtransError:
        return False


def export_step(export_dir: str | os.PathLike) -> int | None:
    """The training step a complete export was written at (None: incomplete or unknown)."""
    try:
        return read_export_info(export_dir).get("step")
    except PixtransError:
        return None


# ----------------------------------------------------------------------------------------------
# Feature clusters stored beside a pix2pixHD export


def read_clusters(export_dir: Path, info: dict) -> dict[int, torch.Tensor] | None:
    entry = info.get("clusters")
    if not entry:
        return None
    path = export_dir / entry.get("file", CLUSTERS_NAME)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise PixtransError(
            f"cannot read feature clusters '{path}': {e}; run `pixtrans features` again"
        ) from None
    return {int(k.split("_", 1)[1]): v for k, v in tensors.items()}


def write_clusters(export_dir: Path, clusters: Mapping[int, torch.Tensor], meta: dict) -> Path:
    """clusters.safetensors (tensor 'class_<id>' = [k, feat_num] centres) and a 'clusters' entry
    in config.json, both written atomically (weights first, the config that names them last)."""
    export_dir = Path(export_dir)
    info = read_export_info(export_dir)
    tensors = {f"class_{k}": v.float().contiguous() for k, v in sorted(clusters.items())}
    path = export_dir / CLUSTERS_NAME
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp)))
    info["clusters"] = {"file": CLUSTERS_NAME, **meta, "classes": sorted(int(k) for k in clusters)}
    atomic_write_text(export_dir / CONFIG_NAME, json.dumps(info, indent=1) + "\n")
    return path
