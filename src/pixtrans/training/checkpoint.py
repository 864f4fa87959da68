"""Training-state checkpoints that survive Ctrl-C, SIGTERM and kill -9.

A checkpoint is written to a temporary file in the same folder, fsynced, renamed over its final
name (atomic on POSIX) and the folder is fsynced, so a kill at any moment leaves either the old
set of checkpoints or the new one, never a half-written file under a real name. Loading walks
from the newest file back and skips any that do not load.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from pixtrans.fsutil import atomic_write_bytes

NAME = re.compile(r"^step_(\d{9})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:09d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = checkpoint_path(folder, step)
    atomic_write_bytes(path, buf.getvalue())
    # leftovers of writes killed mid-way (any pid) are garbage once a newer checkpoint landed
    for tmp in folder.glob(".step_*.pt.tmp*"):
        tmp.unlink(missing_ok=True)
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(folder: Path, map_location="cpu") -> tuple[Path, dict[str, Any]] | None:
    """Newest checkpoint that loads; a damaged one (e.g. disk full) is skipped with a warning."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, torch.load(path, map_location=map_location, weights_only=False)
        except Exception as e:  # noqa: BLE001 - any failure to read means "try the older one"
            warnings.warn(f"skipping unreadable checkpoint {path}: {type(e).__name__}: {e}", stacklevel=2)
    return None
