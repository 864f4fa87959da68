"""What the file datasets share: the in-memory cache of decoded items, `(index, seed)` keys, and
the bad-file policy for files that break after start-up (see docs/data.md)."""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.data.io import image_size
from pixtrans.data.random import RandomPairs
from pixtrans.data.transforms import output_size

log = logging.getLogger("pixtrans.data")


class BadFile(PixtransError):
    """A file that cannot be decoded (as opposed to a layout or settings problem): the one kind
    of error that data.bad_files=skip is allowed to drop."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


def parse_key(key, n: int, what: str = "items") -> tuple[int, torch.Generator | None]:
    """`i` (deterministic: centre crop, no flip) or `(i, seed)` (one random draw) -> (i, generator)."""
    if isinstance(key, tuple):
        index, seed = key
        generator = torch.Generator().manual_seed(int(seed))
    else:
        index, generator = key, None
    index = operator.index(index)
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index {index} out of range for {n} {what}")
    return index, generator


class CachedDataset(torch.utils.data.Dataset):
    """Subclasses set `_cache` (a dict, or None when caching is off), `cache_bytes`, `bad_files`,
    `skipped`, and implement `_decode(i) -> tuple of tensors` and `__len__`.

    The class attributes and classmethods below are what the rest of pixtrans reads about a
    registered dataset (data/build.py, evaluation, benchmarks), instead of comparing its name.
    """

    #: each item pairs an input with its own target, so paired metrics (PSNR, SSIM) apply
    paired: bool = True
    #: the dataset draws its own files (into data.root, else the run folder) from the run's seed
    draws_itself: bool = False

    @classmethod
    def config_kwargs(cls, data) -> dict[str, Any]:
        """Constructor arguments beyond the shared data.* ones that this dataset reads from a
        DataConfig (the shared ones: data/build.py `dataset_kwargs`)."""
        return {}

    @classmethod
    def stand_in(cls, data, n: int) -> torch.utils.data.Dataset:
        """`n` random in-memory items shaped like this dataset's training items, so benchmarks
        time the compute, not a disk the user may not have."""
        return RandomPairs(n, data.input_nc, data.output_nc, data.crop_size)

    _cache: dict | None
    cache_bytes: int
    bad_files: str
    skipped: int

    def _decode(self, i: int) -> Any:
        raise NotImplementedError

    def _load(self, i: int) -> Any:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        payload = self._decode(i)
        if self._cache is not None:
            self._cache[i] = payload
            self.cache_bytes += sum(t.numel() * t.element_size() for t in payload)
        return payload

    def _load_readable(self, index: int, where: str) -> tuple[int, Any]:
        """Item `index`, or with bad_files=skip the next readable one: the same choice in every
        worker and on resume, since it depends only on the index."""
        n = len(self)
        for step in range(n):
            i = (index + step) % n
            try:
                return i, self._load(i)
            except BadFile as e:
                if self.bad_files == "fail":
                    raise PixtransError(f"{e}; fix or remove it, or set data.bad_files=skip") from None
                self.skipped += 1
                log.warning(f"skipped unreadable file during training ({self.skipped} so far): {e}")
        raise PixtransError(f"no readable item left in {where}")

    def __getstate__(self) -> dict:
        # pickled copies (spawned DataLoader workers) start with an empty cache and fill it
        # lazily; forked workers share the parent's filled cache copy-on-write instead
        state = self.__dict__.copy()
        if state["_cache"] is not None:
            state["_cache"], state["cache_bytes"] = {}, 0
        return state

    def _input_files(self) -> Iterator[tuple[str, bool]]:
        """(path, is an A|B file holding two images side by side) of every image a generator
        reads, for `network_sizes`."""
        raise NotImplementedError

    def network_sizes(self) -> dict[tuple[int, int], str]:
        """(w, h) of the tensors the generators will see -> one file that gives that size, read
        from the headers. With the cropping modes there is one size; with scale_width and none the
        sizes follow the images."""
        sizes: dict[tuple[int, int], str] = {}
        for path, side_by_side in self._input_files():
            w, h = image_size(path)
            size = output_size(
                self.preprocess, (w // 2 if side_by_side else w, h), self.load_size, self.crop_size
            )
            sizes.setdefault(size, path)
        return sizes

    def _cache_text(self) -> str:
        if self._cache is None:
            return "off"
        return f"{len(self._cache)} cached ({self.cache_bytes / 2**20:.0f} MiB)"
