"""Image files <-> tensors: 8/16-bit, palette, CMYK, alpha, and N-channel .npy/TIFF.

Decoding goes PIL (or numpy / torchvision for 16-bit colour PNGs) -> numpy -> torch with no
Python loops over pixels. Two levels:

- `load_array(path)`: the file's own pixels as an HxWxC numpy array in its stored precision
  (uint8, uint16 or float32 in [0,1]) after mode normalisation (palette -> RGB(A), CMYK -> RGB, ...).
- `read_image(path, channels)`: float [C,H,W] in [0,1] with the requested channel count.

The dataset caches the integer level (`to_tensor(convert_channels(load_array(...)))`) and converts
to float per sample, so a cached image costs 1 (or 2) bytes per value instead of 4.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from pixtrans import PixtransError

# Files the datasets list; everything else in a folder (and hidden files) is ignored.
IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".npy",
    }
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Decompression bombs: an image is refused, before any pixel is decoded, when its header promises
# more pixels than this (a 1 KB PNG can claim 100,000 x 100,000). 2^28 = 268M pixels holds a
# 16384 x 16384 map; raise it with PIXTRANS_MAX_PIXELS=N for bigger images you trust.
MAX_PIXELS_ENV = "PIXTRANS_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 1 << 28


def max_pixels() -> int:
    value = os.environ.get(MAX_PIXELS_ENV, "")
    try:
        return int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise PixtransError(f"${MAX_PIXELS_ENV}={value!r} is not a whole number of pixels") from None


_PIL_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def open_image(source, path, limit: int | None = None):
    """PIL's Image.open, with our pixel limit checked from the header before any pixel is decoded.
    PIL's own bomb check (with other numbers and a message that names no setting) is off while
    the header is read, under a lock, and restored at once."""
    limit = max_pixels() if limit is None else limit
    with _PIL_LIMIT_LOCK:
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    with im:
        check_pixels(*im.size, path, limit)
        yield im


def exif_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as a viewer shows the image: EXIF orientations 5-8 swap the sides."""
    orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
    return (im.height, im.width) if orientation in (5, 6, 7, 8) else (im.width, im.height)


def check_pixels(width: int, height: int, path, limit: int | None = None) -> None:
    """Refuse an image whose header promises more than `limit` pixels (default: max_pixels())."""
    limit = max_pixels() if limit is None else limit
    if int(width) * int(height) > limit:
        raise PixtransError(
            f"image '{path}' is {width}x{height} = {int(width) * int(height):,} pixels, over the limit of "
            f"{limit:,} (a decompression bomb, or just very large); if you trust the file, raise the limit "
            f"with {MAX_PIXELS_ENV}={int(width) * int(height)}"
        )


# colour spaces PIL converts to RGB before we take the pixels
_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}


