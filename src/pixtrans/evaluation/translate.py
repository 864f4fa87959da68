"""Translating a paired split for scoring: the OUT folder (OUT/fake, OUT/real, the marker that
says it is ours), a dataset sample as (input, target) arrays, and writing the fakes and targets.

Targets are rewritten only when their bytes change, so the cached real-set statistics of FID/KID
stay valid from one evaluation of the same split to the next.
"""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import numpy as np

from pixtrans import PixtransError
from pixtrans.artifacts.runs import RunFolder
from pixtrans.data.io import convert_channels, is_image_file, load_array, to_float, to_tensor, write_image

MARKER = ".pixtrans-eval"  # in OUT: the folder is ours, stale images in it may be removed


def run_folder(path: Path) -> Path:
    """Where <run>/eval goes: the run folder of a run, export or checkpoint path."""
    return RunFolder.of(path).root


def prepare_out(out: Path, model: Path, with_real: bool) -> tuple[Path, Path]:
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


def remove_stale(folder: Path, keep: set[Path]) -> None:
    """Delete the images under `folder` (ours: see prepare_out) that are not in `keep` (resolved)."""
    for p in folder.rglob("*"):
        if p.is_file() and is_image_file(p) and p.resolve() not in keep:
            p.unlink()


def write_if_changed(tensor, path: Path) -> Path:
    """write_image, but an identical existing file is left untouched (its mtime too), so the
    cached real-set statistics stay valid across evaluations."""
    tmp = path.with_name(f".tmp-{path.name}")
    written = write_image(tensor, tmp)
    final = path.with_suffix(written.suffix)
    if final.is_file() and filecmp.cmp(written, final, shallow=False):
        written.unlink()
    else:
        os.replace(written, final)
    return final


def split_pair(pa: str, pb: str | None, direction: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(input array, target array, input path, target path) of one paired-dataset sample
    (pb None: an aligned A|B file)."""
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


def translate_paired(
    translator, samples, direction, fake_dir: Path, real_dir: Path, *, mode, seed, batch_size, progress
) -> int:
    """Translate each sample's input at its stored size into fake_dir/<name>.png and write its
    target to real_dir/<name>.png; images of earlier evaluations not written now are removed."""
    from tqdm.auto import tqdm

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
                x, y, path_x, path_y = split_pair(pa, pb, direction)
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
                keep.add(write_if_changed(target, real_dir / f"{stem}.png").resolve())
            bar.update(len(chunk))
    finally:
        bar.close()
    remove_stale(fake_dir, keep)
    remove_stale(real_dir, keep)
    return len(samples)
