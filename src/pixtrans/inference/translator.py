"""Translate images with a trained generator: `Translator.from_pretrained(path)(image)`.

`path` is an export folder (config.json + safetensors), a run folder (its export/ when complete
and current, else its newest checkpoint) or a training checkpoint file. Nothing is re-typed:
the architecture, channels and direction come from the saved config.

Images of any size and aspect ratio work: they are padded to the generator's `size_multiple`
(reflect padding, replicate where the pad is wider than the image), translated and cropped back.

Two modes:
  eval   net.eval(): dropout off, BatchNorm uses its running statistics. Deterministic.
  paper  pix2pix's test-time behaviour (Isola et al. 2017, Sec. 3.1 "at inference time, we run
         the generator net in exactly the same manner as during the training phase"): dropout on
         and BatchNorm normalising with the image's own statistics. Images run one at a time
         (the paper's batch size 1) so an image's result does not depend on its neighbours;
         `seed` fixes the dropout noise, per image. No weight or buffer is changed by a call.

Inference never imports pixtrans.training: a model loads with no training code.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from pixtrans import PixtransError
from pixtrans.data.io import (
    _from_pil,
    convert_channels,
    image_files,
    load_array,
    to_float,
    to_tensor,
    write_array,
    write_image,
    written_path,
)
from pixtrans.inference.loading import ModelSource, load_backend_net, open_model, save_export
from pixtrans.inference.padding import pad_to_multiple
from pixtrans.inference.tiling import check_tile_mode, check_tiling, translate_tiled
from pixtrans.nets.modes import paper_mode
from pixtrans.registry import TRANSLATORS
from pixtrans.runtime import (
    autocast_to,
    backend_precision,
    default_inference_precision,
    inference_dtype,
    resolve_device,
)

Mode = Literal["eval", "paper"]
MODES = ("eval", "paper")


def _pick_generator(names: Sequence[str], generator: str | None, where: Any) -> str:
    if generator is not None:
        if generator not in names:
            raise PixtransError(f"'{where}' has no generator '{generator}'; it has: {', '.join(names)}")
        return generator
    if len(names) == 1:
        return names[0]
    if "G" in names:
        return "G"
    raise PixtransError(
        f"'{where}' holds several generators ({', '.join(names)}); choose one with generator=..."
    )


# ----------------------------------------------------------------------------------------------
# Converting what users pass in, and back


@dataclass
class _Item:
    """One user input as [C,H,W] images in [-1,1], and how to give the results back."""

    images: list[torch.Tensor]
    kind: str  # tensor3 | tensor4 | numpy | pil | path
    dtype: Any = None
    device: Any = None
    squeeze: bool = False  # numpy HxW in -> HxW out (one output channel)
    deep: bool = False  # 16-bit in -> 16-bit out where the format allows


def _float_array(arr: np.ndarray, where: str) -> np.ndarray:
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise PixtransError(
            f"{where}: float pixels must lie in [0,1], found [{lo:.4g}, {hi:.4g}]; rescale them"
        )
    return np.clip(arr, 0.0, 1.0)


def load_input(path: str | os.PathLike) -> np.ndarray:
    """data.io.load_array, with whatever else a decoder throws turned into one line naming the file."""
    try:
        return load_array(Path(path))
    except PixtransError:
        raise
    except Exception as e:  # noqa: BLE001 - anything else a decoder throws
        raise PixtransError(f"cannot read image '{path}': {type(e).__name__}: {e}") from None


def refuse_overwrite(dst: str | os.PathLike, dtype, channels: int, inputs: set[Path]) -> None:
    """The file `dst` really becomes (16-bit colour: .tif, data.io.written_path) is never an input."""
    final = written_path(dst, dtype, channels)
    if final.resolve() in inputs:
        raise PixtransError(f"output '{final}' would overwrite an input; choose another output name")


def _bits_dtype(bits: int):
    return np.uint16 if bits == 16 else np.uint8


def _array_to_unit(arr: np.ndarray, channels: int, where: str) -> torch.Tensor:
    """HxW or HxWxC uint8 / uint16 / bool / float in [0,1] -> float32 [C,H,W] in [-1,1]."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise PixtransError(f"{where}: expected an HxW or HxWxC image array, got shape {tuple(arr.shape)}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = _float_array(arr, where)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise PixtransError(
            f"{where}: array dtype {arr.dtype} is not supported; use uint8, uint16 or float in [0,1]"
        )
    arr = convert_channels(arr, channels, where)
    if not arr.flags.writeable:
        arr = arr.copy()  # e.g. np.asarray(PIL image); torch wants to own writable memory
    return to_float(to_tensor(arr)).mul_(2.0).sub_(1.0)


