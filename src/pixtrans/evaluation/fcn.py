"""The pix2pix paper's FCN-score protocol on a labels -> photo model's split (Isola et al. 2017,
Table 1): a segmenter trained on the training split's real photos labels the generated and the
real test photos, and both are scored against the input label maps.

The segmenter, its cache and the scores themselves live in pixtrans/metrics/fcn.py; this module
only feeds it the dataset's samples and the folders evaluate_model wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixtrans.data.build import build_dataset
from pixtrans.evaluation.translate import split_pair
from pixtrans.metrics.fcn import fcn_score_folders, rgb8, segmenter_for


def fcn_rows(
    cfg,
    run_dir: Path,
    test_ds,
    fake_dir: Path,
    real_dir: Path,
    n_classes: int,
    steps: int,
    progress: bool,
) -> dict[str, Any]:
    """{"generated": scores, "real": scores, "n_classes", "segmenter", "segmenter_steps"}: the
    FCN-score rows of fake_dir and real_dir (one <name>.png per sample of `test_ds`)."""
    train_ds = build_dataset(cfg, cfg.data.train_split, run_dir=run_dir)
    train_pairs = []
    for pa, pb in train_ds.samples:
        label, photo, _, _ = split_pair(pa, pb, train_ds.direction)
        train_pairs.append((rgb8(label), rgb8(photo)))
    files = sorted({Path(p) for pair in train_ds.samples for p in pair if p})
    net, palette, key = segmenter_for(train_pairs, files, n_classes, steps=steps, progress=progress)
    labels = {}
    for pa, pb in test_ds.samples:
        label, _, _, _ = split_pair(pa, pb, test_ds.direction)
        labels[Path(pa).stem] = rgb8(label)
    rows = fcn_score_folders(net, palette, labels, {"generated": fake_dir, "real": real_dir})
    return {**rows, "n_classes": n_classes, "segmenter": key, "segmenter_steps": steps}
