"""Unpaired (unaligned) image sets for CycleGAN-style training.

On disk, as the official CycleGAN datasets: `root/<split>A/` and `root/<split>B/`, two folders of
images of any sizes and counts (see docs/data.md). Like the official `UnalignedDataset`, the
length is max(len A, len B) and item i shows input image i % len(input side) next to a random
image of the other side (or image i % len(other side) with serial_batches).

`dataset[i]` is the deterministic view (other side i % len, centre crops, no flip);
`dataset[(i, seed)]` draws the other side's image and each side's own crop and flip from
`torch.Generator().manual_seed(seed)`, so a resumed run sees the same combinations.
"""

from __future__ import annotations

import logging
import operator
import os
from pathlib import Path

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.data.cached import CachedDataset
from pixtrans.data.io import convert_channels, load_array, to_float, to_tensor
from pixtrans.data.paired import (
    BadFile,
    _choice,
    check_settings,
    decode_all,
    drop_unreadable,
    list_images,
)
from pixtrans.data.transforms import apply_params, check_size, sample_params
from pixtrans.registry import DATASETS

log = logging.getLogger("pixtrans.data")


def find_domains(root: Path, split: str) -> tuple[Path, Path]:
    """root/<split>A and root/<split>B, or a one-line error saying what is there instead."""
    dir_a, dir_b = root / f"{split}A", root / f"{split}B"
    if dir_a.is_dir() and dir_b.is_dir():
        return dir_a, dir_b
    if dir_a.is_dir() != dir_b.is_dir():
        have, miss = (dir_a, dir_b) if dir_a.is_dir() else (dir_b, dir_a)
        raise PixtransError(f"'{have}' exists but '{miss}' is missing; unpaired data needs both domains")
    paired = [p for p in (root / split, root / "A" / split) if p.is_dir()]
    hint = (
        f"; '{paired[0]}' looks like a paired dataset (use data.dataset=paired for pix2pix data)"
        if paired
        else "; check data.root and data.train_split / data.val_split"
    )
    raise PixtransError(f"no unpaired folders for split '{split}': expected '{dir_a}' and '{dir_b}'" + hint)


