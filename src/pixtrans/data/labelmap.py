"""pix2pixHD data: class-id label maps (+ instance maps, photos, precomputed features).

Layout on disk, as pix2pixHD's `--dataroot` (`pixtrans prepare cityscapes` writes it):

    root/{split}_label/x_gtFine_labelIds.png      class ids, single channel (8 or 16 bit, or palette)
    root/{split}_inst/x_gtFine_instanceIds.png    instance ids (Cityscapes: 16 bit, class*1000+k)
    root/{split}_img/x_leftImg8bit.png            photos (the target)
    root/{split}_feat/x.png                       precomputed feature maps (data.features=true)

With label_nc == 0 the input is an image instead: root/{split}_A -> root/{split}_B.

Files pair by sorted order, and each pair must share its name once the suffix common to a folder
(e.g. `_gtFine_labelIds`, `_leftImg8bit`) is removed. The dataset keeps integer ids; one-hot
encoding and instance boundaries are computed on the device by `label_input` (a one-hot Cityscapes
map is 35 x 1024 x 2048 floats, far too big to cache or ship through DataLoader workers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.data.cached import CachedDataset, parse_key
from pixtrans.data.io import (
    convert_channels,
    image_files,
    image_info,
    is_image_file,
    load_array,
    open_image,
    to_float,
    to_tensor,
)
from pixtrans.data.paired import (
    BadFile,
    check_settings,
    decode_all,
    drop_unreadable,
)
from pixtrans.data.random import RandomLabels
from pixtrans.data.transforms import apply_params, check_size, sample_params
from pixtrans.registry import DATASETS

DONTCARE_ID = 255  # the value un-annotated pixels carry in most label PNGs (SPADE's convention)

# ----------------------------------------------------------------------------------------------
# Network input (run on the device, batched)


def input_channels(
    label_nc: int, dontcare_label: bool = False, use_instance: bool = True, input_nc: int = 3
) -> int:
    """Channels of `label_input`: one-hot classes (+1 don't-care), or the input_nc-channel image
    when label_nc == 0, plus one instance-boundary channel."""
    base = label_nc + int(dontcare_label) if label_nc > 0 else input_nc
    return base + int(use_instance)


def one_hot_labels(
    label: torch.Tensor,  # [B,1,H,W] integer class ids in 0..label_nc-1 (label_nc = don't-care)
    label_nc: int,
    dontcare_label: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """[B, label_nc (+1 with dontcare_label), H, W] one-hot maps.

    Ids are not range-checked here (that needs a host sync); LabelMapDataset validates every file,
    so an id out of range cannot reach scatter_ (where CUDA would fail with a device-side assert).
    """
    if label.dim() != 4 or label.shape[1] != 1:
        raise ValueError(f"one_hot_labels expects label [B,1,H,W], got shape {tuple(label.shape)}")
    b, _, h, w = label.shape
    channels = label_nc + int(dontcare_label)
    out = torch.zeros(b, channels, h, w, dtype=dtype, device=label.device)
    return out.scatter_(1, label.long(), 1.0)


def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] instance ids -> float [B,1,H,W]: 1 where a pixel differs from its left or right,
    top or bottom neighbour. Both pixels of a differing pair are marked (pix2pixHD's get_edges),
    so boundaries are two pixels wide."""
    if inst.dim() != 4:
        raise ValueError(f"instance_edges expects inst [B,1,H,W], got shape {tuple(inst.shape)}")
    if inst.dtype == torch.uint16:
        inst = inst.int()  # uint16 has few CPU kernels; ids stay exact in int32
    edge = torch.zeros(inst.shape, dtype=torch.bool, device=inst.device)
    dx = inst[..., :, 1:] != inst[..., :, :-1]  # [B,1,H,W-1]: pixel x+1 differs from pixel x
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    dy = inst[..., 1:, :] != inst[..., :-1, :]  # [B,1,H-1,W]: row y+1 differs from row y
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def label_input(
    label: torch.Tensor,  # [B,1,H,W] class ids, or the [B,C,H,W] float image when label_nc == 0
    inst: torch.Tensor | None,  # [B,1,H,W] instance ids (used only with use_instance)
    label_nc: int,
    dontcare_label: bool = False,
    use_instance: bool = True,
) -> torch.Tensor:
    """pix2pixHD's generator / discriminator label input [B, input_channels(...), H, W]:
    one-hot classes (or the image itself) followed by the instance-boundary channel."""
    x = one_hot_labels(label, label_nc, dontcare_label) if label_nc > 0 else label.float()
    if not use_instance:
        return x
    if inst is None:
        raise ValueError("label_input: use_instance=True needs the instance map")
    return torch.cat([x, instance_edges(inst).to(x.dtype)], dim=1)


@dataclass(frozen=True)
class LabelInput:
    """pix2pixHD's generator input, defined once for training, inference, export, conversion
    and benchmarks: one-hot class ids (+1 don't-care class) or, with label_nc=0, the
    input_nc-channel image; then one instance-boundary channel; then, with the feature encoder,
    feat_num channels of per-instance features.

    D reads the label part (`label_channels`) next to an image; G reads all of it (`channels`).
    """

    label_nc: int  # classes; 0 = the input is an image
    dontcare_label: bool = False
    instance: bool = True
    feat_num: int = 0  # encoder feature channels (0 = no encoder)
    input_nc: int = 3  # image channels when label_nc == 0

    @classmethod
    def from_config(cls, config: Mapping) -> LabelInput:
        """From a resolved config as a plain dict (Config.to_dict(), an export's "config")."""
        data, model = config.get("data", {}), config.get("model", {})
        return cls(
            label_nc=int(data.get("label_nc", 0)),
            dontcare_label=bool(data.get("dontcare_label", False)),
            instance=bool(data.get("instance", True)),
            feat_num=int(model.get("feat_num", 3)) if model.get("E") else 0,
            input_nc=int(data.get("input_nc", 3)),
        )

    @property
    def label_channels(self) -> int:
        return input_channels(self.label_nc, self.dontcare_label, self.instance, self.input_nc)

    @property
    def channels(self) -> int:
        return self.label_channels + self.feat_num

    @property
    def classes(self) -> int:
        """Valid class ids are 0..classes-1 (the don't-care class included)."""
        return self.label_nc + int(self.dontcare_label)

    def encode(self, label: torch.Tensor, inst: torch.Tensor | None) -> torch.Tensor:
        """[B,1,H,W] ids (or the [B,C,H,W] image) + instance ids -> [B, label_channels, H, W]."""
        return label_input(label, inst, self.label_nc, self.dontcare_label, self.instance)

    def describe(self) -> str:
        parts = [f"{self.label_nc} classes" if self.label_nc else f"a {self.input_nc}-channel image"]
        if self.dontcare_label:
            parts.append("don't-care")
        if self.instance:
            parts.append("instance edge")
        if self.feat_num:
            parts.append(f"{self.feat_num} features")
        return " + ".join(parts)


# ----------------------------------------------------------------------------------------------
# File pairing

_TOKEN_SPLIT = re.compile(r"([_\-.])")


def _tokens(stem: str) -> list[str]:
    # "aachen_000000_000019_leftImg8bit" -> ["aachen", "_", "000000", "_", ..., "leftImg8bit"]
    return _TOKEN_SPLIT.split(stem)


def name_keys(files: list[Path]) -> list[str]:
    """Each file's stem without the suffix all stems of its folder share (`_gtFine_labelIds`).

    The suffix ends at a separator (_ - .) and always leaves the first token, so one-file
    folders reduce to their first token and plain names (0001, 0002) stay as they are.
    """
    split = [_tokens(p.stem) for p in files]
    common = min(len(t) for t in split) - 1  # never strip the whole stem
    n = 0
    while n < common and len({tuple(t[len(t) - n - 1 :]) for t in split}) == 1:
        n += 1
    while n > 0 and not _TOKEN_SPLIT.fullmatch(split[0][len(split[0]) - n]):
        n -= 1  # cut the shared suffix at a separator: "_labelIds" not "abelIds"
    return ["".join(t[: len(t) - n]) for t in split]


def _key_prefixes(stem: str) -> set[str]:
    """The stem and each of its prefixes that ends just before a separator."""
    parts = _tokens(stem)
    return {"".join(parts[:n]) for n in range(1, len(parts) + 1, 2)}


def _pair_up(
    inputs: list[Path], input_keys: list[str], others: list[Path], folder: Path, what: str, hint: str
) -> list[Path]:
    """`others` in the order of `inputs`: paired by sorted order, each checked by name (the other
    file's stem must be the input's key or start with it and a separator)."""
    if len(others) == len(inputs) and all(
        key in _key_prefixes(p.stem) for key, p in zip(input_keys, others, strict=True)
    ):
        return others
    # name the first input without a partner or, when every input has one, the first extra file
    offered = set().union(*(_key_prefixes(p.stem) for p in others))
    missing = [(p, k) for p, k in zip(inputs, input_keys, strict=True) if k not in offered]
    if missing:
        path, key = missing[0]
        raise PixtransError(
            f"'{path}' has no {what} in '{folder}' ({len(missing)} of {len(inputs)} without one); "
            f"files pair by sorted order and the partner's name must start with '{key}'{hint}"
        )
    wanted = set(input_keys)
    extra = [p for p in others if not (_key_prefixes(p.stem) & wanted)]
    first = extra[0] if extra else others[len(inputs) if len(others) > len(inputs) else 0]
    raise PixtransError(
        f"'{first}' in '{folder}' matches no file of '{inputs[0].parent}' ({len(others)} {what}s for "
        f"{len(inputs)} inputs); remove it or add its partner, so that the sorted orders line up{hint}"
    )


def _list_images(folder: Path, what: str) -> list[Path]:
    files = image_files(folder)
    if not files:
        raise PixtransError(f"no images in '{folder}' (expected {what}); check data.root and the split name")
    return files


# ----------------------------------------------------------------------------------------------
# Decoding one file


def _read_ids(path: str, what: str, hint: str) -> np.ndarray:
    """A class-id or instance-id map as HxW uint8/uint16 (palette PNGs keep their indices)."""
    arr = None
    try:
        with open_image(path, path) as im:
            if im.mode == "P":  # palette label PNGs (VOC, ADE20K) store the class index per pixel
                im.load()
                arr = np.array(im)
    except PixtransError as e:  # over the pixel limit
        raise BadFile(str(e), path) from None
    except Exception:  # not a PIL image (.npy) or corrupt: load_array names the problem
        arr = None
    if arr is None:
        try:
            arr = load_array(path)
        except PixtransError as e:
            raise BadFile(str(e), path) from None
        if arr.shape[2] != 1:
            raise PixtransError(
                f"{what} '{path}' has {arr.shape[2]} channels (a colour image?); expected single-channel "
                f"ids{hint}"
            )
        arr = arr[:, :, 0]
    if arr.dtype.kind == "f":
        raise PixtransError(f"{what} '{path}' holds float values; expected integer ids{hint}")
    return arr


def _id_tensor(ids: np.ndarray) -> torch.Tensor:
    """HxW id map -> [1,H,W] tensor that owns its memory (PIL's arrays are read-only views)."""
    return torch.from_numpy(np.array(ids, order="C", copy=True))[None]


def _read_image(path: str, channels: int | None) -> np.ndarray:
    try:
        arr = load_array(path)
    except PixtransError as e:
        raise BadFile(str(e), path) from None
    return arr if channels is None else convert_channels(arr, channels, path)


# ----------------------------------------------------------------------------------------------
# Dataset


@DATASETS.register("labelmap")
class LabelMapDataset(CachedDataset):
    """pix2pixHD folders -> {"label" | "real_a", "inst", "real_b", "feat", "name", "path", "index"}.

    label int64 [1,H,W] class ids (label_nc > 0), or real_a float [input_nc,H,W] in [-1,1]
    (label_nc == 0); inst int32 [1,H,W] (instance=True); real_b float [output_nc,H,W] in [-1,1]
    (when the split has photos); feat float [C,H,W] in [-1,1] (features=True); name = the input
    file's stem. `ds[i]` is deterministic (centre crop, no flip); `ds[(i, seed)]` draws crop and
    flip from `seed`, the same for every map of the item. Maps resize with nearest neighbour,
    photos (and label_nc == 0 inputs) bicubic.
    """

    @classmethod
    def config_kwargs(cls, data) -> dict:
        return {
            "label_nc": data.label_nc,
            "dontcare_label": data.dontcare_label,
            "instance": data.instance,
            "features": data.features,
        }

    @classmethod
    def stand_in(cls, data, n: int) -> torch.utils.data.Dataset:
        # scale_width keeps Cityscapes' 1:2 aspect: load_size wide, half as high
        if data.preprocess in ("scale_width", "none"):
            height, width = data.load_size // 2, data.load_size
        else:
            height = width = data.crop_size
        return RandomLabels(
            n,
            data.label_nc,
            height,
            width,
            instance=data.instance,
            input_nc=data.input_nc,
            output_nc=data.output_nc,
        )

    def __init__(
        self,
        *,
        root: str | os.PathLike,  # dataset folder holding {split}_label, {split}_inst, {split}_img
        split: str = "train",
        label_nc: int = 35,  # classes; ids must be < label_nc. 0 = RGB inputs from {split}_A
        dontcare_label: bool = False,  # id 255 (and id label_nc) -> an extra class label_nc
        instance: bool = True,  # read {split}_inst (boundaries for G/D, instances for the encoder)
        features: bool = False,  # read precomputed feature maps from {split}_feat
        preprocess: str = "scale_width",  # see pixtrans.data.transforms
        load_size: int = 1024,
        crop_size: int = 512,
        flip: bool = True,  # random horizontal flip (only for (index, seed) keys)
        cache: str = "auto",  # auto | on | off: keep decoded integer maps and photos in memory
        cache_max_gb: float = 4.0,  # "auto" caches only when the decoded split fits under this
        bad_files: str = "fail",  # fail | skip: policy for files that cannot be decoded
        max_images: int = 0,  # 0 = all; else the first N items in sorted order
        need_images: bool = True,  # False: a split without photos is fine (inference, test split)
        input_nc: int = 3,  # channels of real_a (label_nc == 0 only)
        output_nc: int = 3,  # channels of real_b
        layout: str = "auto",  # auto | folders: pix2pixHD's layout is fixed ("aligned" is refused)
        direction: str = "AtoB",  # label_nc == 0 only: BtoA reads {split}_B -> {split}_A
        num_threads: int = 0,  # start-up validation threads; 0 = min(8, cpu count)
    ):
        self.root = check_settings(
            root=root,
            split=split,
            direction=direction,
            input_nc=input_nc,
            output_nc=output_nc,
            preprocess=preprocess,
            load_size=load_size,
            crop_size=crop_size,
            cache=cache,
            bad_files=bad_files,
            resample="bicubic",
        )
        if layout not in ("auto", "folders"):
            raise PixtransError(
                f"config key 'data.layout': {layout!r} does not apply to data.dataset=labelmap, which reads "
                "pix2pixHD's {split}_label / {split}_inst / {split}_img folders; leave data.layout=auto"
            )
        if isinstance(label_nc, bool) or int(label_nc) != label_nc or not 0 <= label_nc <= 65536:
            raise PixtransError(
                f"config key 'data.label_nc' must be an integer in 0..65536, got {label_nc!r}"
            )
        if label_nc > 0 and direction != "AtoB":
            raise PixtransError(
                "config key 'data.direction': BtoA applies only to image inputs (data.label_nc=0); "
                "label maps are always the input, so set data.direction=AtoB"
            )
        if dontcare_label and label_nc == 0:
            raise PixtransError("config key 'data.dontcare_label' needs label maps; set data.label_nc > 0")
        self.split, self.label_nc = split, int(label_nc)
        self.dontcare_label = bool(dontcare_label)
        self.instance, self.features = bool(instance), bool(features)
        self.preprocess, self.load_size, self.crop_size, self.flip = preprocess, load_size, crop_size, flip
        self.input_nc, self.output_nc, self.direction = int(input_nc), int(output_nc), direction
        self.bad_files, self.need_images = bad_files, bool(need_images)
        self.skipped = 0  # decode failures skipped after start-up, in this process

        self.samples = self._find_files()
        if max_images and max_images > 0:
            self.samples = self.samples[:max_images]
        self.parts = list(self.samples[0])  # e.g. ["input", "inst", "target"]: the payload order

        # cache: index -> payload (one integer/float tensor [C,H,W] per part); None = disabled
        self.cache_mode, self.cache_max_bytes = cache, int(cache_max_gb * 2**30)
        self._cache: dict[int, tuple[torch.Tensor, ...]] | None = None
        self.cache_bytes = 0
        self.dropped: list[str] = []  # files dropped at start-up (bad_files=skip)
        self._validate(num_threads or min(8, os.cpu_count() or 1))

    # ------------------------------------------------------------------------------------------
    # Layout

    def _layout_text(self) -> str:
        s = self.split
        if self.label_nc == 0:
            return f"pix2pixHD's layout for data.label_nc=0: {s}_A (inputs) + {s}_B (targets) under data.root"
        return (
            f"pix2pixHD's layout: {s}_label (class-id maps), {s}_inst (instance ids), {s}_img (photos) under "
            "data.root; `pixtrans prepare cityscapes` writes it from the Cityscapes download"
        )

    def _find_files(self) -> list[dict[str, str]]:
        """[{part: path}] in sorted input order; parts: input, inst, target, feat (those present)."""
        s, root = self.split, self.root
        if self.label_nc > 0:
            input_dir, target_dir = root / f"{s}_label", root / f"{s}_img"
        else:
            input_dir, target_dir = root / f"{s}_A", root / f"{s}_B"
            if self.direction == "BtoA":
                input_dir, target_dir = target_dir, input_dir
        if not input_dir.is_dir():
            hint = ""
            if self.label_nc == 0 and (root / f"{s}_label").is_dir():
                hint = (
                    f"; '{root / f'{s}_label'}' exists: for label maps set data.label_nc (35 for Cityscapes)"
                )
            elif self.label_nc > 0 and (root / f"{s}_A").is_dir():
                hint = f"; '{root / f'{s}_A'}' exists: for image inputs set data.label_nc=0"
            raise PixtransError(
                f"folder '{input_dir}' not found (split '{s}'); expected {self._layout_text()}{hint}"
            )
        what = "class-id label maps" if self.label_nc > 0 else "input images"
        inputs = _list_images(input_dir, what)
        keys = name_keys(inputs)
        columns: dict[str, list[Path]] = {"input": inputs}

        if self.instance:
            inst_dir = root / f"{s}_inst"
            off = "; set data.instance=false to train without instance maps"
            if not inst_dir.is_dir():
                raise PixtransError(f"instance folder '{inst_dir}' not found (data.instance=true){off}")
            others = _list_images(inst_dir, "instance-id maps")
            columns["inst"] = _pair_up(inputs, keys, others, inst_dir, "instance map", off)

        if target_dir.is_dir() and any(is_image_file(p) for p in target_dir.iterdir()):
            others = _list_images(target_dir, "photos")
            columns["target"] = _pair_up(inputs, keys, others, target_dir, "photo", "")
        elif self.need_images:
            raise PixtransError(
                f"photo folder '{target_dir}' is missing or empty (split '{s}'); training needs the "
                f"targets ({self._layout_text()})"
            )

        if self.features:
            feat_dir = root / f"{s}_feat"
            off = "; set data.features=false to go without precomputed features"
            if not feat_dir.is_dir():
                raise PixtransError(f"feature folder '{feat_dir}' not found (data.features=true){off}")
            others = _list_images(feat_dir, "feature maps")
            columns["feat"] = _pair_up(inputs, keys, others, feat_dir, "feature map", off)

        return [{part: str(files[i]) for part, files in columns.items()} for i in range(len(inputs))]

    # ------------------------------------------------------------------------------------------
    # Decoding

    def _read_label(self, path: str) -> np.ndarray:
        """Class ids HxW with don't-care mapped to label_nc; ids out of range are refused here,
        never on the device."""
        hint = (
            "; data.label_nc>0 needs class-id maps such as Cityscapes *_gtFine_labelIds.png "
            "(not *_color.png), or set data.label_nc=0 for image inputs"
        )
        ids = _read_ids(path, "label map", hint)
        limit = self.label_nc + int(self.dontcare_label)  # ids 0..limit-1 have a one-hot channel
        if self.dontcare_label and self.label_nc < DONTCARE_ID:
            ids = np.where(ids == DONTCARE_ID, np.asarray(self.label_nc, ids.dtype), ids)
        top = int(ids.max())
        if top >= limit:
            extra = ""
            if top == DONTCARE_ID and not self.dontcare_label:
                extra = f", or set data.dontcare_label=true to map {DONTCARE_ID} to an extra don't-care class"
            raise PixtransError(
                f"label map '{path}' holds class id {top}, but data.label_nc={self.label_nc} allows "
                f"0..{limit - 1}; raise data.label_nc to at least {top + 1}{extra}"
            )
        return ids

    def _decode_part(self, part: str, path: str) -> torch.Tensor:
        """One file as an integer (or float) tensor [C,H,W], channels already converted."""
        if part == "input" and self.label_nc > 0:
            return _id_tensor(self._read_label(path))
        if part == "inst":
            hint = (
                "; use instance-id maps such as Cityscapes *_gtFine_instanceIds.png, or data.instance=false"
            )
            return _id_tensor(_read_ids(path, "instance map", hint))
        channels = {"input": self.input_nc, "target": self.output_nc, "feat": None}[part]
        return to_tensor(_read_image(path, channels))

    def _decode(self, i: int) -> tuple[torch.Tensor, ...]:
        sample = self.samples[i]
        payload = tuple(self._decode_part(part, sample[part]) for part in self.parts)
        self._check_sizes(i, [t.shape[-2:][::-1] for t in payload])
        return payload

    def _check_sizes(self, i: int, sizes_wh: list) -> None:
        sample = self.samples[i]
        w, h = (int(v) for v in sizes_wh[0])
        for part, (pw, ph) in zip(self.parts[1:], sizes_wh[1:], strict=True):
            if (int(pw), int(ph)) != (w, h):
                raise PixtransError(
                    f"sizes differ: '{sample['input']}' is {w}x{h} but '{sample[part]}' is {pw}x{ph}; "
                    "all maps and the photo of an item must have the same size"
                )
        check_size(self.preprocess, (w, h), self.load_size, self.crop_size, sample["input"])

    def _header_check(self, i: int) -> None:
        """Without caching: decode the label (ids checked), read only the headers of the rest."""
        sample = self.samples[i]
        first = self._decode_part("input", sample["input"]) if self.label_nc > 0 else None
        sizes = [tuple(first.shape[-2:][::-1])] if first is not None else []
        for part in self.parts[len(sizes) :]:
            try:
                w, h, _, _ = image_info(sample[part])
            except PixtransError as e:
                raise BadFile(str(e), sample[part]) from None
            sizes.append((w, h))
        self._check_sizes(i, sizes)

    def _decoded_bytes(self, i: int) -> int:
        """Bytes item i takes in the cache, from the file headers."""
        total = 0
        for part in self.parts:
            try:
                w, h, c, nbytes = image_info(self.samples[i][part])
            except PixtransError:
                return 0  # unreadable: the validation pass reports it
            if part == "input" and self.label_nc > 0 or part == "inst":
                c = 1  # id maps keep one channel (palette PNGs included)
            elif part == "input":
                c = self.input_nc
            elif part == "target":
                c = self.output_nc
            total += w * h * c * nbytes
        return total

    def _validate(self, num_threads: int) -> None:
        """Check every item now, so bad data stops the run before training; fill the cache."""
        n = len(self.samples)
        caching = self.cache_mode != "off"
        if self.cache_mode == "auto":
            # decide from the headers, so a split too big to cache is not decoded at start-up
            with ThreadPoolExecutor(max_workers=max(1, min(num_threads, n))) as pool:
                estimate = sum(pool.map(self._decoded_bytes, range(n)))
            caching = estimate <= self.cache_max_bytes

        def check_one(i: int):
            try:
                if caching:
                    return "ok", self._decode(i)
                self._header_check(i)
                return "ok", None
            except BadFile as e:
                return "bad", e

        bad, keep, self.cache_bytes = decode_all(
            n,
            check_one,
            cache=caching,
            cache_mode=self.cache_mode,
            cache_max_bytes=self.cache_max_bytes,
            num_threads=num_threads,
        )
        folder = str(self.root / f"{self.split}_*")
        self.samples, keep, self.dropped = drop_unreadable(
            self.samples, bad, keep, policy=self.bad_files, folder=folder, what="items"
        )
        self._cache = keep if caching else None

    def _input_files(self):
        yield from ((sample["input"], False) for sample in self.samples)

    # ------------------------------------------------------------------------------------------
    # Item access

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key) -> dict:
        index, generator = parse_key(key, len(self))
        i, payload = self._load_readable(index, f"'{self.root}' split '{self.split}'")

        sample = self.samples[i]
        h, w = payload[0].shape[-2:]
        params = sample_params(
            self.preprocess,
            (w, h),
            self.load_size,
            self.crop_size,
            self.flip,
            generator=generator,
            path=sample["input"],
        )
        out: dict = {}
        for part, t in zip(self.parts, payload, strict=True):
            is_map = part == "inst" or part == "feat" or (part == "input" and self.label_nc > 0)
            if is_map:
                # nearest keeps ids exact (uint8/uint16 resize as is); features are per-instance constants
                t = apply_params(
                    t, params, self.preprocess, self.load_size, self.crop_size, resample="nearest"
                )
            else:
                t = t if t.dtype == torch.uint8 else to_float(t)  # 8-bit resizes as uint8 (fast)
                t = apply_params(
                    t, params, self.preprocess, self.load_size, self.crop_size, resample="bicubic"
                )
            if part == "input" and self.label_nc > 0:
                out["label"] = t.long()  # [1,H,W]
            elif part == "inst":
                out["inst"] = t.to(torch.int32)  # [1,H,W]; Cityscapes ids reach 33xxx
            else:
                key_name = {"input": "real_a", "target": "real_b", "feat": "feat"}[part]
                out[key_name] = to_float(t) * 2.0 - 1.0  # [0,1] -> [-1,1], out of place (cache)
        out["name"] = Path(sample["input"]).stem
        out["path"] = sample["input"]
        out["index"] = i
        return out

    def __repr__(self) -> str:
        cache = self._cache_text()
        inputs = f"label_nc={self.label_nc}" if self.label_nc > 0 else f"{self.split}_A images"
        return (
            f"LabelMapDataset({len(self)} items, '{self.root}' split '{self.split}', {inputs}, parts "
            f"{'+'.join(self.parts)}, {self.preprocess} {self.load_size}/{self.crop_size}, cache {cache})"
        )
