"""A procedural paired dataset: tiny "facades" label maps and the "photos" rendered from them.

It exists so the default demo trains visibly in minutes on a CPU without downloading anything.
Each image is a few buildings (wall, roof band, window grid, balconies, door, pillars, round
ornaments) on a sky. The label map paints every class one flat colour; the photo renders every
class with its own texture (gradients, shading, stripes, smooth noise) and soft edges, so
labels -> photo (direction BtoA, as with facades) is learnable but not trivial.

Files are aligned A|B PNGs, A = photo (left), B = label map (right), in out_dir/train and
out_dir/val (90/10). Everything is numpy-vectorised and deterministic from (seed, image index).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pixtrans import PixtransError
from pixtrans.data.paired import PairedDataset
from pixtrans.fsutil import cache_dir
from pixtrans.registry import DATASETS

VERSION = 1  # bump when the drawing changes, so cached sets are regenerated
CLASSES = ("sky", "wall", "window", "door", "roof", "balcony", "pillar", "ornament")
SKY, WALL, WINDOW, DOOR, ROOF, BALCONY, PILLAR, ORNAMENT = range(len(CLASSES))
# flat label colours, far apart so the map is unambiguous (RGB)
PALETTE = np.array(
    [
        [0, 0, 170],
        [0, 85, 255],
        [85, 255, 170],
        [255, 170, 0],
        [255, 0, 0],
        [170, 255, 85],
        [255, 255, 0],
        [170, 0, 170],
    ],
    dtype=np.uint8,
)
_MANIFEST = "manifest.json"
_MARKER = ".pixtrans-synthetic"  # inside each split folder we made (and may therefore replace)


# ----------------------------------------------------------------------------------------------
# Drawing


def _smooth_noise(rng: np.random.Generator, res: int, cells: int) -> np.ndarray:
    """[res,res] low-frequency noise in about [-1,1]: a cells x cells grid, bilinearly upsampled."""
    pos = np.linspace(0, cells - 1, res)
    i0 = np.minimum(pos.astype(int), cells - 2)
    frac = pos - i0
    m = np.zeros((res, cells))
    m[np.arange(res), i0] = 1 - frac
    m[np.arange(res), i0 + 1] = frac
    return m @ rng.uniform(-1, 1, (cells, cells)) @ m.T  # separable interpolation as two matmuls


def _labels(rng: np.random.Generator, res: int) -> np.ndarray:
    """[res,res] uint8 class ids."""
    lab = np.zeros((res, res), np.uint8)  # sky
    yy, xx = np.mgrid[0:res, 0:res]
    n_blocks = int(rng.integers(1, 3))
    edges = np.linspace(0, res, n_blocks + 1).astype(int)
    for b in range(n_blocks):
        # building block: its own span, height and window grid
        span = edges[b + 1] - edges[b]
        x0 = edges[b] + int(rng.integers(0, max(1, span // 8)))
        x1 = edges[b + 1] - int(rng.integers(0, max(1, span // 8)))
        top = int(rng.integers(res // 10, res * 2 // 5))
        roof_h = max(2, res // 16)
        lab[top:, x0:x1] = WALL
        lab[top : top + roof_h, x0:x1] = ROOF
        # window grid: periodic masks over the facade instead of a loop per window
        door_h = res // 5
        cols, rows = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        cell_w = max(3, (x1 - x0) // cols)
        gx0, gy0, gy1 = x0 + cell_w // 4, top + roof_h + 2, res - door_h - 1
        cell_h = max(3, (gy1 - gy0) // rows)
        win_w, win_h = max(1, cell_w // 2), max(1, int(cell_h * rng.uniform(0.45, 0.7)))
        in_grid = (xx >= gx0) & (xx < x1 - cell_w // 4) & (yy >= gy0) & (yy < gy0 + rows * cell_h)
        wx, wy = (xx - gx0) % cell_w, (yy - gy0) % cell_h
        lab[in_grid & (wx < win_w) & (wy < win_h)] = WINDOW
        if rng.random() < 0.6:  # balconies: a rail under the windows of every other row
            rail = (wy >= win_h) & (wy < win_h + max(1, cell_h // 6)) & ((yy - gy0) // cell_h % 2 == 1)
            lab[in_grid & rail & (wx < win_w + 2)] = BALCONY
        # door at the bottom, off centre by a random amount
        dw = max(2, (x1 - x0) // 6)
        dx = int(rng.integers(x0 + dw, max(x0 + dw + 1, x1 - 2 * dw)))
        lab[res - door_h :, dx : dx + dw] = DOOR
        if rng.random() < 0.5:  # pillars framing the block
            pw = max(1, res // 32)
            lab[top + roof_h :, x0 : x0 + pw] = PILLAR
            lab[top + roof_h :, x1 - pw : x1] = PILLAR
    for _ in range(int(rng.integers(1, 4))):  # round ornaments (and the odd sun in the sky)
        cx, cy = rng.uniform(0.1, 0.9, 2) * res
        r = rng.uniform(0.03, 0.08) * res
        lab[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = ORNAMENT
    return lab


def _render(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    """Label ids [res,res] -> photo [res,res,3] uint8: one texture per class, then lighting."""
    res = lab.shape[0]
    y, x = np.mgrid[0:res, 0:res] / res  # [0,1) coordinates, so textures scale with resolution
    noise = _smooth_noise(rng, res, 6)
    fine = rng.normal(0, 1, (res, res))

    def tex(base, *terms):
        out = np.broadcast_to(np.asarray(base, np.float64), (res, res, 3)).copy()
        for t in terms:
            out += t[..., None]
        return out

    wall_base = np.array([[0.78, 0.68, 0.52], [0.66, 0.36, 0.28], [0.62, 0.62, 0.6]])[rng.integers(0, 3)]
    wall_base = wall_base + rng.uniform(-0.05, 0.05, 3)
    brick = ((y * res) % max(2, res // 16) < 1).astype(float)  # mortar lines
    textures = np.stack(
        [
            tex([0.35, 0.55, 0.85], 0.4 * y, 0.05 * noise),  # sky: brighter towards the horizon, clouds
            tex(wall_base, -0.12 * brick, 0.06 * noise, 0.02 * fine),
            tex([0.08, 0.12, 0.22], 0.25 * np.clip(np.sin((x + y) * 9.0), 0, 1)),  # glass with reflections
            tex([0.36, 0.2, 0.1], 0.06 * np.sin(x * res * 1.3)),  # wood grain
            tex([0.42, 0.18, 0.16], -0.1 * ((y * res) % 3 < 1)),  # roof tiles
            tex([0.55, 0.56, 0.6], -0.25 * (np.sin(x * res * 1.6) > 0.3)),  # balcony bars
            tex([0.86, 0.83, 0.76], -0.15 * np.abs(np.sin(x * res * 0.8))),  # fluted stone
            tex([0.86, 0.68, 0.25], 0.1 * noise),  # gilded ornament
        ]
    )  # [K,res,res,3]
    photo = np.take_along_axis(textures, lab[None, :, :, None].astype(np.int64), axis=0)[0]
    # light from one side, fading downwards, then soft edges (3x3 box blur by shifted sums)
    side = rng.uniform(-0.2, 0.2)
    photo *= (0.95 + side * (x - 0.5) - 0.1 * y)[..., None]
    pad = np.pad(photo, ((1, 1), (1, 1), (0, 0)), mode="edge")
    photo = sum(pad[dy : dy + res, dx : dx + res] for dy in range(3) for dx in range(3)) / 9.0
    return (np.clip(photo, 0, 1) * 255 + 0.5).astype(np.uint8)


def synthetic_pair(index: int, resolution: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo, label map) for image `index`, both [resolution,resolution,3] uint8."""
    rng = np.random.default_rng([seed, index])
    lab = _labels(rng, resolution)
    return _render(rng, lab), PALETTE[lab]


