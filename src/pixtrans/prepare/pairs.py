"""`pixtrans prepare combine A/ B/ OUT/` and `pixtrans prepare split AB/ A/ B/`.

combine: the pix2pix aligned layout from two folders of corresponding images (the official
`combine_A_and_B`): A/x.* and B/x.* -> OUT/x.png holding A on the left and B on the right. A/ and
B/ hold the same split folders (A/train, B/train, ...; OUT gets OUT/train, ...) or images
directly (OUT gets OUT/<--split>, default train, which is where `data.root=OUT` looks). Pairs
match by name without extension and must have the same size; a grey image next to a colour one
is written as colour.

split: the reverse, A|B images -> their halves in A/ and B/ (same names; split folders kept).

Skipped, and reported: files that are not images, names with no partner or used twice, pairs
of different sizes, images of odd width (split), unreadable or 16-bit/float images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pixtrans import PixtransError
from pixtrans.prepare.common import (
    PrepareReport,
    Skipped,
    Unreadable,
    as_rgb,
    by_stem,
    check_format,
    find_splits,
    header_size,
    prepare_output,
    read_8bit,
    scan,
    write_array,
)


def _pair_jobs(dir_a: Path, dir_b: Path, report: PrepareReport) -> list[tuple[str, Path, Path]]:
    """(name, A file, B file) of the pairs of one split whose names and header sizes fit."""
    images_a, other_a = scan(dir_a)
    images_b, other_b = scan(dir_b)
    report.skipped += other_a + other_b
    stems_a, dup_a = by_stem(images_a)
    stems_b, dup_b = by_stem(images_b)
    report.skipped += dup_a + dup_b
    report.skipped += [
        Skipped(str(p), f"no partner named '{s}.*' in '{dir_b}'")
        for s, p in stems_a.items()
        if s not in stems_b
    ]
    report.skipped += [
        Skipped(str(p), f"no partner named '{s}.*' in '{dir_a}'")
        for s, p in stems_b.items()
        if s not in stems_a
    ]
    jobs = []
    for stem in sorted(stems_a.keys() & stems_b.keys()):
        pa, pb = stems_a[stem], stems_b[stem]
        sa, sb = header_size(pa), header_size(pb)
        if isinstance(sa, str) or isinstance(sb, str):
            bad, why = (pa, sa) if isinstance(sa, str) else (pb, sb)
            report.skipped.append(Skipped(str(bad), why))
        elif sa != sb:
            report.skipped.append(
                Skipped(str(pa), f"is {sa[0]}x{sa[1]} but its partner '{pb}' is {sb[0]}x{sb[1]}")
            )
        else:
            jobs.append((stem, pa, pb))
    return jobs


def combine_pairs(
    dir_a: str | os.PathLike,
    dir_b: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "train",  # output split for A/ and B/ that hold images directly
    fmt: str = "png",
    overwrite: bool = False,
    echo: Callable[[str], None] | None = print,
) -> PrepareReport:
    """A/ + B/ -> OUT/<split>/name.<fmt> holding A | B; returns what was written and skipped."""
    dir_a, dir_b, out = Path(dir_a), Path(dir_b), Path(out)
    check_format(fmt)
    splits_a, splits_b = find_splits(dir_a, "A"), dict(find_splits(dir_b, "B"))
    report = PrepareReport()
    plan: list[tuple[Path, list[tuple[str, Path, Path]]]] = []
    for name, folder_a in splits_a:
        if name == "":
            if "" not in splits_b:
                raise PixtransError(
                    f"'{dir_a}' holds images but '{dir_b}' holds split folders ({', '.join(splits_b)}); "
                    "give two folders of the same shape"
                )
            plan.append((out / split, _pair_jobs(folder_a, splits_b[""], report)))
        elif name not in splits_b:
            report.skipped.append(Skipped(str(folder_a), f"no split folder '{dir_b / name}' to pair with"))
        else:
            plan.append((out / name, _pair_jobs(folder_a, splits_b[name], report)))
    if not any(jobs for _, jobs in plan):
        first = (
            f" (first skipped: {report.skipped[0].path}: {report.skipped[0].reason})"
            if report.skipped
            else ""
        )
        raise PixtransError(f"no pairs to combine from '{dir_a}' and '{dir_b}'{first}")
    for folder, jobs in plan:  # every output checked before the first file is written
        prepare_output(folder, {f"{stem}.{fmt}" for stem, _, _ in jobs}, overwrite)
    for folder, jobs in plan:
        n = 0
        for stem, pa, pb in jobs:
            try:
                a, b = read_8bit(pa), read_8bit(pb)
            except Unreadable as e:
                report.skipped.append(Skipped(str(pa), str(e)))
                continue
            if a.shape[2] != b.shape[2]:  # grey next to colour: both colour
                a, b = as_rgb(a), as_rgb(b)
            write_array(np.concatenate([a, b], axis=1), folder / f"{stem}.{fmt}", fmt)
            n += 1
        report.written[str(folder)] = n
    report.echo(echo)
    return report


def split_pairs(
    dir_ab: str | os.PathLike,
    dir_a: str | os.PathLike,
    dir_b: str | os.PathLike,
    *,
    fmt: str = "png",
    overwrite: bool = False,
    echo: Callable[[str], None] | None = print,
) -> PrepareReport:
    """AB/ (A|B images) -> A/name.<fmt> (left half) and B/name.<fmt> (right half)."""
    dir_ab, dir_a, dir_b = Path(dir_ab), Path(dir_a), Path(dir_b)
    check_format(fmt)
    report = PrepareReport()
    plan = []
    for name, folder in find_splits(dir_ab, "A|B"):
        images, others = scan(folder)
        report.skipped += others
        stems, dup = by_stem(images)
        report.skipped += dup
        jobs = []
        for stem, path in sorted(stems.items()):
            size = header_size(path)
            if isinstance(size, str):
                report.skipped.append(Skipped(str(path), size))
            elif size[0] % 2:
                report.skipped.append(
                    Skipped(str(path), f"is {size[0]}x{size[1]}: an A|B image needs an even width")
                )
            else:
                jobs.append((stem, path))
        out_a, out_b = (dir_a / name, dir_b / name) if name else (dir_a, dir_b)
        plan.append((out_a, out_b, jobs))
    if not any(jobs for _, _, jobs in plan):
        first = (
            f" (first skipped: {report.skipped[0].path}: {report.skipped[0].reason})"
            if report.skipped
            else ""
        )
        raise PixtransError(f"no A|B images to split in '{dir_ab}'{first}")
    for out_a, out_b, jobs in plan:
        names = {f"{stem}.{fmt}" for stem, _ in jobs}
        prepare_output(out_a, names, overwrite)
        prepare_output(out_b, names, overwrite)
    for out_a, out_b, jobs in plan:
        n = 0
        for stem, path in jobs:
            try:
                ab = read_8bit(path)
            except Unreadable as e:
                report.skipped.append(Skipped(str(path), str(e)))
                continue
            w = ab.shape[1] // 2
            write_array(np.ascontiguousarray(ab[:, :w]), out_a / f"{stem}.{fmt}", fmt)
            write_array(np.ascontiguousarray(ab[:, w:]), out_b / f"{stem}.{fmt}", fmt)
            n += 1
        report.written[str(out_a)] = n
        report.written[str(out_b)] = n
    report.echo(echo)
    return report
