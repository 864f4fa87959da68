"""Crash-safe file writes and the cache folder (no torch import, so light modules can use them).

A write goes to a temporary file in the same folder, is fsynced, then renamed over the final
name (atomic on POSIX); the folder is fsynced so the rename itself survives a power cut. A kill
at any moment leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None], sync_dir: bool = True) -> Path:
    """`write(tmp_path)` produces the file; it is then fsynced and moved into place."""
    path = Path(path)
    tmp = tmp_name(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if sync_dir:
        fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, sync_dir: bool = True) -> Path:
    return atomic_write_with(path, lambda tmp: tmp.write_bytes(data), sync_dir)


def atomic_write_text(path: str | os.PathLike, text: str, sync_dir: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), sync_dir)


CACHE_ENV = "PIXTRANS_CACHE"


def cache_dir() -> Path:
    """Where pixtrans keeps what it can rebuild (the synthetic demo set, FID statistics of real
    sets, FCN segmenters): $PIXTRANS_CACHE, else $XDG_CACHE_HOME/pixtrans, else ~/.cache/pixtrans."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pixtrans"
