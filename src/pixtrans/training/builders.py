"""Builders: the only code that turns the config into explicit constructor arguments."""

from __future__ import annotations

from pathlib import Path

from pixtrans import PixtransError
from pixtrans.config import Config
from pixtrans.registry import DATASETS


def build_dataset(cfg: Config, split: str, run_dir: Path | None = None):
    import pixtrans.data  # noqa: F401  (registers the datasets)

    d = cfg.data
    common = dict(
        split=split,
        layout=d.layout,
        direction=d.direction,
        input_nc=d.input_nc,
        output_nc=d.output_nc,
        preprocess=d.preprocess,
        load_size=d.load_size,
        crop_size=d.crop_size,
        flip=d.flip,
        cache=d.cache,
        cache_max_gb=d.cache_max_gb,
        bad_files=d.bad_files,
        max_images=d.max_images,
    )
    if d.dataset == "synthetic":
        root = Path(d.root) if d.root else Path(run_dir or cfg.run_dir) / "data"
        return DATASETS.get("synthetic")(
            root=root, size=d.synthetic_size, resolution=d.synthetic_resolution, seed=cfg.seed, **common
        )
    if not d.root:
        raise PixtransError(
            "config key 'data.root' is empty; point it at the dataset folder (data.root=PATH)"
        )
    return DATASETS.get(d.dataset)(root=d.root, **common)
