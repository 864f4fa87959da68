"""`pixtrans prepare cityscapes`: the official Cityscapes download -> our training layouts.

Input (leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip unpacked into one folder SRC):

    SRC/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    SRC/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_{labelIds,instanceIds,color}.png

Output:

    DST/{split}_img, {split}_label, {split}_inst     pix2pixHD's layout (data.dataset=labelmap),
                                                     original file names, copied or hard-linked
    DST2/{split}/{city}_{seq}_{frame}.jpg            with --pix2pix: photo | gtFine colour image,
                                                     each size x size, so labels -> photo is BtoA

Everything is checked before the first file is written; each file is written under a temporary
name and renamed into place, so an interrupted run leaves whole files and a re-run overwrites
cleanly (files of an earlier run that are no longer part of the split are removed).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pixtrans import PixtransError
from pixtrans.data.io import open_image

PHOTO_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
COLOR_SUFFIX = "_gtFine_color.png"
# {city}_{seq}_{frame}: what our pix2pix images are named after (and what stale-file cleanup matches)
_FRAME_ID = re.compile(r"^[A-Za-z][\w-]*_\d+_\d+$")
# os.link errors that mean "this file system cannot link here": fall back to a copy
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass(frozen=True)
class CityscapesFrame:
    """One annotated frame of the download: its id ({city}_{seq}_{frame}) and its files."""

    frame_id: str
    photo: Path
    label: Path
    instance: Path
    color: Path


def _check_source(src: Path) -> None:
    if not src.is_dir():
        raise PixtransError(
            f"Cityscapes folder '{src}' does not exist; give the folder holding leftImg8bit/ and gtFine/"
        )
    for name, archive in (
        ("leftImg8bit", "leftImg8bit_trainvaltest.zip"),
        ("gtFine", "gtFine_trainvaltest.zip"),
    ):
        if not (src / name).is_dir():
            nested = sorted(p for p in src.glob(f"*/{name}") if p.is_dir())
            hint = f" (found '{nested[0]}': pass '{nested[0].parent}' as SRC)" if nested else ""
            raise PixtransError(
                f"'{src / name}' not found{hint}; SRC must be the Cityscapes download with leftImg8bit/ and "
                f"gtFine/ side by side (unpack {archive} into it)"
            )


def find_cityscapes(src: str | os.PathLike, split: str) -> list[CityscapesFrame]:
    """The annotated frames of `split` in the download at `src`, sorted by frame id.

    Raises PixtransError for a missing split, an empty one, or a photo whose gtFine files are missing.
    """
    src = Path(src)
    _check_source(src)
    photo_dir, label_dir = src / "leftImg8bit" / split, src / "gtFine" / split
    for folder in (photo_dir, label_dir):
        if not folder.is_dir():
            have = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
            raise PixtransError(
                f"split '{split}' not found: no folder '{folder}' (splits there: "
                f"{', '.join(have) or 'none'}); check --splits"
            )
    photos = sorted(photo_dir.glob(f"*/*{PHOTO_SUFFIX}"), key=lambda p: p.name)
    if not photos:
        raise PixtransError(
            f"nothing found for split '{split}': no {{city}}/*{PHOTO_SUFFIX} files under '{photo_dir}'"
        )
    frames, incomplete = [], []
    for photo in photos:
        frame_id = photo.name[: -len(PHOTO_SUFFIX)]
        gt = label_dir / photo.parent.name
        files = [gt / f"{frame_id}{suffix}" for suffix in (LABEL_SUFFIX, INSTANCE_SUFFIX, COLOR_SUFFIX)]
        missing = [f for f in files if not f.is_file()]
        if missing:
            incomplete.append((photo, missing))
            continue
        frames.append(CityscapesFrame(frame_id, photo, *files))
    if incomplete:
        photo, missing = incomplete[0]
        raise PixtransError(
            f"photo '{photo}' has no '{missing[0]}' ({len(incomplete)} of {len(photos)} photos of split "
            f"'{split}' lack gtFine files); unpack gtFine_trainvaltest.zip into '{src}'"
        )
    return frames


# ----------------------------------------------------------------------------------------------
# Writing


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _place(source: Path, target: Path, *, link: bool) -> bool:
    """Copy (or hard-link) `source` to `target` via a temporary name; True when linked."""
    if link and target.exists() and os.path.samefile(source, target):
        return True  # already linked by an earlier run
    tmp = _tmp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        linked = False
        if link:
            try:
                os.link(source, tmp)
                linked = True
            except OSError as e:
                if e.errno not in _NO_LINK:
                    raise
        if not linked:
            shutil.copyfile(source, tmp)
        # replace, never write into, the old target: it may be a hard link to a source file
        os.replace(tmp, target)
        return linked
    except OSError as e:
        raise PixtransError(f"cannot write '{target}' from '{source}': {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _side_by_side(frame: CityscapesFrame, target: Path, size: int) -> None:
    """photo | colour labels, each size x size: bicubic for the photo, nearest for the labels
    (interpolating colours would invent classes at region borders)."""
    halves = []
    for path, resample in ((frame.photo, Image.Resampling.BICUBIC), (frame.color, Image.Resampling.NEAREST)):
        try:
            with open_image(path, path) as im:
                halves.append(im.convert("RGB").resize((size, size), resample))
        except (OSError, ValueError, SyntaxError) as e:
            raise PixtransError(f"cannot read image '{path}': {e}") from None
    pair = Image.new("RGB", (2 * size, size))
    pair.paste(halves[0], (0, 0))
    pair.paste(halves[1], (size, 0))
    tmp = _tmp_path(target)
    try:
        pair.save(tmp, format="JPEG", quality=100, subsampling=0)  # 4:4:4, as the official script
        os.replace(tmp, target)
    except OSError as e:
        raise PixtransError(f"cannot write '{target}': {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(folder: Path, keep: set[str], matches: Callable[[str], bool]) -> int:
    """Delete files of an earlier run (names `matches` accepts) that are not in `keep`."""
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and path.name not in keep and matches(path.name):
            path.unlink()
            removed += 1
    return removed


def prepare_cityscapes(
    src: str | os.PathLike,  # the download: holds leftImg8bit/ and gtFine/
    dst: str | os.PathLike,  # pix2pixHD layout: {split}_img, {split}_label, {split}_inst
    *,
    splits: Sequence[str] = ("train", "val"),
    pix2pix_dst: str | os.PathLike | None = None,  # also write pix2pix's photo|labels images here
    pix2pix_size: int = 256,  # side of each half of a pix2pix image
    link: bool = False,  # hard-link instead of copying (copies where linking is not possible)
    num_threads: int = 0,  # 0 = min(8, cpu count)
    echo: Callable[[str], None] | None = print,  # receives one summary line per split
) -> dict[str, int]:
    """Write the training layouts for `splits`; returns {split: frames written}."""
    src, dst = Path(src), Path(dst)
    if not splits:
        raise PixtransError("--splits is empty; name at least one split (train, val, test)")
    if pix2pix_size < 1:
        raise PixtransError(f"--pix2pix-size must be >= 1, got {pix2pix_size}")
    # find and check every split before writing anything
    found = {split: find_cityscapes(src, split) for split in dict.fromkeys(splits)}
    threads = max(1, num_threads or min(8, os.cpu_count() or 1))
    counts = {}
    for split, frames in found.items():
        outputs = {
            "img": (PHOTO_SUFFIX, [f.photo for f in frames]),
            "label": (LABEL_SUFFIX, [f.label for f in frames]),
            "inst": (INSTANCE_SUFFIX, [f.instance for f in frames]),
        }
        jobs, removed = [], 0
        for part, (suffix, sources) in outputs.items():
            folder = dst / f"{split}_{part}"
            folder.mkdir(parents=True, exist_ok=True)
            names = {p.name for p in sources}
            removed += _remove_stale(folder, names, lambda name, suffix=suffix: name.endswith(suffix))
            jobs += [(p, folder / p.name) for p in sources]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            linked = sum(pool.map(lambda job: _place(job[0], job[1], link=link), jobs))
        how = f"{linked} hard-linked, {len(jobs) - linked} copied" if link else f"{len(jobs)} copied"
        line = f"{split}: {len(frames)} frames -> {dst}/{split}_{{img,label,inst}} ({how})"

        if pix2pix_dst is not None:
            folder = Path(pix2pix_dst) / split
            folder.mkdir(parents=True, exist_ok=True)
            names = {f"{f.frame_id}.jpg" for f in frames}
            removed += _remove_stale(
                folder, names, lambda name: name.endswith(".jpg") and bool(_FRAME_ID.match(name[:-4]))
            )
            jobs = [(f, folder / f"{f.frame_id}.jpg") for f in frames]
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(lambda job: _side_by_side(job[0], job[1], pix2pix_size), jobs))
            line += f"; {len(frames)} photo|labels images of {2 * pix2pix_size}x{pix2pix_size} -> {folder}"
        if removed:
            line += f"; removed {removed} file(s) of an earlier run"
        if echo is not None:
            echo(line)
        counts[split] = len(frames)
    return counts
