"""pix2pixHD inference: label map (+ instance map) -> photo, with per-instance styles.

    translator = Translator.from_pretrained("runs/label2city")      # a LabelTranslator
    photo = translator("x_labelIds.png", "x_instanceIds.png")        # PIL image
    photo = translator(label, inst, styles={26001: 3})               # car 26001 in cluster 3
    photo = translator(label, inst, image=real_photo)                # the photo's own styles

With a feature encoder (model.E), G also reads a feature map that is constant inside each
instance (paper §3.4). It comes from, in order of precedence:
  image=...        the encoder's per-instance average over a real photo;
  styles={id: k}   cluster k of the instance's class (clusters from `pixtrans features`);
                   instances not named draw a cluster at random from `seed`;
  neither          every instance draws a random cluster (`seed`), as the official test code.
Instance ids follow Cityscapes: ids >= 1000 are `class * 1000 + k`, smaller ids are the class.
A class without clusters (never seen as a large enough instance) gets zero features.

Maps of any size work: inputs are padded to the generator's multiple and the output cropped.
Inference never imports pixtrans.training: a model loads with no training code.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixtrans import PixtransError
from pixtrans.artifacts.exports import write_clusters
from pixtrans.data.io import image_files, load_array, read_image, write_image
from pixtrans.data.labelmap import LabelInput
from pixtrans.inference.loading import ModelSource, load_backend_net, open_model, save_export
from pixtrans.inference.padding import pad_to_multiple
from pixtrans.registry import TRANSLATORS
from pixtrans.runtime import (
    autocast_to,
    backend_precision,
    default_inference_precision,
    inference_dtype,
    resolve_device,
)


def instance_class(inst_id: int) -> int:
    """Cityscapes convention: instance ids >= 1000 are class*1000 + k; smaller ids are the class."""
    return inst_id // 1000 if inst_id >= 1000 else inst_id


def _to_map(x: Any, what: str, dtype: torch.dtype) -> torch.Tensor:
    """A path / PIL / numpy HxW / tensor [H,W], [1,H,W] or [B,1,H,W] -> integer [B,1,H,W]."""
    if isinstance(x, (str, os.PathLike)):
        path = Path(x)
        if not path.is_file():
            raise PixtransError(f"{what} map '{path}' does not exist or is not a file")
        x = load_array(path)
    if isinstance(x, Image.Image):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        if x.ndim == 3 and x.shape[2] == 1:
            x = x[:, :, 0]
        if x.ndim != 2:
            raise PixtransError(
                f"{what} map must be single-channel (HxW ids), got shape {tuple(x.shape)}; "
                "pass the *_labelIds / *_instanceIds image, not a colour rendering"
            )
        x = torch.from_numpy(x.astype(np.int64))
    if not isinstance(x, torch.Tensor):
        raise PixtransError(f"cannot read a {what} map from a {type(x).__name__}")
    if x.is_floating_point():
        raise PixtransError(f"{what} map must hold integer ids, got a {x.dtype} tensor")
    while x.ndim < 4:
        x = x[None]
    if x.shape[1] != 1:
        raise PixtransError(f"{what} map must be [B,1,H,W] ids, got {tuple(x.shape)}")
    return x.to(dtype)


@TRANSLATORS.register("labelmap")
class LabelTranslator:
    """pix2pixHD generator (+ encoder and feature clusters) ready to synthesise photos."""

    def __init__(
        self,
        G: nn.Module,
        E: nn.Module | None = None,
        *,
        inputs: LabelInput,  # what G reads: labels (+ don't-care), instance edges, features
        clusters: Mapping[int, torch.Tensor] | None = None,  # class id -> [k, feat_num] centres
        info: dict | None = None,
        device: str | torch.device = "cpu",
        precision: str | None = None,  # as Translator's: fp32 | bf16 | fp16 | auto
    ):
        self.device = resolve_device(device)
        self.precision = precision or default_inference_precision()
        self.amp_dtype = inference_dtype(self.precision, self.device)  # None: fp32
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.E = E.to(self.device).eval().requires_grad_(False) if E is not None else None
        self.inputs = inputs
        self.label_nc = inputs.label_nc
        self.use_instance = inputs.instance
        self.feat_num = inputs.feat_num if E is not None else 0
        self.clusters = {int(k): v.float().cpu() for k, v in (clusters or {}).items()}
        self.size_multiple = int(getattr(G, "size_multiple", 1))
        self.info = info or {}
        self.input_nc = self.info.get("config", {}).get("data", {}).get("input_nc", 3)
        self.output_nc = int(self.info.get("generators", {}).get("G", {}).get("output_nc", 3))
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LabelTranslator(label_nc={self.label_nc}, instance={self.use_instance}, "
            f"feat_num={self.feat_num}, clusters={len(self.clusters)} classes, "
            f"size_multiple={self.size_multiple}, device={str(self.device)!r})"
        )

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        backend: str = "torch",
        precision: str | None = None,
    ) -> LabelTranslator:
        """A pix2pixHD run folder, export folder or checkpoint (see inference.loading); backend
        "onnxruntime" runs the export's ONNX models of G and E, `precision` as for
        Translator.from_pretrained."""
        return cls.from_source(open_model(path), device=device, backend=backend, precision=precision)

    @classmethod
    def from_source(
        cls,
        source: ModelSource,
        device: str | torch.device = "cpu",
        generator: str | None = None,
        backend: str = "torch",
        precision: str | None = None,
    ) -> LabelTranslator:
        precision = backend_precision(backend, precision, device)
        return cls(
            load_backend_net(source, "G", backend, device),
            load_backend_net(source, "E", backend, device) if "E" in source.names else None,
            inputs=LabelInput.from_config(source.config),
            clusters=source.clusters(),
            info=source.info,
            device=device,
            precision=precision,
        )

    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        """Write G (and E with its feature clusters) as an export `from_pretrained` loads back."""
        nets = {"G": self.G} if self.E is None else {"G": self.G, "E": self.E}
        out = save_export(out_dir, self.info, nets)
        if self.clusters:
            write_clusters(
                out, self.clusters, {k: v for k, v in self.info.get("clusters", {}).items() if k != "file"}
            )
        return out

    # ------------------------------------------------------------------------------------------
    def encode_input(self, label: torch.Tensor, inst: torch.Tensor | None) -> torch.Tensor:
        """Integer maps [B,1,H,W] -> G's label input [B, C, H, W] (one-hot + boundaries)."""
        inputs = self.inputs
        if inputs.label_nc > 0:
            if inputs.dontcare_label:  # 255 marks "don't care", as the dataset reads it
                label = torch.where(label == 255, inputs.label_nc, label)
            # checked here, on the host: an id out of range must never reach one-hot's scatter
            top, limit = int(label.max()), inputs.classes
            if int(label.min()) < 0 or top >= limit:
                raise PixtransError(
                    f"label map holds id {top} but the model knows {inputs.label_nc} classes "
                    f"(0..{limit - 1}); pass the *_labelIds image the model was trained on"
                )
        if inputs.instance:
            if inst is None:
                raise PixtransError("this model was trained with instance maps; pass instance=... as well")
            if inst.shape[-2:] != label.shape[-2:]:
                raise PixtransError(
                    f"instance map is {tuple(inst.shape[-2:])} but the label map {tuple(label.shape[-2:])}"
                )
        return inputs.encode(label if inputs.label_nc > 0 else label.float(), inst)

    def cluster_features(
        self,
        inst: torch.Tensor,
        styles: Mapping[int, int] | None = None,
        seed: int | None = 0,
        strict: bool = True,
    ) -> torch.Tensor:
        """[B,1,H,W] instance ids -> [B, feat_num, H, W]: a cluster centre per instance.

        Every instance draws a cluster from `seed` (in id order, so a style named for one car
        does not change the others); `styles` overrides the draw. strict: a style for an id the
        map does not hold is an error (else it is ignored, for folders of maps)."""
        styles = dict(styles or {})
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        lo, hi = int(inst.min()), int(inst.max())
        # ids -> rows of a table spanning [lo, hi] (Cityscapes ids stay below 34000)
        present = torch.bincount((inst - lo).flatten().cpu(), minlength=hi - lo + 1).nonzero().flatten() + lo
        ids = present.tolist()
        if strict:
            for inst_id in styles:
                if inst_id not in ids:
                    raise PixtransError(f"styles names instance {inst_id}, which is not in the instance map")
        table = torch.zeros(hi - lo + 1, self.feat_num)
        for inst_id in ids:
            centres = self.clusters.get(instance_class(int(inst_id)))
            if centres is None:
                continue
            pick = torch.randint(len(centres), (1,), generator=gen).item()  # drawn for every id: stable
            if inst_id in styles:
                pick = styles[inst_id]
                if not 0 <= pick < len(centres):
                    raise PixtransError(
                        f"style {pick} for instance {inst_id}: class {instance_class(inst_id)} has "
                        f"{len(centres)} clusters (0..{len(centres) - 1})"
                    )
            table[inst_id - lo] = centres[pick]
        feat = table.to(inst.device)[(inst[:, 0] - lo).long()]  # [B, H, W, feat_num]
        return feat.permute(0, 3, 1, 2).contiguous()

    def styles_of(self, inst: Any) -> dict[int, int]:
        """instance id -> number of clusters available for it (what `styles` may choose from)."""
        inst = _to_map(inst, "instance", torch.int64)
        return {
            int(i): len(self.clusters[instance_class(int(i))])
            for i in torch.unique(inst).tolist()
            if instance_class(int(i)) in self.clusters
        }

    @torch.inference_mode()
    def translate_tensor(
        self,
        label: torch.Tensor,
        inst: torch.Tensor | None = None,
        *,
        image: torch.Tensor | None = None,
        styles: Mapping[int, int] | None = None,
        seed: int | None = 0,
        strict: bool = True,
    ) -> torch.Tensor:
        """Integer [B,1,H,W] maps (and an optional photo [B,3,H,W] in [-1,1]) -> [B,3,H,W]."""
        label = label.to(self.device)
        inst = inst.to(self.device) if inst is not None else None
        x = self.encode_input(label, inst)
        if self.E is not None:
            if image is not None:
                image = image.to(self.device, torch.float32)
                if image.shape[-2:] != label.shape[-2:]:
                    raise PixtransError(
                        f"style image is {tuple(image.shape[-2:])}, "
                        f"the label map {tuple(label.shape[-2:])}; they must match"
                    )
                with autocast_to(self.device, self.amp_dtype):
                    feat = self.E(*self._padded_pair(image, inst)).float()
                feat = feat[..., : label.shape[-2], : label.shape[-1]]
            else:
                if not self.clusters and styles:
                    raise PixtransError(
                        "this export has no feature clusters; run `pixtrans features RUN` first"
                    )
                feat = self.cluster_features(inst, styles, seed, strict=strict)
            x = torch.cat([x, feat], dim=1)
        h, w = x.shape[-2:]
        with self._lock:
            xp, (top, left) = pad_to_multiple(x, self.size_multiple)
            with autocast_to(self.device, self.amp_dtype):
                y = self.G(xp).float()
        return y[..., top : top + h, left : left + w].clone()

    def _padded_pair(self, image: torch.Tensor, inst: torch.Tensor):
        """E needs sizes divisible by its own multiple: pad image and ids at the bottom/right."""
        m = int(getattr(self.E, "size_multiple", 1))
        ph, pw = -image.shape[-2] % m, -image.shape[-1] % m
        if ph or pw:
            image = torch.nn.functional.pad(image, (0, pw, 0, ph), mode="replicate")
            inst = torch.nn.functional.pad(inst, (0, pw, 0, ph), value=-1)  # a separate "instance"
        return image, inst

    def __call__(
        self,
        label: Any,
        instance: Any = None,
        *,
        image: Any = None,
        styles: Mapping[int, int] | None = None,
        seed: int | None = 0,
    ) -> Any:
        """label / instance: paths, PIL images, numpy HxW or integer tensors; image: a photo (path,
        PIL, or tensor [3,H,W] in [-1,1]) to take styles from. Returns a PIL image, or a tensor
        when `label` is a tensor."""
        as_tensor = isinstance(label, torch.Tensor)
        label_t = _to_map(label, "label", torch.int64)
        inst_t = _to_map(instance, "instance", torch.int64) if instance is not None else None
        img_t = None
        if image is not None:
            if isinstance(image, torch.Tensor):
                img_t = image if image.ndim == 4 else image[None]
            elif isinstance(image, Image.Image):
                arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
                img_t = torch.from_numpy(arr).permute(2, 0, 1)[None]
            else:
                img_t = (read_image(Path(image), 3) * 2 - 1)[None]
        y = self.translate_tensor(label_t, inst_t, image=img_t, styles=styles, seed=seed)
        if as_tensor:
            return y if label.ndim == 4 else y[0]
        arr = ((y[0].float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(arr)

    def translate_paths(
        self,
        labels: str | os.PathLike,
        out_dir: str | os.PathLike,
        *,
        instances: str | os.PathLike | None = None,
        images: str | os.PathLike | None = None,
        styles: Mapping[int, int] | None = None,
        seed: int | None = 0,
        progress: bool = True,
    ) -> list[Path]:
        """Every label map in a folder (or one file) -> out_dir/<stem>.png. Instance maps and
        style photos are matched by the name before '_gtFine'/'_leftImg8bit' (Cityscapes) or by
        sorted order."""
        from tqdm.auto import tqdm

        def files(p):
            p = Path(p)
            if p.is_file():
                return [p]
            if not p.is_dir():
                raise PixtransError(f"input '{p}' does not exist; pass a label map file or folder")
            found = image_files(p)
            if not found:
                raise PixtransError(f"no image files in '{p}'")
            return found

        label_files = files(labels)
        inst_files = (
            _match(label_files, files(instances), "instance") if instances else [None] * len(label_files)
        )
        if self.use_instance and instances is None:
            raise PixtransError("this model was trained with instance maps; pass --instances DIR")
        img_files = _match(label_files, files(images), "style image") if images else [None] * len(label_files)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for lab, ins, img in tqdm(
            list(zip(label_files, inst_files, img_files, strict=True)), disable=not progress, unit="img"
        ):
            label_t = _to_map(lab, "label", torch.int64)
            inst_t = _to_map(ins, "instance", torch.int64) if ins is not None else None
            img_t = (read_image(img, 3) * 2 - 1)[None] if img is not None else None
            y = self.translate_tensor(label_t, inst_t, image=img_t, styles=styles, seed=seed, strict=False)
            written.append(write_image(y[0], out_dir / f"{_stem(lab)}.png"))
        return written


def _stem(path: Path) -> str:
    """Cityscapes 'aachen_000000_000019_gtFine_labelIds' -> 'aachen_000000_000019'."""
    name = path.stem
    for marker in ("_gtFine", "_leftImg8bit"):
        if marker in name:
            return name.split(marker)[0]
    return name


def _match(label_files: list[Path], others: list[Path], what: str) -> list[Path]:
    by_stem = {_stem(p): p for p in others}
    if all(_stem(p) in by_stem for p in label_files):
        return [by_stem[_stem(p)] for p in label_files]
    if len(others) == len(label_files):
        return others
    missing = next(p for p in label_files if _stem(p) not in by_stem)
    raise PixtransError(f"no {what} file matches label map '{missing.name}' (by name or by count)")
