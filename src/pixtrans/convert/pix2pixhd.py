"""NVIDIA pix2pixHD generators: global generator, local enhancer and feature encoder.

`latest_net_G.pth` (GlobalGenerator or LocalEnhancer, any depth), with its `latest_net_E.pth`
feature encoder as companion when the model was trained with instance features -> one pix2pixHD
export with "G" (and "E"), translated by LabelTranslator.

Layouts (our nets keep the official names):
  global   model.1 7x7 stem | model.4, 7, ... n stride-2 downs | blocks from model.{4+3n}
           (conv_block.1/.5) | n ConvTranspose ups | model.{b0+nb+3n+1} 7x7 output conv
  local    model.* = the global generator without its output layers, model{k}_1 (7x7 stem +
           a stride-2 down) and model{k}_2 (blocks, an up, and for k = 1 the 7x7 output conv)
  encoder  model.1 7x7 stem | n downs | n ups | 7x7 output conv, no residual blocks
All convs carry biases whatever the norm; a norm with parameters (batch) shows as model.2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.convert.base import Conversion, Options
from pixtrans.convert.state import Checkpoint, any_key, build_official
from pixtrans.data.labelmap import LabelInput

_LOCAL = r"model1_[12]\."  # the coarsest local enhancer's two halves


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


# ----------------------------------------------------------------------------------------------
# Detection


def has_pix2pixhd_layout(state: Mapping[str, torch.Tensor]) -> bool:
    """Local enhancer keys or residual blocks: what an explicit kind "pix2pixhd" converts (a
    global generator with two downs looks like CycleGAN's, which auto detection prefers)."""
    return any_key(state, _LOCAL) or any(".conv_block." in k for k in state)


def is_pix2pixhd_generator(state: Mapping[str, torch.Tensor]) -> bool:
    """A local enhancer, or a global generator whose down count is not CycleGAN's two."""
    if any_key(state, _LOCAL):
        return True
    if not any(k.startswith("model.") and ".conv_block." in k for k in state):
        return False
    try:
        layout = _global_layout(state, "model.", "")
    except PixtransError:
        return False
    return layout["n_downsampling"] != 2


def is_pix2pixhd_encoder(state: Mapping[str, torch.Tensor]) -> bool:
    # 7x7 stem after a ReflectionPad (index 0), no residual blocks
    first = state.get("model.1.weight")
    if first is None or first.ndim != 4 or first.shape[-1] != 7 or "model.0.weight" in state:
        return False
    return not any(".conv_block." in k for k in state)


# ----------------------------------------------------------------------------------------------
# Nets: io = {"spec", "input_nc", "output_nc"} read from the weights, and the loaded net


def _global_net(file: Checkpoint) -> tuple[dict[str, Any], nn.Module]:
    state = file.state
    layout = _global_layout(state, "model.", file.path)
    stem = state["model.1.weight"]
    final = state.get(
        f"model.{layout['first_block'] + layout['n_blocks'] + 3 * layout['n_downsampling'] + 1}.weight"
    )
    if final is None:
        raise PixtransError(f"'{file.path}': no 7x7 output conv where a global generator has it")
    spec = {
        "name": "global",
        "ngf": int(stem.shape[0]),
        "n_downsampling": layout["n_downsampling"],
        "n_blocks": layout["n_blocks"],
        "norm": _norm_of(state, "model."),
    }
    io = {"spec": spec, "input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    return io, build_official(file, io, "global generator")


def _local_net(file: Checkpoint) -> tuple[dict[str, Any], nn.Module]:
    state, path = file.state, file.path
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
    io = {"spec": spec, "input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    return io, build_official(file, io, "local enhancer")


def _encoder_net(file: Checkpoint) -> tuple[dict[str, Any], nn.Module]:
    state = file.state
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
    io = {"spec": spec, "input_nc": int(stem.shape[1]), "output_nc": int(final.shape[0])}
    return io, build_official(file, io, "encoder")


# ----------------------------------------------------------------------------------------------
# Conversion


def convert_pix2pixhd(g: Checkpoint, e: Checkpoint | None, options: Options) -> Conversion:
    """`latest_net_G.pth` (+ its encoder `latest_net_E.pth`) -> a pix2pixHD export.

    The weights fix G's input channels; how they split into labels, don't-care, the instance
    edge and features is what the training flags said (--label_nc, --no_instance,
    --contain_dontcare_label, --feat_num), so we check the given values add up. The direction
    option is not recorded: pix2pixHD always maps labels to photos.
    """
    g_io, g_net = (_local_net if any_key(g.state, _LOCAL) else _global_net)(g)
    nets = {"G": (g_io, g_net)}
    model: dict[str, Any] = {"G": g_io["spec"], "E": {}}
    files = {"G": g.path}
    feat_num = 0
    if e is not None:
        e_io, e_net = _encoder_net(e)
        if e_io["input_nc"] != g_io["output_nc"]:
            raise PixtransError(
                f"'{e.path}' reads {e_io['input_nc']} channels, but the photos of '{g.path}' have "
                f"{g_io['output_nc']}; the encoder must come from the generator's run"
            )
        feat_num = e_io["output_nc"]
        nets["E"] = (e_io, e_net)
        model.update(E=e_io["spec"], feat_num=feat_num)
        files["E"] = e.path
    inputs = LabelInput(options.label_nc, options.dontcare_label, options.instance, feat_num)
    if inputs.channels != g_io["input_nc"]:
        raise PixtransError(
            f"'{g.path}' reads {g_io['input_nc']} channels, not {inputs.describe()} = "
            f"{inputs.channels}; pass the --label-nc / --no-instance / "
            "--dontcare-label used in training"
        )
    return Conversion(
        method="pix2pixhd",
        config={
            "method": "pix2pixhd",
            "data": {
                "dataset": "labelmap" if options.label_nc > 0 else "paired",
                "label_nc": options.label_nc,
                "instance": options.instance,
                "dontcare_label": options.dontcare_label,
                "output_nc": g_io["output_nc"],
            },
            "model": {**model, "D": {"name": "multiscale"}},
        },
        nets=nets,
        files=files,
        description="NVIDIA pix2pixHD generator" + (" + feature encoder" if e is not None else ""),
    )
