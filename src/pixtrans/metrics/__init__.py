"""Image-translation metrics. Importing registers them in pixtrans.registry.METRICS:

paired (real/fake matched by file name):  l1, psnr, ssim, lpips
distribution (two sets of images):        fid, kid

See pixtrans.metrics.paired, .distribution and .inception for the exact settings, and
docs/evaluation.md for the protocol. `pixtrans evaluate --list` prints them.
"""

from pixtrans.metrics import distribution, paired  # noqa: F401 - registration
from pixtrans.metrics.base import Metric, all_metrics, get_metric
from pixtrans.metrics.distribution import (
    FeatureSet,
    frechet_distance,
    frechet_distance_features,
    kernel_inception_distance,
)

__all__ = [
    "FeatureSet",
    "Metric",
    "all_metrics",
    "frechet_distance",
    "frechet_distance_features",
    "get_metric",
    "kernel_inception_distance",
]
