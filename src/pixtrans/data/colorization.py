"""Colorization data (pix2pix paper §4.2; the official repository's `colorization` dataset): a
folder of ordinary colour photos, each shown to the network as its CIE Lab lightness L and
trained to predict the two colour channels ab.

On disk: `root/<split>/*.jpg|png|...`, or, for a plain folder of photos, `root/` itself for the
training split (no held-out split then: sample grids show training photos).

The colour maths is scikit-image's (`skimage.color.rgb2lab` / `lab2rgb`, D65 white, sRGB), not
ours. Scaling, as the official code: L in [0, 100] -> L / 50 - 1 in [-1, 1]; a and b (about
[-110, 110] for sRGB colours) -> ab / 110 in [-1, 1].

    real_a  [1, H, W]  L / 50 - 1
    real_b  [2, H, W]  ab / 110
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.data.cached import BadFile, CachedDataset, parse_key
from pixtrans.data.io import convert_channels, load_array, to_float, to_tensor
from pixtrans.data.paired import check_settings, decode_all, drop_unreadable, list_images
from pixtrans.data.transforms import apply_params, check_size, sample_params
from pixtrans.registry import DATASETS

log = logging.getLogger("pixtrans.data")

L_SCALE, L_SHIFT = 50.0, 1.0  # L in [0,100] -> L/50 - 1
AB_SCALE = 110.0  # a, b -> ab/110
INPUT_NC, OUTPUT_NC = 1, 2  # L in, ab out


def _skimage_color():
    try:
        from skimage import color
    except ImportError:
        raise PixtransError(
            "colorization converts photos to Lab with scikit-image, which is not installed; "
            "pip install 'pixtrans[color]' (or scikit-image)"
        ) from None
    return color


def _as_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 / uint16 / float in [0,1] -> float64 in [0,1] (what skimage expects)."""
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float64) / 65535.0
    return np.clip(rgb.astype(np.float64), 0.0, 1.0)


def rgb_to_lab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 sRGB (uint8, uint16 or float in [0,1]) -> (L [H,W], ab [H,W,2]), both float32 and
    scaled to about [-1, 1] (module docstring)."""
    lab = _skimage_color().rgb2lab(_as_unit_rgb(rgb))
    lightness = lab[..., 0] / L_SCALE - L_SHIFT
    ab = lab[..., 1:] / AB_SCALE
    return lightness.astype(np.float32), ab.astype(np.float32)


def lab_to_rgb(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Scaled L [H,W] and ab [H,W,2] -> HxWx3 sRGB float32 in [0,1]; colours outside sRGB are
    clipped (a predicted ab need not be a colour a screen can show)."""
    lab = np.concatenate(
        [(lightness[..., None].astype(np.float64) + L_SHIFT) * L_SCALE, ab.astype(np.float64) * AB_SCALE],
        axis=-1,
    )
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    with warnings.catch_warnings():
        # "negative Z values that have been clipped to zero": expected for out-of-gamut ab
        warnings.simplefilter("ignore", UserWarning)
        rgb = _skimage_color().lab2rgb(lab)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def lab_tensors_to_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] scaled L + [B,2,H,W] scaled ab -> [B,3,H,W] RGB in [-1,1], on L's device/dtype."""
    l_np = lightness.detach().float().cpu().numpy()
    ab_np = ab.detach().float().cpu().numpy()
    rgb = [lab_to_rgb(l_np[i, 0], ab_np[i].transpose(1, 2, 0)) for i in range(l_np.shape[0])]
    out = torch.from_numpy(np.stack(rgb).transpose(0, 3, 1, 2).copy())
    return (out * 2.0 - 1.0).to(lightness.device, lightness.dtype)


def grey_to_rgb(lightness: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] scaled L -> [B,3,H,W] the grey photo (L with ab = 0) in [-1,1]."""
    return lab_tensors_to_rgb(lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1))


def lightness_of(arr: np.ndarray, where: str = "image") -> np.ndarray:
    """Any HxW / HxWxC image array (grey, RGB, with alpha; uint8, uint16 or float in [0,1]) ->
    its scaled Lab lightness [H,W] float32: what a colorization net reads."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    rgb = convert_channels(arr, 3, where)  # grey is replicated, so its L is its own lightness
    return rgb_to_lab(rgb)[0]


def find_photos(root: Path, split: str) -> Path:
    """root/<split>, or root itself for the training split of a plain folder of photos."""
    if (root / split).is_dir():
        return root / split
    if split == "train" and list_images_or_none(root):
        return root
    raise PixtransError(
        f"no photo folder for split '{split}': expected '{root / split}/' (or, for training, photos "
        f"directly in '{root}'); check data.root and data.train_split / data.val_split"
    )


def list_images_or_none(folder: Path) -> bool:
    try:
        list_images(folder, "colour photos")
    except PixtransError:
        return False
    return True


