"""`pixtrans features`: encode a split with pix2pixHD's encoder and cluster the styles per class.

The paper (§3.4) lets users pick an appearance per object: the encoder E maps a photo to a
feature map that is constant inside each instance; over the training set those per-instance
vectors are grouped by semantic class and clustered with K-means, and at test time a cluster
centre is chosen for each instance. We store the centres with the export (clusters.safetensors,
listed in config.json), so the export alone can synthesise with chosen or random styles.

As the official code: an instance's vector is kept only when the instance covers more than
`min_area` (1/64) of its image, so slivers do not create styles; each class gets
min(n_clusters, vectors) centres (scikit-learn KMeans, fixed random_state).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.artifacts.exports import write_clusters
from pixtrans.config import from_dict
from pixtrans.data.build import build_dataset
from pixtrans.inference.label_translator import instance_class
from pixtrans.inference.loading import export_from_checkpoint, open_model


def instance_vectors(
    feat: torch.Tensor, inst: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's per-instance mean features: feat [C,H,W], inst [1,H,W] ->
    (ids [n], vectors [n, C], area fractions [n]). Vectorised over instances."""
    ids, inverse = torch.unique(inst.flatten(), return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(ids)).to(feat.dtype)
    sums = torch.zeros(len(ids), feat.shape[0], dtype=feat.dtype, device=feat.device)
    sums.index_add_(0, inverse, feat.flatten(1).T)
    return ids, sums / counts[:, None], counts / inst.numel()


def collect_features(E, dataset, device="cpu", progress: bool = True) -> dict[int, np.ndarray]:
    """class id -> [n, feat_num + 1] rows of (feature vector, area fraction) over `dataset`."""
    from tqdm.auto import tqdm

    E = E.to(device).eval()
    rows: dict[int, list[np.ndarray]] = {}
    for i in tqdm(range(len(dataset)), desc="encode", unit="img", disable=not progress):
        item = dataset[i]
        if "real_b" not in item:
            raise PixtransError(
                f"split has no photos to encode ({item.get('name', i)}); use a split with {{split}}_img"
            )
        with torch.inference_mode():
            feat = E(item["real_b"][None].to(device), item["inst"][None].to(device))[0]
        ids, vecs, areas = instance_vectors(feat.float().cpu(), item["inst"].cpu())
        for inst_id, vec, area in zip(ids.tolist(), vecs.numpy(), areas.tolist(), strict=True):
            rows.setdefault(instance_class(int(inst_id)), []).append(np.append(vec, area))
    return {k: np.stack(v) for k, v in rows.items()}


def fit_clusters(
    features: dict[int, np.ndarray], n_clusters: int = 10, min_area: float = 1 / 64, seed: int = 0
) -> dict[int, torch.Tensor]:
    """class id -> [k, feat_num] K-means centres of the vectors of instances larger than min_area."""
    try:
        from sklearn.cluster import KMeans  # heavy, and only `pixtrans features` needs it
    except ImportError:
        raise PixtransError(
            "pixtrans features clusters styles with scikit-learn: pip install 'pixtrans[hd]'"
        ) from None

    if n_clusters < 1:
        raise PixtransError(f"--clusters must be >= 1, got {n_clusters}")
    centres = {}
    for cls, rows in sorted(features.items()):
        vecs = rows[rows[:, -1] > min_area, :-1]
        if len(vecs) == 0:
            continue
        k = min(n_clusters, len(np.unique(vecs, axis=0)))
        km = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(vecs)
        centres[cls] = torch.from_numpy(km.cluster_centers_.astype(np.float32))
    return centres


def run_features(
    model: str | os.PathLike,
    *,
    split: str = "train",
    data_root: str | None = None,
    n_clusters: int = 10,
    min_area: float = 1 / 64,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Encode `split` of the run's dataset with its encoder, cluster, store beside the export.

    `model` is a run folder (its export/ is written from the newest checkpoint when missing or
    older) or an export folder. Returns the clusters file.
    """
    source = open_model(model)
    if source.kind == "checkpoint":
        # clusters live beside an export: write the run's export from its newest checkpoint
        source = open_model(export_from_checkpoint(source.path))
    if "E" not in source.names:
        raise PixtransError(
            f"'{source.path}' is not a pix2pixHD model with a feature encoder (model.E); nothing to cluster"
        )
    export, info = source.path, source.info
    E = source.load_net("E")

    cfg = from_dict(info["config"])
    if data_root:
        cfg.data.root = data_root
    # the whole image at the training scale, no random crop or flip
    preprocess = "scale_width" if "scale_width" in cfg.data.preprocess else "none"
    dataset = build_dataset(cfg, split, flip=False, preprocess=preprocess)
    features = collect_features(E, dataset, device=device, progress=progress)
    clusters = fit_clusters(features, n_clusters=n_clusters, min_area=min_area)
    if not clusters:
        raise PixtransError(f"no instance larger than min_area={min_area:g} of its image in split '{split}'")
    meta = {"split": split, "n_clusters": n_clusters, "min_area": min_area, "images": len(dataset)}
    path = write_clusters(export, clusters, meta)
    print(
        f"clustered {sum(len(v) for v in features.values())} instances of {len(features)} classes "
        f"into {sum(len(c) for c in clusters.values())} styles -> {path}"
    )
    return path
