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

  pix2pixhd        NVIDIA pix2pixHD `latest_net_G.pth` (GlobalGenerator or LocalEnhancer, any
                   depth), with its `latest_net_E.pth` feature encoder when trained with instance
                   features; one export with "G" (and "E"), translated by LabelTranslator.

Discriminators given by mistake are recognised and refused with a hint. Detection looks only at
key names and shapes.

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
from pixtrans.methods import export_generators
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
# NVIDIA pix2pixHD: GlobalGenerator, LocalEnhancer (latest_net_G.pth) and Encoder (latest_net_E.pth)
#
# global   model.1 7x7 stem | model.4, 7, ... n stride-2 downs | blocks from model.{4+3n}
#          (conv_block.1/.5) | n ConvTranspose ups | model.{b0+nb+3n+1} 7x7 output conv
# local    model.* = the global generator without its output layers, model{k}_1 (7x7 stem +
#          a stride-2 down) and model{k}_2 (blocks, an up, and for k = 1 the 7x7 output conv)
# encoder  model.1 7x7 stem | n downs | n ups | 7x7 output conv, no residual blocks
# All convs carry biases whatever the norm; a norm with parameters (batch) shows as model.2.


def _global_layout(state: Mapping[str, torch.Tensor], prefix: str, where: Any) -> dict[str, int]:
    """n_downsampling, n_blocks and the first block index of a global generator under prefix."""
    blocks = sorted(
        {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.conv_block\.", k))}
    )
    if not blocks or blocks != list(range(blocks[0], blocks[0] + len(blocks))):
        raise PixtransError(f"'{where}': no consecutive residual blocks under '{prefix}'")
    n_down, rest = divmod(blocks[0] - 4, 3)
    if rest or n_down < 1:
        raise PixtransError(
            f"'{where}': residual blocks start at {prefix}{blocks[0]}, not after stride-2 downs"
        )
    return {"n_downsampling": n_down, "n_blocks": len(blocks), "first_block": blocks[0]}


def _norm_of(state: Mapping[str, torch.Tensor], prefix: str) -> str:
    return "batch" if f"{prefix}2.weight" in state else "instance"


def _is_pix2pixhd_global(state: Mapping[str, torch.Tensor]) -> bool:
    if not any(k.startswith("model.") and ".conv_block." in k for k in state) or _any(r"^model1_")(state):
        return False
    try:
        layout = _global_layout(state, "model.", "")
    except PixtransError:
        return False
    return layout["n_downsampling"] != 2  # two downs is the CycleGAN generator's layout


def _pix2pixhd_global_net(state, path: Path) -> tuple[dict, dict, nn.Module]:
    layout = _global_layout(state, "model.", path)
    stem = state["model.1.weight"]
    final = state.get(
        f"model.{layout['first_block'] + layout['n_blocks'] + 3 * layout['n_downsampling'] + 1}.weight"
    )
    if final is None:
        raise PixtransError(f"'{path}': no 7x7 output conv where a global generator has it")
    spec = {
        "name": "global",
        "ngf": int(stem.shape[0]),
        "n_downsampling": layout["n_downsampling"],
        "n_blocks": layout["n_blocks"],
        "norm": _norm_of(state, "model."),
    }
    io = {"input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    net = build_generator(spec, io["input_nc"], io["output_nc"])
    _load_strict(net, _drop_legacy_instance_norm_keys(state, net), path, f"global generator {spec}")
    return spec, io, net


def _pix2pixhd_local_net(state, path: Path) -> tuple[dict, dict, nn.Module]:
    layout = _global_layout(state, "model.", path)
    n_local = len({k.split(".")[0] for k in state if re.match(r"^model\d+_1\.", k)})
    # enhancer 1 is the coarsest; the finest (full-resolution) one, model{n}_1 / model{n}_2,
    # holds the 7x7 stem that reads the input and the 7x7 output conv
    stem = state.get(f"model{n_local}_1.1.weight")  # [ngf, input_nc, 7, 7]
    if stem is None:
        raise PixtransError(f"'{path}': no 7x7 stem at model{n_local}_1.1; not a pix2pixHD local enhancer")
    block_rx = re.compile(rf"^model{n_local}_2\.(\d+)\.conv_block\.")
    n_blocks_local = len({m.group(1) for k in state if (m := block_rx.match(k))})
    final = state.get(f"model{n_local}_2.{n_blocks_local + 4}.weight")
    if final is None:
        raise PixtransError(f"'{path}': no 7x7 output conv at model{n_local}_2.{n_blocks_local + 4}")
    spec = {
        "name": "local",
        "ngf": int(stem.shape[0]),
        "n_downsample_global": layout["n_downsampling"],
        "n_blocks_global": layout["n_blocks"],
        "n_local_enhancers": n_local,
        "n_blocks_local": n_blocks_local,
        "norm": _norm_of(state, f"model{n_local}_1."),
    }
    io = {"input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    net = build_generator(spec, io["input_nc"], io["output_nc"])
    _load_strict(net, _drop_legacy_instance_norm_keys(state, net), path, f"local enhancer {spec}")
    return spec, io, net


def _pix2pixhd_encoder_net(state, path: Path) -> tuple[dict, dict, nn.Module]:
    convs = sorted(int(m.group(1)) for k in state if (m := re.match(r"^model\.(\d+)\.weight$", k)))
    stem, final = state["model.1.weight"], state[f"model.{convs[-1]}.weight"]
    # stem + n downs + n ups + output conv; norm weights (batch) are 1-D and not counted
    n_down = (len([i for i in convs if state[f"model.{i}.weight"].ndim == 4]) - 2) // 2
    spec = {
        "name": "encoder",
        "ngf": int(stem.shape[0]),
        "n_downsampling": n_down,
        "norm": _norm_of(state, "model."),
    }
    io = {"input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    net = build_generator(spec, io["input_nc"], io["output_nc"])
    _load_strict(net, _drop_legacy_instance_norm_keys(state, net), path, f"encoder {spec}")
    return spec, io, net


def convert_pix2pixhd(
    g_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    e_path: str | os.PathLike | None = None,
    label_nc: int = 35,
    instance: bool = True,
    dontcare_label: bool = False,
) -> Path:
    """NVIDIA pix2pixHD `latest_net_G.pth` (global or local), with `latest_net_E.pth` when the
    model was trained with instance features, -> one pixtrans pix2pixHD export.

    The weights fix G's input channels; how they split into labels, don't-care, the instance
    edge and features is what the training flags said (--label_nc, --no_instance,
    --contain_dontcare_label, --feat_num), so we check the given values add up.
    """
    g_path = Path(g_path)
    state = load_state_dict_file(g_path)
    if _any(r"^model1_[12]\.")(state):
        g_spec, g_io, g_net = _pix2pixhd_local_net(state, g_path)
    elif any(".conv_block." in k for k in state):
        g_spec, g_io, g_net = _pix2pixhd_global_net(state, g_path)
    else:
        raise PixtransError(
            f"'{g_path}' is not a pix2pixHD generator (no residual blocks); pass latest_net_G.pth"
        )
    nets = {"G": g_net}
    model: dict[str, Any] = {"G": g_spec, "E": {}}
    feat_num = 0
    files = {"G": g_path}
    if e_path is not None:
        e_path = Path(e_path)
        e_state = load_state_dict_file(e_path)
        if not _is_encoder(e_state):
            raise PixtransError(f"'{e_path}' is not a pix2pixHD encoder; pass latest_net_E.pth")
        e_spec, e_io, e_net = _pix2pixhd_encoder_net(e_state, e_path)
        nets["E"], model["E"], feat_num = e_net, e_spec, e_io["output_nc"]
        model["feat_num"] = feat_num
        files["E"] = e_path
    expected = (label_nc + int(dontcare_label) if label_nc > 0 else 3) + int(instance) + feat_num
    if expected != g_io["input_nc"]:
        raise PixtransError(
            f"'{g_path}' reads {g_io['input_nc']} channels, but label_nc={label_nc}"
            f"{' + dontcare' if dontcare_label else ''}{' + instance edge' if instance else ''}"
            f" + {feat_num} features = {expected}; pass the --label-nc / --no-instance used in training"
        )
    partial = {
        "method": "pix2pixhd",
        "data": {
            "dataset": "labelmap" if label_nc > 0 else "paired",
            "label_nc": label_nc,
            "instance": instance,
            "dontcare_label": dontcare_label,
            "output_nc": g_io["output_nc"],
        },
        "model": {**model, "D": {"name": "multiscale"}},
    }
    config = from_dict(partial).to_dict()
    specs = {"G": {"spec": g_spec, **g_io}}
    if "E" in nets:
        specs["E"] = {"spec": model["E"], "input_nc": g_io["output_nc"], "output_nc": feat_num}
    source = {
        "kind": "pix2pixhd",
        "description": "NVIDIA pix2pixHD generator" + (" + feature encoder" if "E" in nets else ""),
        "file": {k: p.name for k, p in files.items()},
        "sha256": {k: _sha256(p) for k, p in files.items()},
    }
    return export_generators(out_dir, config, nets, "pix2pixhd", specs=specs, source=source)


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
    if first is None or first.ndim != 4 or first.shape[-1] != 7 or "model.0.weight" in state:
        return False
    return not any(".conv_block." in k for k in state)


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
        "pix2pixhd",
        "pix2pixHD generator (NVIDIA latest_net_G.pth: global or local enhancer)",
        lambda state: _any(r"^model1_[12]\.")(state) or _is_pix2pixhd_global(state),
        hint="",
    ),
    Kind(
        "pix2pixhd_encoder",
        "pix2pixHD feature encoder (latest_net_E.pth)",
        _is_encoder,
        hint="convert it together with its generator: pixtrans convert latest_net_G.pth latest_net_E.pth OUT",
    ),
    Kind(
        "discriminator",
        "PatchGAN / multiscale discriminator (*_net_D*.pth)",
        _any(r"^(model\.0\.weight|scale\d+_layer\d+\.|model\d+\.|layer\d+\.)"),
        hint="only generators are converted: pass the *_net_G*.pth file of the same run",
    ),
]


def detect_kind(state: Mapping[str, torch.Tensor]) -> Kind | None:
    return next((k for k in KINDS if k.detect(state)), None)


def _kind_name(path: Path) -> str | None:
    found = detect_kind(load_state_dict_file(path))
    return found.name if found else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_kind(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], Kind]:
    """Read `path` and find its convertible kind (must be `kind` unless "auto")."""
    convertible = [k.name for k in KINDS if k.convert is not None] + ["pix2pixhd"]
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
    label_nc: int = 35,
    instance: bool = True,
    dontcare_label: bool = False,
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
    label_nc / instance / dontcare_label: pix2pixHD's training flags (--label_nc, not
      --no_instance, --contain_dontcare_label); a pix2pixHD pair is [latest_net_G, latest_net_E].
    """
    if direction not in ("AtoB", "BtoA"):
        raise PixtransError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    hd = {"label_nc": label_nc, "instance": instance, "dontcare_label": dontcare_label}
    if not isinstance(checkpoint_path, (str, os.PathLike)):
        paths = [Path(p) for p in checkpoint_path]
        if len(paths) == 1:
            checkpoint_path = paths[0]
        elif len(paths) == 2:
            kinds = [detect_kind(load_state_dict_file(p)) for p in paths]
            names = [k.name if k else None for k in kinds]
            if "pix2pixhd_encoder" in names and kind in ("auto", "pix2pixhd"):
                e_index = names.index("pix2pixhd_encoder")
                return convert_pix2pixhd(paths[1 - e_index], out_dir, e_path=paths[e_index], **hd)
            return _convert_cyclegan_pair(paths, Path(out_dir), kind, direction)
        else:
            raise PixtransError(f"give one checkpoint or a CycleGAN G_A/G_B pair, got {len(paths)} files")
    path = Path(checkpoint_path)
    if kind == "pix2pixhd" or (kind == "auto" and _kind_name(path) == "pix2pixhd"):
        return convert_pix2pixhd(path, out_dir, **hd)
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
