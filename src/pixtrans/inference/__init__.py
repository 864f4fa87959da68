"""Inference without training code: exports (safetensors + config.json) and the Translator."""

from pixtrans.inference.export import export_from_checkpoint, export_generators, read_export_info
from pixtrans.inference.translator import Translator, pad_to_multiple, plan_outputs

__all__ = [
    "Translator",
    "export_from_checkpoint",
    "export_generators",
    "pad_to_multiple",
    "plan_outputs",
    "read_export_info",
]
