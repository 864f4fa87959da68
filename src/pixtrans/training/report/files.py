"""How report files reach the disk: atomically, into a folder created on demand."""

from __future__ import annotations

from pathlib import Path

from pixtrans.fsutil import atomic_write_bytes


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` (temporary file, then rename); creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # report files are rebuilt often and cheap to redo: atomic, but no folder fsync
    return atomic_write_bytes(path, data, sync_dir=False)
