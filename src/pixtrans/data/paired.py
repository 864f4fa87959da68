"""Paired (aligned) datasets for pix2pix-style training.

Two layouts on disk (see docs/data.md):

    aligned   root/split/x.png              A and B side by side in one file (A left, B right)
    folders   root/split/A/x.png + root/split/B/x.png     (pairs matched by file stem)
              root/A/split/x.png + root/B/split/x.png     (the official "combine" layout)

`dataset[i]` gives the deterministic view (centre crop, no flip); `dataset[(i, seed)]` draws all
augmentation from `torch.Generator().manual_seed(seed)`, so a resumed run sees the same crops.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.data.cached import BadFile, CachedDataset, parse_key
from pixtrans.data.io import (
    IMAGE_EXTENSIONS,
    convert_channels,
    image_files,
    load_array,
    to_float,
    to_tensor,
)
from pixtrans.data.transforms import apply_params, check_mode, check_size, resample_modes, sample_params
from pixtrans.registry import DATASETS

log = logging.getLogger("pixtrans.data")

_EXT_LIST = ", ".join(sorted(IMAGE_EXTENSIONS))


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise PixtransError(f"config key '{key}': {value!r} is not one of {', '.join(map(repr, choices))}")


def check_settings(
    *,
    root,
    split: str,
    direction: str,
    input_nc: int,
    output_nc: int,
    preprocess: str,
    load_size: int,
    crop_size: int,
    cache: str,
    bad_files: str,
    resample: str,
) -> Path:
    """Argument checks shared by the image-folder datasets; returns root as an existing Path."""
    _choice("data.direction", direction, ("AtoB", "BtoA"))
    _choice("data.cache", cache, ("auto", "on", "off"))
    _choice("data.bad_files", bad_files, ("fail", "skip"))
    _choice("resample", resample, resample_modes())
    check_mode(preprocess)
    for key, val in (
        ("data.input_nc", input_nc),
        ("data.output_nc", output_nc),
        ("data.load_size", load_size),
        ("data.crop_size", crop_size),
    ):
        if int(val) < 1:
            raise PixtransError(f"config key '{key}' must be >= 1, got {val}")
    if preprocess in ("resize_and_crop", "scale_width_and_crop"):
        check_size(preprocess, (load_size, load_size), load_size, crop_size)  # crop must fit the resize
    if not str(root):
        raise PixtransError(
            "config key 'data.root' is empty; set data.root to a dataset folder "
            "(or use data.dataset=synthetic)"
        )
    if not split:
        raise PixtransError("the split name is empty; set data.train_split / data.val_split")
    root = Path(root)
    if not root.is_dir():
        raise PixtransError(
            f"data.root '{root}' does not exist or is not a folder; set data.root to the dataset folder"
        )
    return root


def list_images(folder: Path, expected: str) -> list[Path]:
    """Sorted image files directly in `folder` (hidden files and other extensions ignored)."""
    if not folder.is_dir():
        raise PixtransError(f"dataset folder '{folder}' does not exist; expected {expected}")
    files = image_files(folder)
    if not files:
        raise PixtransError(f"no images in '{folder}': expected {expected} ({_EXT_LIST})")
    return files


def _first(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def find_layout(root: Path, split: str, layout: str) -> tuple[str, Path, Path | None]:
    """Resolve `layout` to ("aligned", split_dir, None) or ("folders", dir_a, dir_b)."""
    pairs = [(root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)]
    expect_aligned = f"'{root / split}/' holding A|B images side by side"
    expect_folders = f"'{pairs[0][0]}' + '{pairs[0][1]}' or '{pairs[1][0]}' + '{pairs[1][1]}'"
    if layout in ("auto", "folders"):
        for a, b in pairs:
            if a.is_dir() and b.is_dir():
                return "folders", a, b
        for a, b in pairs:
            if a.is_dir() != b.is_dir():
                have, miss = (a, b) if a.is_dir() else (b, a)
                raise PixtransError(
                    f"'{have}' exists but '{miss}' is missing; paired folders need both A and B"
                )
        if layout == "folders":
            raise PixtransError(
                f"no A/B folders for split '{split}' (data.layout=folders): expected {expect_folders}"
            )
    if (root / split).is_dir():
        return "aligned", root / split, None
    raise PixtransError(
        f"dataset folder '{root / split}' not found (split '{split}'): expected {expect_aligned}"
        + (f", or {expect_folders}" if layout == "auto" else "")
        + "; check data.root and data.train_split / data.val_split"
    )


def match_by_stem(dir_a: Path, dir_b: Path) -> list[tuple[str, str]]:
    """Pair A/x.* with B/x.*; a file without a partner is an error naming the first few."""
    what = "images named like their partner in the other folder"
    stems = []
    for folder in (dir_a, dir_b):
        by_stem: dict[str, Path] = {}
        for p in list_images(folder, what):
            if p.stem in by_stem:
                raise PixtransError(
                    f"'{by_stem[p.stem]}' and '{p.name}' share the name '{p.stem}'; pairs match by name "
                    "without extension, so keep one file per name"
                )
            by_stem[p.stem] = p
        stems.append(by_stem)
    only_a = sorted(stems[0].keys() - stems[1].keys())
    only_b = sorted(stems[1].keys() - stems[0].keys())
    if only_a or only_b:
        parts = []
        if only_a:
            names = [stems[0][s].name for s in only_a]
            parts.append(f"{len(only_a)} file(s) in '{dir_a}' have no partner in B (first: {_first(names)})")
        if only_b:
            names = [stems[1][s].name for s in only_b]
            parts.append(f"{len(only_b)} file(s) in '{dir_b}' have no partner in A (first: {_first(names)})")
        raise PixtransError(
            "A/B folders do not match: " + "; ".join(parts) + "; pairs match by file name without extension"
        )
    return [(str(stems[0][s]), str(stems[1][s])) for s in sorted(stems[0])]


def _nbytes(payload) -> int:
    return sum(t.numel() * t.element_size() for t in payload)


def decode_all(
    n: int,
    check_one: Callable[[int], tuple[str, Any]],
    *,
    cache: bool,
    cache_mode: str,
    cache_max_bytes: int,
    num_threads: int,
) -> tuple[list[tuple[int, BadFile]], dict[int, Any] | None, int]:
    """Start-up check shared by the datasets: run `check_one(i)` for i in range(n) in threads.

    check_one returns ("ok", decoded tensors or None) or ("bad", BadFile) and raises
    PixtransError for problems that are never skipped (layout, sizes). Results are taken in index
    order, so the first error reported is the first in sorted order. Returns (bad items,
    cache {i: tensors} or None when disabled or over the `auto` budget, cached bytes).
    """
    bad: list[tuple[int, BadFile]] = []
    keep: dict[int, Any] | None = {} if cache else None
    total = 0
    pool = ThreadPoolExecutor(max_workers=max(1, min(num_threads, n)))
    try:
        for i, (status, payload) in enumerate(pool.map(check_one, range(n))):
            if status == "bad":
                bad.append((i, payload))
            elif payload is not None and keep is not None:
                nbytes = _nbytes(payload)
                if cache_mode == "auto" and total + nbytes > cache_max_bytes:
                    # too big for memory: decode from disk every time instead
                    keep, total = None, 0
                    continue
                keep[i] = payload
                total += nbytes
    finally:
        # a layout error stops at the first bad item in sorted order without decoding the rest
        pool.shutdown(wait=True, cancel_futures=True)
    return bad, keep, total


def drop_unreadable(
    items: list,
    bad: list[tuple[int, BadFile]],
    keep: dict[int, Any] | None,
    *,
    policy: str,
    folder: str,
    what: str,
) -> tuple[list, dict[int, Any] | None, list[str]]:
    """Apply data.bad_files to the unreadable `bad` items of `items` (what: "pairs", "images").

    "fail" raises one line naming the first bad file; "skip" warns once and returns the kept
    items, the cache re-indexed to them, and the dropped paths.
    """
    if not bad:
        return items, keep, []
    n = len(items)
    if policy == "fail":
        raise PixtransError(
            f"{bad[0][1]} ({len(bad)} of {n} {what} in '{folder}' have unreadable files); "
            "fix or remove them, or set data.bad_files=skip"
        )
    bad_idx = {i for i, _ in bad}
    dropped = [e.path for _, e in bad]
    names = [os.path.basename(p) for p in dropped]
    log.warning(
        f"skipping {len(bad)} unreadable file(s) of {n} in '{folder}' "
        f"(data.bad_files=skip): {_first(names, 5)}"
    )
    kept_old = [i for i in range(n) if i not in bad_idx]
    new_index = {old_i: new_i for new_i, old_i in enumerate(kept_old)}
    if keep is not None:
        keep = {new_index[i]: v for i, v in keep.items()}
    kept = [items[i] for i in kept_old]
    if not kept:
        raise PixtransError(f"every image in '{folder}' is unreadable; first: {bad[0][1]}")
    return kept, keep, dropped


@DATASETS.register("paired")
class PairedDataset(CachedDataset):
    """Aligned image pairs -> {"real_a", "real_b", "path", "index"} with real_a the network input.

    Items: `ds[i]` deterministic (centre crop, no flip); `ds[(i, seed)]` random crop/flip drawn
    from a generator seeded with `seed` (the same params for A and B). real_a is
    [input_nc,H,W], real_b [output_nc,H,W], both float32 in [-1,1]. "path" is the file real_a came
    from (the A|B file for the aligned layout).
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike,  # dataset folder holding the splits
        split: str = "train",  # sub-folder name: train | val | test | ...
        layout: str = "auto",  # auto | aligned (A|B in one file) | folders (A/ and B/)
        direction: str = "AtoB",  # BtoA swaps the sides so real_a is always the network input
        input_nc: int = 3,  # channels of real_a (network input)
        output_nc: int = 3,  # channels of real_b (network target)
        preprocess: str = "resize_and_crop",  # see pixtrans.data.transforms
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,  # random horizontal flip (only for (index, seed) keys)
        cache: str = "auto",  # auto | on | off: keep decoded uint8/uint16 images in memory
        cache_max_gb: float = 4.0,  # "auto" caches only while the decoded set fits under this
        bad_files: str = "fail",  # fail | skip: policy for files that cannot be decoded
        max_images: int = 0,  # 0 = all; else the first N pairs in sorted order
        resample: str = "bicubic",  # resize filter: bicubic | bilinear | nearest (label maps)
        num_threads: int = 0,  # start-up validation threads; 0 = min(8, cpu count)
    ):
        _choice("data.layout", layout, ("auto", "aligned", "folders"))
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
            resample=resample,
        )
        self.split, self.direction = split, direction
        self.input_nc, self.output_nc = int(input_nc), int(output_nc)
        self.preprocess, self.load_size, self.crop_size, self.flip = preprocess, load_size, crop_size, flip
        self.bad_files, self.resample = bad_files, resample
        self.skipped = 0  # decode failures skipped after start-up, in this process

        self.layout, dir_a, dir_b = find_layout(self.root, split, layout)
        if self.layout == "aligned":
            files = list_images(dir_a, "A|B images (A left half, B right half) or A/ and B/ folders")
            self.samples: list[tuple[str, str | None]] = [(str(p), None) for p in files]
        else:
            self.samples = list(match_by_stem(dir_a, dir_b))
        self.folder = str(dir_a if dir_b is None else dir_a.parent)
        if max_images and max_images > 0:
            self.samples = self.samples[:max_images]

        # cache: index -> (real_a, real_b) as uint8/uint16 [C,H,W]; None = disabled
        self.cache_mode, self.cache_max_bytes = cache, int(cache_max_gb * 2**30)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache != "off" else None
        self.cache_bytes = 0
        self.dropped: list[str] = []  # files dropped at start-up (bad_files=skip)
        self._validate(num_threads or min(8, os.cpu_count() or 1))

    # ------------------------------------------------------------------------------------------
    # Decoding

    def _input_path(self, i: int) -> str:
        pa, pb = self.samples[i]
        return pb if (pb is not None and self.direction == "BtoA") else pa

    def _read(self, path: str) -> np.ndarray:
        try:
            return load_array(path)
        except PixtransError as e:
            raise BadFile(str(e), path) from None

    def _decode(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair i as (real_a, real_b) integer tensors [C,H,W], channels already converted."""
        pa, pb = self.samples[i]
        if pb is None:
            ab = self._read(pa)
            h, w = ab.shape[:2]
            if w % 2:
                raise PixtransError(
                    f"aligned image '{pa}' is {w}x{h}: A|B files need an even width (A left half, B right "
                    "half); fix the file or use data.layout=folders with separate A/ and B/ images"
                )
            img_a, img_b = ab[:, : w // 2], ab[:, w // 2 :]
        else:
            img_a, img_b = self._read(pa), self._read(pb)
            if img_a.shape[:2] != img_b.shape[:2]:
                (ha, wa), (hb, wb) = img_a.shape[:2], img_b.shape[:2]
                raise PixtransError(
                    f"pair sizes differ: '{pa}' is {wa}x{ha} but '{pb}' is {wb}x{hb}; "
                    "A and B images of a pair must have the same size"
                )
        path_a, path_b = pa, pb or pa
        if self.direction == "BtoA":
            img_a, img_b, path_a, path_b = img_b, img_a, path_b, path_a
        real_a = to_tensor(convert_channels(img_a, self.input_nc, path_a))
        real_b = to_tensor(convert_channels(img_b, self.output_nc, path_b))
        return real_a, real_b

    def _validate_one(self, i: int):
        # runs in a thread: full decode (truncated data fails only when decoded), then size checks
        try:
            a, b = self._decode(i)
        except BadFile as e:
            return "bad", e
        h, w = a.shape[-2:]
        check_size(self.preprocess, (w, h), self.load_size, self.crop_size, self._input_path(i))
        return "ok", (a, b) if self._cache is not None else None

    def _validate(self, num_threads: int) -> None:
        """Decode every pair once so bad data stops the run now, not hours in; fill the cache."""
        bad, keep, self.cache_bytes = decode_all(
            len(self.samples),
            self._validate_one,
            cache=self._cache is not None,
            cache_mode=self.cache_mode,
            cache_max_bytes=self.cache_max_bytes,
            num_threads=num_threads,
        )
        self.samples, keep, self.dropped = drop_unreadable(
            self.samples, bad, keep, policy=self.bad_files, folder=self.folder, what="pairs"
        )
        self._cache = keep

    def _input_files(self):
        for i, (pa, pb) in enumerate(self.samples):
            yield (pa, True) if pb is None else (self._input_path(i), False)

    # ------------------------------------------------------------------------------------------
    # Item access

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key) -> dict:
        index, generator = parse_key(key, len(self), "pairs")
        i, (real_a, real_b) = self._load_readable(index, f"'{self.folder}'")

        h, w = real_a.shape[-2:]
        params = sample_params(
            self.preprocess,
            (w, h),
            self.load_size,
            self.crop_size,
            self.flip,
            generator=generator,
            path=self._input_path(i),
        )
        out = []
        for t in (real_a, real_b):
            # 8-bit data is resized as uint8 (fast, PIL-like); 16-bit and float data as float
            t = t if t.dtype == torch.uint8 else to_float(t)
            t = apply_params(
                t, params, self.preprocess, self.load_size, self.crop_size, resample=self.resample
            )
            out.append(to_float(t) * 2.0 - 1.0)  # [0,1] -> [-1,1]; out of place: t may share the cache
        return {"real_a": out[0], "real_b": out[1], "path": self._input_path(i), "index": i}

    def __repr__(self) -> str:
        return (
            f"PairedDataset({len(self)} pairs, {self.layout} '{self.folder}', {self.direction}, "
            f"{self.preprocess} {self.load_size}/{self.crop_size}, cache {self._cache_text()})"
        )