@DATASETS.register("colorization")
class ColorizationDataset(CachedDataset):
    """Colour photos -> {"real_a": L [1,H,W], "real_b": ab [2,H,W], "path", "index"}.

    Crops and flips are drawn on the RGB photo (as pix2pix's other data), then converted to Lab.
    `ds[i]` is deterministic (centre crop, no flip), `ds[(i, seed)]` one random draw.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike,  # folder of colour photos (or holding <split>/ folders of them)
        split: str = "train",
        input_nc: int = INPUT_NC,  # must be 1: the L channel
        output_nc: int = OUTPUT_NC,  # must be 2: the ab channels
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        cache: str = "auto",  # keep the decoded uint8 photos in memory
        cache_max_gb: float = 4.0,
        bad_files: str = "fail",
        max_images: int = 0,
        layout: str = "auto",  # accepted for a uniform builder call; one layout
        direction: str = "AtoB",  # accepted for a uniform builder call; L is always the input
        resample: str = "bicubic",
        num_threads: int = 0,
    ):
        _skimage_color()  # a missing dependency answers before any file is read
        if (int(input_nc), int(output_nc)) != (INPUT_NC, OUTPUT_NC):
            raise PixtransError(
                f"data.dataset=colorization reads L (1 channel) and predicts ab (2 channels), but "
                f"data.input_nc={input_nc}, data.output_nc={output_nc}; set data.input_nc=1 "
                "data.output_nc=2 (the pix2pix/colorization preset does)"
            )
        self.root = check_settings(
            root=root,
            split=split,
            direction="AtoB",
            input_nc=input_nc,
            output_nc=output_nc,
            preprocess=preprocess,
            load_size=load_size,
            crop_size=crop_size,
            cache=cache,
            bad_files=bad_files,
            resample=resample,
        )
        self.split = split
        self.input_nc, self.output_nc = INPUT_NC, OUTPUT_NC
        self.preprocess, self.load_size, self.crop_size, self.flip = preprocess, load_size, crop_size, flip
        self.bad_files, self.resample = bad_files, resample
        self.skipped = 0
        folder = find_photos(self.root, split)
        self.folder = str(folder)
        self.files = [str(p) for p in list_images(folder, "colour photos (png, jpg, ...)")]
        if max_images and max_images > 0:
            self.files = self.files[:max_images]
        self.cache_mode, self.cache_max_bytes = cache, int(cache_max_gb * 2**30)
        self._cache: dict[int, tuple[torch.Tensor]] | None = {} if cache != "off" else None
        self.cache_bytes = 0
        self.dropped: list[str] = []
        self.grey: list[str] = []  # photos without colour (their target is ab = 0)
        self._validate(num_threads or min(8, os.cpu_count() or 1))

    def _decode(self, i: int) -> tuple[torch.Tensor]:
        path = self.files[i]
        try:
            arr = load_array(path)
        except PixtransError as e:
            raise BadFile(str(e), path) from None
        if arr.dtype.kind == "f":
            raise BadFile(f"'{path}' is a float array, not a photo; colorization needs RGB images", path)
        return (to_tensor(convert_channels(arr, 3, path)),)

    def _validate(self, num_threads: int) -> None:
        def check_one(i: int):
            try:
                (rgb,) = self._decode(i)
            except BadFile as e:
                return "bad", e
            h, w = rgb.shape[-2:]
            check_size(self.preprocess, (w, h), self.load_size, self.crop_size, self.files[i])
            if bool((rgb[0] == rgb[1]).all() and (rgb[1] == rgb[2]).all()):
                self.grey.append(self.files[i])
            return "ok", (rgb,) if self._cache is not None else None

        bad, keep, self.cache_bytes = decode_all(
            len(self.files),
            check_one,
            cache=self._cache is not None,
            cache_mode=self.cache_mode,
            cache_max_bytes=self.cache_max_bytes,
            num_threads=num_threads,
        )
        self.files, self._cache, self.dropped = drop_unreadable(
            self.files, bad, keep, policy=self.bad_files, folder=self.folder, what="photos"
        )
        if self.grey:
            log.warning(
                f"{len(self.grey)} of {len(self.files)} photos in '{self.folder}' have no colour "
                f"(first: {os.path.basename(sorted(self.grey)[0])}); they teach the net ab = 0"
            )

    # what evaluation reads of a paired dataset (evaluation/model.py): each photo is both the
    # source of the input (its L) and the target a colourisation is scored against
    layout = "photos"
    direction = "AtoB"

    @property
    def samples(self) -> list[tuple[str, str]]:
        return [(p, p) for p in self.files]

    def _input_files(self):
        yield from ((p, False) for p in self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key) -> dict:
        index, generator = parse_key(key, len(self), "photos")
        i, (rgb,) = self._load_readable(index, f"'{self.folder}'")
        h, w = rgb.shape[-2:]
        path = self.files[i]
        params = sample_params(
            self.preprocess, (w, h), self.load_size, self.crop_size, self.flip, generator=generator, path=path
        )
        t = apply_params(rgb, params, self.preprocess, self.load_size, self.crop_size, resample=self.resample)
        arr = to_float(t).permute(1, 2, 0).numpy()  # HxWx3 in [0,1]
        lightness, ab = rgb_to_lab(arr)
        real_a = torch.from_numpy(lightness)[None]
        real_b = torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))
        return {"real_a": real_a, "real_b": real_b, "path": path, "index": i}

    def __repr__(self) -> str:
        return (
            f"ColorizationDataset({len(self)} photos, '{self.folder}', L -> ab, "
            f"{self.preprocess} {self.load_size}/{self.crop_size}, cache {self._cache_text()})"
        )