@DATASETS.register("unpaired")
class UnpairedDataset(CachedDataset):
    """Two image domains -> {"real_a", "real_b", "path_a", "path_b", "index"}.

    real_a is [input_nc,H,W] from the input domain (A for AtoB, B for BtoA), real_b
    [output_nc,H,W] from the other one, both float32 in [-1,1]; "index" is the item index. The
    two images are unrelated, so each gets its own crop and flip.
    """

    paired = False  # image i of A has no target of its own: distribution metrics only

    @classmethod
    def config_kwargs(cls, data) -> dict:
        return {"serial_batches": data.serial_batches}

    def __init__(
        self,
        *,
        root: str | os.PathLike,  # dataset folder holding <split>A/ and <split>B/
        split: str = "train",  # folder prefix: train | test | ...
        direction: str = "AtoB",  # BtoA swaps the domains: real_a comes from <split>B
        input_nc: int = 3,  # channels of real_a (input domain)
        output_nc: int = 3,  # channels of real_b (target domain)
        preprocess: str = "resize_and_crop",  # see pixtrans.data.transforms
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,  # random horizontal flip, per side (only for (index, seed) keys)
        cache: str = "auto",  # auto | on | off: keep decoded uint8/uint16 images in memory
        cache_max_gb: float = 4.0,  # "auto" caches only while the decoded set fits under this
        bad_files: str = "fail",  # fail | skip: policy for files that cannot be decoded
        max_images: int = 0,  # 0 = all; else the first N images of each domain in sorted order
        serial_batches: bool = False,  # pair input i with other-side i % len instead of at random
        layout: str = "auto",  # accepted for a uniform builder call; unpaired has one layout
        resample: str = "bicubic",  # resize filter: bicubic | bilinear | nearest
        num_threads: int = 0,  # start-up validation threads; 0 = min(8, cpu count)
    ):
        _choice("data.layout", layout, ("auto", "folders"))
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
        self.channels = (int(input_nc), int(output_nc))  # per side: input, target
        self.preprocess, self.load_size, self.crop_size, self.flip = preprocess, load_size, crop_size, flip
        self.bad_files, self.resample, self.serial_batches = bad_files, resample, bool(serial_batches)
        self.skipped = 0  # decode failures skipped after start-up, in this process

        dir_a, dir_b = find_domains(self.root, split)
        # side 0 feeds the network (real_a), side 1 is the target domain (real_b)
        self.folders = (str(dir_a), str(dir_b)) if direction == "AtoB" else (str(dir_b), str(dir_a))
        expected = f"images of one domain (unpaired data: '{dir_a.name}/' and '{dir_b.name}/')"
        self.files: list[list[str]] = [[str(p) for p in list_images(Path(f), expected)] for f in self.folders]
        if max_images and max_images > 0:
            self.files = [f[:max_images] for f in self.files]

        # cache: (side, index) -> uint8/uint16 [C,H,W]; None = disabled
        self.cache_mode, self.cache_max_bytes = cache, int(cache_max_gb * 2**30)
        self._cache: dict[tuple[int, int], torch.Tensor] | None = {} if cache != "off" else None
        self.cache_bytes = 0
        self.dropped: list[str] = []  # files dropped at start-up (bad_files=skip)
        self._validate(num_threads or min(8, os.cpu_count() or 1))

    # ------------------------------------------------------------------------------------------
    # Decoding

    def _read(self, path: str) -> np.ndarray:
        try:
            return load_array(path)
        except PixtransError as e:
            raise BadFile(str(e), path) from None

    def _decode(self, side: int, i: int) -> torch.Tensor:
        """Image i of `side` as an integer tensor [C,H,W], channels already converted."""
        path = self.files[side][i]
        return to_tensor(convert_channels(self._read(path), self.channels[side], path))

    def _validate(self, num_threads: int) -> None:
        """Decode every image of both domains once (bad data stops the run now); fill the cache."""
        items = [(side, i) for side in (0, 1) for i in range(len(self.files[side]))]

        def check_one(j: int):
            side, i = items[j]
            try:
                img = self._decode(side, i)
            except BadFile as e:
                return "bad", e
            h, w = img.shape[-2:]
            check_size(self.preprocess, (w, h), self.load_size, self.crop_size, self.files[side][i])
            return "ok", (img,) if self._cache is not None else None

        bad, keep, self.cache_bytes = decode_all(
            len(items),
            check_one,
            cache=self._cache is not None,
            cache_mode=self.cache_mode,
            cache_max_bytes=self.cache_max_bytes,
            num_threads=num_threads,
        )
        cache: dict[tuple[int, int], torch.Tensor] = {}
        offset = 0
        for side in (0, 1):
            n = len(self.files[side])
            side_bad = [(j - offset, e) for j, e in bad if offset <= j < offset + n]
            side_keep = (
                None if keep is None else {j - offset: v for j, v in keep.items() if offset <= j < offset + n}
            )
            offset += n
            self.files[side], side_keep, dropped = drop_unreadable(
                self.files[side],
                side_bad,
                side_keep,
                policy=self.bad_files,
                folder=self.folders[side],
                what="images",
            )
            self.dropped += dropped
            if side_keep is not None:
                cache.update({(side, i): v[0] for i, v in side_keep.items()})
        self._cache = cache if keep is not None else None

    def _input_files(self):
        # both domains pass through a generator (G_ab reads A, G_ba reads B)
        for files in self.files:
            yield from ((p, False) for p in files)

    # ------------------------------------------------------------------------------------------
    # Item access

    def __len__(self) -> int:
        return max(len(self.files[0]), len(self.files[1]))

    @property
    def sizes(self) -> tuple[int, int]:
        """(images in the input domain, images in the target domain)."""
        return len(self.files[0]), len(self.files[1])

    def _load(self, side: int, index: int) -> tuple[torch.Tensor, int]:
        """Image `index` of `side`, or with bad_files=skip the next readable one after it (the
        same replacement in every process and on resume, since it depends only on the index)."""
        files = self.files[side]
        n = len(files)
        for step in range(n):
            i = (index + step) % n
            if self._cache is not None and (side, i) in self._cache:
                return self._cache[(side, i)], i
            try:
                img = self._decode(side, i)
            except BadFile as e:
                if self.bad_files == "fail":
                    raise PixtransError(f"{e}; fix or remove it, or set data.bad_files=skip") from None
                self.skipped += 1
                log.warning(f"skipped unreadable file during training ({self.skipped} so far): {e}")
                continue
            if self._cache is not None:
                self._cache[(side, i)] = img
                self.cache_bytes += img.numel() * img.element_size()
            return img, i
        raise PixtransError(f"no readable image left in '{self.folders[side]}'")

    def _transform(self, img: torch.Tensor, generator: torch.Generator | None, path: str) -> torch.Tensor:
        h, w = img.shape[-2:]
        params = sample_params(
            self.preprocess, (w, h), self.load_size, self.crop_size, self.flip, generator=generator, path=path
        )
        # 8-bit data is resized as uint8 (fast, PIL-like); 16-bit and float data as float
        t = img if img.dtype == torch.uint8 else to_float(img)
        t = apply_params(t, params, self.preprocess, self.load_size, self.crop_size, resample=self.resample)
        return to_float(t) * 2.0 - 1.0  # [0,1] -> [-1,1]; out of place: t may share the cache

    def __getitem__(self, key) -> dict:
        if isinstance(key, tuple):
            index, seed = key
            generator = torch.Generator().manual_seed(int(seed))
        else:
            index, generator = key, None
        n = len(self)
        index = operator.index(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        n_a, n_b = self.sizes
        # the other side's image is the first draw, so it does not depend on the images' sizes
        if self.serial_batches or generator is None:
            index_b = index % n_b
        else:
            index_b = int(torch.randint(0, n_b, (), generator=generator))
        img_a, ia = self._load(0, index % n_a)
        img_b, ib = self._load(1, index_b)
        path_a, path_b = self.files[0][ia], self.files[1][ib]
        # independent crop and flip per side, A's drawn first
        real_a = self._transform(img_a, generator, path_a)
        real_b = self._transform(img_b, generator, path_b)
        return {"real_a": real_a, "real_b": real_b, "path_a": path_a, "path_b": path_b, "index": index}

    def __repr__(self) -> str:
        n_a, n_b = self.sizes
        return (
            f"UnpairedDataset({n_a} + {n_b} images, '{self.folders[0]}' -> '{self.folders[1]}', "
            f"{self.direction}, {self.preprocess} {self.load_size}/{self.crop_size}, "
            f"{'serial' if self.serial_batches else 'random'} pairing, cache {self._cache_text()})"
        )
