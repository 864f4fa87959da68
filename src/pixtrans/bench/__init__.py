"""``pixtrans bench``: every time it reports is put next to a *physical floor* measured in the
same process, on the same machine, a moment earlier:

    floor_s = FLOPs of the work (torch.utils.flop_counter)
              / best sustained convolution throughput (FLOP/s)
    ratio   = measured median time / floor_s

``ratio == 1`` would mean the whole step ran as fast as the fastest well-shaped convolution this
machine can execute; overheads (small or badly-shaped layers, normalisation, activations, the
optimizer, allocator, framework dispatch) all show up as ``ratio > 1``.

The throughput denominator is deliberately *not* chosen to flatter: it is the best of several
large convolutions, in both memory formats (see :func:`measure_conv_throughput`). FLOPs are
counted by PyTorch's own ``FlopCounterMode`` (2 FLOPs per multiply-accumulate; conv/matmul only -
elementwise work counts as zero, so it can only raise the ratio).

- ``timing``:  :func:`time_fn` (robust wall-clock median/p10/p90), :class:`TimingStats`,
  CPU-contention detection (Linux PSI).
- ``floor``:   :func:`measure_conv_throughput` (the denominator), :func:`count_flops`.
- ``results``: :func:`bench_training` / :func:`bench_inference` result dicts, :func:`format_report`.
- ``official``: the official implementations' step and inference, built from their sources,
  for ``pixtrans bench CONFIG --against official`` (timed with :func:`time_interleaved`).
- ``command``: :func:`run_bench`, what ``pixtrans bench CONFIG`` does.
"""

from pixtrans.bench import official
from pixtrans.bench.command import bench_dataset, run_bench
from pixtrans.bench.floor import (
    DEFAULT_CONV_SHAPES,
    ConvShape,
    conv2d_flops,
    count_flops,
    measure_conv_throughput,
)
from pixtrans.bench.results import bench_inference, bench_training, format_report, result_dict
from pixtrans.bench.timing import TimingStats, cpu_contention_seconds, quantile, time_fn, time_interleaved

__all__ = [
    "DEFAULT_CONV_SHAPES",
    "ConvShape",
    "TimingStats",
    "bench_dataset",
    "bench_inference",
    "bench_training",
    "conv2d_flops",
    "count_flops",
    "cpu_contention_seconds",
    "format_report",
    "measure_conv_throughput",
    "quantile",
    "result_dict",
    "run_bench",
    "official",
    "time_fn",
    "time_interleaved",
]
