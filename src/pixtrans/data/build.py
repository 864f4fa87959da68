"""The one place that turns the `data.*` settings into a dataset: training, evaluation, feature
clustering and benchmarks all build their datasets here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.data.transforms import crops
from pixtrans.registry import DATASETS


def dataset_kwargs(data, *, split: str) -> dict:
    """Keyword arguments for DATASETS.get(data.dataset)(**kwargs) from a DataConfig: the settings
    every dataset takes, plus those its class declares (`config_kwargs`)."""
    kwargs = dict(
        root=data.root,
        split=split,
        layout=data.layout,
        direction=data.direction,
        input_nc=data.input_nc,
        output_nc=data.output_nc,
        preprocess=data.preprocess,
        load_size=data.load_size,
        crop_size=data.crop_size,
        flip=data.flip,
        cache=data.cache,
        cache_max_gb=data.cache_max_gb,
        bad_files=data.bad_files,
        max_images=data.max_images,
    )
    kwargs.update(DATASETS.get(data.dataset).config_kwargs(data))
    return kwargs


def build_dataset(cfg, split: str, run_dir: str | Path | None = None, **overrides):
    """Split `split` of the dataset `cfg.data` describes; `overrides` replace constructor
    arguments (e.g. preprocess="none", flip=False for a deterministic full-size view)."""
    cls = DATASETS.get(cfg.data.dataset)
    kwargs = dataset_kwargs(cfg.data, split=split)
    if cls.draws_itself:
        # drawn once into data.root (or the run folder) from the run's seed
        kwargs.update(root=cfg.data.root or Path(run_dir or cfg.run_dir) / "data", seed=cfg.seed)
    elif not cfg.data.root:
        raise PixtransError(
            "config key 'data.root' is empty; point it at the dataset folder (data.root=PATH)"
        )
    kwargs.update(overrides)
    return cls(**kwargs)


def check_sizes(cfg, dataset, multiple: int, batch_size: int, split: str | None = None) -> None:
    """Fail before anything is written when a split's images cannot pass through the generators:
    crops or image sizes that are not a multiple of the generators' stride, or images of several
    sizes that would have to share a batch."""
    d = cfg.data
    if crops(d.preprocess):
        if d.crop_size % multiple:
            raise PixtransError(
                f"config key 'data.crop_size' ({d.crop_size}) must be a multiple of {multiple} for "
                f"the generator ({cfg.model.G}); change data.crop_size or the generator depth"
            )
        return
    sizes_of = getattr(dataset, "network_sizes", None)
    if sizes_of is None:  # an in-memory dataset (benchmarks, tests): its tensors are the sizes
        return
    sizes = sizes_of()
    bad = [(wh, path) for wh, path in sizes.items() if wh[0] % multiple or wh[1] % multiple]
    where = f" (split '{split}')" if split else ""
    if bad:
        (w, h), path = bad[0]
        raise PixtransError(
            f"config key 'data.preprocess' is '{d.preprocess}', which makes '{path}'{where} {w}x{h}, but "
            f"the generator needs sides that are multiples of {multiple} ({len(bad)} of {len(sizes)} "
            f"image sizes do not fit); use data.preprocess=resize_and_crop or crop with a data.crop_size "
            f"that is a multiple of {multiple}, or resize the images"
        )
    if batch_size > 1 and len(sizes) > 1:
        (a, pa), (b, pb) = list(sizes.items())[:2]
        raise PixtransError(
            f"config key 'data.preprocess' is '{d.preprocess}', which keeps the images' own sizes, and "
            f"they differ ('{pa}' gives {a[0]}x{a[1]}, '{pb}' {b[0]}x{b[1]}; {len(sizes)} sizes), so they "
            f"cannot share a batch of train.batch_size={batch_size}; use train.batch_size=1 or a "
            "cropping mode (data.preprocess=resize_and_crop)"
        )


def batches_of_one_size(items: list[dict[str, Any]], batch_size: int) -> Iterator[dict[str, Any]]:
    """Collate consecutive dataset items into batches of at most `batch_size`, starting a new
    batch where the size changes (data.preprocess=none/scale_width keep each image's size)."""
    group: list[dict[str, torch.Tensor]] = []
    for item in items:
        tensors = {k: v for k, v in item.items() if isinstance(v, torch.Tensor)}
        if group and (
            len(group) == batch_size or any(tensors[k].shape != v.shape for k, v in group[0].items())
        ):
            yield torch.utils.data.default_collate(group)
            group = []
        group.append(tensors)
    if group:
        yield torch.utils.data.default_collate(group)
