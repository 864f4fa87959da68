"""`pixtrans data list` and `pixtrans data download NAME`: the standard pix2pix and CycleGAN
datasets (catalog.py), fetched from their official hosts and unpacked where the presets look
(fetch.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from pixtrans import PixtransError
from pixtrans.download.catalog import CATALOG, DatasetEntry, find_entry, format_table
from pixtrans.download.fetch import HOST_ENV, fetch, set_aside, sha256_of, unpack, with_host

MARKER = ".pixtrans-download.json"

__all__ = [
    "CATALOG",
    "DatasetEntry",
    "HOST_ENV",
    "download_dataset",
    "fetch",
    "find_entry",
    "format_table",
    "sha256_of",
    "unpack",
]


def download_dataset(
    name: str,
    root: str | os.PathLike = "datasets",
    *,
    catalog: tuple[DatasetEntry, ...] = CATALOG,
    host: str | None = None,  # a mirror's scheme://host[:port] (default $PIXTRANS_DATASET_HOST)
    keep_archive: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
) -> Path:
    """Download, check and unpack dataset `name` into `root`/<name>; returns that folder."""
    say = echo or (lambda _line: None)
    entry = find_entry(name, catalog)
    if entry.refused:
        raise PixtransError(f"{entry.key} is not downloaded by pixtrans: {entry.refused}")
    also = [e.key for e in catalog if e.name == entry.name and e.key != entry.key]
    if also and name != entry.key:
        say(f"'{name}' is {entry.key} (also: {', '.join(also)}; name it to get that one)")
    root = Path(root)
    target = root / entry.name
    url = with_host(entry.url, host if host is not None else os.environ.get(HOST_ENV))
    if target.exists() and not target.is_dir():
        raise PixtransError(
            f"'{target}' is a file, where {entry.key} unpacks a folder; move it or pass --root"
        )
    marker = target / f"{MARKER[:-5]}-{entry.family}.json"
    if marker.is_file():
        say(f"{entry.key} is already in '{target}' (delete '{marker}' to download it again)")
        return target
    archive = root / entry.archive
    if archive.is_file():
        say(f"using the archive already at '{archive}'")
    else:
        say(f"downloading {url} -> '{archive}'")
        fetch(url, archive, progress=progress)
    digest = sha256_of(archive)
    if entry.sha256:
        if digest != entry.sha256:
            kept = set_aside(archive, ".rejected")
            raise PixtransError(
                f"checksum mismatch for '{archive}': SHA-256 {digest}, expected {entry.sha256}; the file "
                f"was set aside as '{kept}'; run the command again to download it anew"
            )
        verified = True
        say(f"sha256 {digest}: verified")
    else:
        verified = False
        say(
            f"sha256 {digest}: NOT verified (pixtrans records no checksum for {entry.key}); compare it "
            "with a trusted source"
        )
    try:
        tops = unpack(archive, root)
    except PixtransError as e:
        kept = set_aside(archive, ".corrupt")
        raise PixtransError(f"{e}; the archive was set aside as '{kept}'; run the command again") from None
    if not target.is_dir():
        raise PixtransError(
            f"'{archive}' unpacked to {', '.join(tops)}, not to '{entry.name}/' as {entry.key} should; "
            f"look in '{root}'"
        )
    marker.write_text(
        json.dumps({"dataset": entry.key, "url": url, "sha256": digest, "verified": verified}, indent=1)
        + "\n"
    )
    if not keep_archive:
        archive.unlink()
    presets = ", ".join(entry.presets)
    say(
        f"{entry.key}: unpacked into '{target}'"
        + (f"; train it with `pixtrans train {entry.presets[0]} data.root={target}`" if presets else "")
    )
    return target
