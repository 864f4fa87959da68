"""Export a pixtrans export's generators to ONNX: dynamic batch, height and width, eval mode.

Each net `name` of an export folder gets `<name>.onnx` beside its safetensors, and config.json
records it under generators[name]["onnx"] (file, opset, input/output names, what the host does
around it). What the graph holds:

  * plain Conv / ConvTranspose nodes: the CPU small-map GEMM path of nets/conv.py picks
    unfold + matmul by the *traced* map size, which would freeze one size into the graph, so it
    is switched off while tracing (nets.conv.plain_convs);
  * eval mode: Dropout is the identity, BatchNorm uses its running statistics, InstanceNorm the
    tile's/image's own (as in torch eval);
  * sizes: any batch, any H and W that are multiples of the net's size_multiple; the translator
    pads to that multiple and crops back, exactly as the torch backend does;
  * pix2pixHD's G reads the encoded label input [B, LabelInput.channels, H, W] (one-hot labels,
    don't-care, instance edges, encoder features), built on the host by LabelInput.encode; the
    encoder E's graph is its conv body (photo -> per-pixel features); the per-instance average
    (`instance_mean`: a data-dependent number of groups) runs on the host after it.

Paper mode (pix2pix's test-time dropout noise + BatchNorm on the image's own statistics) is a
second graph, `<name>.paper.onnx` (mode="paper", `pixtrans export RUN --onnx --paper`): every
BatchNorm becomes InstanceNormalization with the BatchNorm's affine parameters (paper mode runs
images one at a time, and BatchNorm's statistics over a batch of one are the image's own), and
Dropout is exported with training_mode on, so ONNX Runtime draws new noise on every run. The
maths is the torch paper mode's; the noise is ONNX Runtime's own, so `seed` does not reproduce
torch's draws (nor, in ORT, any draw). The eval graph stays the default.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.artifacts.exports import CONFIG_NAME, read_export_info
from pixtrans.deploy import require
from pixtrans.fsutil import atomic_write_text, atomic_write_with
from pixtrans.inference.loading import open_model
from pixtrans.nets.conv import plain_convs
from pixtrans.nets.pix2pixhd import Encoder

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
# ops that would mean a conv was lowered to a matrix product for one traced size
FORBIDDEN_OPS = frozenset({"Unfold", "Col2Im", "MatMul", "Gemm", "Im2Col"})
PARITY_TOLERANCE = 1e-4


class _EncoderBody(nn.Module):
    """pix2pixHD E without the host-side per-instance average: image -> per-pixel features."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.model = encoder.model
        self.size_multiple = encoder.size_multiple

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)


def exportable(net: nn.Module) -> tuple[nn.Module, str | None]:
    """(the module to trace, the host step after it); only the encoder needs one."""
    if isinstance(net, Encoder):
        return _EncoderBody(net), "instance_mean"
    return net, None


