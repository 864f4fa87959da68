"""`pixtrans evaluate`: score folders of images, or a trained model on a split of its dataset.

evaluate_folders(real, fake, metrics)   two folders (searched recursively; hidden files skipped).
    Paired metrics match files by their path relative to the folder without the extension
    (fake/x.png <-> real/x.jpg); distribution metrics use every image of each folder.
evaluate_model(path, split)             a run, export or checkpoint:
    pix2pix-style paired data: the split is found as in training (data.root, data.layout,
      data.direction of the model's config; `data_root` overrides the root), each input is
      translated at its stored size (eval mode unless mode="paper"), the fakes are written to
      OUT/fake/<name>.png and the targets to OUT/real/<name>.png (so the two folders can be
      re-scored with evaluate_folders), then scored. OUT defaults to <run>/eval/<split>.
    CycleGAN: <split>A is translated with G_ab (direction "ba": <split>B with G_ba) into
      OUT/fake and scored against the images of the other domain with distribution metrics
      (OUT defaults to <run>/eval/<split>, or <run>/eval/<split>-ba for direction "ba").

Metrics left unspecified mean every metric whose weights are available here (paired ones only
where the names pair up); one asked for explicitly that cannot run is an error. See
docs/evaluation.md for the protocol of each metric.
"""

from __future__ import annotations

import filecmp
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pixtrans import PixtransError
from pixtrans.data.io import IMAGE_EXTENSIONS, convert_channels, image_files, is_image_file, load_array
from pixtrans.metrics import Metric, all_metrics, get_metric
from pixtrans.registry import DATASETS
from pixtrans.runtime import resolve_device

# display order when no order is asked for
ORDER = ("psnr", "ssim", "l1", "lpips", "fid", "kid")
MARKER = ".pixtrans-eval"  # in OUT: the folder is ours, stale images in it may be removed
_EXTS = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


# ----------------------------------------------------------------------------------------------
# Folders and metric selection


def list_images(folder: str | os.PathLike, what: str) -> list[Path]:
    """Image files under `folder` (recursive, sorted, hidden files and folders skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PixtransError(f"{what} '{folder}' does not exist or is not a folder")
    found = image_files(folder, recursive=True)
    if not found:
        raise PixtransError(f"no image files in {what} '{folder}' ({_EXTS})")
    return found


def parse_metric_list(text: str | Sequence[str] | None) -> list[str] | None:
    """ "psnr,ssim" or ["psnr", "ssim"] -> names; None / "" / "auto" -> None (every available)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip().lower() for s in items if s.strip()]
    if not names or names == ["auto"]:
        return None
    return list(dict.fromkeys(names))


def _ordered(metrics: Iterable[Metric]) -> list[Metric]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(metrics, key=lambda m: (rank.get(m.name, len(ORDER)), m.name))


