"""A model the server holds: its translators (through pixtrans.inference only), what its page
needs to know (inputs, palette, directions, styles) and a few examples from its dataset.

Which page a model gets follows its declaration, never its method's name: a method whose
translator reads label maps (registry.TRANSLATORS "labelmap": pix2pixHD) gets the label editor;
an image translator with one generator the drawing page; one with several generators (CycleGAN's
G_ab / G_ba) the page with a direction switch.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.data.palettes import palette_for_config
from pixtrans.inference import LabelTranslator, Translator, open_model
from pixtrans.registry import TRANSLATORS

EXAMPLE_SPLITS = ("test", "val", "train")


def png_bytes(arr: np.ndarray) -> bytes:
    """HxW / HxWxC uint8 or uint16 -> PNG bytes (fast compression: the page waits for it)."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _image_from_tensor(t: torch.Tensor) -> np.ndarray:
    """[C,H,W] in [-1,1] -> HxWxC uint8 (1-channel kept as HxW)."""
    arr = ((t.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def _direction_label(name: str, io_: dict) -> str:
    if name.lower().endswith("_ba"):
        return "B → A"
    if name.lower().endswith("_ab"):
        return "A → B"
    return io_.get("direction", name)


@dataclass
class ServedModel:
    name: str
    path: Path
    info: dict[str, Any]
    translators: dict[str, Translator] = field(default_factory=dict)  # generator name -> translator
    labels: LabelTranslator | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path, name: str, device: str = "cpu", n_examples: int = 6) -> ServedModel:
        source = open_model(path)
        kind = TRANSLATORS.get(source.method.translator)
        model = cls(name=name, path=Path(path), info=source.info)
        if issubclass(kind, LabelTranslator):
            model.labels = kind.from_source(source, device=device)
        else:
            for gen in source.names:
                model.translators[gen] = kind.from_source(source, device=device, generator=gen)
        try:
            model.examples = model._find_examples(n_examples)
        except (PixtransError, OSError) as e:  # examples are a convenience: the model still serves
            print(f"note: no examples for '{name}': {e}")
        return model

    # ------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return self.info.get("config") or {}

    @property
    def page(self) -> str:
        if self.labels is not None:
            return "labels"
        return "directions" if len(self.translators) > 1 else "draw"

    @property
    def palette(self) -> dict[str, Any]:
        # exports written before palettes were stored get theirs from the saved config
        return self.info.get("palette") or palette_for_config(self.config)

    def canvas_size(self) -> list[int]:
        """[H, W] a new drawing starts at: the training crop (or load size) of the model."""
        data = self.config.get("data", {})
        if self.examples:
            return list(self.examples[0]["size"])
        side = int(data.get("crop_size") or data.get("load_size") or 256)
        if self.labels is not None and "scale_width" in str(data.get("preprocess", "")):
            return [side // 2, side]  # Cityscapes-like 1:2 maps
        return [side, side]

    def translator(self, direction: str | None) -> Translator:
        names = list(self.translators)
        if direction in (None, ""):
            return self.translators[names[0]]
        aliases = {n.lower().rsplit("_", 1)[-1]: n for n in names if "_" in n}  # "ab" -> "G_ab"
        key = direction if direction in self.translators else aliases.get(direction.lower().replace("to", ""))
        if key is None:
            raise PixtransError(
                f"model '{self.name}' has no direction '{direction}'; choose one of: {', '.join(names)}"
            )
        return self.translators[key]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "method": self.info.get("method"),
            "page": self.page,
            "step": self.info.get("step"),
            "palette": self.palette,
            "size": self.canvas_size(),
            "examples": [{k: v for k, v in ex.items() if not k.startswith("_")} for ex in self.examples],
        }
        if self.labels is not None:
            lt = self.labels
            out["inputs"] = {
                "label": f"single-channel class ids 0..{lt.inputs.classes - 1} (PNG or .npy)",
                "instance": "instance ids, class*1000+k for objects (16-bit PNG or .npy)"
                if lt.use_instance
                else None,
                "photo": "optional photo of the same size: styles from the encoder"
                if lt.E is not None
                else None,
                "styles": "JSON {instance id: cluster index}" if lt.feat_num else None,
                "seed": "integer: random clusters for objects without a chosen style",
            }
            out["label_nc"] = lt.label_nc
            out["classes"] = lt.inputs.classes
            out["dontcare"] = lt.inputs.dontcare_label
            out["instance"] = lt.use_instance
            out["encoder"] = lt.E is not None
            out["clusters"] = {str(c): len(v) for c, v in sorted(lt.clusters.items())}
            out["size_multiple"] = lt.size_multiple
        else:
            first = next(iter(self.translators.values()))
            out["inputs"] = {
                "image": f"an image ({first.input_nc} channel(s) used; PNG, JPEG, WebP, BMP, TIFF or .npy)",
                "mode": "paper (dropout on, per-image batch norm, as pix2pix tests) or eval (deterministic)",
                "seed": "integer: the dropout noise in paper mode",
                "direction": ", ".join(self.translators) if len(self.translators) > 1 else None,
            }
            out["directions"] = [
                {"id": n, "label": _direction_label(n, self.info["generators"][n]), "input_nc": t.input_nc}
                for n, t in self.translators.items()
            ]
            out["size_multiple"] = first.size_multiple
        out["inputs"] = {k: v for k, v in out["inputs"].items() if v}
        return out

    # ------------------------------------------------------------------------------------------
    # Examples: a few items of the model's own dataset, when that dataset is on this machine

    def _dataset(self, split: str):
        from pixtrans.config import from_dict
        from pixtrans.data.build import build_dataset
        from pixtrans.registry import DATASETS

        cfg = from_dict(self.config)
        cls = DATASETS.get(cfg.data.dataset)
        if getattr(cls, "draws_itself", False):
            # a drawn set is read only where training drew it: the server writes nothing
            root = Path(cfg.data.root or Path(cfg.run_dir) / "data")
            drawn = list(root.glob("synthetic-*")) if root.is_dir() else []
            if not drawn:
                return None
        elif not cfg.data.root or not Path(cfg.data.root).is_dir():
            return None
        return build_dataset(
            cfg, split, preprocess="none", flip=False, cache="off", max_images=0, bad_files="skip"
        )

    def _find_examples(self, n: int) -> list[dict[str, Any]]:
        for split in EXAMPLE_SPLITS:
            try:
                ds = self._dataset(split)
            except PixtransError:
                continue
            if ds is None:
                return []
            if len(ds) == 0:
                continue
            picks = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
            return [self._example(ds[int(i)], split, k) for k, i in enumerate(sorted(set(picks.tolist())))]
        return []

    def _example(self, item: dict, split: str, k: int) -> dict[str, Any]:
        name = Path(str(item.get("path") or item.get("path_a") or item.get("name") or k)).stem
        name = re.sub(r"_(gtFine|leftImg8bit).*$", "", name)  # Cityscapes suffixes
        ex: dict[str, Any] = {"index": k, "split": split, "name": re.sub(r"[^\w.-]", "_", name)}
        files: dict[str, tuple[bytes, str]] = {}
        if self.labels is not None:
            label = item["label"][0].numpy()
            files["label.npy"] = (
                npy_bytes(label.astype(np.uint8 if label.max() < 256 else np.uint16)),
                "npy",
            )
            if "inst" in item:
                files["instance.npy"] = (npy_bytes(item["inst"][0].numpy().astype(np.uint16)), "npy")
            if "real_b" in item:
                files["photo.png"] = (png_bytes(_image_from_tensor(item["real_b"])), "png")
            ex["size"] = list(label.shape)
        else:
            files["input.png"] = (png_bytes(_image_from_tensor(item["real_a"])), "png")
            if "real_b" in item and len(self.translators) > 1:
                files["input_b.png"] = (png_bytes(_image_from_tensor(item["real_b"])), "png")
            ex["size"] = list(item["real_a"].shape[-2:])
        ex["files"] = sorted(files)
        ex["_data"] = files
        return ex

    def example_file(self, index: int, file: str) -> tuple[bytes, str]:
        if not 0 <= index < len(self.examples):
            raise KeyError(
                f"model '{self.name}' has {len(self.examples)} examples; index {index} is out of range"
            )
        files = self.examples[index]["_data"]
        if file not in files:
            raise KeyError(
                f"example {index} of '{self.name}' has files {', '.join(sorted(files))}, not '{file}'"
            )
        return files[file]
