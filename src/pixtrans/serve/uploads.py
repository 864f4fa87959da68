"""Uploads a public server accepts: size cap, allowed formats, pixel cap read from the header
before any pixel is decoded (data.io's check), and id maps that fit the model.

Every refusal is an `UploadError` with an HTTP status and one line naming the field and what to
do; the app turns it into a JSON answer the page shows. Uploaded bytes are decoded from a file
in the server's own temporary folder (the same decoders training and `pixtrans translate` use),
which is removed right after.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixtrans import PixtransError
from pixtrans.data.io import load_array, open_image

# name sniffed from the first bytes -> file suffix the decoders dispatch on
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"\x93NUMPY", ".npy"),
)
ALLOWED_FORMATS = ("png", "jpeg", "webp", "bmp", "tiff", "npy")


class UploadError(Exception):
    """A request the server refuses: `status` (4xx) and a one-line `message`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Defaults suit a laptop serving a 512x1024 pix2pixHD model."""

    max_upload_bytes: int = 16 << 20  # per file
    max_pixels: int = 2048 * 2048  # per image, checked from the header
    queue_size: int = 16  # waiting requests per model; more answer 503
    timeout_s: float = 60.0  # a request waiting or running longer answers 504
    max_batch: int = 8  # requests that arrive together run as one batch (eval mode)

    @property
    def max_request_bytes(self) -> int:
        """A whole request: three files (label, instance map, photo) and the form fields."""
        return 3 * self.max_upload_bytes + (64 << 10)


def sniff_suffix(data: bytes, field: str) -> str:
    """The decoder suffix of `data` from its magic bytes; 415 for anything else."""
    if not data:
        raise UploadError(400, f"{field}: the uploaded file is empty")
    for magic, suffix in _SIGNATURES:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise UploadError(
        415, f"{field}: not an image in an accepted format ({', '.join(ALLOWED_FORMATS)}); upload a PNG"
    )


class Decoder:
    """Turns uploaded bytes into numpy arrays under `limits`, via files in `tmp_dir`."""

    def __init__(self, limits: Limits, tmp_dir: str | os.PathLike):
        self.limits = limits
        self.tmp_dir = Path(tmp_dir)

    def _decode(self, data: bytes, field: str) -> np.ndarray:
        if len(data) > self.limits.max_upload_bytes:
            raise UploadError(
                413,
                f"{field}: {len(data):,} bytes is over the upload limit of "
                f"{self.limits.max_upload_bytes:,} (serve --max-upload-mb raises it)",
            )
        suffix = sniff_suffix(data, field)
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            w, h = _header_size(name, suffix, field)
            if w * h > self.limits.max_pixels:
                raise UploadError(
                    413,
                    f"{field}: {w}x{h} = {w * h:,} pixels is over the limit of {self.limits.max_pixels:,} "
                    "(serve --max-pixels raises it)",
                )
            try:
                return load_array(name)
            except PixtransError as e:
                raise UploadError(400, f"{field}: {_strip_path(str(e), name)}") from None
        finally:
            os.unlink(name)

    def image(self, data: bytes, field: str = "image") -> np.ndarray:
        """An uploaded image as HxWxC uint8 / uint16 / float32 in [0,1]."""
        return self._decode(data, field)

    def photo(self, data: bytes, field: str = "photo") -> np.ndarray:
        """An uploaded photo as HxWx3 uint8 (alpha dropped, grey repeated)."""
        arr = self._decode(data, field)
        if arr.dtype == np.uint16:
            arr = (arr >> 8).astype(np.uint8)
        elif arr.dtype.kind == "f":
            arr = np.rint(arr * 255).astype(np.uint8)
        if arr.shape[2] in (1, 2):
            arr = np.repeat(arr[:, :, :1], 3, axis=2)
        return np.ascontiguousarray(arr[:, :, :3])

    def ids(self, data: bytes, field: str) -> np.ndarray:
        """A class-id or instance-id map: HxW integers (a single-channel PNG / .npy)."""
        arr = self._decode(data, field)
        if arr.shape[2] != 1:
            raise UploadError(
                422,
                f"{field}: has {arr.shape[2]} channels (a colour rendering?); upload the single-channel "
                "id map (*_labelIds.png / *_instanceIds.png)",
            )
        if arr.dtype.kind == "f":
            raise UploadError(422, f"{field}: holds float values; upload integer ids")
        return arr[:, :, 0].astype(np.int64)


def _header_size(path: str, suffix: str, field: str) -> tuple[int, int]:
    """(width, height) from the file's header alone: no pixel is decoded before the size is known."""
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, _ = read(f)
            if len(shape) not in (2, 3):
                raise UploadError(422, f"{field}: .npy arrays must be HxW or HxWxC, got shape {shape}")
            return int(shape[1]), int(shape[0])
        # the server's own pixel limit applies below, so data.io's global one is lifted here
        # (EXIF rotation leaves the pixel count alone, and reading EXIF may decode a PNG)
        with open_image(path, path, limit=1 << 62) as im:
            return im.size
    except UploadError:
        raise
    except PixtransError as e:
        raise UploadError(400, f"{field}: {_strip_path(str(e), path)}") from None
    except Exception as e:  # noqa: BLE001 - whatever a header parser throws
        raise UploadError(400, f"{field}: not a readable image ({' '.join(str(e).split())[:160]})") from None


def _strip_path(message: str, path: str) -> str:
    """Messages from data.io name the file; the server's temporary name means nothing to a user."""
    for prefix in (f"cannot read image '{path}': ", f"image '{path}' "):
        message = message.replace(prefix, "")
    return message.replace(f"'{path}'", "the upload").replace(path, "the upload")


def check_label_map(label: np.ndarray, classes: int, dontcare: bool, field: str = "label") -> None:
    """Every id a known class (0..classes-1; 255 too with a don't-care class)."""
    ids = label[label != 255] if dontcare else label
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= classes):
        bad = int(ids.max()) if int(ids.max()) >= classes else int(ids.min())
        raise UploadError(
            422,
            f"{field}: holds id {bad} but the model knows classes 0..{classes - 1}; "
            "upload the *_labelIds map the model was trained on",
        )


def check_same_size(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise UploadError(
            422,
            f"{what_b} is {b.shape[1]}x{b.shape[0]} but {what_a} is {a.shape[1]}x{a.shape[0]}; "
            "they must be the same size",
        )
