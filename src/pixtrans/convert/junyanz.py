"""junyanz/pytorch-CycleGAN-and-pix2pix generators: the pix2pix U-Net and the CycleGAN ResNet.

U-Net   `UnetGenerator` (`*_net_G.pth`: unet_128, unet_256 or any depth; batch, instance or no
        norm) -> a pix2pix export with "G" (a colorization export for 1 -> 2 channels: the
        official colorization model). Dropout leaves no trace in the weights.
ResNet  `ResnetGenerator` (`*_net_G_A.pth` / `*_net_G_B.pth`, or a pretrained
        `latest_net_G.pth`: resnet_9blocks, resnet_6blocks or any block count; instance, batch
        or no norm; dropout and zero padding show in the key layout). One file gives a CycleGAN
        export with one generator "G"; the pair G_A + G_B gives "G_ab" (A -> B) and "G_ba"
        (B -> A), as a pixtrans CycleGAN run exports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.convert.base import Conversion, Options
from pixtrans.convert.state import Checkpoint, build_official

# ----------------------------------------------------------------------------------------------
# pix2pix U-Net (junyanz UnetGenerator)
#
# Block nesting in the state dict: outermost "model." ; level 1 "model.model.1." ; level k+1 is
# level k + "model.3.". Sequential indices per level (official layout):
#   outermost  0 down_conv | 1 submodule | 3 up_conv (ConvTranspose, bias)
#   middle     1 down_conv | 2 down_norm | 3 submodule | 5 up_conv | 6 up_norm
#   innermost  1 down_conv | 3 up_conv | 4 up_norm


def is_unet(state: Mapping[str, torch.Tensor]) -> bool:
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


def convert_unet(file: Checkpoint, companion: Checkpoint | None, options: Options) -> Conversion:
    """A pix2pix export with "G"; the U-Net kind has no companion file."""
    found = infer_unet_spec(file.state, file.path)
    spec = {
        "name": "unet",
        "num_downs": found["num_downs"],
        "ngf": found["ngf"],
        "norm": found["norm"],
        # dropout leaves no trace in the weights; pix2pix trains (and tests) with it on
        "dropout": True if options.dropout is None else bool(options.dropout),
    }
    io = {"spec": spec, "input_nc": found["input_nc"], "output_nc": found["output_nc"]}
    net = build_official(file, io, "U-Net")
    data = {"direction": options.direction, "input_nc": io["input_nc"], "output_nc": io["output_nc"]}
    method = "pix2pix"
    if (io["input_nc"], io["output_nc"]) == (1, 2):
        # the official `--model colorization` (L -> ab, its only 1 -> 2 channel model): pixtrans's
        # colorization method, so the export translates photos to RGB (inference/colorization.py)
        method = "colorization"
        data.update(dataset="colorization", direction="AtoB")
    return Conversion(
        method=method,
        config={"method": method, "data": data, "model": {"G": spec}},
        nets={"G": (io, net)},
        files=file.path,
        notes={"dropout_assumed": options.dropout is None},
    )


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
_ROLE = re.compile(r"_G_([AB])$")  # latest_net_G_A, 200_net_G_B, ...


def is_resnet(state: Mapping[str, torch.Tensor]) -> bool:
    convs = [state.get(f"model.{i}.weight") for i in (1, 4, 7)]
    if any(c is None or c.ndim != 4 for c in convs) or convs[0].shape[-1] != 7:
        return False
    # all of a ResnetGenerator is under model.; a pix2pixHD local enhancer with two global downs
    # has the same model.* layout, plus its enhancers model1_1, model1_2, ...
    if not all(k.startswith("model.") for k in state):
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


def _resnet(file: Checkpoint) -> tuple[dict[str, Any], nn.Module]:
    found = infer_resnet_spec(file.state, file.path)
    io = {"input_nc": found.pop("input_nc"), "output_nc": found.pop("output_nc")}
    io["spec"] = {"name": "resnet", **found}
    return io, build_official(file, io, "ResNet")


def convert_resnet(file: Checkpoint, companion: Checkpoint | None, options: Options) -> Conversion:
    """A CycleGAN export: "G" from one file, or "G_ab" + "G_ba" from a G_A/G_B pair (the
    companion, another ResNet). Dropout is read from the key layout; options.dropout is unused."""
    if companion is None:
        io, net = _resnet(file)
        nets, files, data_io = {"G": (io, net)}, file.path, io
    else:
        pair = [file, companion]
        roles = [(m.group(1) if (m := _ROLE.search(f.path.stem)) else None) for f in pair]
        if roles == ["B", "A"]:
            pair = pair[::-1]
        elif roles.count("A") > 1 or roles.count("B") > 1:
            raise PixtransError(
                f"'{pair[0].path.name}' and '{pair[1].path.name}' are both G_{roles[0]}; a pair is "
                "one *_net_G_A.pth and one *_net_G_B.pth"
            )
        (io_a, net_a), (io_b, net_b) = _resnet(pair[0]), _resnet(pair[1])
        if (io_b["input_nc"], io_b["output_nc"]) != (io_a["output_nc"], io_a["input_nc"]):
            raise PixtransError(
                f"'{pair[0].path.name}' maps {io_a['input_nc']} -> {io_a['output_nc']} channels but "
                f"'{pair[1].path.name}' maps {io_b['input_nc']} -> {io_b['output_nc']}; G_B must invert "
                "G_A (files of one run?)"
            )
        nets = {"G_ab": (io_a, net_a), "G_ba": (io_b, net_b)}
        files = {"G_ab": pair[0].path, "G_ba": pair[1].path}
        data_io = io_a
    return Conversion(
        method="cyclegan",
        config={
            "method": "cyclegan",
            "data": {
                "dataset": "unpaired",
                "direction": options.direction,
                "input_nc": data_io["input_nc"],
                "output_nc": data_io["output_nc"],
            },
            "model": {"G": data_io["spec"]},
        },
        nets=nets,
        files=files,
        notes={"dropout_assumed": False},
    )
