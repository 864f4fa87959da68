"""`pixtrans prepare edges PHOTOS/ OUT/`: photos -> edge map | photo pairs for edges -> photo
training (the pix2pix paper's edges2shoes / edges2handbags tasks; data.direction AtoB).

Detectors:

canny (default)  scikit-image's Canny (`skimage.feature.canny`) on the photo's grey image in
                 [0, 1]: Gaussian smoothing of `sigma` pixels, then hysteresis thresholds `low`
                 and `high` on the gradient magnitude (absolute values for a [0,1] image).
                 Deterministic: the same photo and settings give the same edges, bit for bit.
hed              the paper's detector (HED, Xie & Tu 2015, then thinning and removal of small
                 edges). Its weights are not part of pixtrans: pass your own model file with
                 --hed-model, an ONNX file (run with onnxruntime) or a TorchScript file
                 (torch.jit.save). Contract: the model takes a float32 [1,3,H,W] RGB image in
                 [0,1] (or, with --hed-caffe, the original Caffe input: BGR in 0..255 minus the
                 mean 104.007, 116.669, 122.679) and returns an edge probability map [1,1,h,w]
                 (a list of side outputs: the last, the fused map, is used; values outside
                 [0,1] are read as logits). The map is resized to the photo, thresholded at
                 --hed-threshold and thinned.

Cleanup (both detectors): --thin reduces edges to 1-pixel lines (`skimage.morphology.skeletonize`;
on by default for HED, Canny's are thin already), --min-edge-pixels N removes connected edge
pieces of fewer than N pixels (`skimage.morphology.remove_small_objects`, 8-connected).

Output: OUT/<split>/name.png, the edge map (black lines on white, as edges2shoes) on the left
and the photo on the right, both --size x --size when given (else the photo's own size).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from pixtrans import PixtransError
from pixtrans.prepare.common import (
    PrepareReport,
    Skipped,
    Unreadable,
    as_rgb,
    by_stem,
    check_format,
    find_splits,
    prepare_output,
    read_8bit,
    scan,
    write_array,
)

CANNY_DEFAULTS = {"sigma": 2.0, "low": 0.1, "high": 0.2}
HED_CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


def _skimage():
    try:
        import skimage.feature
        import skimage.morphology
    except ImportError:
        raise PixtransError(
            "`pixtrans prepare edges` uses scikit-image (Canny, thinning); pip install 'pixtrans[prepare]'"
        ) from None
    return skimage


class HedModel:
    """A user-provided HED edge detector: an ONNX file or a TorchScript file (module docstring)."""

    def __init__(self, path: str | os.PathLike, *, caffe_input: bool = False):
        self.path = Path(path)
        self.caffe_input = caffe_input
        if not self.path.is_file():
            raise PixtransError(
                f"HED model file '{self.path}' not found; pixtrans ships no HED weights: give an ONNX "
                "or TorchScript file of a HED detector with --hed-model, or use --detector canny"
            )
        if self.path.suffix.lower() == ".onnx":
            try:
                import onnxruntime
            except ImportError:
                raise PixtransError(
                    f"'{self.path}' is an ONNX model, which needs onnxruntime; pip install 'pixtrans[hed]'"
                ) from None
            try:
                self._session = onnxruntime.InferenceSession(
                    str(self.path), providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise PixtransError(
                    f"HED model '{self.path}' is not a valid ONNX model: {str(e).splitlines()[0]}"
                ) from None
            self._input = self._session.get_inputs()[0].name
            self.kind = "onnx"
        else:
            import torch

            try:
                with warnings.catch_warnings():  # TorchScript's deprecation notice: the file is the user's
                    warnings.filterwarnings("ignore", message=".*is deprecated.*")
                    self._module = torch.jit.load(str(self.path), map_location="cpu").eval()
            except Exception as e:  # noqa: BLE001 - torch.jit.load raises RuntimeError and others
                raise PixtransError(
                    f"HED model '{self.path}' is neither an ONNX file (.onnx) nor a TorchScript file "
                    f"(torch.jit.save): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                ) from None
            self.kind = "torchscript"

    def _input_array(self, rgb: np.ndarray) -> np.ndarray:
        x = rgb.astype(np.float32)
        if self.caffe_input:
            x = x[:, :, ::-1] - np.array(HED_CAFFE_MEAN_BGR, dtype=np.float32)
        else:
            x = x / 255.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # [1,3,H,W]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> HxW float32 edge probability in [0,1]."""
        x = self._input_array(rgb)
        try:
            if self.kind == "onnx":
                out = self._session.run(None, {self._input: x})
            else:
                import torch

                with torch.inference_mode():
                    out = self._module(torch.from_numpy(x))
        except Exception as e:  # noqa: BLE001 - the model's own failure, reported in one line
            raise PixtransError(
                f"HED model '{self.path}' failed on a {rgb.shape[1]}x{rgb.shape[0]} image: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
        if isinstance(out, (list, tuple)):
            out = out[-1]  # HED's side outputs come first, the fused map last
        prob = np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out, dtype=np.float32)
        prob = prob.squeeze()
        if prob.ndim != 2:
            raise PixtransError(
                f"HED model '{self.path}' returned shape {tuple(np.shape(out))}; expected an edge map "
                "[1,1,H,W] (module docstring of pixtrans.prepare.edges)"
            )
        if prob.min() < 0.0 or prob.max() > 1.0:
            prob = 1.0 / (1.0 + np.exp(-prob))  # logits
        h, w = rgb.shape[:2]
        if prob.shape != (h, w):
            prob = np.asarray(Image.fromarray(prob).resize((w, h), Image.Resampling.BILINEAR))
        return prob


