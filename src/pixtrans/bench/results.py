"""Result dicts of timed work against the floor (`bench_training`, `bench_inference`, both built by
`result_dict`) and their human-readable table (`format_report`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pixtrans.bench.floor import count_flops
from pixtrans.bench.timing import TimingStats, bench_device, time_fn
from pixtrans.runtime import autocast_to


def result_dict(
    kind: str,
    stats: TimingStats,
    flops: int | None,
    throughput: float | None,
    batch_size: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures of one timed kind of work: times, images/s, GFLOP, and, when both the FLOPs and
    the throughput are known, ``floor_s = flops / throughput`` and ``ratio = median / floor_s``."""
    r: dict[str, Any] = {
        "kind": kind,
        "batch_size": int(batch_size),
        "step_time_median_s": stats.median,
        "step_time_p10_s": stats.p10,
        "step_time_p90_s": stats.p90,
        "step_time_min_s": stats.min,
        "iters": stats.n,
        "discarded_contended": stats.discarded_contended,
        "images_per_s": batch_size / stats.median,
        "flops_per_step": None if flops is None else int(flops),
        "gflop_per_step": None if flops is None else flops / 1e9,
        "throughput_flops_per_s": throughput,
        "throughput_gflops": None if throughput is None else throughput / 1e9,
        "achieved_gflops": None if flops is None else flops / stats.median / 1e9,
        "floor_s": None,
        "ratio": None,
    }
    if flops is not None and throughput:
        floor = flops / throughput
        r["floor_s"] = floor
        r["ratio"] = stats.median / floor if floor > 0 else float("inf")
    if extra:
        r.update(extra)
    return r


def bench_training(
    step_fn: Callable[[], Any],
    flops: int | None = None,
    throughput: float | None = None,
    batch_size: int = 1,
    warmup: int = 3,
    iters: int = 10,
    device: Any = "cpu",
    count: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time a training step ``step_fn()`` (it must do the whole step:
    forwards, backwards, optimizer updates).

    ``flops``: FLOPs per step; if None and ``count``, measured by running
    ``step_fn`` once under :func:`count_flops` (that call doubles as warm-up).
    ``throughput``: FLOP/s from :func:`measure_conv_throughput` (measure it in
    the same process, just before).  Returns a dict with ``step_time_*_s``,
    ``images_per_s``, ``gflop_per_step``, ``throughput_gflops``, ``floor_s``
    and ``ratio = median / floor``.
    """
    if flops is None and count:
        flops = count_flops(step_fn)
    st = time_fn(step_fn, warmup=warmup, iters=iters, device=device)
    return result_dict("train", st, flops, throughput, batch_size, extra)


def bench_inference(
    net: torch.nn.Module,
    input: torch.Tensor,
    flops: int | None = None,
    throughput: float | None = None,
    warmup: int = 3,
    iters: int = 10,
    device: Any = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Time ``net(input)`` under ``torch.no_grad()`` (and autocast to ``dtype`` when given).

    The module's train/eval mode is left as the caller set it (pix2pix's
    reference test-time behaviour keeps train-mode BatchNorm and dropout
    unless ``--eval``).  FLOPs are counted if not given.  ``device`` defaults
    to the input's.
    """
    dev = bench_device(device) if device is not None else input.device

    def call():
        with torch.no_grad(), autocast_to(dev, dtype):
            return net(input)

    if flops is None:
        flops = count_flops(call)
    st = time_fn(call, warmup=warmup, iters=iters, device=dev)
    return result_dict("inference", st, flops, throughput, int(input.shape[0]))


def format_report(results: Any, title: str | None = None) -> str:
    """Render one result dict (or a list / name->dict mapping) as a table."""
    if isinstance(results, dict) and "kind" in results:
        items: list[tuple[str, dict[str, Any]]] = [(results["kind"], results)]
    elif isinstance(results, dict):
        items = list(results.items())
    else:
        items = [(r.get("kind", str(i)), r) for i, r in enumerate(results)]

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    head = (
        f"{'':<12} {'median s':>9} {'p10 s':>8} {'p90 s':>8} {'img/s':>7} "
        f"{'GFLOP':>8} {'GF/s':>7} {'peak GF/s':>9} {'floor s':>8} {'ratio':>6}"
    )
    lines = []
    if title:
        lines.append(title)
    lines.append(head)
    lines.append("-" * len(head))
    for name, r in items:
        lines.append(
            f"{name:<12} {f(r.get('step_time_median_s'), '.4f'):>9} "
            f"{f(r.get('step_time_p10_s'), '.4f'):>8} {f(r.get('step_time_p90_s'), '.4f'):>8} "
            f"{f(r.get('images_per_s'), '.2f'):>7} {f(r.get('gflop_per_step'), '.2f'):>8} "
            f"{f(r.get('achieved_gflops'), '.0f'):>7} {f(r.get('throughput_gflops'), '.0f'):>9} "
            f"{f(r.get('floor_s'), '.4f'):>8} {f(r.get('ratio'), '.2f'):>6}"
        )
    floors: dict[str, float] = {}
    for _, r in items:
        if r.get("throughput_gflops"):
            floors.setdefault(r.get("precision", "fp32"), r["throughput_gflops"])
    if floors:
        rates = ", ".join(f"{tp:.0f} GFLOP/s in {prec}" for prec, tp in floors.items())
        lines.append(
            f"floor = GFLOP / the best sustained large-conv forward throughput measured in this run "
            f"at the row's precision ({rates}); ratio = median / floor"
        )
    for name, r in items:
        if r.get("ratio_vs_fp32_floor") is not None:
            lines.append(
                f"{name} runs in {r['precision']}: {r['ratio_vs_fp32_floor']:.2f}x the fp32 floor "
                f"(for comparison with fp32 steps only)"
            )
    disc = sum(int(r.get("discarded_contended") or 0) for _, r in items)
    if disc:
        lines.append(f"note: {disc} timed calls were repeated because other processes competed for the CPU")
    return "\n".join(lines)
