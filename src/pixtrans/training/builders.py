"""Builders: the only code that turns the config into explicit constructor arguments."""

from __future__ import annotations

from pathlib import Path

from pixtrans import PixtransError
from pixtrans.config import Config
from pixtrans.registry import DATASETS


def build_dataset(cfg: Config, split: str, run_dir: Path | None = None):
    from pixtrans.data import dataset_kwargs  # importing pixtrans.data registers the datasets

    kwargs = dataset_kwargs(cfg.data, split=split)
    if cfg.data.dataset == "synthetic":
        # drawn once into the run folder (or data.root), from the run's seed
        kwargs.update(root=cfg.data.root or Path(run_dir or cfg.run_dir) / "data", seed=cfg.seed)
    elif not cfg.data.root:
        raise PixtransError(
            "config key 'data.root' is empty; point it at the dataset folder (data.root=PATH)"
        )
    return DATASETS.get(cfg.data.dataset)(**kwargs)
