"""Benchmark primitives for ``pixtrans bench``.

Every time reported by ``pixtrans bench`` is put next to a *physical floor*
measured in the same process, on the same machine, a moment earlier:

    floor_s = FLOPs of the work (torch.utils.flop_counter)
              / best sustained convolution throughput (FLOP/s)
    ratio   = measured median time / floor_s

``ratio == 1`` would mean the whole step ran as fast as the fastest
well-shaped convolution this machine can execute; overheads (small or
badly-shaped layers, normalisation, activations, the optimizer, allocator,
framework dispatch) all show up as ``ratio > 1``.

The throughput denominator is deliberately *not* chosen to flatter: it is the
best of several large convolutions, in both memory formats (see
:func:`measure_conv_throughput`).  FLOPs are counted by PyTorch's own
``FlopCounterMode`` (2 FLOPs per multiply-accumulate; conv/matmul only -
elementwise work counts as zero, so it can only raise the ratio).

Public API
----------
- :func:`measure_conv_throughput` - the denominator (FLOP/s).
- :func:`count_flops` - FLOPs of one call of a function.
- :func:`time_fn` - robust wall-clock timing (median/p10/p90).
- :func:`bench_training` / :func:`bench_inference` - result dicts.
- :func:`format_report` - human-readable table.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import pixtrans.data  # noqa: F401 - registers the datasets
from pixtrans.registry import DATASETS
from pixtrans.runtime import resolve_device, synchronize

__all__ = [
    "ConvShape",
    "DEFAULT_CONV_SHAPES",
    "TimingStats",
    "measure_conv_throughput",
    "count_flops",
    "time_fn",
    "bench_training",
    "bench_inference",
    "format_report",
    "cpu_contention_seconds",
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _device(device: Any) -> torch.device:
    return resolve_device("cpu" if device is None else device)


_PSI_PATH = "/proc/pressure/cpu"


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


# --------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn()`` per ``torch.utils.flop_counter``.

    ``fn`` is *executed* once (so a training step really updates the model).
    Counts convolutions / matmuls (forward and backward) at 2 FLOPs per MAC.
    """
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def conv2d_flops(cin: int, cout: int, k: int, hout: int, wout: int, batch: int = 1) -> int:
    """Analytic forward FLOPs of a dense Conv2d: ``2*N*Cin*Cout*k*k*Hout*Wout``."""
    return 2 * batch * cin * cout * k * k * hout * wout


