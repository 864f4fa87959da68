"""FCN-score (Isola et al., CVPR 2017, §4.2): label -> photo quality measured by how well an
off-the-shelf segmenter, trained on *real* photos, recovers the input labels from generated ones.

    score(photos) = segmentation metrics of segnet(photos) against the label maps they came from

reported for the generated test photos and for the real test photos (the paper's "ground truth"
row, an upper bound). Metrics, from the confusion matrix C over all test pixels (rows = true
class), as the FCN evaluation code computes them:
    per-pixel accuracy  sum_i C_ii / sum C
    per-class accuracy  mean_i C_ii / sum_j C_ij          (classes present in the labels)
    class IoU           mean_i C_ii / (sum_j C_ij + sum_j C_ji - C_ii)

The paper used a Caffe FCN-8s; we train our own small U-Net segmenter (SegNet below) on the
dataset's real training photos, from scratch, with a fixed seed and schedule, and cache it by a
hash of the data and protocol, so every model evaluated on a dataset is scored by the same net.

Colour-coded labels (facades) are mapped to classes with a palette found by mode seeking over
the flat interior pixels of the training label images (so JPEG noise at edges does not create
colours), then each pixel takes its nearest palette colour.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixtrans import PixtransError
from pixtrans.data.io import convert_channels, load_array
from pixtrans.fsutil import atomic_write_text, atomic_write_with, cache_dir

PROTOCOL_VERSION = 1
METRIC_NAMES = ("pixel_acc", "class_acc", "class_iou")


# ----------------------------------------------------------------------------------------------
# Colour-coded labels -> class ids


def flat_pixels(label_rgb: np.ndarray, tolerance: int = 8) -> np.ndarray:
    """[n, 3] colours of the pixels whose 4 neighbours all lie within `tolerance` (per channel):
    interiors of the flat label regions, away from JPEG ringing at the edges."""
    x = label_rgb.astype(np.int16)
    core = x[1:-1, 1:-1]
    flat = np.ones(core.shape[:2], dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        nb = x[dy : dy + core.shape[0], dx : dx + core.shape[1]]
        flat &= (np.abs(nb - core) <= tolerance).all(-1)
    return core[flat].reshape(-1, 3)


def palette_from_labels(
    label_images: list[np.ndarray], n_classes: int, seed: int = 0, separation: float = 40.0
) -> np.ndarray:
    """[n_classes, 3] uint8 label colours, sorted by (R, G, B) rounded to 32 levels.

    Mode seeking on the flat interior pixels: colours are binned on a 16-level grid, the most
    frequent bins are taken greedily as long as they lie `separation` away from the ones already
    taken (so a big class's JPEG variations do not crowd out a rare class), and each centre is
    refined to the mean of the flat pixels near it.
    """
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([flat_pixels(im) for im in label_images]).astype(np.float32)
    if len(pixels) > 500_000:
        pixels = pixels[rng.choice(len(pixels), 500_000, replace=False)]
    bins, counts = np.unique(np.rint(pixels / 16).astype(np.int32), axis=0, return_counts=True)
    centres: list[np.ndarray] = []
    for i in np.argsort(-counts, kind="stable"):
        colour = bins[i] * 16.0
        if all(np.linalg.norm(colour - c) >= separation for c in centres):
            centres.append(colour)
            if len(centres) == n_classes:
                break
    if len(centres) < n_classes:
        raise PixtransError(
            f"found only {len(centres)} distinct label colours, expected {n_classes}; check the label maps "
            "or the number of classes"
        )
    refined = []
    for c in centres:
        near = pixels[np.linalg.norm(pixels - c, axis=1) < separation / 2]
        refined.append(near.mean(0) if len(near) else c)
    out = np.clip(np.rint(np.stack(refined)), 0, 255).astype(np.uint8)
    coarse = np.rint(out / 32.0)  # sort on coarse values: noise of a few levels keeps the order
    return out[np.lexsort(coarse.T[::-1])]


def labels_to_classes(label_rgb: np.ndarray | torch.Tensor, palette: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 colours -> HxW int64 class ids: the nearest palette colour per pixel."""
    x = torch.as_tensor(np.array(label_rgb), dtype=torch.float32)
    pal = torch.as_tensor(palette, dtype=torch.float32)
    dist = ((x[..., None, :] - pal) ** 2).sum(-1)  # [H, W, n_classes]
    return dist.argmin(-1)


# ----------------------------------------------------------------------------------------------
# Segmenter


class SegNet(nn.Module):
    """A small U-Net segmenter: 3 stride-2 levels (widths w, 2w, 4w, 8w), skip connections,
    batch norm; [B,3,H,W] in [-1,1] -> [B,n_classes,H,W] logits. H, W multiples of 8."""

    size_multiple = 8

    def __init__(self, n_classes: int, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        w = width
        self.enc = nn.ModuleList([block(3, w), block(w, 2 * w), block(2 * w, 4 * w), block(4 * w, 8 * w)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in (8 * w, 4 * w, 2 * w)])
        self.dec = nn.ModuleList([block(8 * w, 4 * w), block(4 * w, 2 * w), block(2 * w, w)])
        self.head = nn.Conv2d(w, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def train_segmenter(
    photos: torch.Tensor,  # [N, 3, H, W] in [-1, 1]
    classes: torch.Tensor,  # [N, H, W] int64
    n_classes: int,
    *,
    steps: int = 1500,
    batch_size: int = 4,
    lr: float = 1e-3,
    width: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> SegNet:
    """Cross-entropy, Adam, cosine-decayed lr, random horizontal flips; deterministic per seed."""
    from tqdm.auto import tqdm

    m = SegNet.size_multiple
    ph, pw = -photos.shape[-2] % m, -photos.shape[-1] % m
    if ph or pw:  # pad to the net's multiple; padded pixels are ignored by the loss
        photos = F.pad(photos, (0, pw, 0, ph), mode="replicate")
        classes = F.pad(classes, (0, pw, 0, ph), value=-100)
    torch.manual_seed(seed)
    net = SegNet(n_classes, width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in tqdm(range(steps), desc="train segmenter", unit="step", disable=not progress):
        idx = torch.randint(len(photos), (batch_size,), generator=g)
        x, y = photos[idx], classes[idx]
        flip = torch.rand(batch_size, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.inference_mode()
def segment(net: SegNet, photos: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """[N,3,H,W] -> [N,H,W] predicted classes."""
    net.eval()
    return torch.cat([net(photos[i : i + batch_size]).argmax(1) for i in range(0, len(photos), batch_size)])


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[n, n] counts, rows = true class, columns = predicted."""
    idx = target.flatten() * n_classes + pred.flatten()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores(conf: torch.Tensor) -> dict[str, float]:
    conf = conf.double()
    diag, rows, cols = conf.diag(), conf.sum(1), conf.sum(0)
    present = rows > 0  # classes that occur in the labels (the FCN code's nanmean)
    iou = diag / (rows + cols - diag).clamp_min(1)
    return {
        "pixel_acc": float(diag.sum() / conf.sum()),
        "class_acc": float((diag[present] / rows[present]).mean()),
        "class_iou": float(iou[present].mean()),
    }


def fcn_scores(net: SegNet, photos: torch.Tensor, classes: torch.Tensor, n_classes: int) -> dict[str, float]:
    return scores(confusion_matrix(segment(net, photos), classes, n_classes))


# ----------------------------------------------------------------------------------------------
# Cached per dataset


def dataset_key(files: list[Path], **protocol) -> str:
    """sha256 of the training files (names, sizes, mtimes) and every protocol setting."""
    h = hashlib.sha256(json.dumps({"version": PROTOCOL_VERSION, **protocol}, sort_keys=True).encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:20]


def cached_segmenter(key: str, build, n_classes: int, width: int = 32) -> tuple[SegNet, np.ndarray]:
    """The segmenter (and palette) stored under `key`, or `build() -> (net, palette)` saved there."""
    from safetensors.torch import load_file, save_file

    folder = cache_dir() / "fcn"
    weights, meta = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        net = SegNet(n_classes, info.get("width", width))
        net.load_state_dict(load_file(str(weights)))
        return net.eval(), np.array(info["palette"], dtype=np.uint8)
    net, palette = build()
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    atomic_write_with(weights, lambda tmp: save_file(state, str(tmp)))
    atomic_write_text(meta, json.dumps({"palette": palette.tolist(), "width": width, "n_classes": n_classes}))
    return net, palette


# ----------------------------------------------------------------------------------------------
# The protocol on a paired dataset (labels -> photo)


def _as_unit_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """HxWx3 uint8 arrays -> [N,3,H,W] float in [-1,1]."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def rgb8(arr: np.ndarray) -> np.ndarray:

    arr = convert_channels(arr, 3)
    if arr.dtype == np.uint16:
        arr = (arr // 257).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)
    return arr


def segmenter_for(
    train_pairs: list[tuple[np.ndarray, np.ndarray]],  # (label colours, real photo) HxWx3 uint8
    files: list[Path],
    n_classes: int,
    *,
    steps: int = 1000,
    width: int = 32,
    progress: bool = True,
) -> tuple[SegNet, np.ndarray, str]:
    """(segmenter, palette, cache key) for a dataset's training split, trained once and cached."""
    key = dataset_key(files, n_classes=n_classes, steps=steps, width=width)

    def build():
        palette = palette_from_labels([lab for lab, _ in train_pairs], n_classes)
        classes = torch.stack([labels_to_classes(lab, palette) for lab, _ in train_pairs])
        photos = _as_unit_tensor([photo for _, photo in train_pairs])
        return train_segmenter(
            photos, classes, n_classes, steps=steps, width=width, progress=progress
        ), palette

    net, palette = cached_segmenter(key, build, n_classes, width)
    return net, palette, key


def fcn_score_folders(
    net: SegNet,
    palette: np.ndarray,
    labels: dict[str, np.ndarray],  # name -> label colours
    photo_dirs: dict[str, Path],  # row name ("generated", "real") -> folder of <name>.png
) -> dict[str, dict[str, float]]:
    """FCN-scores of each folder of photos against the label maps they were made from."""

    n_classes = len(palette)
    target = torch.stack([labels_to_classes(labels[k], palette) for k in sorted(labels)])
    out = {}
    for row, folder in photo_dirs.items():
        photos = []
        for k in sorted(labels):
            path = folder / f"{k}.png"
            if not path.is_file():
                raise PixtransError(
                    f"FCN-score: '{path}' is missing; the folder must hold one photo per label map"
                )
            photos.append(rgb8(load_array(path)))
        x = _as_unit_tensor(photos)
        if x.shape[-2:] != target.shape[-2:]:
            raise PixtransError(
                f"FCN-score: photos in '{folder}' are {tuple(x.shape[-2:])}, "
                f"labels {tuple(target.shape[-2:])}"
            )
        ph, pw = -x.shape[-2] % SegNet.size_multiple, -x.shape[-1] % SegNet.size_multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        pred = segment(net, x)[..., : target.shape[-2], : target.shape[-1]]
        out[row] = scores(confusion_matrix(pred, target, n_classes))
    return out
