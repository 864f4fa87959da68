"""Convert generator checkpoints of the reference codebases into pixtrans exports.

Supported now:
  pix2pix_unet   junyanz/pytorch-CycleGAN-and-pix2pix `UnetGenerator` (`*_net_G.pth`: unet_128,
                 unet_256 or any depth; batch or instance norm). Our U-Net keeps the official
                 parameter names, so the state dict loads as is.

Recognised but not converted yet (each is one more entry in KINDS): CycleGAN ResNet generators
(`*_net_G_A.pth` / `*_net_G_B.pth`), NVIDIA pix2pixHD generators (`latest_net_G.pth`), and
discriminators given by mistake. Detection looks only at key names and shapes.

Official checkpoints are plain state dicts written by torch.save; they are read with
torch.load(weights_only=True), so no code in them runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.config import from_dict
from pixtrans.inference.export import export_generators
from pixtrans.nets import build_generator

# Old PyTorch (< 0.4) saved running stats for InstanceNorm layers that have none today; the
# official loader deletes them (`__patch_instance_norm_state_dict`), and so do we.
LEGACY_INSTANCE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


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


# ----------------------------------------------------------------------------------------------
# pix2pix U-Net (junyanz UnetGenerator)
#
# Block nesting in the state dict: outermost "model." ; level 1 "model.model.1." ; level k+1 is
# level k + "model.3.". Sequential indices per level (official layout):
#   outermost  0 down_conv | 1 submodule | 3 up_conv (ConvTranspose, bias)
#   middle     1 down_conv | 2 down_norm | 3 submodule | 5 up_conv | 6 up_norm
#   innermost  1 down_conv | 3 up_conv | 4 up_norm


def _is_unet(state: Mapping[str, torch.Tensor]) -> bool:
    return "model.model.0.weight" in state and "model.model.1.model.1.weight" in state


def infer_unet_spec(state: Mapping[str, torch.Tensor], where: Any = "") -> dict[str, Any]:
    """num_downs, ngf, norm, input_nc, output_nc of an official UnetGenerator state dict."""
    first, last = state["model.model.0.weight"], state.get("model.model.3.weight")
    if first.ndim != 4 or last is None or last.ndim != 4:
        raise PixtransError(f"'{where}': U-Net keys found but model.model.0/3 weights are not 4-D convs")
    ngf, input_nc = int(first.shape[0]), int(first.shape[1])
    output_nc = int(last.shape[1])  # ConvTranspose2d weight: [in, out, k, k]
    num_downs, prefix = 1, "model.model.1."
    while prefix + "model.1.weight" in state:
        num_downs += 1
        prefix += "model.3."
    if "model.model.1.model.2.weight" in state:
        norm = "batch"  # affine BatchNorm2d after the level-1 down conv
    elif "model.model.1.model.1.bias" in state:
        norm = "instance"  # InstanceNorm2d(affine=False): no params, so the convs carry biases
    else:
        norm = "none"  # no norm parameters and (official use_bias rule) no conv biases
    return {"num_downs": num_downs, "ngf": ngf, "norm": norm, "input_nc": input_nc, "output_nc": output_nc}


def _drop_legacy_instance_norm_keys(
    state: dict[str, torch.Tensor], net: nn.Module
) -> dict[str, torch.Tensor]:
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


def _load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], path: Path, what: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:300]
        raise PixtransError(f"'{path}' does not load into the {what} inferred from it: {first}") from None


def _convert_unet(state: dict[str, torch.Tensor], path: Path, *, dropout: bool | None, direction: str):
    found = infer_unet_spec(state, path)
    spec = {
        "name": "unet",
        "num_downs": found["num_downs"],
        "ngf": found["ngf"],
        "norm": found["norm"],
        # dropout leaves no trace in the weights; pix2pix trains (and tests) with it on
        "dropout": True if dropout is None else bool(dropout),
    }
    net = build_generator(spec, found["input_nc"], found["output_nc"])
    state = _drop_legacy_instance_norm_keys(state, net)
    _load_strict(net, state, path, f"U-Net {spec}")
    config = {
        "method": "pix2pix",
        "data": {"direction": direction, "input_nc": found["input_nc"], "output_nc": found["output_nc"]},
        "model": {"G": spec},
    }
    return "pix2pix", config, {"G": net}


# ----------------------------------------------------------------------------------------------
# Dispatch on key patterns


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    detect: Callable[[Mapping[str, torch.Tensor]], bool]
    # (state, path, **options) -> (method, partial config dict, {generator name: net}); None = not yet
    convert: Callable[..., tuple[str, dict, dict[str, nn.Module]]] | None = None
    hint: str = ""  # what to do instead, for kinds that will never convert


def _any(pattern: str) -> Callable[[Mapping[str, torch.Tensor]], bool]:
    rx = re.compile(pattern)
    return lambda state: any(rx.match(k) for k in state)


def _is_encoder(state: Mapping[str, torch.Tensor]) -> bool:
    # 7x7 stem after a ReflectionPad (index 0), no residual blocks
    first = state.get("model.1.weight")
    return first is not None and first.ndim == 4 and first.shape[-1] == 7 and "model.0.weight" not in state


# Order matters: the first kind whose detector matches is taken in kind="auto".
KINDS: list[Kind] = [
    Kind("pix2pix_unet", "pix2pix U-Net generator (junyanz *_net_G.pth)", _is_unet, _convert_unet),
    Kind(
        "pix2pixhd_local",
        "pix2pixHD local enhancer generator (NVIDIA latest_net_G.pth)",
        _any(r"^model1_[12]\."),
    ),
    Kind(
        "resnet_generator",
        "ResNet generator (CycleGAN *_net_G_A/B.pth or pix2pixHD global latest_net_G.pth)",
        _any(r"^model\.\d+\.conv_block\.\d+\.weight$"),
    ),
    Kind("pix2pixhd_encoder", "pix2pixHD feature encoder (latest_net_E.pth)", _is_encoder),
    Kind(
        "discriminator",
        "PatchGAN / multiscale discriminator (*_net_D*.pth)",
        _any(r"^(model\.0\.weight|scale\d+_layer\d+\.|model\d+\.|layer\d+\.)"),
        hint="only generators are converted: pass the *_net_G*.pth file of the same run",
    ),
]


def detect_kind(state: Mapping[str, torch.Tensor]) -> Kind | None:
    return next((k for k in KINDS if k.detect(state)), None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_official(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    kind: str = "auto",
    *,
    dropout: bool | None = None,
    direction: str = "AtoB",
) -> Path:
    """Convert an official generator checkpoint into a pixtrans export folder; returns out_dir.

    kind: "auto" (detect from key names and shapes) or one of the convertible KINDS names.
    dropout: the U-Net's dropout flag, which weights cannot reveal; default on (pix2pix's setting;
      it only matters for mode="paper" translation).
    direction: what the checkpoint was trained for, "AtoB" or "BtoA" (recorded, not used by the net).
    """
    path = Path(checkpoint_path)
    if direction not in ("AtoB", "BtoA"):
        raise PixtransError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    convertible = [k.name for k in KINDS if k.convert is not None]
    if kind != "auto" and kind not in convertible:
        raise PixtransError(f"unknown checkpoint kind '{kind}'; valid: auto, {', '.join(convertible)}")
    state = load_state_dict_file(path)
    found = detect_kind(state)
    sample = ", ".join(list(state)[:3])
    if found is None:
        raise PixtransError(
            f"'{path}' is not a checkpoint kind pixtrans knows ({len(state)} tensors, keys like {sample}); "
            f"supported: {', '.join(convertible)}"
        )
    if kind != "auto" and found.name != kind:
        raise PixtransError(f"'{path}' looks like a {found.description}, not '{kind}'")
    if found.convert is None and found.hint:
        raise PixtransError(f"'{path}' looks like a {found.description}; {found.hint}")
    if found.convert is None:
        raise PixtransError(
            f"'{path}' looks like a {found.description}; converting it is not supported yet "
            f"(supported: {', '.join(convertible)})"
        )
    method, partial, nets = found.convert(state, path, dropout=dropout, direction=direction)
    config = from_dict(partial).to_dict()  # defaults filled in and validated, like a training run
    source = {
        "kind": found.name,
        "description": found.description,
        "file": path.name,
        "sha256": _sha256(path),
        "dropout_assumed": dropout is None,
    }
    return export_generators(out_dir, config, nets, method, source=source)