def is_image_file(path: str | os.PathLike) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def image_files(
    folder: str | os.PathLike, *, recursive: bool = False, skip: Path | None = None
) -> list[Path]:
    """Sorted image files in `folder` (and below it when `recursive`): other extensions and
    hidden files and folders (.git, .ipynb_checkpoints ...) ignored, and nothing under `skip`
    (e.g. an output folder inside the input folder). The one folder lister every reader uses."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not is_image_file(path) or not path.is_file():
            continue
        if skip is not None and skip in path.resolve().parents:
            continue
        found.append(path)
    return found


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]


def _bad(path, why: str) -> PixtransError:
    return PixtransError(f"cannot read image '{path}': {why}")


# ----------------------------------------------------------------------------------------------
# Decoding


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, 4 length, 4 type, 4 w, 4 h, 1 depth
    if data[:8] == _PNG_SIGNATURE and len(data) > 24:
        return data[24]
    return 8


def _load_png16(data: bytes, path) -> np.ndarray:
    # PIL reads 16-bit grey PNGs exactly (mode I;16) but truncates 16-bit RGB/RGBA to 8 bits and
    # misreads 16-bit grey+alpha; torchvision's libpng decoder keeps all 16 bits for every type.
    from torchvision.io import ImageReadMode, decode_png

    # torchvision 0.29 deprecates its decoders in favour of torchcodec; this one is still the only
    # 16-bit colour PNG decoder at hand, so silence just that notice
    warnings.filterwarnings(
        "ignore", message="The image decoding", category=DeprecationWarning, module="torchvision.io.image"
    )
    try:
        t = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as e:
        raise _bad(path, f"corrupt 16-bit PNG ({_one_line(e)})") from None
    return t.permute(1, 2, 0).numpy()  # [C,H,W] uint16 -> HxWxC


def _int_to_uint16(arr: np.ndarray, path) -> np.ndarray:
    # PIL mode "I" (32-bit ints) holds 16-bit data in practice (old Pillow's 16-bit PNGs, TIFFs
    # written from int32 arrays), so it scales by 65535 like I;16; wider values are refused rather
    # than silently rescaled differently per image.
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise _bad(
            path,
            f"32-bit integer pixels in [{lo}, {hi}] do not fit 16 bits; save it as a 16-bit PNG "
            "or a float .npy in [0,1]",
        )
    return arr.astype(np.uint16)


def _check_float(arr: np.ndarray, path) -> np.ndarray:
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise _bad(path, f"float pixels must lie in [0,1], found [{lo:.4g}, {hi:.4g}]; rescale the data")
    return np.clip(arr, 0.0, 1.0)


def _from_pil(im: Image.Image, path) -> np.ndarray:
    mode = im.mode
    if mode in ("1",):
        im = im.convert("L")  # 0/1 bits -> 0/255
    elif mode in ("P", "PA"):
        # a palette with a transparent entry keeps it as alpha
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "RGBa":
        im = im.convert("RGBA")  # premultiplied alpha -> straight
    elif mode == "La":
        im = im.convert("LA")
    elif mode in _TO_RGB:
        im = im.convert("RGB")
    mode = im.mode
    arr = np.asarray(im)
    if mode.startswith("I;16"):
        return arr.astype(np.uint16, copy=False)  # also makes big-endian I;16B native
    if mode == "I":
        return _int_to_uint16(arr, path)
    if mode == "F":
        return _check_float(arr, path)
    if arr.dtype != np.uint8:
        # any other exotic mode: let PIL map it to RGB
        arr = np.asarray(im.convert("RGB"))
    return arr


def _load_npy(path) -> np.ndarray:
    try:
        shape, _ = _npy_header(path)
    except Exception:  # noqa: BLE001 - np.load below names what is wrong
        shape = ()
    if len(shape) >= 2:
        check_pixels(shape[1], shape[0], path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError (bad header / pickled), OSError, EOFError (truncated)
        raise _bad(path, f"not a readable .npy array ({_one_line(e)})") from None
    if arr.ndim not in (2, 3):
        raise _bad(path, f".npy arrays must be HxW or HxWxC, got shape {tuple(arr.shape)}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = _check_float(arr, path)
    elif arr.dtype == np.uint16 or arr.dtype == np.uint8:
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    else:
        raise _bad(path, f".npy dtype {arr.dtype} is not supported; use uint8, uint16 or float in [0,1]")
    return arr


def _load_tiff_fallback(path, err: BaseException) -> np.ndarray:
    # PIL cannot hold more than 4 channels; tifffile can, when it is installed.
    try:
        import tifffile
    except ImportError:
        raise _bad(
            path,
            f"{_one_line(err)}; for more than 4 channels save HxWxC arrays as .npy (or install tifffile)",
        ) from None
    try:
        arr = tifffile.imread(path)
    except Exception as e:
        raise _bad(path, _one_line(e)) from None
    if arr.ndim == 3 and arr.shape[0] < min(arr.shape[1:]) and arr.shape[0] <= 64:
        arr = np.moveaxis(arr, 0, -1)  # planar CxHxW -> HxWxC
    if arr.dtype.kind == "f":
        return _check_float(arr, path)
    if arr.dtype not in (np.uint8, np.uint16):
        raise _bad(path, f"TIFF sample type {arr.dtype} is not supported; use 8/16-bit or float")
    return arr


def _tiff16_colour(im: Image.Image) -> bool:
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return False
    bits = getattr(im, "tag_v2", {}).get(258)  # BitsPerSample, one value per channel
    bits = bits if isinstance(bits, tuple) else (bits,)
    return any(b == 16 for b in bits if isinstance(b, int))


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Decode a whole file to HxWxC numpy: uint8, uint16, or float32 in [0,1].

    Channels after normalisation: 1 (L, 1-bit, I;16, I, F), 2 (LA), 3 (RGB; palette, CMYK,
    YCbCr, ...), 4 (RGBA; palette with transparency), or any C from .npy / multi-channel TIFF.
    Raises PixtransError naming the file for a missing, corrupt or truncated file.
    """
    path = os.fspath(path)
    if path.lower().endswith(".npy"):
        arr = _load_npy(path)
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise _bad(path, e.strerror or _one_line(e)) from None
        if (
            _png_bit_depth(data) == 16 and len(data) > 25 and data[25] != 0
        ):  # colour type 0 = grey, which PIL reads exactly
            check_pixels(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), path)
            arr = _load_png16(data, path)
        else:
            try:
                with open_image(io.BytesIO(data), path) as im:
                    if _tiff16_colour(im):  # PIL reads these as 8-bit RGB(A); tifffile keeps 16 bits
                        return _load_tiff_fallback(path, ValueError("16-bit colour TIFF"))
                    im.load()  # full decode: truncated / corrupt data fails here, not mid-training
                    # phone photos store their rotation in EXIF: use the pixels as a viewer shows them
                    arr = _from_pil(ImageOps.exif_transpose(im), path)
            except PixtransError:
                raise
            except UnidentifiedImageError:
                if path.lower().endswith((".tif", ".tiff")):
                    arr = _load_tiff_fallback(path, UnidentifiedImageError("PIL cannot decode this TIFF"))
                else:
                    raise _bad(
                        path, "not an image file PIL recognises (empty, corrupt or wrong extension)"
                    ) from None
            except (OSError, ValueError, SyntaxError) as e:
                if path.lower().endswith((".tif", ".tiff")) and "truncated" not in str(e):
                    arr = _load_tiff_fallback(path, e)
                else:
                    raise _bad(path, f"{_one_line(e)} (is the file complete?)") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise _bad(path, f"empty image of shape {tuple(arr.shape)}")
    return arr


