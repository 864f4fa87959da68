"""Training-state checkpoints (RUN/checkpoints/step_*.pt): names, safe reading, crash-safe
writing and a rotation that never drops a checkpoint that loads.

A checkpoint is plain data: tensors, numbers, strings, lists and dicts, written by `torch.save`.
It is read with `torch.load(weights_only=True)`, whose restricted unpickler builds only those
types, so a file carrying a pickled object that would run code is refused before anything of it
runs. Nothing here ever unpickles a file fully.

Writing goes to a temporary file, is fsynced and renamed over the final name (fsutil), so a kill
at any moment leaves the old set of checkpoints or the new one. Files that exist under a
checkpoint name but do not load (truncated by a full disk, copied half-way, corrupted) are
*damaged*: they are never counted as one of the `keep` checkpoints, and are set aside as
`step_*.pt.damaged` instead of being deleted, so nothing a user might want to inspect is lost.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.artifacts.runs import RunFolder
from pixtrans.fsutil import atomic_write_bytes

FORMAT = "pixtrans-train-state"
NAME = re.compile(r"^step_(\d{9})\.pt$")  # RUN/checkpoints/step_000001000.pt
DAMAGED_SUFFIX = ".damaged"


class CheckpointError(PixtransError):
    """A checkpoint file that cannot be used; `reason` is "damaged", "unsafe" or "foreign"."""

    def __init__(self, message: str, path: Path, reason: str):
        super().__init__(message)
        self.path, self.reason = Path(path), reason


def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    return Path(folder) / f"step_{step:09d}.pt"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    m = NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def checkpoints_folder(path: str | os.PathLike) -> Path:
    """RUN/checkpoints for a run folder; a checkpoints folder itself is returned as is."""
    path = Path(path)
    run = RunFolder(path)
    return run.checkpoints if run.checkpoints.is_dir() else path


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Files named like checkpoints (step_*.pt) in `folder`, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(step, p) for p in folder.iterdir() if (step := checkpoint_step(p)) is not None]
    return [p for _, p in sorted(found)]


# ----------------------------------------------------------------------------------------------
# Reading


def _first_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:160] or type(err).__name__


def _torch_load(path: Path, mmap: bool) -> Any:
    with warnings.catch_warnings():
        # e.g. "Detected pickle protocol 4": noise about a file we are about to refuse anyway
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


# what torch.save writes for tensors, storages and state dicts: a checkpoint naming any other
# global (os.system, builtins.eval, a class of some package) was not written by pixtrans
_SAFE_MODULES = ("torch", "collections", "_codecs")


def _pickle_globals(data: bytes) -> list[str]:
    """Every 'module.name' a pickle refers to, read from its opcodes without executing any."""
    import pickletools

    found, strings, memo = [], [], {}
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.append(str(arg).replace(" ", "."))
        elif isinstance(arg, str) and "UNICODE" in op.name:
            strings.append(arg)
        elif op.name in ("MEMOIZE",) and strings:
            memo[len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL":
            found.append(".".join(strings[-2:]) if len(strings) >= 2 else "<unknown global>")
    return found


def _refusal(path: Path, err: BaseException) -> CheckpointError:
    """Why `torch.load(weights_only=True)` refused `path`: code in it, or damage."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
                data = z.read(pkl)  # CRC-checked
        else:  # a plain pickle: torch's legacy format, or a file that is no checkpoint at all
            data = path.read_bytes()
        names = _pickle_globals(data)
    except Exception:  # noqa: BLE001 - a zip or pickle that cannot even be parsed is damaged
        names = []
    foreign = [n for n in names if n.split(".")[0] not in _SAFE_MODULES]
    if foreign:
        return CheckpointError(
            f"checkpoint '{path}' refers to {foreign[0]}, which would run code if it were loaded; pixtrans "
            "never writes such files, so nothing of it was loaded. Delete it unless you know where it "
            "came from",
            path,
            "unsafe",
        )
    why = "unreadable pickle data" if "Weights only load failed" in str(err) else _first_line(err)[:120]
    return CheckpointError(f"checkpoint '{path}' is damaged (truncated or corrupt: {why})", path, "damaged")


def read_checkpoint(path: str | os.PathLike, *, mmap: bool = False) -> dict[str, Any]:
    """A training checkpoint as a dict with at least "config" and "nets"; CheckpointError for a
    damaged file, one holding code, or one that is not a pixtrans training state.

    mmap=True maps the tensors instead of reading them: a quick check that the file is whole
    (zip directory, pickle, record table) without paying for its weights.
    """
    path = Path(path)
    if not path.is_file():
        raise PixtransError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint '{path}' is damaged (an empty file)", path, "damaged")
    try:
        state = _torch_load(path, mmap)
    except Exception as e:  # noqa: BLE001 - zip, pickle and restricted-unpickler errors alike
        raise _refusal(path, e) from None
    if not isinstance(state, dict) or "nets" not in state or "config" not in state:
        raise CheckpointError(
            f"'{path}' is not a pixtrans training checkpoint (no 'nets'/'config'); for an official "
            "pix2pix/CycleGAN/pix2pixHD .pth file use `pixtrans convert`",
            path,
            "foreign",
        )
    return state