# --------------------------------------------------------------------------
# conv throughput (the floor's denominator)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvShape:
    """A forward convolution: input (n, cin, h, w), weight (cout, cin, k, k)."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    k: int
    stride: int = 1
    padding: int = 0

    def out_hw(self) -> tuple[int, int]:
        ho = (self.h + 2 * self.padding - self.k) // self.stride + 1
        wo = (self.w + 2 * self.padding - self.k) // self.stride + 1
        return ho, wo

    def flops(self) -> int:
        ho, wo = self.out_hw()
        return conv2d_flops(self.cin, self.cout, self.k, ho, wo, self.n)

    def __str__(self) -> str:
        return f"{self.n}x{self.cin}x{self.h}x{self.w}->{self.cout} k{self.k}s{self.stride}p{self.padding}"


# Large, well-shaped convolutions (VGG/ResNet-like 3x3 trunks, a pix2pix-like
# 4x4/2 down-sampling conv, and a batched one).  Each runs at several
# GFLOP per call, so per-call overhead is negligible.  On the 2-core AVX-512
# EPYC these all reach 460-510 GFLOP/s in their best layout.
DEFAULT_CONV_SHAPES: tuple[ConvShape, ...] = (
    ConvShape(1, 64, 256, 256, 64, 3, 1, 1),
    ConvShape(1, 128, 128, 128, 128, 3, 1, 1),
    ConvShape(1, 256, 64, 64, 256, 3, 1, 1),
    ConvShape(1, 512, 32, 32, 512, 3, 1, 1),
    ConvShape(8, 256, 32, 32, 256, 3, 1, 1),
    ConvShape(1, 256, 64, 64, 512, 4, 2, 1),
)


def measure_conv_throughput(
    device: Any = "cpu",
    dtype: torch.dtype = torch.float32,
    seconds: float = 6.0,
    shapes: Sequence[ConvShape] | None = None,
    memory_formats: Sequence[torch.memory_format] = (torch.contiguous_format, torch.channels_last),
    return_details: bool = False,
):
    """Best *sustained* forward-convolution throughput in FLOP/s.

    Method (the "physical floor" denominator of ``pixtrans bench``):

    1. For every shape in ``shapes`` (default :data:`DEFAULT_CONV_SHAPES`:
       large, well-shaped convolutions of 1-8 GFLOP each) and every memory
       format in ``memory_formats`` (contiguous NCHW and channels_last), build
       random input/weight tensors of ``dtype`` on ``device`` and run
       ``F.conv2d`` under ``torch.no_grad`` through PyTorch's normal dispatch
       (oneDNN on CPU, cuDNN on CUDA) with default algorithm choice.
    2. Warm up (3 calls, plus a short pilot to size the repetitions), then
       time single calls back to back (synchronising on accelerators) for
       ``seconds / (#shapes * #formats)`` each, at least 5 calls.
    3. A configuration's throughput is ``flops / median(call time)`` - the
       median, not the best call, so it is a rate the machine *sustains*.
    4. The result is the **maximum** over all configurations: we divide by
       the best convolution the machine can run, never by a slow one.  If
       the caller's network runs slower convolutions, that shows as a worse
       ratio rather than a kinder floor.

    On CPU, timings during which another process competed for the cores (per
    Linux PSI) are dropped and repeated (up to a bound), so a concurrent job
    is unlikely to lower the denominator (which would flatter the ratio).

    Returns FLOP/s as float, or ``(flops_per_s, details)`` where ``details``
    is a list of dicts (shape, memory_format, median_s, flops_per_s) when
    ``return_details`` is true.
    """
    dev = _device(device)
    shapes = tuple(shapes) if shapes is not None else DEFAULT_CONV_SHAPES
    mfs = tuple(memory_formats)
    per_cfg = max(float(seconds) / max(1, len(shapes) * len(mfs)), 0.0)
    details: list[dict[str, Any]] = []
    best = 0.0
    gen = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for s in shapes:
            x0 = torch.randn(s.n, s.cin, s.h, s.w, generator=gen)
            w0 = torch.randn(s.cout, s.cin, s.k, s.k, generator=gen) / math.sqrt(s.cin * s.k * s.k)
            x0 = x0.to(device=dev, dtype=dtype)
            w0 = w0.to(device=dev, dtype=dtype)
            for mf in mfs:
                x = x0.contiguous(memory_format=mf)
                w = w0.contiguous(memory_format=mf)

                def call(x=x, w=w, s=s):
                    return F.conv2d(x, w, None, s.stride, s.padding)

                for _ in range(3):
                    call()
                synchronize(dev)
                t0 = time.perf_counter()
                call()
                synchronize(dev)
                pilot = max(time.perf_counter() - t0, 1e-6)
                n = max(5, int(per_cfg / pilot))
                st = time_fn(call, warmup=0, iters=n, device=dev)
                rate = s.flops() / st.median
                mf_name = "channels_last" if mf == torch.channels_last else "contiguous"
                details.append(
                    {
                        "shape": str(s),
                        "memory_format": mf_name,
                        "median_s": st.median,
                        "flops_per_s": rate,
                        "iters": n,
                    }
                )
                best = max(best, rate)
    if return_details:
        return best, details
    return best


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------


@dataclass
class TimingStats:
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


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
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
    dev = _device(device)
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
    xs = sorted(times)
    return TimingStats(
        median=float(statistics.median(xs)),
        p10=_quantile(xs, 0.10),
        p90=_quantile(xs, 0.90),
        mean=float(statistics.fmean(xs)),
        min=float(xs[0]),
        max=float(xs[-1]),
        n=len(xs),
        discarded_contended=discarded,
        times=times,
    )


_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------


def _result(
    kind: str,
    stats: TimingStats,
    flops: int | None,
    throughput: float | None,
    batch_size: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
    return _result("train", st, flops, throughput, batch_size, extra)


def bench_inference(
    net: torch.nn.Module,
    input: torch.Tensor,
    flops: int | None = None,
    throughput: float | None = None,
    warmup: int = 3,
    iters: int = 10,
    device: Any = None,
) -> dict[str, Any]:
    """Time ``net(input)`` under ``torch.no_grad()``.

    The module's train/eval mode is left as the caller set it (pix2pix's
    reference test-time behaviour keeps train-mode BatchNorm and dropout
    unless ``--eval``).  FLOPs are counted if not given.
    """
    dev = _device(device) if device is not None else input.device

    def call():
        with torch.no_grad():
            return net(input)

    if flops is None:
        flops = count_flops(call)
    st = time_fn(call, warmup=warmup, iters=iters, device=dev)
    return _result("inference", st, flops, throughput, int(input.shape[0]))


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


# ----------------------------------------------------------------------------------------------
# `pixtrans bench CONFIG`: the real training step of the real loop, against the floor.


def bench_dataset(cfg, n: int):
    """Random in-memory data shaped like `cfg`'s training batches (the dataset class says how)."""
    return DATASETS.get(cfg.data.dataset).stand_in(cfg.data, n)


