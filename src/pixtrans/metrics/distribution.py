"""Distribution metrics on Inception pool3 features: FID and KID, and the real-set feature cache.

Both compare the set of real images with the set of fakes (no pairing; every image of each folder
is used, N = the number of files, nothing subsampled), on the 2048-d features of
`pixtrans.metrics.inception` (the clean-fid "clean" protocol, see that module).

FID (Heusel et al. 2017):  ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), with mu the
  feature means and S the covariances (np.cov, N-1 normalisation), in float64. The trace of the
  matrix square root is computed by eigen-decomposition instead of scipy.linalg.sqrtm:
  Tr((S_r S_f)^(1/2)) = sum_i sqrt(lambda_i(S_r^(1/2) S_f S_r^(1/2))), with S_r^(1/2) from
  numpy.linalg.eigh, eigenvalues below rounding level (d * eps * the largest, numpy's
  matrix_rank tolerance) set to 0. When N_real * N_fake <= d^2 (the usual test split of a few
  hundred images) the same trace is the sum of the singular values of A B^T / sqrt((N_r-1)(N_f-1)),
  A and B the centred feature matrices (`frechet_distance_features`): an N_r x N_f SVD instead of
  two d x d eigen-decompositions. In exact arithmetic both equal pytorch-fid's / clean-fid's
  sqrtm value; they stay real and stable when the covariances are singular, which they are
  whenever N <= 2048. FID is biased upwards for small N: compare values only at equal N (and
  do not compare with papers' 50k-image numbers).

KID (Binkowski et al. 2018): the unbiased estimator of the squared MMD with the cubic polynomial
  kernel k(x, y) = (x.y / d + 1)^3, d = 2048,
      MMD^2 = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1))
              - 2 sum_{i,j} k(x_i,y_j) / m^2,
  averaged over 100 subsets of m = min(1000, N_real, N_fake) images drawn without replacement
  from each set (numpy default_rng(0), so repeatable). When m equals both set sizes every subset
  is the whole set and the estimate is computed once. We report the raw value (papers often
  print KID x 1000) and the standard deviation over subsets. It can be slightly negative.

Real-set cache: the real folder's features, mean and covariance are stored in
  <cache>/fid_stats/<key>.npz, <cache> = $PIXTRANS_CACHE, else $XDG_CACHE_HOME/pixtrans, else
  ~/.cache/pixtrans. key = sha256 of (the sorted relative file names with their sizes and
  mtimes, PROTOCOL, the network's parameter fingerprint): touching, adding or removing a real
  image, changing the protocol or the weights all compute afresh. Fakes are never cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixtrans import PixtransError
from pixtrans.fsutil import atomic_write_with, cache_dir
from pixtrans.metrics.base import Metric, register

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 0
_PRECOMPUTE_MAX = 2000  # sets up to this size: kernel matrices computed once, subsets index them


@dataclass
class FeatureSet:
    """Features [n, d] (float32) and their float64 mean and covariance."""

    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @classmethod
    def from_features(cls, features: np.ndarray, what: str = "set") -> FeatureSet:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] < 2:
            raise PixtransError(f"FID/KID need at least 2 images per set; the {what} has {features.shape[0]}")
        f64 = features.astype(np.float64)
        return cls(features.astype(np.float32), f64.mean(axis=0), np.cov(f64, rowvar=False))


# ----------------------------------------------------------------------------------------------
# The statistics


def _numerical_rank(w: np.ndarray) -> np.ndarray:
    """Eigenvalues below rounding level (d * eps * largest, as numpy's matrix_rank) set to 0:
    with fewer images than dimensions most are zero in exact arithmetic, and the square roots
    of their rounding noise would otherwise add up."""
    tol = max(float(w.max(initial=0.0)), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) via two symmetric eigen-decompositions."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise PixtransError(
            f"FID statistics do not match: means {mu1.shape} / {mu2.shape}, "
            f"covariances {s1.shape} / {s2.shape}"
        )
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(_numerical_rank(w))) @ v.T
    inner = root1 @ s2 @ root1
    lam = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(_numerical_rank(lam)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_distance_features(real: np.ndarray, fake: np.ndarray) -> float:
    """The same distance from the features themselves, for small sets: with A, B the centred
    feature matrices, S_r S_f = A^T A B^T B / c and its nonzero eigenvalues are those of
    (A B^T)(A B^T)^T / c, so Tr((S_r S_f)^(1/2)) = sum of the singular values of A B^T / sqrt(c),
    c = (N_r - 1)(N_f - 1): an N_r x N_f problem instead of d x d, exact up to rounding."""
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise PixtransError(f"FID features do not match or are too few: {x.shape} vs {y.shape}")
    diff = x.mean(axis=0) - y.mean(axis=0)
    a, b = x - x.mean(axis=0), y - y.mean(axis=0)
    c = (len(x) - 1) * (len(y) - 1)
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum()) / np.sqrt(c)
    tr1, tr2 = float((a * a).sum()) / (len(x) - 1), float((b * b).sum()) / (len(y) - 1)
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean)


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _mmd2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    m = kxx.shape[0]
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = KID_SEED,
) -> dict[str, float]:
    """{"value": mean unbiased MMD^2 over subsets, "std", "subsets", "subset_size"}."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise PixtransError(f"KID features do not match: {real.shape} vs {fake.shape}")
    m = min(len(real), len(fake), subset_size)
    if m < 2:
        raise PixtransError(f"KID needs at least 2 images per set; got {len(real)} real, {len(fake)} fake")
    if m == len(real) == len(fake):  # every subset is the whole set: one exact evaluation
        value = _mmd2(_poly_kernel(fake, fake), _poly_kernel(real, real), _poly_kernel(fake, real))
        return {"value": value, "std": 0.0, "subsets": 1, "subset_size": m}
    rng = np.random.default_rng(seed)
    pre = max(len(real), len(fake)) <= _PRECOMPUTE_MAX
    if pre:
        k_ff, k_rr, k_fr = _poly_kernel(fake, fake), _poly_kernel(real, real), _poly_kernel(fake, real)
    values = []
    for _ in range(subsets):
        i = rng.choice(len(fake), m, replace=False)
        j = rng.choice(len(real), m, replace=False)
        if pre:
            values.append(_mmd2(k_ff[np.ix_(i, i)], k_rr[np.ix_(j, j)], k_fr[np.ix_(i, j)]))
        else:
            x, y = fake[i], real[j]
            values.append(_mmd2(_poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)))
    return {
        "value": float(np.mean(values)),
        "std": float(np.std(values)),
        "subsets": subsets,
        "subset_size": m,
    }


