"""Downloading and unpacking one dataset archive.

Download: into NAME.part next to the archive; an interrupted download is resumed with an HTTP
Range request from the bytes already there (a server that ignores Range gets a fresh start).
A tqdm bar shows progress. The finished file is renamed into place, so a file without .part is
always whole.

Checksum: SHA-256 of the archive, compared with the catalog's when it records one (a mismatch
is refused and the file set aside as NAME.rejected); when it records none the computed value is
printed with a clear "not verified".

Unpacking: every member is checked before anything is written: absolute paths, `..` parts,
links and device files are refused (tar/zip slip), then the archive is unpacked into a staging
folder inside the target root and moved into place, so a corrupt archive leaves nothing
half-written (it is set aside as NAME.corrupt). Files already in the target are kept unless the
archive holds a file of the same path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from pixtrans import PixtransError, __version__

HOST_ENV = "PIXTRANS_DATASET_HOST"  # e.g. http://127.0.0.1:8000: a mirror (tests use a loopback server)
CHUNK = 1 << 16


def with_host(url: str, host: str | None) -> str:
    """`url` with its scheme and host replaced by `host` (a mirror), path kept."""
    if not host:
        return url
    parts, mirror = urlsplit(url), urlsplit(host if "://" in host else f"http://{host}")
    return urlunsplit((mirror.scheme, mirror.netloc, mirror.path.rstrip("/") + parts.path, parts.query, ""))


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); 'bytes */200' -> (None, 200)."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = None if span == "*" else int(span.split("-")[0])
    return start, (int(total) if total.isdigit() else None)


def fetch(url: str, dest: str | os.PathLike, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download `url` to `dest`, resuming `dest`.part; returns dest."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for _attempt in range(2):  # a second go only when the partial file cannot be resumed
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": f"pixtrans/{__version__}"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urlopen(Request(url, headers=headers), timeout=timeout)
        except HTTPError as e:
            if e.code == 416 and have:  # nothing after `have`: complete, or the file changed
                _, total = _content_range(e.headers.get("Content-Range"))
                if total == have:
                    os.replace(part, dest)
                    return dest
                part.unlink()
                continue
            raise PixtransError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PixtransError(
                f"cannot reach {urlsplit(url).netloc} for {url} ({reason}); check the connection, or "
                f"download it yourself to '{dest}' and run the command again"
            ) from None
        with resp:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if resp.status == 206 and start != have:  # a part we did not ask for: start again
                part.unlink(missing_ok=True)
                continue
            if have and resp.status == 206:
                mode = "ab"
            else:  # the server sent the whole file
                have, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            done = have
            bar = tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
            )
            try:
                with open(part, mode) as f:
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        done += len(chunk)
                        bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise PixtransError(
                    f"download of {url} stopped at {done:,} of {total or '?'} bytes ({type(e).__name__}); "
                    f"run the same command again to resume from '{part}'"
                ) from None
            finally:
                bar.close()
        if total is not None and done != total:
            raise PixtransError(
                f"download of {url} stopped at {done:,} of {total:,} bytes; run the same command again "
                f"to resume from '{part}'"
            )
        os.replace(part, dest)
        return dest
    raise PixtransError(f"download of {url} could not be resumed; delete '{part}' and run again")


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def set_aside(path: Path, suffix: str) -> Path:
    """Rename a refused file out of the way (kept, never silently deleted)."""
    target = path.with_name(path.name + suffix)
    os.replace(path, target)
    return target


# ----------------------------------------------------------------------------------------------
# Unpacking


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
        raise PixtransError(
            f"archive '{archive}' holds the path '{name}', which would be written outside the target "
            "folder; refusing to unpack it"
        )
    return p


def _members_tar(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()  # reads the whole archive: a truncated one fails here
    for m in members:
        _safe_name(m.name, archive)
        if not (m.isfile() or m.isdir()):
            raise PixtransError(
                f"archive '{archive}' holds '{m.name}', a link or special file; refusing to unpack it"
            )
    return members


def _members_zip(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    for info in infos:
        _safe_name(info.filename, archive)
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise PixtransError(f"archive '{archive}' holds '{info.filename}', a link; refusing to unpack it")
    return infos


def _merge(src: Path, dst: Path) -> None:
    """Move the tree `src` into `dst`: new paths moved, same paths replaced, others in dst kept."""
    if not dst.exists():
        os.replace(src, dst)
        return
    if src.is_dir() and dst.is_dir():
        for child in sorted(src.iterdir()):
            _merge(child, dst / child.name)
        src.rmdir()
        return
    if src.is_dir() or dst.is_dir():
        kind = "folder" if dst.is_dir() else "file"
        raise PixtransError(f"cannot unpack '{src.name}' into '{dst.parent}': a {kind} of that name is there")
    os.replace(src, dst)


def unpack(archive: str | os.PathLike, root: str | os.PathLike) -> list[str]:
    """Check and unpack a .tar.gz / .tgz / .tar / .zip archive into `root`; returns its top-level
    names. PixtransError for a corrupt archive or one that would write outside `root`."""
    archive, root = Path(archive), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{archive.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    infos = _members_zip(zf, archive)
                    for info in infos:
                        zf.extract(info, staging)
                names = [i.filename for i in infos]
            else:
                with tarfile.open(archive, "r:*") as tar:
                    members = _members_tar(tar, archive)
                    for m in members:
                        tar.extract(m, staging, set_attrs=False, **_tar_filter())
                names = [m.name for m in members]
        except PixtransError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as e:
            raise PixtransError(
                f"archive '{archive}' is corrupt or not a .tar.gz/.zip ({type(e).__name__}: {e}); "
                "nothing was unpacked"
            ) from None
        if not names:
            raise PixtransError(f"archive '{archive}' is empty; nothing was unpacked")
        tops = sorted({PurePosixPath(n.replace("\\", "/")).parts[0] for n in names})
        try:
            for top in tops:
                _merge(staging / top, root / top)
        except OSError as e:
            raise PixtransError(f"cannot move the unpacked files into '{root}': {e.strerror or e}") from None
        return tops
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tar_filter() -> dict:
    # Python >= 3.12 (and 3.11.4+) can refuse unsafe members itself; our checks run either way
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


Echo = Callable[[str], None]