# ----------------------------------------------------------------------------------------------
# Channel conversion and tensors


def _luminance(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601-2 luma with PIL's exact integer rounding (so 8-bit matches Image.convert("L"))
    if rgb.dtype.kind == "f":
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    x = rgb.astype(np.int64)
    y = (x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000) >> 16
    return y.astype(rgb.dtype)


def _opaque(arr: np.ndarray) -> np.ndarray:
    full = 1.0 if arr.dtype.kind == "f" else np.iinfo(arr.dtype).max
    return np.full(arr.shape[:2] + (1,), full, dtype=arr.dtype)


def convert_channels(arr: np.ndarray, channels: int, path: str | os.PathLike = "") -> np.ndarray:
    """HxWxC -> HxWx`channels`: 1 = luminance, 3 = RGB (grey replicated, alpha dropped), 4 = RGBA."""
    c = arr.shape[2]
    if c == channels:
        return arr
    if c <= 4 and channels <= 4:
        grey = c in (1, 2)
        alpha = arr[..., -1:] if c in (2, 4) else _opaque(arr)
        if channels == 1:
            return arr[..., :1] if grey else _luminance(arr[..., :3])[..., None]
        if channels == 2:
            lum = arr[..., :1] if grey else _luminance(arr[..., :3])[..., None]
            return np.concatenate([lum, alpha], axis=2)
        rgb = np.repeat(arr[..., :1], 3, axis=2) if grey else arr[..., :3]
        if channels == 3:
            return np.ascontiguousarray(rgb)
        return np.concatenate([rgb, alpha], axis=2)
    raise PixtransError(
        f"image '{path}' has {c} channels and cannot be converted to {channels}; set data.input_nc / "
        f"data.output_nc to {c} for this side, or convert the files"
    )


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWxC numpy -> [C,H,W] tensor of the same dtype (uint8 / uint16 / float32), contiguous.

    Always one copy: the tensor owns its memory (PIL's arrays are read-only views, and the
    cached halves of an A|B image must not keep the whole file alive).
    """
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1), order="C", copy=True))


def to_float(t: torch.Tensor) -> torch.Tensor:
    """Integer or float [C,H,W] tensor -> float32 in [0,1], scaled by the stored bit depth."""
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    if t.dtype == torch.uint16:
        return t.float().div_(65535.0)
    return t.float()


def read_image(path: str | os.PathLike, channels: int) -> torch.Tensor:
    """Read any supported file as float32 [channels,H,W] in [0,1]."""
    return to_float(to_tensor(convert_channels(load_array(path), channels, path)))


# ----------------------------------------------------------------------------------------------
# Header-only queries


def _npy_header(path) -> tuple[tuple[int, ...], np.dtype]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def image_info(path: str | os.PathLike) -> tuple[int, int, int, int]:
    """(width, height, channels, bytes per value) from the file header, without decoding pixels.

    Channels and bytes are those `load_array` will produce (palette -> 3 or 4, CMYK -> 3, ...).
    """
    path = os.fspath(path)
    try:
        if path.lower().endswith(".npy"):
            shape, dtype = _npy_header(path)
            if len(shape) not in (2, 3):
                raise _bad(path, f".npy arrays must be HxW or HxWxC, got shape {tuple(shape)}")
            check_pixels(shape[1], shape[0], path)
            c = shape[2] if len(shape) == 3 else 1
            return int(shape[1]), int(shape[0]), int(c), 4 if dtype.kind == "f" else dtype.itemsize
        with open_image(path, path) as im:
            w, h = exif_size(im)
            mode = im.mode
            depth16 = im.format == "PNG" and _png16(path)
            transparent = "transparency" in im.info
    except PixtransError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as e:
        raise _bad(path, _one_line(e)) from None
    channels = {"1": 1, "L": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "RGBA": 4, "RGBa": 4, "PA": 4}.get(mode, 3)
    if mode.startswith("I;16"):
        channels = 1
    if mode == "P":
        channels = 4 if transparent else 3
    nbytes = 4 if mode == "F" else 2 if (mode.startswith("I") or depth16) else 1
    return w, h, channels, nbytes


def _png16(path) -> bool:
    with open(path, "rb") as f:
        return _png_bit_depth(f.read(26)) == 16


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) read cheaply from the header."""
    w, h, _, _ = image_info(path)
    return w, h


# ----------------------------------------------------------------------------------------------
# Writing


def write_image(tensor: torch.Tensor, path: str | os.PathLike, quality: int = 95, bits: int = 8) -> Path:
    """Write a [C,H,W] (or [H,W]) tensor in [-1,1]; returns the path actually written.

    1, 3, 4 channels -> PNG/JPEG/TIFF by extension (JPEG has no alpha: a 4th channel is dropped);
    any other channel count -> float32 HxWxC in [0,1] as `path` with suffix .npy.
    bits=16 (16-bit input in, 16-bit out): see `write_array`.
    """
    t = tensor.detach().float().cpu()
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"write_image expects [C,H,W], got shape {tuple(tensor.shape)}")
    t = ((t + 1.0) * 0.5).clamp_(0.0, 1.0).permute(1, 2, 0)
    if t.shape[2] not in (1, 3, 4):
        return write_array(t.numpy().astype(np.float32), path)
    if bits not in (8, 16):
        raise ValueError(f"write_image writes 8 or 16 bits, got {bits}")
    dtype = torch.uint16 if bits == 16 else torch.uint8
    arr = t.mul((1 << bits) - 1).round_().to(torch.int32).to(dtype).numpy()
    return write_array(arr, path, quality=quality)


