"""The one place that turns the `data.*` settings into a dataset: training, evaluation, feature
clustering and benchmarks all build their datasets here."""

from __future__ import annotations

from pathlib import Path

from pixtrans import PixtransError
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
