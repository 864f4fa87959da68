"""The physical floor's two halves: FLOPs of the work (`count_flops`, `conv2d_flops`) and the best
sustained convolution throughput of this machine (`measure_conv_throughput` over `ConvShape`s,
default `DEFAULT_CONV_SHAPES`)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pixtrans.bench.timing import bench_device, time_fn
from pixtrans.nets.conv import exact_convs
from pixtrans.runtime import synchronize


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn()`` per ``torch.utils.flop_counter``.

    ``fn`` is *executed* once (so a training step really updates the model).
    Counts convolutions / matmuls (forward and backward) at 2 FLOPs per MAC. Compiled modules
    run eagerly for the count (inductor's kernels bypass the dispatcher the counter watches), and
    convolutions as direct ones: the counter does not see NNPACK's Winograd/FFT (nets/conv.py), and
    the floor is defined by the direct algorithm's FLOPs, which a fast algorithm may beat.
    """
    set_stance = getattr(torch.compiler, "set_stance", None)
    eager = set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()
    with eager, exact_convs(), FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def conv2d_flops(cin: int, cout: int, k: int, hout: int, wout: int, batch: int = 1) -> int:
    """Analytic forward FLOPs of a dense Conv2d: ``2*N*Cin*Cout*k*k*Hout*Wout``."""
    return 2 * batch * cin * cout * k * k * hout * wout


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
    is a list of dicts (shape, memory_format, median_s, flops_per_s, iters) when
    ``return_details`` is true.
    """
    dev = bench_device(device)
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