def _to_unit_range(y: torch.Tensor) -> np.ndarray:
    """[C,H,W] in [-1,1] -> HxWxC float32 numpy in [0,1]."""
    return ((y.float().cpu() + 1.0) * 0.5).clamp_(0.0, 1.0).permute(1, 2, 0).numpy()


def _to_array(y: torch.Tensor, dtype: np.dtype, squeeze: bool) -> np.ndarray:
    arr = _to_unit_range(y)
    if dtype in (np.uint8, np.uint16):
        arr = np.rint(arr * np.iinfo(dtype).max).astype(dtype)
    if squeeze and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return arr


def _to_pil(y: torch.Tensor, deep: bool) -> Image.Image:
    c = y.shape[0]
    if c not in (1, 3, 4):
        raise PixtransError(
            f"the generator outputs {c} channels, which a PIL image cannot hold; pass a numpy array or tensor"
        )
    if deep and c == 1:
        return Image.fromarray(_to_array(y, np.uint16, squeeze=True))  # mode I;16
    arr = _to_array(y, np.uint8, squeeze=True)
    return Image.fromarray(arr)


# ----------------------------------------------------------------------------------------------


@TRANSLATORS.register("image")
class Translator:
    """A generator ready to translate images; build it with `Translator.from_pretrained(path)`."""

    def __init__(
        self,
        net: nn.Module,
        *,
        input_nc: int,
        output_nc: int,
        size_multiple: int | None = None,
        name: str = "G",
        direction: str = "AtoB",
        info: dict | None = None,
        device: str | torch.device = "cpu",
        precision: str | None = None,  # fp32 | bf16 | fp16 | auto; None: the CLI's --precision (fp32)
    ):
        self.device = resolve_device(device)
        self.precision = precision or default_inference_precision()
        self.amp_dtype = inference_dtype(self.precision, self.device)  # None: fp32
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.name = name
        self.input_nc = int(input_nc)
        self.output_nc = int(output_nc)
        self.size_multiple = int(size_multiple or getattr(net, "size_multiple", 1))
        self.direction = direction
        self.info = info or {}  # the export's config.json (or its equivalent for a checkpoint)
        # paper mode flips module flags and restores buffers; callers on other threads (a
        # server) must never see the net half-way through that
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        spec = self.info.get("generators", {}).get(self.name, {}).get("spec")
        return (
            f"Translator(name={self.name!r}, spec={spec}, input_nc={self.input_nc}, "
            f"output_nc={self.output_nc}, size_multiple={self.size_multiple}, "
            f"direction={self.direction!r}, device={str(self.device)!r}, precision={self.precision!r})"
        )

    # ------------------------------------------------------------------------------------------
    # Loading

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        generator: str | None = None,
        backend: str = "torch",
        precision: str | None = None,
    ) -> Any:
        """Load from an export folder, a run folder or a training checkpoint file (open_model).

        Returns the translator the model's method declares (registry.TRANSLATORS): a Translator
        for image-to-image models, a LabelTranslator for pix2pixHD. `generator` picks one of
        several generators (CycleGAN: "G_ab" or "G_ba"; with one, or with "G", it may be left
        out) and always gives a plain image Translator over that net. `backend`: "torch", or
        "onnxruntime" / "onnxruntime-int8" to run the export's ONNX models (deploy/ort_backend.py;
        eval mode only), with the same padding, cropping and outputs. `precision`: "fp32" (the
        default), "bf16" / "fp16" autocast (fp16: CUDA), or "auto" (bf16 where native, else fp32).
        """
        path = Path(path)
        if generator is None and path.is_file() and path.suffix == ".safetensors":
            generator = path.stem
        source = open_model(path)
        kind = source.method.translator if generator is None else "image"
        # backend passed only when asked for: a registered translator that predates it still loads
        extra = {} if backend == "torch" else {"backend": backend}
        if precision is not None:
            extra["precision"] = precision
        return TRANSLATORS.get(kind).from_source(source, device=device, generator=generator, **extra)

    @classmethod
    def from_source(
        cls,
        source: ModelSource,
        device: str | torch.device = "cpu",
        generator: str | None = None,
        backend: str = "torch",
        precision: str | None = None,
    ) -> Translator:
        precision = backend_precision(backend, precision, device)
        name = _pick_generator(source.names, generator, source.path)
        io = source.io(name)
        return cls(
            load_backend_net(source, name, backend, device),
            input_nc=io["input_nc"],
            output_nc=io["output_nc"],
            size_multiple=io.get("size_multiple"),
            name=name,
            direction=io.get("direction", source.info.get("direction", "AtoB")),
            info=source.info,
            device=device,
            precision=precision,
        )

    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        """Write this translator as an export (weights + config.json + model card) that
        `from_pretrained(out_dir)` loads back; a CycleGAN translator keeps its one direction."""
        return save_export(out_dir, self.info, {self.name: self.net})

    # ------------------------------------------------------------------------------------------
    # Running the net

    @contextlib.contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        """Dropout noise drawn from `seed`, without disturbing anyone else's random stream."""
        if seed is None:
            yield
            return
        cuda = self.device.type == "cuda"
        devices = (
            [self.device.index if self.device.index is not None else torch.cuda.current_device()]
            if cuda
            else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(devices[0]):
                    torch.cuda.manual_seed(seed)
            yield

    def _run(self, x: torch.Tensor, mode: Mode, seed: int | None) -> torch.Tensor:
        """[B,C,H,W] on self.device in [-1,1] -> [B,output_nc,H,W]; any H, W."""
        h, w = x.shape[-2:]
        with self._lock, torch.inference_mode():
            xp, (top, left) = pad_to_multiple(x, self.size_multiple)
            with autocast_to(self.device, self.amp_dtype):
                if mode == "eval":
                    self.net.eval()
                    y = self.net(xp)
                else:
                    with paper_mode(self.net), self._seeded(seed):
                        y = self.net(xp)
            y = y.float()
        # cloned outside inference mode: callers get ordinary tensors they may modify in place
        return y[..., top : top + h, left : left + w].clone()

    def _check_mode(self, mode: str, batch_size: int) -> None:
        if mode not in MODES:
            raise PixtransError(f"unknown translation mode '{mode}'; valid: {', '.join(MODES)}")
        if batch_size < 1:
            raise PixtransError(f"batch_size must be >= 1, got {batch_size}")

    def _translate_list(self, images: list[torch.Tensor], mode: Mode, seed: int | None, batch_size: int):
        """[C,H,W] images in [-1,1] -> outputs, in order. Eval mode batches consecutive images of
        one size; paper mode runs each alone, each with the same `seed`."""
        out: list[torch.Tensor] = []
        i = 0
        while i < len(images):
            j = i + 1
            if mode == "eval":
                while j < len(images) and j - i < batch_size and images[j].shape == images[i].shape:
                    j += 1
            x = torch.stack([im.to(self.device, torch.float32) for im in images[i:j]])
            out.extend(self._run(x, mode, seed).unbind(0))
            i = j
        return out

    def translate_tensor(
        self, x: torch.Tensor, *, mode: Mode = "eval", seed: int | None = None, batch_size: int = 8
    ) -> torch.Tensor:
        """[C,H,W] or [B,C,H,W] float in [-1,1] -> the same shape with output_nc channels, on x's
        device and dtype."""
        return self(x, mode=mode, seed=seed, batch_size=batch_size)

    def __call__(
        self, image: Any, *, mode: Mode = "eval", seed: int | None = None, batch_size: int = 8
    ) -> Any:
        """Translate one image, or a list of them (list in -> list out). Accepts

        PIL image           -> PIL image (16-bit grey in and 1 channel out -> 16-bit out)
        str / Path          -> PIL image (read like training data, with input_nc channels)
        numpy HxW / HxWxC   -> numpy of the same dtype: uint8, uint16, or float32 in [0,1]
        tensor [C,H,W] or [B,C,H,W], float in [-1,1] -> tensor, same device and dtype
        """
        self._check_mode(mode, batch_size)
        many = isinstance(image, (list, tuple))
        items = [self._to_item(im) for im in (image if many else [image])]
        flat = [im for item in items for im in item.images]
        outs = iter(self._translate_list(flat, mode, seed, batch_size))
        results = [self._from_item(item, [next(outs) for _ in item.images]) for item in items]
        return results if many else results[0]

    def _to_item(self, image: Any) -> _Item:
        c = self.input_nc
        if isinstance(image, torch.Tensor):
            if image.ndim not in (3, 4) or not image.is_floating_point():
                raise PixtransError(
                    "expected a float tensor [C,H,W] or [B,C,H,W] in [-1,1], "
                    f"got {image.dtype} {tuple(image.shape)}"
                )
            if image.shape[-3] != c:
                raise PixtransError(
                    f"the generator takes {c}-channel input, the tensor has {image.shape[-3]} channels"
                )
            batch = image if image.ndim == 4 else image[None]
            kind = "tensor4" if image.ndim == 4 else "tensor3"
            return _Item(list(batch.detach().unbind(0)), kind, dtype=image.dtype, device=image.device)
        if isinstance(image, Image.Image):
            arr = _from_pil(image, "<PIL image>")
            return _Item([_array_to_unit(arr, c, "PIL image")], "pil", deep=arr.dtype == np.uint16)
        if isinstance(image, np.ndarray):
            t = _array_to_unit(image, c, "numpy image")
            return _Item(
                [t],
                "numpy",
                dtype=image.dtype if image.dtype.kind in "uf" else np.uint8,
                squeeze=image.ndim == 2,
            )
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if not path.is_file():
                raise PixtransError(f"input image '{path}' does not exist or is not a file")
            arr = load_array(path)
            return _Item([_array_to_unit(arr, c, str(path))], "path", deep=arr.dtype == np.uint16)
        raise PixtransError(
            f"cannot translate a {type(image).__name__}; pass a PIL image, a path, a numpy array or a tensor"
        )

    def _from_item(self, item: _Item, ys: list[torch.Tensor]) -> Any:
        if item.kind == "tensor4":
            return torch.stack(ys).to(item.device, item.dtype)
        if item.kind == "tensor3":
            return ys[0].to(item.device, item.dtype)
        if item.kind == "numpy":
            dtype = item.dtype if item.dtype in (np.uint8, np.uint16) else np.float32
            return _to_array(ys[0], dtype, item.squeeze)
        return _to_pil(ys[0], item.deep)

    # ------------------------------------------------------------------------------------------
    # Files and folders (the CLI)

    def translate_paths(
        self,
        inputs: str | os.PathLike | Iterable[str | os.PathLike],
        out_dir: str | os.PathLike,
        *,
        batch_size: int = 8,
        mode: Mode = "eval",
        seed: int | None = None,
        progress: bool = True,
        read_workers: int = 2,
        tile: int | None = None,
        overlap: int = 64,
    ) -> list[Path]:
        """Translate image files and folders (recursively) into `out_dir`; returns written paths.

        One input folder: outputs keep their paths relative to it. Several inputs: a folder's
        outputs go under out_dir/<folder name>/, a file's to out_dir/<file name>. Outputs are PNG
        (.npy when the output has a channel count PNG cannot hold; 16-bit inputs give 16-bit
        outputs, colour ones as 16-bit TIFF, see data.io.write_array). Inputs are never
        overwritten, and files already under out_dir are not picked up as inputs.
        tile: translate each image in tiles of this side (inference/tiling.py; eval mode only).
        """
        from tqdm.auto import tqdm

        self._check_mode(mode, batch_size)
        if tile is not None:
            check_tile_mode(mode)
            check_tiling(tile, overlap, self.size_multiple)
        # write_image stores channel counts PNG cannot hold as float .npy
        jobs = plan_outputs(inputs, out_dir, suffix=".png" if self.output_nc in (1, 3, 4) else ".npy")
        written: list[Path] = []
        bar = tqdm(total=len(jobs), unit="img", disable=not progress, desc=f"translate ({mode})")
        pending: list[tuple[Path, torch.Tensor, int]] = []

        sources = {src.resolve() for src, _ in jobs}

        def check_dst(dst: Path, dtype, channels: int) -> Path:
            refuse_overwrite(dst, dtype, channels, sources)
            return dst

        if tile is not None:
            try:
                for src, dst in jobs:
                    y = self.translate_tiled(src, tile=tile, overlap=overlap)
                    written.append(write_array(y, check_dst(dst, y.dtype, y.shape[2])))
                    bar.update(1)
            finally:
                bar.close()
            return written

        def flush() -> None:
            ys = self._translate_list([x for _, x, _ in pending], mode, seed, batch_size)
            for (dst, _, bits), y in zip(pending, ys, strict=True):
                check_dst(dst, _bits_dtype(bits), y.shape[0])
                written.append(write_image(y, dst, bits=bits))
            bar.update(len(pending))
            pending.clear()

        try:
            for (_, dst), (x, bits) in zip(
                jobs, self._read_ahead([src for src, _ in jobs], read_workers), strict=True
            ):
                if pending and (
                    len(pending) >= batch_size or pending[0][1].shape != x.shape or mode == "paper"
                ):
                    flush()
                pending.append((dst, x, bits))
            if pending:
                flush()
        finally:
            bar.close()
        return written

    def translate_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        *,
        mode: Mode = "eval",
        seed: int | None = None,
        tile: int | None = None,
        overlap: int = 64,
    ) -> Path:
        """One image file -> `dst` (16-bit in, 16-bit out; see translate_paths); the path written."""
        self._check_mode(mode, 1)
        inputs = {Path(src).resolve()}
        if tile is not None:
            y = self.translate_tiled(src, tile=tile, overlap=overlap, mode=mode)
            refuse_overwrite(dst, y.dtype, y.shape[2], inputs)
            return write_array(y, dst)
        x, bits = self._read(Path(src))
        (y,) = self._translate_list([x], mode, seed, 1)
        refuse_overwrite(dst, _bits_dtype(bits), y.shape[0], inputs)
        return write_image(y, dst, bits=bits)

    def translate_tiled(
        self, image: Any, *, tile: int = 512, overlap: int = 64, mode: Mode = "eval"
    ) -> np.ndarray:
        """An image of any size (path, or numpy HxW / HxWxC uint8, uint16 or float in [0,1]) ->
        numpy HxWxC of the same dtype (a path: its stored dtype), translated in overlapping
        tiles blended without seams, with bounded memory (inference/tiling.py). Eval mode only."""
        check_tile_mode(mode)
        if isinstance(image, (str, os.PathLike)):
            where, arr = str(image), load_input(image)
        elif isinstance(image, np.ndarray):
            where, arr = "numpy image", image
            if arr.dtype.kind == "f":
                arr = _float_array(arr, where)
            elif arr.dtype not in (np.uint8, np.uint16):
                raise PixtransError(
                    f"{where}: dtype {arr.dtype} is not supported; use uint8, uint16 or float"
                )
        else:
            raise PixtransError(
                f"tiled translation takes a path or a numpy array, not {type(image).__name__}"
            )
        arr = convert_channels(arr if arr.ndim == 3 else arr[:, :, None], self.input_nc, where)

        def run(x: torch.Tensor) -> torch.Tensor:
            return self._run(x.to(self.device), "eval", None)

        return translate_tiled(
            run, arr, tile=tile, overlap=overlap, size_multiple=self.size_multiple, output_nc=self.output_nc
        )

    def _read(self, path: Path) -> tuple[torch.Tensor, int]:
        """(the image as [C,H,W] in [-1,1], its stored bits: 16 for uint16 files, else 8)."""
        arr = convert_channels(load_input(path), self.input_nc, path)
        bits = 16 if arr.dtype == np.uint16 else 8
        return to_float(to_tensor(arr)).mul_(2.0).sub_(1.0), bits

    def _read_ahead(self, paths: list[Path], workers: int) -> Iterator[tuple[torch.Tensor, int]]:
        """Decode the next few files on worker threads while the net runs (bounded memory)."""
        if workers <= 0:
            yield from (self._read(p) for p in paths)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            window: deque = deque()
            it = iter(paths)
            for p in it:
                window.append(pool.submit(self._read, p))
                if len(window) >= 2 * workers + 2:
                    break
            while window:
                result = window.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    window.append(pool.submit(self._read, nxt))
                yield result