# ----------------------------------------------------------------------------------------------
# Files


def _split_counts(n: int) -> dict[str, int]:
    n_val = max(1, round(n / 10))
    return {"train": n - n_val, "val": n_val}


@contextlib.contextmanager
def _locked(path: Path):
    # several processes (DDP ranks, parallel tests) may generate into one folder at once
    try:
        import fcntl
    except ImportError:  # Windows: no lock; a duplicate generation only wastes time
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_complete(out: Path, manifest: dict) -> bool:
    try:
        if json.loads((out / _MANIFEST).read_text()) != manifest:
            return False
    except (OSError, ValueError):
        return False
    for split, count in manifest["splits"].items():
        folder = out / split
        if not folder.is_dir() or sum(1 for p in folder.iterdir() if p.suffix == ".png") != count:
            return False
    return True


def generate_synthetic_pairs(out_dir: str | os.PathLike, n: int, resolution: int, seed: int) -> Path:
    """Write n aligned A|B PNGs (A photo, B labels) into out_dir/{train,val}; returns out_dir.

    Reuses a complete set made with the same parameters. A new set is built in a temporary
    folder and moved in place before the manifest is written, so an interrupted run is redone.
    """
    if n < 2:
        raise PixtransError(f"config key 'data.synthetic_size' must be >= 2 (train + val), got {n}")
    if resolution < 8:
        raise PixtransError(f"config key 'data.synthetic_resolution' must be >= 8, got {resolution}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = _split_counts(n)
    manifest = {
        "generator": "pixtrans.synthetic",
        "version": VERSION,
        "n": n,
        "resolution": resolution,
        "seed": seed,
        "splits": counts,
    }
    with _locked(out / ".lock"):
        if _is_complete(out, manifest):
            return out
        for split in counts:
            folder = out / split
            if folder.exists() and not (folder / _MARKER).exists():
                raise PixtransError(
                    f"'{folder}' exists but was not made by pixtrans; point data.root for the synthetic "
                    "dataset at an empty or cache folder"
                )
        (out / _MANIFEST).unlink(missing_ok=True)  # invalid from here until the new one is complete
        for stale in out.glob(".tmp-*"):  # leftovers of an interrupted generation
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
        try:
            index = 0
            for split, count in counts.items():
                folder = tmp / split
                folder.mkdir()
                (folder / _MARKER).write_text(json.dumps(manifest))
                for _ in range(count):
                    photo, labels = synthetic_pair(index, resolution, seed)
                    ab = np.concatenate([photo, labels], axis=1)  # A | B side by side
                    Image.fromarray(ab).save(folder / f"{index:05d}.png", compress_level=1)
                    index += 1
            for split in counts:
                if (out / split).exists():
                    shutil.rmtree(out / split)
                os.replace(tmp / split, out / split)
            part = tmp / _MANIFEST
            part.write_text(json.dumps(manifest, indent=1))
            os.replace(part, out / _MANIFEST)  # the commit point
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


@DATASETS.register("synthetic")
class SyntheticDataset(PairedDataset):
    """The built-in demo set: procedural label maps and rendered photos, drawn once from `seed`
    into `root`, then read as an aligned PairedDataset. Use direction="BtoA" for labels -> photo."""

    draws_itself = True

    @classmethod
    def config_kwargs(cls, data) -> dict:
        return {"size": data.synthetic_size, "resolution": data.synthetic_resolution}

    def __init__(
        self,
        *,
        root: str | os.PathLike = "",  # cache folder; "" = ~/.cache/pixtrans
        split: str = "train",  # train | val
        size: int = 200,  # number of pairs over both splits (90% train)
        resolution: int = 64,  # square side of each half, in pixels
        seed: int = 0,  # data seed (independent of the training seed)
        **kwargs,  # PairedDataset keyword arguments (direction, preprocess, load_size, ...)
    ):
        cache = Path(root) if str(root) else cache_dir()
        out = generate_synthetic_pairs(
            cache / f"synthetic-n{size}-r{resolution}-s{seed}", n=size, resolution=resolution, seed=seed
        )
        kwargs.pop("layout", None)  # always A|B files
        super().__init__(root=out, split=split, layout="aligned", **kwargs)
