"""Inference without training code: load any saved model (`open_model`) and translate with it.

`Translator.from_pretrained(path)` returns the translator the model's method declares: a
Translator (image in, image out), for pix2pixHD a LabelTranslator (label + instance maps in), for
colorization a ColorizationTranslator (any photo in, RGB out).
"""

from pixtrans.artifacts.exports import read_export_info
from pixtrans.inference.colorization import ColorizationTranslator
from pixtrans.inference.label_translator import LabelTranslator
from pixtrans.inference.loading import ModelSource, export_from_checkpoint, open_model
from pixtrans.inference.padding import pad_to_multiple
from pixtrans.inference.translator import Translator, plan_outputs
from pixtrans.methods import export_generators

__all__ = [
    "ColorizationTranslator",
    "LabelTranslator",
    "ModelSource",
    "Translator",
    "export_from_checkpoint",
    "export_generators",
    "open_model",
    "pad_to_multiple",
    "plan_outputs",
    "read_export_info",
]
