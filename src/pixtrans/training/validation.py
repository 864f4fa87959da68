"""`eval.every`: score the generator on a held-out split while training, log the numbers with the
losses (as `val/<metric>` lines in stats.jsonl, drawn on the report's loss plot) and keep the
best model so far as an export in RUN/best/.

The split's items are the dataset's deterministic ones (centre crop, no flip); the generator
runs as in the sample grids (`Method.visuals`: pix2pix in its paper mode, the others in eval
mode). Images are written to RUN/eval_during/{real,fake} and scored by `evaluate_folders`, so
every metric of `pixtrans evaluate` (FID/KID included, real-set features cached) works here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.artifacts.runs import RunFolder
from pixtrans.data.build import batches_of_one_size, build_dataset, check_sizes
from pixtrans.data.io import write_image
from pixtrans.evaluation import evaluate_folders, parse_metric_list, select_metrics, write_if_changed
from pixtrans.registry import DATASETS, METRICS


class TrainingEvaluator:
    def __init__(self, trainer, run_dir: Path):
        cfg = trainer.cfg
        self.trainer, self.run_dir, self.cfg = trainer, run_dir, cfg.eval
        split = cfg.eval.split or cfg.data.val_split
        if not split:
            raise PixtransError(
                "config key 'eval.split' is empty and so is data.val_split; name a held-out split"
            )
        self.metrics = parse_metric_list(cfg.eval.metrics)
        paired = DATASETS.get(cfg.data.dataset).paired
        self.kinds = ("paired", "distribution") if paired else ("distribution",)
        select_metrics(self.metrics, {}, self.kinds)  # a metric that cannot run here fails at start-up
        if cfg.eval.best:
            if cfg.eval.best not in (self.metrics or []):
                raise PixtransError(
                    f"config key 'eval.best' is '{cfg.eval.best}', which is not in eval.metrics "
                    f"({cfg.eval.metrics}); add it there"
                )
            self.higher_is_better = METRICS.get(cfg.eval.best).higher_is_better
        dataset = build_dataset(cfg, split, run_dir=run_dir)
        check_sizes(cfg, dataset, trainer.size_multiple, batch_size=1, split=split)
        n = len(dataset) if cfg.eval.max_images <= 0 else min(len(dataset), cfg.eval.max_images)
        self.items = [{k: v for k, v in dataset[i].items() if isinstance(v, torch.Tensor)} for i in range(n)]
        self.folder = RunFolder(run_dir).eval_during

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        method = self.trainer.method
        real_dir, fake_dir = self.folder / "real", self.folder / "fake"
        i = 0
        for batch in batches_of_one_size(self.items, 8):
            batch = self.trainer.to_device(batch)
            cols = method.visuals(batch)
            fake, real = method.scored_pair(cols, batch)
            for y, x in zip(fake, real, strict=True):
                write_image(y.float().cpu(), fake_dir / f"{i:05d}.png")
                write_if_changed(x.float().cpu(), real_dir / f"{i:05d}.png")
                i += 1
        result = evaluate_folders(real_dir, fake_dir, self.metrics, progress=False, kinds=self.kinds)
        return {k: float(v) for k, v in result["metrics"].items() if v is not None}

    def improved(self, value: float, best: dict[str, Any] | None) -> bool:
        if not self.cfg.best or not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best["value"] if self.higher_is_better else value < best["value"]