def trace_size(multiple: int) -> tuple[int, int]:
    """A small non-square trace input: the graph is size-independent, the trace just needs a
    valid size (two multiples high, three wide; at least 32 px so every level has a pixel)."""
    m = max(int(multiple), 1)
    k = max(1, -(-32 // m))
    return 2 * k * m, 3 * k * m


class _PerImageNorm(nn.Module):
    """A BatchNorm in paper mode, image by image: statistics over each image's H, W (what
    BatchNorm in train mode computes for a batch of one, as paper mode runs), the BatchNorm's own
    affine weight and bias. Exports as InstanceNormalization."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def paper_graph_module(net: nn.Module) -> nn.Module:
    """A copy of `net` computing pix2pix's paper mode per image: BatchNorm on the image's own
    statistics, Dropout active (ONNX Dropout with training_mode, fresh noise per run)."""
    import copy

    net = copy.deepcopy(net).eval()
    for parent in list(net.modules()):
        for key, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, key, _PerImageNorm(child))
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    return net


def to_onnx_bytes(net: nn.Module, input_nc: int, mode: str = "eval", opset: int = OPSET) -> bytes:
    """Trace `net` (eval mode, or `mode="paper"`: see paper_graph_module; plain convs) with
    dynamic batch/height/width; the ONNX model bytes."""
    if mode not in ("eval", "paper"):
        raise PixtransError(f"unknown export mode '{mode}'; valid: eval, paper")
    require("onnx")
    net = paper_graph_module(net) if mode == "paper" else net.eval()
    h, w = trace_size(getattr(net, "size_multiple", 1))
    dummy = torch.zeros(1, input_nc, h, w).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    dims = {0: "batch", 2: "height", 3: "width"}
    with plain_convs(), torch.no_grad(), warnings.catch_warnings():
        # the size checks in forward() are Python ints at trace time; the legacy tracer warns of them
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (dummy,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dims, OUTPUT_NAME: dims},
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.PRESERVE,  # paper mode: Dropout stays active
        )
    return buf.getvalue()


def op_types(model_path_or_bytes: str | os.PathLike | bytes) -> set[str]:
    onnx = require("onnx")
    if isinstance(model_path_or_bytes, bytes):
        model = onnx.load_from_string(model_path_or_bytes)
    else:
        model = onnx.load(str(model_path_or_bytes))
    return {node.op_type for node in model.graph.node}


def check_graph(data: bytes, where: str) -> None:
    """The graph must hold convs as Conv/ConvTranspose, never a size-frozen matrix product."""
    bad = op_types(data) & FORBIDDEN_OPS
    if bad:
        raise PixtransError(
            f"{where}: the exported graph holds {', '.join(sorted(bad))} (a conv lowered for one size); "
            "this is a pixtrans bug, please report it"
        )


def max_abs_diff(net: nn.Module, data: bytes, input_nc: int, size: tuple[int, int]) -> float:
    """|ORT - torch eval| on a seeded random input of `size` (batch 2)."""
    from pixtrans.deploy.ort_backend import session_from_bytes

    x = torch.zeros(2, input_nc, *size).uniform_(-1, 1, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = net.eval()(x).numpy()
    got = session_from_bytes(data).run(None, {INPUT_NAME: x.numpy()})[0]
    return float(np.abs(got - want).max())


def export_onnx(
    model: str | os.PathLike,
    *,
    names: list[str] | None = None,
    mode: str = "eval",
    opset: int = OPSET,
    verify: bool = True,
) -> dict[str, Path]:
    """Write `<name>.onnx` for each net of the export folder `model` (or a run's export/);
    returns {name: path}. verify: ORT and torch must agree within PARITY_TOLERANCE on an input
    of a size other than the traced one, else nothing is recorded."""
    source = open_model(model)
    if source.kind != "export":
        raise PixtransError(
            f"'{model}' resolves to a checkpoint ({source.path}), not an export; run "
            "`pixtrans export RUN` first (`pixtrans export RUN --onnx` does both)"
        )
    export_dir = Path(source.path)
    names = list(names or source.names)
    written: dict[str, Path] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        io_ = source.io(name)
        net, host_step = exportable(source.load_net(name))
        data = to_onnx_bytes(net, io_["input_nc"], mode=mode, opset=opset)
        check_graph(data, f"'{export_dir}' net {name}")
        entry: dict[str, Any] = {
            "file": f"{name}.onnx" if mode == "eval" else f"{name}.paper.onnx",
            "opset": opset,
            "mode": mode,
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "dynamic": ["batch", "height", "width"],
            "torch_version": torch.__version__,
        }
        if host_step:
            entry["host_step"] = host_step  # run by the ORT backend after the graph
        if verify and mode == "eval":
            h, w = trace_size(getattr(net, "size_multiple", 1))
            m = max(int(getattr(net, "size_multiple", 1)), 1)
            err = max_abs_diff(net, data, io_["input_nc"], (h + m, w + 2 * m))
            if err > PARITY_TOLERANCE:
                raise PixtransError(
                    f"'{export_dir}' net {name}: ONNX Runtime differs from torch by {err:.3g} "
                    f"(> {PARITY_TOLERANCE}); the export was not recorded"
                )
            entry["max_abs_diff_vs_torch"] = err
        path = export_dir / entry["file"]
        atomic_write_with(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        written[name] = path
        entries[name] = entry
    record(export_dir, "onnx" if mode == "eval" else "paper", entries)
    return written


def record(export_dir: Path, key: str, entries: dict[str, dict[str, Any]]) -> None:
    """generators[name][key] = entry in config.json (rewritten atomically, after the files)."""
    info = read_export_info(export_dir)
    for name, entry in entries.items():
        info["generators"][name][key] = entry
    atomic_write_text(export_dir / CONFIG_NAME, json.dumps(info, indent=1) + "\n")
