"""What the folder-to-folder `prepare` commands share: finding the splits of an input folder,
listing its images (and what is not one), reading 8-bit images, writing whole files only, and
the report of what was written and what was skipped."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pixtrans import PixtransError
from pixtrans.data.io import IMAGE_EXTENSIONS, image_files, image_size, is_image_file, load_array

FORMATS = ("png", "jpg")  # png: lossless (default); jpg: quality 100, 4:4:4 like the official sets


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class PrepareReport:
    """What a prepare command did: files written (per output folder) and inputs skipped."""

    written: dict[str, int] = field(default_factory=dict)  # output folder -> files written
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.written.values())

    def lines(self) -> list[str]:
        out = [f"{folder}: {n} file(s) written" for folder, n in self.written.items()]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} input(s):")
            out += [f"  {s.path}: {s.reason}" for s in self.skipped[:20]]
            if len(self.skipped) > 20:
                out.append(f"  ... and {len(self.skipped) - 20} more")
        return out

    def echo(self, echo: Callable[[str], None] | None) -> None:
        if echo is not None:
            for line in self.lines():
                echo(line)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise PixtransError(f"--format '{fmt}' is not one of {', '.join(FORMATS)}")
    return fmt


def scan(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """Images directly in `folder`, and the other visible files there (skipped: not images)."""
    images = image_files(folder)
    others = [
        Skipped(str(p), f"not an image (extension '{p.suffix or 'none'}')")
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and not is_image_file(p)
    ]
    return images, others


def find_splits(folder: str | os.PathLike, what: str) -> list[tuple[str, Path]]:
    """[("", folder)] when images lie directly in `folder`, else [(name, folder/name)] for each
    sub-folder that holds images (train/, val/, test/ ...). One-line errors otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PixtransError(f"{what} folder '{folder}' does not exist or is not a folder")
    images, others = scan(folder)
    if images:
        return [("", folder)]
    subs = [
        (p.name, p)
        for p in sorted(folder.iterdir())
        if p.is_dir() and not p.name.startswith(".") and image_files(p)
    ]
    if subs:
        return subs
    hint = (
        f" ({len(others)} other file(s), e.g. '{Path(others[0].path).name}')" if others else " (it is empty)"
    )
    raise PixtransError(
        f"no images in {what} folder '{folder}'{hint}; expected {', '.join(sorted(IMAGE_EXTENSIONS))} "
        "files, directly or in split folders (train/, val/, ...)"
    )


def by_stem(images: list[Path]) -> tuple[dict[str, Path], list[Skipped]]:
    """name without extension -> file; names used by two files are skipped (they cannot pair)."""
    seen: dict[str, list[Path]] = {}
    for p in images:
        seen.setdefault(p.stem, []).append(p)
    ok = {s: ps[0] for s, ps in seen.items() if len(ps) == 1}
    dup = [
        Skipped(str(p), f"the name '{s}' is used by {len(ps)} files ({', '.join(q.name for q in ps)})")
        for s, ps in seen.items()
        if len(ps) > 1
        for p in ps
    ]
    return ok, dup


def header_size(path: Path) -> tuple[int, int] | str:
    """(w, h) from the header, or the reason it cannot be read."""
    try:
        return image_size(path)
    except PixtransError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - any decoder failure is a skip, reported
        return f"cannot read: {type(e).__name__}: {e}"


class Unreadable(Exception):
    """An input that is skipped (its reason is the message)."""


def read_8bit(path: Path) -> np.ndarray:
    """HxWx1 or HxWx3 uint8 (alpha dropped); Unreadable for what an 8-bit pair cannot hold."""
    try:
        arr = load_array(path)
    except PixtransError as e:
        raise Unreadable(str(e)) from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype != np.uint8:
        raise Unreadable(f"{arr.dtype} pixels; these tools write 8-bit images (convert it first)")
    if arr.shape[2] == 2:
        arr = arr[:, :, :1]
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.shape[2] not in (1, 3):
        raise Unreadable(f"{arr.shape[2]} channels; expected grey, RGB or RGBA")
    return arr


def as_rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_array(arr: np.ndarray, target: Path, fmt: str) -> None:
    """HxWx1 / HxWx3 uint8 -> `target` as a whole file (temporary name, then renamed)."""
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    tmp = tmp_path(target)
    try:
        if fmt == "jpg":
            im.save(tmp, format="JPEG", quality=100, subsampling=0)
        else:
            im.save(tmp, format="PNG")
        os.replace(tmp, target)
    except OSError as e:
        raise PixtransError(f"cannot write '{target}': {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def prepare_output(folder: Path, names: set[str], overwrite: bool) -> None:
    """Create `folder`; refuse (before anything is written) to replace files already there
    unless `overwrite`."""
    if folder.exists() and not folder.is_dir():
        raise PixtransError(f"output '{folder}' exists and is not a folder; choose another output")
    if folder.is_dir() and not overwrite:
        clash = sorted(n for n in names if (folder / n).exists())
        if clash:
            raise PixtransError(
                f"output folder '{folder}' already holds {len(clash)} of the files to write (first: "
                f"{clash[0]}); choose another output folder or pass --overwrite"
            )
    folder.mkdir(parents=True, exist_ok=True)