@dataclass
class Found:
    """The newest checkpoint that loads, and the newer files that did not (newest first)."""

    path: Path
    state: dict[str, Any]
    damaged: list[CheckpointError] = field(default_factory=list)

    @property
    def step(self) -> int:
        return int(self.state.get("step", checkpoint_step(self.path) or 0))


class NoLoadableCheckpoint(PixtransError):
    """Checkpoint files exist but none loads; `errors` lists them, newest first."""

    def __init__(self, folder: Path, errors: list[CheckpointError], hint: str = ""):
        names = ", ".join(e.path.name for e in errors[:4]) + (" ..." if len(errors) > 4 else "")
        super().__init__(
            f"no checkpoint in '{folder}' loads: {len(errors)} file(s) are damaged ({names}; newest: "
            f"{errors[0]}). Nothing was changed{hint}"
        )
        self.folder, self.errors = folder, errors


def find_latest(folder: str | os.PathLike, *, hint: str = "") -> Found | None:
    """The newest checkpoint of `folder` that loads; None when there are no checkpoint files.

    Newer damaged files are listed in `Found.damaged` so the caller can say so. When files exist
    and none loads, NoLoadableCheckpoint names them (`hint` says what to do). A file holding code,
    or one that is not a pixtrans state, stops the search with its error: never skipped silently.
    """
    folder = Path(folder)
    damaged: list[CheckpointError] = []
    for path in reversed(list_checkpoints(folder)):
        try:
            return Found(path, read_checkpoint(path), damaged)
        except CheckpointError as e:
            if e.reason != "damaged":
                raise
            damaged.append(e)
    if damaged:
        raise NoLoadableCheckpoint(folder, damaged, hint)
    return None


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """Newest file named step_*.pt (by step) of a run or checkpoints folder; not opened."""
    found = list_checkpoints(checkpoints_folder(folder))
    return found[-1] if found else None


def load_run_checkpoint(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """(file, state) of a checkpoint file, or of the newest checkpoint of a run / checkpoints
    folder that loads; newer damaged files are skipped with a warning that names them."""
    path = Path(path)
    if path.is_file():
        return path, read_checkpoint(path)
    if not path.is_dir():
        raise PixtransError(f"'{path}' does not exist; expected a run folder or a checkpoint .pt file")
    found = find_latest(checkpoints_folder(path))
    if found is None:
        raise PixtransError(f"no checkpoints (checkpoints/step_*.pt) in '{path}'; expected a run folder")
    for err in found.damaged:
        warnings.warn(f"{err}; using the older {found.path.name} (step {found.step})", stacklevel=2)
    return found.path, found.state


def set_aside(paths: Iterable[Path]) -> list[Path]:
    """Rename damaged checkpoints to step_*.pt.damaged (.damaged.1, ... if taken); kept, not
    deleted, and out of every listing and rotation from then on."""
    moved = []
    for path in paths:
        target = path.with_name(path.name + DAMAGED_SUFFIX)
        n = 0
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{n}")
        os.replace(path, target)
        moved.append(target)
    return moved


# ----------------------------------------------------------------------------------------------
# Writing


class CheckpointWriter:
    """Writes step_*.pt into one folder and keeps the `keep` newest that load.

    Files written by this writer (or passed as `known_good`) are trusted without re-reading; any
    other file under a checkpoint name is checked (mmap, cheap) before it may count as one of
    the kept ones. Files that do not load are set aside, never deleted, and never cost a good
    checkpoint its place.
    """

    def __init__(self, folder: str | os.PathLike, keep: int, known_good: Iterable[Path] = ()):
        if keep < 1:
            raise PixtransError(f"config key 'train.keep_checkpoints' must be >= 1, got {keep}")
        self.folder, self.keep = Path(folder), int(keep)
        self._good: set[tuple[str, int, int]] = set()
        for p in known_good:
            self._remember(Path(p))

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return path.name, st.st_size, st.st_mtime_ns

    def _remember(self, path: Path) -> None:
        self._good.add(self._key(path))

    def _loads(self, path: Path) -> bool:
        if self._key(path) in self._good:
            return True
        try:
            read_checkpoint(path, mmap=True)
        except CheckpointError:
            return False
        self._remember(path)
        return True

    def save(self, step: int, state: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(state, buf)
        path = checkpoint_path(self.folder, step)
        atomic_write_bytes(path, buf.getvalue())
        self._remember(path)
        # leftovers of writes killed mid-way (any pid) are garbage once a newer checkpoint landed
        for tmp in self.folder.glob(".step_*.pt.tmp*"):
            tmp.unlink(missing_ok=True)
        self.rotate()
        return path

    def rotate(self) -> list[Path]:
        """Delete all but the `keep` newest loadable checkpoints; set damaged ones aside.
        Returns the damaged files' new paths."""
        files = list_checkpoints(self.folder)
        good = [p for p in files if self._loads(p)]
        bad = [p for p in files if p not in good]
        moved = set_aside(bad)
        for p, new in zip(bad, moved, strict=True):
            warnings.warn(f"checkpoint '{p}' does not load; set aside as '{new.name}'", stacklevel=3)
        for old in good[: -self.keep]:
            old.unlink(missing_ok=True)
        return moved