def metric_table(options: Mapping[str, Any] | None = None) -> str:
    """`pixtrans evaluate --list`: one line per metric, with whether it can run here."""
    rows = [("metric", "kind", "better", "available", "description")]
    for m in _ordered(all_metrics()):
        why = m.unavailable(options)
        rows.append(
            (
                m.name,
                m.kind,
                "higher" if m.higher_is_better else "lower",
                "yes" if why is None else "no",
                m.description,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    for m in _ordered(all_metrics()):
        why = m.unavailable(options)
        if why is not None:
            lines.append(f"{m.name}: {why}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Pairing and reading


def _pair_key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def _keyed(files: list[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        key = _pair_key(f, folder)
        if key in out:
            raise PixtransError(
                f"'{out[key]}' and '{f.name}' share the name '{key}'; paired metrics match files by name "
                "without extension, so keep one file per name"
            )
        out[key] = f
    return out


def pair_files(
    real: Path, real_files: list[Path], fake: Path, fake_files: list[Path]
) -> list[tuple[str, Path, Path]]:
    """[(name, real file, fake file)] matched by name; a file without a partner is an error."""
    r, f = _keyed(real_files, real), _keyed(fake_files, fake)
    only_f, only_r = sorted(f.keys() - r.keys()), sorted(r.keys() - f.keys())
    if only_f or only_r:
        parts = []
        if only_f:
            parts.append(
                f"{len(only_f)} file(s) in '{fake}' have no partner in '{real}' (first: {f[only_f[0]].name})"
            )
        if only_r:
            parts.append(
                f"{len(only_r)} file(s) in '{real}' have no partner in '{fake}' (first: {r[only_r[0]].name})"
            )
        raise PixtransError(
            "paired metrics match real and fake files by name without extension: "
            + "; ".join(parts)
            + "; rename them, or ask only for distribution metrics (--metrics fid,kid)"
        )
    return [(k, r[k], f[k]) for k in sorted(r)]


def _unit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) / 65535.0
    return arr.astype(np.float64)


def read_pair(real_path: Path, fake_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both images as HxWxC float64 in [0,1] with a common channel count: equal counts are kept
    (alpha dropped), grey vs colour compares in RGB (grey replicated)."""
    a, b = load_array(real_path), load_array(fake_path)
    if a.shape[:2] != b.shape[:2]:
        raise PixtransError(
            f"'{fake_path}' is {b.shape[1]}x{b.shape[0]} but '{real_path}' is {a.shape[1]}x{a.shape[0]}; "
            "paired metrics compare images of the same size"
        )
    ca, cb = a.shape[2], b.shape[2]
    if ca == cb and ca not in (2, 4):
        c = ca
    elif max(ca, cb) <= 4:
        c = 1 if max(ca, cb) <= 2 else 3
    else:
        raise PixtransError(
            f"'{real_path}' has {ca} channels and '{fake_path}' {cb}; paired metrics need matching channels"
        )
    return _unit(convert_channels(a, c, real_path)), _unit(convert_channels(b, c, fake_path))


# ----------------------------------------------------------------------------------------------
# Scoring folders


def _select(
    names: list[str] | None, options: Mapping[str, Any], kinds: Sequence[str]
) -> tuple[list[Metric], dict[str, str], bool]:
    """(metrics to run, skipped name -> reason, explicit?)."""
    if names is not None:
        chosen = [get_metric(n) for n in names]
        for m in chosen:
            if m.kind not in kinds:
                raise PixtransError(
                    f"metric '{m.name}' is {m.kind} and cannot score this data; use "
                    + ", ".join(x.name for x in _ordered(all_metrics()) if x.kind in kinds)
                )
            m.check(options)
        return chosen, {}, True
    chosen, skipped = [], {}
    for m in _ordered(all_metrics()):
        if m.kind not in kinds:
            continue
        why = m.unavailable(options)
        if why is None:
            chosen.append(m)
        else:
            skipped[m.name] = why
    return chosen, skipped, False


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _score_pairs(
    pairs: list[tuple[str, Path, Path]], metrics: list[Metric], options: Mapping[str, Any], progress: bool
) -> dict[str, dict[str, float]]:
    from tqdm.auto import tqdm

    def one(item: tuple[str, Path, Path]) -> dict[str, float]:
        _, rp, fp = item
        real, fake = read_pair(rp, fp)
        scores = {}
        for m in metrics:
            try:
                scores[m.name] = float(m.compute(real, fake, options))
            except PixtransError as e:
                raise PixtransError(f"{m.name} of '{fp}' vs '{rp}': {e}") from None
        return scores

    out: dict[str, dict[str, float]] = {}
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(one, pairs)
        for (key, _, _), scores in zip(
            pairs,
            tqdm(results, total=len(pairs), desc="paired metrics", unit="pair", disable=not progress),
            strict=True,
        ):
            out[key] = scores
    return out


def evaluate_folders(
    real: str | os.PathLike,
    fake: str | os.PathLike,
    metrics: str | Sequence[str] | None = None,
    *,
    inception: str | os.PathLike | None = None,
    lpips_alexnet: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    progress: bool = True,
    use_cache: bool = True,
    kinds: Sequence[str] = ("paired", "distribution"),
) -> dict[str, Any]:
    """Score the images of `fake` against those of `real`; returns a JSON-ready dict:

    {"real", "fake", "n_real", "n_fake", "n_pairs", "metrics": {name: value},
     "details": {name: {kind, higher_is_better, n, ...}}, "skipped": {name: reason},
     "per_image": {name: {metric: value}} (paired), "inception": {...} (FID/KID), "seconds"}
    """
    t0 = time.perf_counter()
    real, fake = Path(real), Path(fake)
    real_files = list_images(real, "real folder")
    fake_files = list_images(fake, "fake folder")
    device = str(resolve_device(device))
    options = {"inception": inception, "lpips_alexnet": lpips_alexnet, "device": device}
    chosen, skipped, explicit = _select(parse_metric_list(metrics), options, kinds)

    paired = [m for m in chosen if m.kind == "paired"]
    pairs: list[tuple[str, Path, Path]] = []
    if paired:
        try:
            pairs = pair_files(real, real_files, fake, fake_files)
        except PixtransError as e:
            if explicit:
                raise
            for m in paired:
                skipped[m.name] = f"not scored: {e}"
            chosen = [m for m in chosen if m.kind != "paired"]
            paired = []
    if not chosen:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise PixtransError(f"no metric can score '{fake}' against '{real}' here ({reasons})")

    result: dict[str, Any] = {
        "real": str(real),
        "fake": str(fake),
        "n_real": len(real_files),
        "n_fake": len(fake_files),
        "n_pairs": len(pairs) if paired else None,
        "metrics": {},
        "details": {},
        "skipped": skipped,
    }
    values: dict[str, Any] = {}
    if paired:
        per_image = _score_pairs(pairs, paired, options, progress)
        for m in paired:
            vals = np.array([s[m.name] for s in per_image.values()], np.float64)
            values[m.name] = {"value": float(np.mean(vals)), "n": len(vals)}
        result["per_image"] = per_image

    dist = [m for m in chosen if m.kind == "distribution"]
    if dist:
        from pixtrans.metrics.distribution import FeatureSet, real_feature_set
        from pixtrans.metrics.inception import PROTOCOL, extract_features, load_inception

        net = load_inception(inception, device)
        real_set, cache = real_feature_set(
            real,
            real_files,
            net,
            protocol=PROTOCOL,
            batch_size=batch_size,
            progress=progress,
            use_cache=use_cache,
        )
        if fake.resolve() == real.resolve():
            fake_set = real_set
        else:
            feats = extract_features(
                fake_files, net, batch_size=batch_size, progress=progress, desc="inception (fake)"
            )
            fake_set = FeatureSet.from_features(feats, "fake folder")
        for m in dist:
            out = dict(m.compute(real_set, fake_set, options))
            out.update(n_real=real_set.n, n_fake=fake_set.n)
            values[m.name] = out
        result["inception"] = {
            "weights": net.source,
            "fingerprint": net.fingerprint,
            "protocol": PROTOCOL,
            "real_cache": cache,
        }

    order = [m.name for m in chosen] if explicit else [m.name for m in _ordered(chosen)]
    for name in order:
        m = get_metric(name)
        info = dict(values[name])
        result["metrics"][name] = info.pop("value")
        result["details"][name] = {"kind": m.kind, "higher_is_better": m.higher_is_better, **info}
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


# ----------------------------------------------------------------------------------------------
# Scoring a model


def _load_translator(path: Path, direction: str, device: str):
    from pixtrans.inference.translator import Translator

    name = {"ab": "G_ab", "ba": "G_ba"}.get(direction)
    if name is None:
        raise PixtransError(f"--direction must be ab or ba, got '{direction}'")
    try:
        return Translator.from_pretrained(path, device=device, generator=name)
    except PixtransError as e:
        if "has no generator" not in str(e):
            raise
        if direction == "ba":
            raise PixtransError(
                f"--direction ba needs a model with a reverse generator (CycleGAN G_ba); '{path}' has none"
            ) from None
    return Translator.from_pretrained(path, device=device)


def _run_folder(path: Path) -> Path:
    """Where <run>/eval goes: the run folder of a run, export or checkpoint path."""
    if path.is_file():
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if path.name == "export" and (path.parent / "checkpoints").is_dir():
        return path.parent
    return path


def _prepare_out(out: Path, model: Path, with_real: bool) -> tuple[Path, Path]:
    """OUT/fake and OUT/real, refusing a folder with images we did not write."""
    fake, real = out / "fake", out / "real"
    if not (out / MARKER).is_file():
        for d in (fake, real):
            if d.is_dir() and any(is_image_file(p) for p in d.rglob("*")):
                raise PixtransError(
                    f"'{d}' holds images that pixtrans evaluate did not write; choose an empty --out folder"
                )
    fake.mkdir(parents=True, exist_ok=True)
    if with_real:
        real.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"model": str(model)}) + "\n")
    return fake, real


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    for p in folder.rglob("*"):
        if p.is_file() and is_image_file(p) and p.resolve() not in keep:
            p.unlink()


def _write_if_changed(tensor, path: Path) -> Path:
    """write_image, but an identical existing file is left untouched (its mtime too), so the
    cached real-set statistics stay valid across evaluations."""
    from pixtrans.data.io import write_image

    tmp = path.with_name(f".tmp-{path.name}")
    written = write_image(tensor, tmp)
    final = path.with_suffix(written.suffix)
    if final.is_file() and filecmp.cmp(written, final, shallow=False):
        written.unlink()
    else:
        os.replace(written, final)
    return final


def _split_pair(pa: str, pb: str | None, direction: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(input array, target array, input path, target path) of one dataset sample."""
    if pb is None:
        ab = load_array(pa)
        w = ab.shape[1]
        if w % 2:
            raise PixtransError(f"aligned image '{pa}' has an odd width {w}; A|B files need an even width")
        a, b, path_a, path_b = ab[:, : w // 2], ab[:, w // 2 :], pa, pa
    else:
        a, b, path_a, path_b = load_array(pa), load_array(pb), pa, pb
    if direction == "BtoA":
        return b, a, path_b, path_a
    return a, b, path_a, path_b


def _translate_paired(
    translator, samples, direction, fake_dir: Path, real_dir: Path, *, mode, seed, batch_size, progress
) -> int:
    from tqdm.auto import tqdm

    from pixtrans.data.io import to_float, to_tensor, write_image

    names: dict[str, str] = {}
    for pa, _ in samples:
        stem = Path(pa).stem
        if stem in names:
            raise PixtransError(f"'{names[stem]}' and '{pa}' share the name '{stem}'; keep one file per name")
        names[stem] = pa
    keep: set[Path] = set()
    bar = tqdm(total=len(samples), desc=f"translate ({mode})", unit="img", disable=not progress)
    try:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start : start + batch_size]
            inputs, targets, stems = [], [], []
            for pa, pb in chunk:
                x, y, path_x, path_y = _split_pair(pa, pb, direction)
                inputs.append(
                    to_float(to_tensor(convert_channels(x, translator.input_nc, path_x))) * 2.0 - 1.0
                )
                targets.append(
                    to_float(to_tensor(convert_channels(y, translator.output_nc, path_y))) * 2.0 - 1.0
                )
                stems.append(Path(pa).stem)
            outs = translator(inputs, mode=mode, seed=seed, batch_size=batch_size)
            for stem, out, target in zip(stems, outs, targets, strict=True):
                keep.add(write_image(out, fake_dir / f"{stem}.png").resolve())
                keep.add(_write_if_changed(target, real_dir / f"{stem}.png").resolve())
            bar.update(len(chunk))
    finally:
        bar.close()
    _remove_stale(fake_dir, keep)
    _remove_stale(real_dir, keep)
    return len(samples)


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
) -> dict[str, Any]:
    """Translate `split` of the model's dataset and score it (see the module docstring).

    fcn_classes > 0 adds the pix2pix paper's FCN-score (labels -> photo models; metrics/fcn.py):
    a segmenter trained on the training split's real photos (cached per dataset) labels the
    generated and the real test photos, scored against the input label maps.

    Returns evaluate_folders' dict plus "model", "method", "generator", "step", "split", "mode",
    "data" and "seconds" {"translate", "metrics", "total"}; also writes it to OUT/metrics.json.
    """
    from pixtrans.config import from_dict
    from pixtrans.inference.translator import Translator

    t0 = time.perf_counter()
    path = Path(path)
    if mode not in ("eval", "paper"):
        raise PixtransError(f"--mode must be eval or paper, got '{mode}'")
    translator = _load_translator(path, direction, device)
    info = translator.info
    config = info.get("config") or {}
    method = info.get("method") or config.get("method")
    if method == "pix2pixhd" or not isinstance(translator, Translator):
        raise PixtransError(
            "pixtrans evaluate MODEL handles pix2pix and CycleGAN models; for pix2pixHD translate the "
            "label maps with `pixtrans translate` and score the folders with `evaluate --real DIR --fake DIR`"
        )
    cfg = from_dict(config)
    if data_root is not None:
        cfg.data.root = str(data_root)
    unpaired = not DATASETS.get(cfg.data.dataset).paired
    kinds: tuple[str, ...] = ("distribution",) if unpaired else ("paired", "distribution")
    options = {"inception": inception, "lpips_alexnet": lpips_alexnet}
    _select(parse_metric_list(metrics), options, kinds)  # a metric that cannot run fails before translating
    if out is None:
        out = _run_folder(path) / "eval" / (split if direction == "ab" else f"{split}-{direction}")
    out = Path(out)
    fake_dir, real_dir = _prepare_out(out, path, with_real=not unpaired)
    data_info: dict[str, Any] = {"dataset": cfg.data.dataset, "split": split}

    if unpaired:
        from pixtrans.data.unpaired import find_domains

        root = Path(cfg.data.root)
        if not str(cfg.data.root) or not root.is_dir():
            raise PixtransError(
                f"data.root '{cfg.data.root}' of the model's config does not exist; pass --data-root PATH"
            )
        dir_a, dir_b = find_domains(root, split)
        src, real = (dir_a, dir_b) if translator.direction == "AtoB" else (dir_b, dir_a)
        data_info.update(root=str(root), input=str(src), target=str(real))
        _remove_stale(fake_dir, set())
        written = translator.translate_paths(
            src, fake_dir, batch_size=batch_size, mode=mode, seed=seed, progress=progress
        )
        n = len(written)
    else:
        from pixtrans.data.build import build_dataset

        # the split's files exactly as training finds them; no resize, crop or flip
        cfg.data.preprocess, cfg.data.cache, cfg.data.flip, cfg.data.max_images = "none", "off", False, 0
        ds = build_dataset(cfg, split, run_dir=_run_folder(path))
        data_info.update(root=str(ds.root), layout=ds.layout, direction=ds.direction)
        n = _translate_paired(
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
        result["fcn"] = _fcn_rows(cfg, path, ds, fake_dir, real_dir, fcn_classes, fcn_steps, progress)
    total = time.perf_counter() - t0
    head = {
        "model": str(path),
        "method": method,
        "generator": translator.name,
        "step": info.get("step"),
        "split": split,
        "mode": mode,
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
    return result


def _fcn_rows(cfg, path: Path, test_ds, fake_dir: Path, real_dir: Path, n_classes: int, steps: int, progress):
    """FCN-score rows for the generated and the real test photos (the paper's Table 1 layout)."""
    from pixtrans.data.build import build_dataset
    from pixtrans.metrics.fcn import _rgb8, fcn_score_folders, segmenter_for

    train_ds = build_dataset(cfg, cfg.data.train_split, run_dir=_run_folder(path))
    train_pairs = []
    for pa, pb in train_ds.samples:
        label, photo, _, _ = _split_pair(pa, pb, train_ds.direction)
        train_pairs.append((_rgb8(label), _rgb8(photo)))
    files = sorted({Path(p) for pair in train_ds.samples for p in pair if p})
    net, palette, key = segmenter_for(train_pairs, files, n_classes, steps=steps, progress=progress)
    labels = {}
    for pa, pb in test_ds.samples:
        label, _, _, _ = _split_pair(pa, pb, test_ds.direction)
        labels[Path(pa).stem] = _rgb8(label)
    rows = fcn_score_folders(net, palette, labels, {"generated": fake_dir, "real": real_dir})
    return {**rows, "n_classes": n_classes, "segmenter": key, "segmenter_steps": steps}


# ----------------------------------------------------------------------------------------------
# Output


def json_ready(obj: Any) -> Any:
    """Non-finite floats (an identical pair's PSNR) become null: strict JSON has no inf."""
    if isinstance(obj, float):
        return _finite(obj)
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def write_json(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    from pixtrans.fsutil import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(json_ready(dict(result)), indent=1, allow_nan=False) + "\n")
    return path


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and abs(v) < 0.01:
        return f"{v:.3e}"
    return f"{v:.4f}"


def format_result(result: Mapping[str, Any]) -> str:
    """The CLI's table: metric, value, which way is better, what it was computed on."""
    rows = [("metric", "value", "better", "on")]
    for name, value in result["metrics"].items():
        d = result["details"][name]
        if d["kind"] == "paired":
            on = f"{d['n']} pairs"
        else:
            on = f"{d['n_real']} real / {d['n_fake']} fake"
            if d.get("subsets", 1) > 1:
                on += f", {d['subsets']} subsets of {d['subset_size']} (std {_fmt(d['std'])})"
        rows.append((name, _fmt(value), "higher" if d["higher_is_better"] else "lower", on))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in rows]
    fcn = result.get("fcn")
    if fcn:
        lines.append(
            f"FCN-score ({fcn['n_classes']} classes; segmenter {fcn['segmenter']}, "
            f"{fcn['segmenter_steps']} steps):"
        )
        for row in ("generated", "real"):
            r = fcn[row]
            lines.append(
                f"  {row:9s} per-pixel acc {r['pixel_acc']:.3f}  per-class acc {r['class_acc']:.3f}  "
                f"class IoU {r['class_iou']:.3f}"
            )
    for name, why in result.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    inc = result.get("inception")
    if inc:
        hit = "cached" if inc["real_cache"].get("hit") else "computed"
        lines.append(f"inception: {inc['weights']}; real-set features {hit}")
    secs = result["seconds"]
    if isinstance(secs, Mapping):
        lines.append(
            f"wall time {secs['total']:.1f} s "
            f"(translate {secs['translate']:.1f} s, metrics {secs['metrics']:.1f} s)"
        )
    else:
        lines.append(f"wall time {secs:.1f} s")
    return "\n".join(lines)