def run_bench(
    cfg, steps: int = 10, warmup: int = 3, json_path: str | None = None, floor_seconds: float = 6.0
) -> dict[str, Any]:
    """Time `Trainer.train_step` and generator inference for `cfg`; print and return the figures."""
    import json
    import tempfile

    from pixtrans.training.loop import Trainer

    t, d = cfg.train, cfg.data
    with tempfile.TemporaryDirectory() as tmp:
        dataset = bench_dataset(cfg, max(2 * t.batch_size, 4))
        trainer = Trainer(cfg, run_dir=tmp, dataset=dataset)
    device = trainer.device
    # The floor is measured at the precision the step's convolutions run in: under train.amp
    # they run in bf16/fp16 (on AMX CPUs and tensor-core GPUs several times the fp32 rate), and
    # dividing a mixed-precision step by the fp32 rate would flatter it. Inference is fp32.
    fp32_throughput = measure_conv_throughput(device, seconds=floor_seconds)
    amp_dtype = trainer.amp_dtype
    throughput = fp32_throughput
    if amp_dtype is not None:
        throughput = measure_conv_throughput(device, dtype=amp_dtype, seconds=floor_seconds)
    train_precision = "fp32" if amp_dtype is None else _DTYPE_NAMES[amp_dtype]
    batch = torch.utils.data.default_collate([dataset[i] for i in range(t.batch_size)])
    batch = trainer.to_device({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    step_flops = count_flops(lambda: trainer.train_step(batch))
    train = bench_training(
        lambda: trainer.train_step(batch),
        flops=step_flops,
        throughput=throughput,
        batch_size=t.batch_size,
        warmup=warmup,
        iters=steps,
        device=device,
        count=False,
        extra={"precision": train_precision},
    )
    if amp_dtype is not None:
        # for comparison with fp32 steps (ours or the official code's), never as the ratio
        train["ratio_vs_fp32_floor"] = train["step_time_median_s"] / (step_flops / fp32_throughput)
    name = trainer.exported[0]
    net = trainer.method.nets[name].eval()
    with torch.no_grad():  # what the net reads (pix2pixHD: one-hot labels, edges, features)
        x = trainer.method.translator_input({k: v[:1] for k, v in batch.items()})
    infer = bench_inference(net, x, throughput=fp32_throughput, warmup=warmup, iters=steps, device=device)
    infer["precision"] = "fp32"
    results = {
        "machine": {
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "conv_throughput_gflops": fp32_throughput / 1e9,
            f"conv_throughput_gflops_{train_precision}": throughput / 1e9,
        },
        "config": {
            "method": cfg.method,
            "G": cfg.model.G,
            "D": cfg.model.D,
            "batch_size": t.batch_size,
            "crop_size": d.crop_size,
            "amp": str(trainer.amp_dtype),
        },
        "train_step": train,
        f"inference_{name}": infer,
    }
    print(
        format_report(
            {"train step": train, f"inference ({name}, eval, batch 1)": infer},
            title=f"pixtrans bench: {cfg.method} on {device}",
        )
    )
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1, default=str))
    return results
