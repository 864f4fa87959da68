"""Paired metrics: one score per (real, fake) image pair, averaged over the pairs.

Every function takes two HxWxC float arrays in [0,1] of the same shape (the evaluation reads
8-bit and 16-bit files alike into [0,1]), so data_range is 1 everywhere.

  l1     mean |real - fake| over pixels and channels, in [0,1] units (0 = identical).
  psnr   scikit-image `peak_signal_noise_ratio(real, fake, data_range=1)`: 10 log10(1 / MSE),
         MSE over pixels and channels; +inf for identical images (the mean is then +inf too).
  ssim   scikit-image `structural_similarity(real, fake, channel_axis=-1, data_range=1,
         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`: Wang et al. (2004)'s
         settings (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, population covariances),
         computed per channel and averaged over channels, then over the image. Unlike Wang et
         al.'s MATLAB script the images are not downsampled first. Both sides need at least 11
         pixels per side.
  lpips  Zhang et al. (2018) LPIPS v0.1 with the AlexNet trunk, from the `lpips` package (its
         calibrated linear layers ship with it) and torchvision's ImageNet AlexNet weights, which
         the package would download: we load them from a local file instead (see
         `lpips_alexnet_path`) and never download. Inputs are RGB scaled to [-1,1].
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pixtrans import PixtransError
from pixtrans.metrics.base import Metric, register

SSIM_SETTINGS = dict(
    data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1
)
SSIM_MIN_SIDE = 11  # the Gaussian window: 2 * int(3.5 * sigma + 0.5) + 1


def l1(real: np.ndarray, fake: np.ndarray, options: Mapping[str, Any] | None = None) -> float:
    return float(np.mean(np.abs(np.asarray(real, np.float64) - np.asarray(fake, np.float64))))


def psnr(real: np.ndarray, fake: np.ndarray, options: Mapping[str, Any] | None = None) -> float:
    """10 log10(range^2 / MSE), range 1, MSE over every value in float64 (scikit-image's formula)."""
    mse = np.mean((np.asarray(real, np.float64) - np.asarray(fake, np.float64)) ** 2, dtype=np.float64)
    with np.errstate(divide="ignore"):  # identical images: MSE 0 -> +inf, as intended
        return float(10.0 * np.log10(1.0 / mse))


def _check_skimage(options: Mapping[str, Any]) -> None:
    if importlib.util.find_spec("skimage") is None:
        raise PixtransError("SSIM needs scikit-image: pip install 'pixtrans[eval]' (or scikit-image)")


def ssim(real: np.ndarray, fake: np.ndarray, options: Mapping[str, Any] | None = None) -> float:
    from skimage.metrics import structural_similarity

    if min(real.shape[:2]) < SSIM_MIN_SIDE:
        raise PixtransError(
            f"image of {real.shape[1]}x{real.shape[0]} pixels is smaller than SSIM's "
            f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} window; leave ssim out for such small images"
        )
    return float(structural_similarity(real, fake, **SSIM_SETTINGS))


# ----------------------------------------------------------------------------------------------
# LPIPS

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1
ALEXNET_ENV = "PIXTRANS_LPIPS_ALEXNET"


def lpips_alexnet_path(options: Mapping[str, Any] | None = None) -> Path:
    """The AlexNet weights file for LPIPS: options["lpips_alexnet"], else $PIXTRANS_LPIPS_ALEXNET,
    else torchvision's download cache (<torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth)."""
    options = options or {}
    for value, origin in (
        (options.get("lpips_alexnet"), "lpips_alexnet"),
        (os.environ.get(ALEXNET_ENV), f"${ALEXNET_ENV}"),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise PixtransError(f"LPIPS AlexNet weights '{path}' ({origin}) do not exist")
            return path
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not path.is_file():
        raise PixtransError(
            f"LPIPS needs torchvision's ImageNet AlexNet weights ({ALEXNET_FILE}), which are not here "
            "and are never downloaded: fetch https://download.pytorch.org/models/"
            + ALEXNET_FILE
            + f" once and set {ALEXNET_ENV}=PATH, or place it at '{path}'"
        )
    return path


def _check_lpips(options: Mapping[str, Any]) -> None:
    if importlib.util.find_spec("lpips") is None:
        raise PixtransError(
            "LPIPS needs the 'lpips' package (its calibrated layers): pip install lpips "
            "(or pip install 'pixtrans[eval]')"
        )
    lpips_alexnet_path(options)


_lpips_lock = threading.Lock()
_lpips_nets: dict[tuple, Any] = {}


def load_lpips(alexnet_path: str | os.PathLike, device: str = "cpu"):
    """lpips.LPIPS(net="alex", version="0.1") with its AlexNet trunk read from `alexnet_path`."""
    import lpips
    import torch

    path = Path(alexnet_path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
    with _lpips_lock:
        if key in _lpips_nets:
            return _lpips_nets[key]
        # the package prints while loading and calls torchvision's deprecated pretrained=False
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - pickle / zip errors
            raise PixtransError(f"cannot read LPIPS AlexNet weights '{path}': {type(e).__name__}") from None
        trunk = net.net.state_dict()
        # lpips' slices keep torchvision's indices into alexnet.features: slice2.3.weight = features.3.weight
        mapped = {}
        for key_ in trunk:
            _, index, param = key_.split(".")
            src = state.get(f"features.{index}.{param}") if isinstance(state, dict) else None
            if src is None or tuple(src.shape) != tuple(trunk[key_].shape):
                raise PixtransError(
                    f"'{path}' is not torchvision's AlexNet state dict (features.{index}.{param} missing "
                    "or of another shape)"
                )
            mapped[key_] = src
        net.net.load_state_dict(mapped, strict=True)
        net = net.to(device).eval().requires_grad_(False)
        _lpips_nets[key] = net
        return net


def lpips_distance(real: np.ndarray, fake: np.ndarray, options: Mapping[str, Any] | None = None) -> float:
    import torch

    options = options or {}
    device = options.get("device", "cpu")
    net = load_lpips(lpips_alexnet_path(options), device)

    def prep(a: np.ndarray) -> torch.Tensor:
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        if a.shape[2] != 3:
            raise PixtransError(f"LPIPS compares RGB images; these have {a.shape[2]} channels")
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
        return (t * 2.0 - 1.0)[None].to(device)

    with torch.inference_mode():
        return float(net(prep(real), prep(fake)).flatten()[0])


register(Metric("l1", "paired", False, "mean absolute difference, in [0,1] pixel units", l1))
register(Metric("psnr", "paired", True, "peak signal-to-noise ratio in dB (data range 1)", psnr))
register(
    Metric(
        "ssim",
        "paired",
        True,
        "structural similarity, Gaussian 11x11 window sigma 1.5 (Wang et al.; scikit-image)",
        ssim,
        check=_check_skimage,
    )
)
register(
    Metric(
        "lpips",
        "paired",
        False,
        "LPIPS v0.1 perceptual distance, AlexNet trunk (lpips package; local weights only)",
        lpips_distance,
        check=_check_lpips,
        needs="lpips",
    )
)