TIFF_SUFFIXES = (".tif", ".tiff")


def written_path(path: str | os.PathLike, dtype: np.dtype, channels: int) -> Path:
    """Where write_array puts an array of this dtype and channel count asked to go to `path`."""
    path = Path(path)
    if np.dtype(dtype).kind == "f" or channels not in (1, 3, 4):
        return path.with_suffix(".npy")
    if np.dtype(dtype) == np.uint16 and path.suffix.lower() not in TIFF_SUFFIXES:
        return path.with_suffix(".png" if channels == 1 else ".tif")
    return path


def write_array(arr: np.ndarray, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an HxW or HxWxC uint8 / uint16 / float32-in-[0,1] array; returns the path written.

    uint8: PNG/JPEG/TIFF... by extension. uint16 keeps 16 bits: 1 channel as a 16-bit PNG (or
    TIFF); colour as a 16-bit TIFF (tifffile): Pillow cannot write 16-bit colour PNGs, so a .png
    path becomes .tif. Float, or a channel count images cannot hold: .npy.
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    path = written_path(path, arr.dtype, c)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, arr.astype(np.float32))
        return path
    if arr.dtype == np.uint16:
        if path.suffix.lower() not in TIFF_SUFFIXES:
            Image.fromarray(arr[:, :, 0]).save(path)  # one channel: a 16-bit PNG (mode I;16)
            return path
        import tifffile

        tifffile.imwrite(path, arr[:, :, 0] if c == 1 else arr, photometric="minisblack" if c == 1 else "rgb")
        return path
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if jpeg and c == 4:
        arr = arr[:, :, :3]
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if jpeg:
        im.save(path, quality=quality)
    else:
        im.save(path)
    return path


def array_from_pil(im: Image.Image, path: str | os.PathLike = "") -> np.ndarray:
    """An already opened PIL image -> numpy like `load_array` (HxW or HxWxC; `path` names it in errors)."""
    return _from_pil(im, path)
