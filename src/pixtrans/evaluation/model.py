"""Scoring a trained model (run, export or checkpoint) on a split of its own dataset.

Paired data (the dataset class declares `paired`): the split is found as in training
  (data.root, data.layout, data.direction of the model's config; `data_root` overrides the
  root), each input is translated at its stored size (eval mode unless mode="paper"), the fakes
  are written to OUT/fake/<name>.png and the targets to OUT/real/<name>.png (so the two folders
  can be re-scored with evaluate_folders), then scored. OUT defaults to <run>/eval/<split>.
Unpaired data (CycleGAN): <split>A is translated with G_ab (direction "ba": <split>B with G_ba)
  into OUT/fake and scored against the images of the other domain with distribution metrics
  (OUT defaults to <run>/eval/<split>, or <run>/eval/<split>-ba for direction "ba").

Only models whose method declares an image translator (image in, image out) are scored here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixtrans import PixtransError
from pixtrans.artifacts.exports import CONFIG_NAME, refresh_card
from pixtrans.artifacts.runs import RunFolder
from pixtrans.config import from_dict
from pixtrans.data.build import build_dataset
from pixtrans.data.unpaired import find_domains
from pixtrans.evaluation.fcn import fcn_rows
from pixtrans.evaluation.folders import evaluate_folders, parse_metric_list, select_metrics
from pixtrans.evaluation.output import write_json
from pixtrans.evaluation.translate import prepare_out, remove_stale, run_folder, translate_paired
from pixtrans.inference import Translator, open_model
from pixtrans.registry import DATASETS, TRANSLATORS

GENERATORS = {"ab": "G_ab", "ba": "G_ba"}  # --direction -> the CycleGAN generator it runs


def load_translator(path: Path, direction: str, device: str, backend: str = "torch") -> Translator:
    """The image Translator evaluate_model runs: the direction's own generator where the model
    has one (CycleGAN G_ab / G_ba), else (direction "ab") the model's one generator; `backend` as
    Translator.from_pretrained's (an export's ONNX models with "onnxruntime[-int8]")."""
    name = GENERATORS.get(direction)
    if name is None:
        raise PixtransError(f"--direction must be ab or ba, got '{direction}'")
    source = open_model(path)
    if name not in source.names and direction == "ba":
        raise PixtransError(
            f"--direction ba needs a model with a reverse generator (CycleGAN G_ba); '{path}' has none"
        )
    if not issubclass(TRANSLATORS.get(source.method.translator), Translator):
        raise PixtransError(
            "pixtrans evaluate MODEL handles pix2pix and CycleGAN models; for pix2pixHD translate the "
            "label maps with `pixtrans translate` and score the folders with `evaluate --real DIR --fake DIR`"
        )
    if name in source.names:
        # what Translator.from_pretrained(path, generator=name) builds, without reading the model twice
        return Translator.from_source(source, device=device, generator=name, backend=backend)
    return Translator.from_pretrained(path, device=device, backend=backend)


def evaluate_model(
    path: str | os.PathLike,
    split: str = "test",
    *,
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    metrics: str | Sequence[str] | None = None,
    mode: str = "eval",
    seed: int = 0,
    direction: str = "ab",
    device: str = "cpu",
    batch_size: int = 8,
    inception: str | os.PathLike | None = None,
    lpips_alexnet: str | os.PathLike | None = None,
    progress: bool = True,
    fcn_classes: int = 0,
    fcn_steps: int = 1000,
    backend: str = "torch",
) -> dict[str, Any]:
    """Translate `split` of the model's dataset and score it (see the module docstring).

    backend "onnxruntime" / "onnxruntime-int8" translates with an export's ONNX models (eval mode
    only), so an int8 model is scored by the same protocol as its torch original.

    Metrics left unspecified mean every metric whose weights are available here (paired ones only
    for paired data); one asked for explicitly that cannot run is an error, raised before
    anything is translated.

    fcn_classes > 0 adds the pix2pix paper's FCN-score (labels -> photo models; evaluation/fcn.py).

    Returns evaluate_folders' dict plus "model", "method", "generator", "step", "split", "mode",
    "seed", "images", "data", "out" and "seconds" {"translate", "metrics", "total"}; also writes
    it to OUT/metrics.json.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if mode not in ("eval", "paper"):
        raise PixtransError(f"--mode must be eval or paper, got '{mode}'")
    if mode == "paper" and backend != "torch":
        raise PixtransError(f"--backend {backend} runs eval mode only; add --mode eval")
    translator = load_translator(path, direction, device, backend)
    info = translator.info
    config = info.get("config") or {}
    method = info.get("method") or config.get("method")
    cfg = from_dict(config)
    if data_root is not None:
        cfg.data.root = str(data_root)
    unpaired = not DATASETS.get(cfg.data.dataset).paired
    kinds: tuple[str, ...] = ("distribution",) if unpaired else ("paired", "distribution")
    options = {"inception": inception, "lpips_alexnet": lpips_alexnet}
    select_metrics(parse_metric_list(metrics), options, kinds)  # a metric that cannot run fails now
    run_dir = run_folder(path)
    if out is None:
        out = run_dir / "eval" / (split if direction == "ab" else f"{split}-{direction}")
    out = Path(out)
    fake_dir, real_dir = prepare_out(out, path, with_real=not unpaired)
    data_info: dict[str, Any] = {"dataset": cfg.data.dataset, "split": split}

    if unpaired:
        root = Path(cfg.data.root)
        if not str(cfg.data.root) or not root.is_dir():
            raise PixtransError(
                f"data.root '{cfg.data.root}' of the model's config does not exist; pass --data-root PATH"
            )
        dir_a, dir_b = find_domains(root, split)
        src, real = (dir_a, dir_b) if translator.direction == "AtoB" else (dir_b, dir_a)
        data_info.update(root=str(root), input=str(src), target=str(real))
        remove_stale(fake_dir, set())
        written = translator.translate_paths(
            src, fake_dir, batch_size=batch_size, mode=mode, seed=seed, progress=progress
        )
        n = len(written)
    else:
        # the split's files exactly as training finds them; no resize, crop or flip
        cfg.data.preprocess, cfg.data.cache, cfg.data.flip, cfg.data.max_images = "none", "off", False, 0
        ds = build_dataset(cfg, split, run_dir=run_dir)
        data_info.update(root=str(ds.root), layout=ds.layout, direction=ds.direction)
        n = translate_paired(
            translator, list(ds.samples), ds.direction, fake_dir, real_dir,
            mode=mode, seed=seed, batch_size=batch_size, progress=progress,
        )  # fmt: skip
        real = real_dir
    t_translate = time.perf_counter() - t0

    result = evaluate_folders(
        real,
        fake_dir,
        metrics,
        inception=inception,
        lpips_alexnet=lpips_alexnet,
        device=device,
        batch_size=batch_size,
        progress=progress,
        kinds=kinds,
    )
    if fcn_classes > 0:
        if unpaired:
            raise PixtransError("--fcn needs a paired labels -> photo model (pix2pix), not CycleGAN")
        result["fcn"] = fcn_rows(cfg, run_dir, ds, fake_dir, real_dir, fcn_classes, fcn_steps, progress)
    total = time.perf_counter() - t0
    head = {
        "model": str(path),
        "method": method,
        "generator": translator.name,
        "step": info.get("step"),
        "split": split,
        "mode": mode,
        "precision": translator.precision,  # the nets' autocast (--precision), fp32 by default
        "backend": backend,
        "seed": seed if mode == "paper" else None,
        "images": n,
        "data": data_info,
        "out": str(out),
    }
    result = {**head, **result}
    result["seconds"] = {
        "translate": round(t_translate, 3),
        "metrics": round(total - t_translate, 3),
        "total": round(total, 3),
    }
    write_json(result, out / "metrics.json")
    # the model cards of the run's exports list these scores from now on
    run = RunFolder.of(path)
    for export in {run.export, run.best, path if (path / CONFIG_NAME).is_file() else run.export}:
        refresh_card(export)
    return result