def edge_map(
    rgb: np.ndarray,
    *,
    detector: str = "canny",
    sigma: float = CANNY_DEFAULTS["sigma"],
    low: float = CANNY_DEFAULTS["low"],
    high: float = CANNY_DEFAULTS["high"],
    thin: bool | None = None,  # None: on for HED, off for Canny
    min_edge_pixels: int = 0,
    hed: HedModel | None = None,
    hed_threshold: float = 0.5,
) -> np.ndarray:
    """HxWx3 uint8 photo -> HxW bool, True on edges."""
    sk = _skimage()
    if detector == "canny":
        from skimage.color import rgb2gray

        edges = sk.feature.canny(rgb2gray(rgb), sigma=sigma, low_threshold=low, high_threshold=high)
    elif detector == "hed":
        if hed is None:
            raise PixtransError("--detector hed needs --hed-model FILE (an ONNX or TorchScript HED model)")
        edges = hed(rgb) >= hed_threshold
    else:
        raise PixtransError(f"--detector '{detector}' is not one of canny, hed")
    if thin if thin is not None else detector == "hed":
        edges = sk.morphology.skeletonize(edges)
    if min_edge_pixels > 0:
        try:  # scikit-image >= 0.26 names the kept size max_size; older ones min_size
            edges = sk.morphology.remove_small_objects(edges, max_size=min_edge_pixels - 1, connectivity=2)
        except TypeError:
            edges = sk.morphology.remove_small_objects(edges, min_size=min_edge_pixels, connectivity=2)
    return edges


def make_edges(
    photos: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "train",  # output split when PHOTOS holds images directly
    detector: str = "canny",
    sigma: float = CANNY_DEFAULTS["sigma"],
    low: float = CANNY_DEFAULTS["low"],
    high: float = CANNY_DEFAULTS["high"],
    thin: bool | None = None,
    min_edge_pixels: int = 0,
    hed_model: str | os.PathLike | None = None,
    hed_caffe: bool = False,
    hed_threshold: float = 0.5,
    size: int = 0,  # resize photos to size x size first (0 = keep their size)
    fmt: str = "png",
    overwrite: bool = False,
    echo: Callable[[str], None] | None = print,
) -> PrepareReport:
    """PHOTOS/ -> OUT/<split>/name.<fmt> holding edge map | photo; returns what was written and
    skipped."""
    photos, out = Path(photos), Path(out)
    check_format(fmt)
    if detector not in ("canny", "hed"):
        raise PixtransError(f"--detector '{detector}' is not one of canny, hed")
    if not 0 <= low <= high:
        raise PixtransError(f"Canny thresholds need 0 <= --low <= --high, got {low} and {high}")
    if sigma < 0 or size < 0 or min_edge_pixels < 0:
        raise PixtransError("--sigma, --size and --min-edge-pixels must be >= 0")
    if not 0.0 < hed_threshold < 1.0:
        raise PixtransError(f"--hed-threshold must lie in (0, 1), got {hed_threshold}")
    _skimage()
    hed = None
    if detector == "hed" or hed_model is not None:
        if hed_model is None:
            raise PixtransError(
                "--detector hed needs --hed-model FILE: pixtrans ships no HED weights (give an ONNX or "
                "TorchScript HED model), or use --detector canny"
            )
        hed = HedModel(hed_model, caffe_input=hed_caffe)
        detector = "hed"
    report = PrepareReport()
    plan = []
    for name, folder in find_splits(photos, "photo"):
        images, others = scan(folder)
        report.skipped += others
        stems, dup = by_stem(images)
        report.skipped += dup
        plan.append((out / (name or split), sorted(stems.items())))
    for folder, jobs in plan:
        prepare_output(folder, {f"{stem}.{fmt}" for stem, _ in jobs}, overwrite)
    for folder, jobs in plan:
        n = 0
        for stem, path in jobs:
            try:
                rgb = as_rgb(read_8bit(path))
            except Unreadable as e:
                report.skipped.append(Skipped(str(path), str(e)))
                continue
            if size:
                rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))
            edges = edge_map(
                rgb,
                detector=detector,
                sigma=sigma,
                low=low,
                high=high,
                thin=thin,
                min_edge_pixels=min_edge_pixels,
                hed=hed,
                hed_threshold=hed_threshold,
            )
            drawing = np.where(edges, 0, 255).astype(np.uint8)[:, :, None].repeat(3, axis=2)
            write_array(np.concatenate([drawing, rgb], axis=1), folder / f"{stem}.{fmt}", fmt)
            n += 1
        report.written[str(folder)] = n
    if not report.total:
        first = (
            f" (first skipped: {report.skipped[0].path}: {report.skipped[0].reason})"
            if report.skipped
            else ""
        )
        raise PixtransError(f"no photo of '{photos}' could be read{first}")
    report.echo(echo)
    return report