# ----------------------------------------------------------------------------------------------
# The real-set cache


def stats_key(folder: Path, files: Sequence[Path], protocol: str, network: str) -> str:
    entries = []
    for f in sorted(files, key=lambda p: Path(p).relative_to(folder).as_posix()):
        st = Path(f).stat()
        entries.append([Path(f).relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"files": entries, "protocol": protocol, "network": network}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _read_cached(path: Path) -> FeatureSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            fs = FeatureSet(z["features"], z["mu"], z["sigma"])
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or damaged: compute afresh
    d = fs.features.shape[1] if fs.features.ndim == 2 else -1
    if fs.mu.shape != (d,) or fs.sigma.shape != (d, d):
        return None
    return fs


def _write_cached(path: Path, fs: FeatureSet, meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, features=fs.features, mu=fs.mu, sigma=fs.sigma, meta=np.array(json.dumps(meta)))

    atomic_write_with(path, write, sync_dir=False)


def real_feature_set(
    folder: Path,
    files: Sequence[Path],
    net,
    *,
    protocol: str,
    batch_size: int = 16,
    progress: bool = True,
    use_cache: bool = True,
) -> tuple[FeatureSet, dict[str, Any]]:
    """The real folder's FeatureSet, from the cache when its key matches; (set, cache info)."""
    from pixtrans.metrics.inception import extract_features

    key = stats_key(folder, files, protocol, net.fingerprint)
    path = cache_dir() / "fid_stats" / f"{key}.npz"
    if use_cache:
        cached = _read_cached(path)
        if cached is not None and cached.n == len(files):
            return cached, {"file": str(path), "hit": True}
    feats = extract_features(files, net, batch_size=batch_size, progress=progress, desc="inception (real)")
    fs = FeatureSet.from_features(feats, "real folder")
    info: dict[str, Any] = {"file": str(path), "hit": False}
    if use_cache:
        meta = {"folder": str(folder), "n": len(files), "protocol": protocol, "network": net.fingerprint}
        try:
            _write_cached(path, fs, meta)
        except OSError as e:  # a read-only cache only costs time
            info["file"], info["error"] = None, f"not cached: {e.strerror or e}"
    return fs, info


# ----------------------------------------------------------------------------------------------
# Registration


def _check_inception(options: Mapping[str, Any]) -> None:
    from pixtrans.metrics.inception import find_inception_weights

    find_inception_weights(options.get("inception"))


def fid(real: FeatureSet, fake: FeatureSet, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    d = real.features.shape[1]
    if real.n * fake.n <= d * d:  # small sets: the N_r x N_f route is cheaper and exact
        return {"value": frechet_distance_features(real.features, fake.features), "route": "features"}
    return {"value": frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma), "route": "covariances"}


def kid(real: FeatureSet, fake: FeatureSet, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return kernel_inception_distance(real.features, fake.features)


register(
    Metric(
        "fid",
        "distribution",
        False,
        "Frechet Inception Distance, TF-Inception-v3 pool3, clean-fid resize",
        fid,
        check=_check_inception,
        needs="inception",
    )
)
register(
    Metric(
        "kid",
        "distribution",
        False,
        "Kernel Inception Distance (unbiased MMD^2, cubic kernel, 100 subsets of <= 1000)",
        kid,
        check=_check_inception,
        needs="inception",
    )
)
