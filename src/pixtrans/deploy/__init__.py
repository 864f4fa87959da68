"""Deployment: ONNX export with dynamic sizes, ONNX Runtime inference, static int8 quantization.

    pixtrans export RUN --onnx [--int8]                 <name>.onnx (+ <name>.int8.onnx) per net
    Translator.from_pretrained(EXPORT, backend="onnxruntime")   same rules, ONNX Runtime underneath

`onnx` and `onnxruntime` are an optional extra: `pip install "pixtrans[onnx]"`.
"""

from __future__ import annotations

import importlib

from pixtrans import PixtransError

INSTALL_HINT = 'pip install "pixtrans[onnx]"'


def require(module: str):
    """Import `module` (onnx, onnxruntime, onnxruntime.quantization) or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PixtransError(
            f"ONNX export and the onnxruntime backend need the '{module.split('.')[0]}' package, "
            f"which is not installed; run: {INSTALL_HINT}"
        ) from None