def plan_outputs(
    inputs: str | os.PathLike | Iterable[str | os.PathLike], out_dir: str | os.PathLike, suffix: str = ".png"
) -> list[tuple[Path, Path]]:
    """[(input file, output path)] for files and folders (recursive); checks the names up front."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise PixtransError("no inputs given; pass image files or folders")
    out_dir = Path(out_dir)
    out_resolved = out_dir.resolve()
    jobs: list[tuple[Path, Path]] = []
    for inp in inputs:
        if inp.is_file():
            jobs.append((inp, out_dir / Path(inp.name).with_suffix(suffix)))
        elif inp.is_dir():
            base = out_dir if len(inputs) == 1 else out_dir / inp.resolve().name
            # our own earlier outputs, when out_dir lies inside this folder
            skip = out_resolved if out_resolved != inp.resolve() else None
            found = [
                (path, base / path.relative_to(inp).with_suffix(suffix))
                for path in image_files(inp, recursive=True, skip=skip)
            ]
            if not found:
                raise PixtransError(f"no image files found in folder '{inp}' (png, jpg, tif, npy, ...)")
            jobs.extend(found)
        else:
            raise PixtransError(f"input '{inp}' does not exist; pass image files or folders")
    sources = {src.resolve() for src, _ in jobs}
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        key = dst.resolve()
        if key in sources:
            raise PixtransError(
                f"output '{dst}' would overwrite the input '{src}'; choose another output folder"
            )
        if key in seen:
            raise PixtransError(
                f"inputs '{seen[key]}' and '{src}' would both be written to '{dst}'; rename one"
            )
        seen[key] = src
    return jobs
