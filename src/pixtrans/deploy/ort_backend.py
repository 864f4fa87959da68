"""ONNX Runtime behind the translators' net interface.

`OrtNet` is an nn.Module without parameters whose forward runs an ONNX Runtime session, so the
torch Translator / LabelTranslator use it unchanged: the same padding to size_multiple, the same
cropping, batching, file reading and writing. `Translator.from_pretrained(path,
backend="onnxruntime")` builds one from `<name>.onnx` (written by `pixtrans export RUN --onnx`);
backend="onnxruntime-int8" takes `<name>.int8.onnx` (`--int8`).

Eval mode only: a graph runs Dropout as the identity and BatchNorm with running statistics, so a
call in training mode (the translators' paper mode) is refused rather than answered differently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.deploy import require
from pixtrans.nets.pix2pixhd import instance_mean
from pixtrans.runtime import resolve_device

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")
_MODEL_KEY = {"onnxruntime": "onnx", "onnxruntime-int8": "int8"}


def session_options(threads: int | None = None, optimize: bool = True):
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    # optimize=False for paper-mode graphs: ONNX Runtime's graph rewrites drop Dropout nodes even
    # with training_mode on (measured: identical outputs run to run), which would silence the noise
    level = ort.GraphOptimizationLevel
    opts.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def _providers(device: torch.device) -> list[str]:
    ort = require("onnxruntime")
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise PixtransError(
        f"the onnxruntime backend cannot run on device '{device}' here (providers: "
        f"{', '.join(ort.get_available_providers())}); use --device cpu or --backend torch"
    )


def session_from_bytes(
    data: bytes | str | os.PathLike,
    device: torch.device | None = None,
    threads=None,
    optimize: bool = True,
    rewrite: bool = True,
):
    """An ONNX Runtime session of a model file or bytes. rewrite: run it through deploy/rewrite.py
    first (exact; the file is left as exported): ConvTranspose as the Convs of its output phases,
    which the CPU provider runs a little faster in fp32 (U-Net 45.9 -> 43.6 ms back to back on an
    AMX Xeon) and which int8 needs (its quantizer applies the same rewrite)."""
    ort = require("onnxruntime")
    source = data if isinstance(data, bytes) else str(data)
    if rewrite:
        onnx = require("onnx")
        from pixtrans.deploy.rewrite import for_onnxruntime

        model = onnx.load_from_string(source) if isinstance(source, bytes) else onnx.load(source)
        source = for_onnxruntime(model).SerializeToString()
    return ort.InferenceSession(
        source,
        sess_options=session_options(threads, optimize),
        providers=_providers(device or torch.device("cpu")),
    )


class OrtNet(nn.Module):
    """[B,C,H,W] float tensor -> [B,C',H,W] tensor through an ONNX Runtime session.

    H, W must be multiples of `size_multiple` (the translators pad to it). The result comes back
    on the input's device and dtype. `host_step="instance_mean"` (pix2pixHD's encoder) averages
    the graph's per-pixel features over each instance of the second argument, on the host."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        size_multiple: int = 1,
        host_step: str | None = None,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        paper_path: str | os.PathLike | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.size_multiple = int(size_multiple)
        self.host_step = host_step
        self._device = resolve_device(device)
        self.session = session_from_bytes(self.path, self._device, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.paper_path = Path(paper_path) if paper_path else None
        # the paper-mode graph (dropout noise, per-image statistics), run in training mode
        self.paper_session = (
            session_from_bytes(self.paper_path, self._device, threads, optimize=False) if paper_path else None
        )

    def __repr__(self) -> str:
        return f"OrtNet({str(self.path)!r}, providers={self.session.get_providers()})"

    def _apply(self, fn, recurse=True):  # .to(device): the session stays where it was made
        return self

    def forward(self, x: torch.Tensor, inst: torch.Tensor | None = None) -> torch.Tensor:
        session = self.session
        if self.training:
            if self.paper_session is None:
                raise PixtransError(
                    f"{self.path.name} is the eval-mode graph (no dropout noise, BatchNorm on running "
                    "statistics) and this export has no paper-mode graph: use --mode eval, run "
                    "`pixtrans export RUN --onnx --paper`, or use --backend torch for paper mode"
                )
            session = self.paper_session
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise PixtransError(
                f"{self.path.name} needs H and W divisible by {m}, got {h}x{w}; pad the input"
            )
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        y = torch.from_numpy(session.run(None, {self.input_name: arr})[0])
        if self.host_step == "instance_mean":
            if inst is None:
                raise PixtransError("the encoder needs the instance map as its second argument")
            y = instance_mean(y, inst.cpu())
        elif self.host_step is not None:
            raise PixtransError(f"{self.path}: unknown host step '{self.host_step}'; upgrade pixtrans")
        return y.to(x.device, x.dtype)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise PixtransError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")
    return backend


def load_ort_net(
    source: Any, name: str, backend: str, device: Any = "cpu", threads: int | None = None
) -> OrtNet:
    """Net `name` of a ModelSource (inference.loading) export as an OrtNet, from the ONNX file
    its config.json records."""
    key = _MODEL_KEY[check_backend(backend)]
    entry = source.io(name).get(key)
    hint = "`pixtrans export RUN --onnx`" + (" --int8" if key == "int8" else "")
    if source.kind != "export":
        raise PixtransError(
            f"'{source.path}' is a training checkpoint; the {backend} backend reads an export "
            f"with ONNX models: run {hint}"
        )
    if not entry:
        raise PixtransError(f"export '{source.path}' has no {backend} model for '{name}'; run {hint}")
    path = Path(source.path) / entry["file"]
    if not path.is_file():
        raise PixtransError(f"export '{source.path}': {entry['file']} is missing; run {hint} again")
    size_multiple = int(source.io(name).get("size_multiple") or 1)
    paper = source.io(name).get("paper") if key == "onnx" else None
    paper_path = Path(source.path) / paper["file"] if paper else None
    if paper_path is not None and not paper_path.is_file():
        raise PixtransError(f"export '{source.path}': {paper['file']} is missing; run {hint} --paper again")
    return OrtNet(
        path,
        size_multiple=size_multiple,
        host_step=entry.get("host_step"),
        device=device,
        threads=threads,
        paper_path=paper_path,
    )
