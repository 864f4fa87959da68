"""Wall-clock timing: `time_fn` and its `TimingStats` (median/p10/p90 via `quantile`), with calls
during which another process competed for the CPU (Linux PSI, `cpu_contention_seconds`) dropped
and repeated."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from pixtrans.runtime import resolve_device, synchronize

_PSI_PATH = "/proc/pressure/cpu"


def bench_device(device: Any) -> torch.device:
    """The device a benchmark runs on: None means the CPU (never "auto": a timing is of one place)."""
    return resolve_device("cpu" if device is None else device)


def cpu_contention_seconds() -> float | None:
    """Cumulative seconds during which *some* runnable task waited for a CPU.

    Read from Linux PSI (``/proc/pressure/cpu``).  A benchmark that saturates
    all cores with its own threads does not make this grow by itself (its
    threads each own a core); it grows when another process competes for the
    cores.  Returns ``None`` where PSI is unavailable.
    """
    try:
        with open(_PSI_PATH) as f:
            for line in f:
                if line.startswith("some"):
                    for tok in line.split():
                        if tok.startswith("total="):
                            return int(tok[6:]) / 1e6
    except OSError:
        return None
    return None


@dataclass
class TimingStats:
    """Summary of ``n`` timed calls, in seconds; ``times`` keeps the samples in call order."""

    median: float
    p10: float
    p90: float
    mean: float
    min: float
    max: float
    n: int
    discarded_contended: int = 0
    times: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("times")
        return d


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted sequence."""
    if not sorted_xs:
        raise ValueError("no samples")
    if len(sorted_xs) == 1:
        return float(sorted_xs[0])
    pos = q * (len(sorted_xs) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return float(sorted_xs[lo] * (1 - frac) + sorted_xs[hi] * frac)


def time_fn(
    fn: Callable[[], Any],
    warmup: int = 3,
    iters: int = 10,
    device: Any = None,
    discard_contended: bool = True,
    contention_tolerance: float = 0.02,
    max_discards: int | None = None,
) -> TimingStats:
    """Wall-clock ``fn()``: ``warmup`` untimed calls, then ``iters`` timed.

    Accelerators are synchronised before and after each timed call.  On CPU
    with Linux PSI available and ``discard_contended`` set, a call during
    which other processes kept runnable tasks waiting for more than
    ``contention_tolerance`` of its duration is not counted and is repeated
    (at most ``max_discards`` times, default ``2*iters``; after that
    contended samples are kept).  ``discarded_contended`` counts the drops.
    """
    if iters < 1:
        raise ValueError("iters must be >= 1")
    dev = bench_device(device)
    for _ in range(max(0, warmup)):
        fn()
    synchronize(dev)
    check = discard_contended and dev.type == "cpu" and cpu_contention_seconds() is not None
    limit = 2 * iters if max_discards is None else max_discards
    times: list[float] = []
    discarded = 0
    while len(times) < iters:
        c0 = cpu_contention_seconds() if check else None
        t0 = time.perf_counter()
        fn()
        synchronize(dev)
        dt = time.perf_counter() - t0
        if check and discarded < limit:
            c1 = cpu_contention_seconds()
            if c0 is not None and c1 is not None and (c1 - c0) > contention_tolerance * dt:
                discarded += 1
                continue
        times.append(dt)
    return summarize(times, discarded)


def summarize(times: list[float], discarded: int = 0) -> TimingStats:
    xs = sorted(times)
    return TimingStats(
        median=float(statistics.median(xs)),
        p10=quantile(xs, 0.10),
        p90=quantile(xs, 0.90),
        mean=float(statistics.fmean(xs)),
        min=float(xs[0]),
        max=float(xs[-1]),
        n=len(xs),
        discarded_contended=discarded,
        times=times,
    )


def time_interleaved(
    fns: dict[str, Callable[[], Any]], warmup: int = 2, iters: int = 10, device: Any = None
) -> dict[str, TimingStats]:
    """Time several functions call by call in alternation (A B, B A, A B ...), so a slow phase of
    a shared machine or a warming cache falls on all of them alike: a side-by-side comparison
    measured in one run. Each call is timed (and a contended one repeated) as by `time_fn`."""
    names = list(fns)
    for _ in range(max(0, warmup)):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    discarded = dict.fromkeys(names, 0)
    for i in range(iters):
        for name in names if i % 2 == 0 else names[::-1]:
            st = time_fn(fns[name], warmup=0, iters=1, device=device)
            times[name].append(st.times[0])
            discarded[name] += st.discarded_contended
    return {n: summarize(times[n], discarded[n]) for n in names}
