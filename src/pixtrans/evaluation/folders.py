"""Scoring two folders of images: listing, pairing and reading the files, choosing the metrics,
and `evaluate_folders`.

Paired metrics match files by their path relative to the folder without the extension
(fake/x.png <-> real/x.jpg); distribution metrics use every image of each folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pixtrans import PixtransError
from pixtrans.data.io import IMAGE_EXTENSIONS, convert_channels, image_files, load_array
from pixtrans.metrics import Metric, all_metrics, get_metric

# the module, not its names: load_inception is looked up at call time, so a stub network can stand in
from pixtrans.metrics import inception as inception_net
from pixtrans.metrics.distribution import FeatureSet, real_feature_set
from pixtrans.runtime import resolve_device

# display order when no order is asked for
ORDER = ("psnr", "ssim", "l1", "lpips", "fid", "kid")
_EXTS = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


# ----------------------------------------------------------------------------------------------
# Metric selection


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


def select_metrics(
    names: list[str] | None, options: Mapping[str, Any], kinds: Sequence[str]
) -> tuple[list[Metric], dict[str, str], bool]:
    """(metrics to run, skipped name -> reason, explicit?) for data that `kinds` of metric can score.

    Names given: exactly those, and one that cannot run (wrong kind, weights missing) is an error.
    None: every metric of those kinds that can run here; the others are reported as skipped.
    """
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


# ----------------------------------------------------------------------------------------------
# Listing, pairing and reading


def list_images(folder: str | os.PathLike, what: str) -> list[Path]:
    """Image files under `folder` (recursive, sorted, hidden files and folders skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PixtransError(f"{what} '{folder}' does not exist or is not a folder")
    found = image_files(folder, recursive=True)
    if not found:
        raise PixtransError(f"no image files in {what} '{folder}' ({_EXTS})")
    return found


def _keyed(files: list[Path], folder: Path) -> dict[str, Path]:
    """Files by their pairing name: the path relative to `folder` without the extension."""
    out: dict[str, Path] = {}
    for f in files:
        key = f.relative_to(folder).with_suffix("").as_posix()
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
# Scoring


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
    """Score the images of `fake` against those of `real` (both searched recursively, hidden files
    skipped); returns a JSON-ready dict:

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
    chosen, skipped, explicit = select_metrics(parse_metric_list(metrics), options, kinds)

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
        net = inception_net.load_inception(inception, device)
        real_set, cache = real_feature_set(
            real,
            real_files,
            net,
            protocol=inception_net.PROTOCOL,
            batch_size=batch_size,
            progress=progress,
            use_cache=use_cache,
        )
        if fake.resolve() == real.resolve():
            fake_set = real_set
        else:
            feats = inception_net.extract_features(
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
            "protocol": inception_net.PROTOCOL,
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
