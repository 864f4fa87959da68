"""Convert generator checkpoints of the reference codebases into pixtrans exports.

Supported now:
  pix2pix_unet     junyanz/pytorch-CycleGAN-and-pix2pix `UnetGenerator` (`*_net_G.pth`: unet_128,
                   unet_256 or any depth; batch or instance norm). Our U-Net keeps the official
                   parameter names, so the state dict loads as is.
  cyclegan_resnet  junyanz `ResnetGenerator` (`*_net_G_A.pth` / `*_net_G_B.pth`, or a pretrained
                   `latest_net_G.pth`: resnet_9blocks, resnet_6blocks or any block count; instance,
                   batch or no norm; dropout and zero padding are read from the key layout). One
                   file gives one generator "G"; the pair G_A + G_B gives one export with "G_ab"
                   (A -> B) and "G_ba" (B -> A), as a pixtrans CycleGAN run exports.

Recognised but not converted yet (each is one more entry in KINDS): NVIDIA pix2pixHD generators
(`latest_net_G.pth`), and discriminators given by mistake. Detection looks only at key names and
shapes.

Official checkpoints are plain state dicts written by torch.save; they are read with
torch.load(weights_only=True), so no code in them runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
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
# CycleGAN ResNet (junyanz ResnetGenerator)
#
# model.1 stem 7x7 conv | model.4, model.7 stride-2 downs | model.10 .. model.{9+n} blocks
# (conv_block.{1,5} with reflect padding; .{1,6} with dropout; .{0,3} / .{0,4} with zero padding)
# | model.{10+n}, model.{13+n} ConvTranspose ups | model.{17+n} output 7x7 conv.

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")
# second conv's index in a block (the first's is 1 with a padding module, 0 without) -> layout
_BLOCK_LAYOUTS = {
    (1, 5): ("reflect", False),
    (1, 6): ("reflect", True),
    (0, 3): ("zero", False),
    (0, 4): ("zero", True),
}


def _is_cyclegan_resnet(state: Mapping[str, torch.Tensor]) -> bool:
    convs = [state.get(f"model.{i}.weight") for i in (1, 4, 7)]
    if any(c is None or c.ndim != 4 for c in convs) or convs[0].shape[-1] != 7:
        return False
    # blocks right after two downs; pix2pixHD's global generator has more downs, so later blocks
    return any(k.startswith("model.10.conv_block.") for k in state)


def infer_resnet_spec(state: Mapping[str, torch.Tensor], where: Any = "") -> dict[str, Any]:
    """ngf, n_blocks, norm, dropout, padding_type, input_nc, output_nc of an official
    ResnetGenerator state dict. Reflect and replicate padding leave the same keys: reflect (the
    only one the official scripts use) is assumed."""
    stem = state["model.1.weight"]
    ngf, input_nc = int(stem.shape[0]), int(stem.shape[1])
    convs: dict[int, set[int]] = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m and value.ndim == 4:
            convs.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    n_blocks = len(convs)
    if sorted(convs) != list(range(10, 10 + n_blocks)):
        raise PixtransError(
            f"'{where}': residual blocks at model.{sorted(convs)} are not consecutive from model.10; "
            "not an official ResnetGenerator"
        )
    layouts = {tuple(sorted(c)) for c in convs.values()}
    if len(layouts) != 1 or next(iter(layouts)) not in _BLOCK_LAYOUTS:
        raise PixtransError(f"'{where}': unexpected residual block layout (conv indices {sorted(layouts)})")
    padding_type, dropout = _BLOCK_LAYOUTS[next(iter(layouts))]
    final = state.get(f"model.{17 + n_blocks}.weight")
    if final is None or final.ndim != 4 or final.shape[-1] != 7:
        raise PixtransError(f"'{where}': no 7x7 output conv at model.{17 + n_blocks} after {n_blocks} blocks")
    if "model.2.weight" in state:
        norm = "batch"  # affine BatchNorm2d after the stem
    elif "model.1.bias" in state:
        norm = "instance"  # InstanceNorm2d(affine=False): no params, so the convs carry biases
    else:
        norm = "none"
    return {
        "ngf": ngf,
        "n_blocks": n_blocks,
        "norm": norm,
        "dropout": dropout,
        "padding_type": padding_type,
        "input_nc": input_nc,
        "output_nc": int(final.shape[0]),
    }


def _resnet_net(
    state: dict[str, torch.Tensor], path: Path
) -> tuple[dict[str, Any], dict[str, int], nn.Module]:
    found = infer_resnet_spec(state, path)
    io = {"input_nc": found.pop("input_nc"), "output_nc": found.pop("output_nc")}
    spec = {"name": "resnet", **found}
    net = build_generator(spec, io["input_nc"], io["output_nc"])
    _load_strict(net, _drop_legacy_instance_norm_keys(state, net), path, f"ResNet {spec}")
    return spec, io, net


def _convert_resnet(state: dict[str, torch.Tensor], path: Path, *, dropout: bool | None, direction: str):
    # dropout is read from the weights' layout; the option only matters for the U-Net
    spec, io, net = _resnet_net(state, path)
    config = {
        "method": "cyclegan",
        "data": {"dataset": "unpaired", "direction": direction, **io},
        "model": {"G": spec},
    }
    return "cyclegan", config, {"G": net}


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
        "cyclegan_resnet",
        "CycleGAN ResNet generator (junyanz *_net_G_A.pth / *_net_G_B.pth)",
        _is_cyclegan_resnet,
        _convert_resnet,
    ),
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


def _load_kind(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], Kind]:
    """Read `path` and find its convertible kind (must be `kind` unless "auto")."""
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
    return state, found


def convert_official(
    checkpoint_path: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    kind: str = "auto",
    *,
    dropout: bool | None = None,
    direction: str = "AtoB",
) -> Path:
    """Convert an official generator checkpoint into a pixtrans export folder; returns out_dir.

    checkpoint_path: one file, or the two CycleGAN files [G_A, G_B] (e.g. latest_net_G_A.pth and
      latest_net_G_B.pth, in either order when the names say which is which; else G_A first),
      which become one export with generators "G_ab" and "G_ba".
    kind: "auto" (detect from key names and shapes) or one of the convertible KINDS names.
    dropout: the U-Net's dropout flag, which weights cannot reveal; default on (pix2pix's setting;
      it only matters for mode="paper" translation). A ResNet's dropout shows in its keys.
    direction: what the checkpoint was trained for, "AtoB" or "BtoA" (recorded, not used by the
      net); for a pair, the direction of G_A.
    """
    if direction not in ("AtoB", "BtoA"):
        raise PixtransError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    if not isinstance(checkpoint_path, (str, os.PathLike)):
        paths = [Path(p) for p in checkpoint_path]
        if len(paths) == 1:
            checkpoint_path = paths[0]
        elif len(paths) == 2:
            return _convert_cyclegan_pair(paths, Path(out_dir), kind, direction)
        else:
            raise PixtransError(f"give one checkpoint or a CycleGAN G_A/G_B pair, got {len(paths)} files")
    path = Path(checkpoint_path)
    state, found = _load_kind(path, kind)
    method, partial, nets = found.convert(state, path, dropout=dropout, direction=direction)
    config = from_dict(partial).to_dict()  # defaults filled in and validated, like a training run
    source = {
        "kind": found.name,
        "description": found.description,
        "file": path.name,
        "sha256": _sha256(path),
        "dropout_assumed": dropout is None and found.name == "pix2pix_unet",
    }
    return export_generators(out_dir, config, nets, method, source=source)


_ROLE = re.compile(r"_G_([AB])$")  # latest_net_G_A, 200_net_G_B, ...


def _convert_cyclegan_pair(paths: list[Path], out_dir: Path, kind: str, direction: str) -> Path:
    roles = [(m.group(1) if (m := _ROLE.search(p.stem)) else None) for p in paths]
    if roles == ["B", "A"]:
        paths = paths[::-1]
    elif roles.count("A") > 1 or roles.count("B") > 1:
        raise PixtransError(
            f"'{paths[0].name}' and '{paths[1].name}' are both G_{roles[0]}; a pair is one *_net_G_A.pth "
            "and one *_net_G_B.pth"
        )
    if kind not in ("auto", "cyclegan_resnet"):
        raise PixtransError(f"a G_A/G_B pair converts as kind 'cyclegan_resnet', not '{kind}'")
    converted = []
    for path in paths:
        state, _ = _load_kind(path, "cyclegan_resnet")
        converted.append(_resnet_net(state, path))
    (spec_a, io_a, net_a), (spec_b, io_b, net_b) = converted
    if (io_b["input_nc"], io_b["output_nc"]) != (io_a["output_nc"], io_a["input_nc"]):
        raise PixtransError(
            f"'{paths[0].name}' maps {io_a['input_nc']} -> {io_a['output_nc']} channels but "
            f"'{paths[1].name}' maps {io_b['input_nc']} -> {io_b['output_nc']}; G_B must invert G_A "
            "(files of one run?)"
        )
    reverse = "BtoA" if direction == "AtoB" else "AtoB"
    specs = {
        "G_ab": {"spec": spec_a, **io_a, "direction": direction},
        "G_ba": {"spec": spec_b, **io_b, "direction": reverse},
    }
    partial = {
        "method": "cyclegan",
        "data": {"dataset": "unpaired", "direction": direction, **io_a},
        "model": {"G": spec_a},
    }
    config = from_dict(partial).to_dict()
    found = next(k for k in KINDS if k.name == "cyclegan_resnet")
    source = {
        "kind": found.name,
        "description": found.description,
        "file": {"G_ab": paths[0].name, "G_ba": paths[1].name},
        "sha256": {"G_ab": _sha256(paths[0]), "G_ba": _sha256(paths[1])},
        "dropout_assumed": False,
    }
    nets = {"G_ab": net_a, "G_ba": net_b}
    return export_generators(out_dir, config, nets, "cyclegan", specs=specs, source=source)
