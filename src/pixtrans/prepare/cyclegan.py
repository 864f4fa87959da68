"""`pixtrans prepare cyclegan DIR_A DIR_B OUT/`: two folders of images -> the CycleGAN layout
OUT/trainA, OUT/trainB, OUT/testA, OUT/testB (what data.dataset=unpaired reads).

The split is deterministic and needs no random state: each domain's images are ordered by the
SHA-256 of "<seed>:<file name>" and the first round(test_fraction * n) go to test. The same
files and seed always give the same split, whatever order the file system lists them in.

Files are copied byte for byte (or hard-linked with --link), keeping their names. Skipped, and
reported: files that are not images, unreadable images, images smaller than --min-size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from pixtrans import PixtransError
from pixtrans.prepare.common import PrepareReport, Skipped, header_size, prepare_output, scan, tmp_path

_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def split_order(names: list[str], seed: int) -> list[str]:
    """`names` in the order the split takes them: by SHA-256 of "<seed>:<name>"."""
    return sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())


def _place(source: Path, target: Path, link: bool) -> None:
    tmp = tmp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        if link:
            try:
                os.link(source, tmp)
            except OSError as e:
                if e.errno not in _NO_LINK:
                    raise
                shutil.copyfile(source, tmp)
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as e:
        raise PixtransError(f"cannot write '{target}' from '{source}': {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _domain(folder: Path, side: str, min_size: int, report: PrepareReport) -> list[Path]:
    if not folder.is_dir():
        raise PixtransError(f"domain {side} folder '{folder}' does not exist or is not a folder")
    images, others = scan(folder)
    report.skipped += others
    kept = []
    for path in images:
        size = header_size(path)
        if isinstance(size, str):
            report.skipped.append(Skipped(str(path), size))
        elif min(size) < min_size:
            report.skipped.append(
                Skipped(str(path), f"is {size[0]}x{size[1]}, smaller than --min-size {min_size}")
            )
        else:
            kept.append(path)
    if not kept:
        what = f"{len(others)} other file(s)" if others else "nothing"
        raise PixtransError(
            f"no usable images in domain {side} folder '{folder}' (it holds {what}"
            + (f"; first skipped: {report.skipped[-1].reason}" if report.skipped else "")
            + "); give a folder of images"
        )
    return kept


def make_cyclegan(
    dir_a: str | os.PathLike,
    dir_b: str | os.PathLike,
    out: str | os.PathLike,
    *,
    test_fraction: float = 0.1,  # share of each domain that goes to testA / testB
    seed: int = 0,  # changes which files are test files, deterministically
    min_size: int = 0,  # skip images whose shorter side is below this (0 = keep all)
    link: bool = False,
    overwrite: bool = False,
    echo: Callable[[str], None] | None = print,
) -> PrepareReport:
    """DIR_A + DIR_B -> OUT/{train,test}{A,B}; returns what was written and skipped."""
    if not 0.0 <= test_fraction < 1.0:
        raise PixtransError(f"--test-fraction must lie in [0, 1), got {test_fraction}")
    if min_size < 0:
        raise PixtransError(f"--min-size must be >= 0, got {min_size}")
    dir_a, dir_b, out = Path(dir_a), Path(dir_b), Path(out)
    report = PrepareReport()
    plan = []
    for side, folder in (("A", dir_a), ("B", dir_b)):
        files = {p.name: p for p in _domain(folder, side, min_size, report)}
        order = split_order(list(files), seed)
        n_test = round(test_fraction * len(order))
        if test_fraction > 0 and n_test == 0 and len(order) > 1:
            n_test = 1  # a test split was asked for: give it one image
        test, train = order[:n_test], order[n_test:]
        for split, names in (("train", train), ("test", test)):
            if names:
                plan.append((out / f"{split}{side}", [files[n] for n in sorted(names)]))
    for folder, files in plan:
        prepare_output(folder, {p.name for p in files}, overwrite)
    for folder, files in plan:
        for path in files:
            _place(path, folder / path.name, link)
        report.written[str(folder)] = len(files)
    report.echo(echo)
    return report
