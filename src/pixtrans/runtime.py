"""The machine a run executes on: device choice, synchronisation and allocator tuning.

One place for what training, inference, evaluation and benchmarks all need, so none of them
imports another just to pick a device.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterator

import torch

from pixtrans import PixtransError


def resolve_device(
    name: str | torch.device = "auto", *, local_rank: int = 0, key: str = "--device"
) -> torch.device:
    """ "auto" (CUDA when visible, else the CPU; `local_rank` picks the GPU of a torchrun process),
    "cpu", "cuda", "cuda:N" or any torch device name -> torch.device. Errors name `key`, the
    setting the name came from (e.g. "config key 'train.device'")."""
    if isinstance(name, torch.device):
        return name
    if str(name) == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise PixtransError(f"{key}: unknown device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PixtransError(f"{key} is '{name}' but no CUDA device is visible; use cpu (or auto)")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): timings need it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - not on our CI
        torch.mps.synchronize()
    elif device.type == "xpu":  # pragma: no cover
        torch.xpu.synchronize(device)


def tune_malloc() -> bool:
    """Keep large CPU allocations on the heap instead of fresh ``mmap``\\ s.

    glibc serves blocks above ``M_MMAP_THRESHOLD`` (dynamic, <= 32 MiB) with a fresh ``mmap`` and
    unmaps them on free, so every training step pays page faults + zeroing for each large
    temporary (weight gradients, oneDNN weight reorders, im2col buffers). For pix2pix's unet_256
    (218 MB of weights) that costs ~10-15 % of a CPU step. This sets ``M_MMAP_MAX=0`` (never
    mmap), ``M_TRIM_THRESHOLD=1 GiB`` and ``M_TOP_PAD=64 MiB``. Call it once, early, before big
    tensors are allocated. Process-wide; returns False (and does nothing) where glibc's
    ``mallopt`` is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
    ok = mallopt(M_MMAP_MAX, 0) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    ok &= mallopt(M_TOP_PAD, 64 << 20) == 1
    return bool(ok)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# The variables that cap the instruction sets torch's CPU libraries use: set together (e.g. all
# to AVX2) they make an AVX-512/AMX machine run the kernels an AVX2-only CPU runs, which is how
# `bench` measures the fp32-only case on such a machine. Set only in part, they skew a comparison:
# MKL (our small-map GEMMs) would keep AVX-512 while oneDNN (every direct conv) drops it.
ISA_LIMIT_VARIABLES = (
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
)


def isa_limits() -> dict[str, str]:
    """The instruction-set caps set in this process's environment ({} when none is)."""
    return {name: os.environ[name] for name in ISA_LIMIT_VARIABLES if os.environ.get(name)}


def isa_limits_note() -> str | None:
    """One line saying which caps are set and whether they cap every library, or None."""
    limits = isa_limits()
    if not limits:
        return None
    text = ", ".join(f"{k}={v}" for k, v in limits.items())
    onednn = "ONEDNN_MAX_CPU_ISA" in limits or "DNNL_MAX_CPU_ISA" in limits
    missing = [
        k
        for k, ok in (
            ("ONEDNN_MAX_CPU_ISA", onednn),
            ("MKL_ENABLE_INSTRUCTIONS", "MKL_ENABLE_INSTRUCTIONS" in limits),
            ("ATEN_CPU_CAPABILITY", "ATEN_CPU_CAPABILITY" in limits),
        )
        if not ok
    ]
    if missing:
        unset = ", ".join(missing)
        return f"instruction sets capped in part ({text}); {unset} unset: those libraries keep the full ISA"
    return f"instruction sets capped ({text}): as on a CPU with that ISA, with this one's cores and caches"


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """(does `device` execute bf16 matrix work natively, in words why)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} native bf16"
    if device.type != "cpu":
        return False, f"bf16 speed unknown on {device.type}"
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if probe is not None and probe():
        return True, "this CPU has AMX (bf16 tiles)"
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if (probe is not None and probe()) or "avx512_bf16" in _cpu_flags():
        return True, "this CPU has AVX512-BF16"
    capability = torch.backends.cpu.get_cpu_capability()
    return False, f"this CPU ({capability}) has no native bf16"


def _conv_step_seconds(device: torch.device, dtype: torch.dtype | None, reps: int = 3) -> float:
    """Best of `reps` forward+backward passes of a 3x3, 128-channel conv on a 64x64 map, under
    autocast to `dtype` (None = fp32): a conv-bound training step in miniature."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 128, 64, 64, generator=g).to(device).requires_grad_(True)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device)
    best = float("inf")
    for i in range(reps + 1):
        synchronize(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            y = conv(x)
        y.float().square().mean().backward()
        synchronize(device)
        if i:  # the first call warms the kernels up
            best = min(best, time.perf_counter() - t0)
    return best


def choose_amp(device: torch.device) -> tuple[str, str]:
    """train.amp=auto: ("bf16" | "fp16" | "off", why). On a GPU bf16 where it is native, else
    fp16; on a CPU bf16 autocast where it executes bf16 natively *and* a conv step measured
    faster in it than in fp32 (timed once, ~1 s), fp32 (paper-exact numerics) everywhere else."""
    native, why = native_bf16(device)
    if device.type == "cuda":  # tensor cores: bf16 where the GPU has it, else fp16 + GradScaler
        return ("bf16", f"bf16 autocast ({why})") if native else ("fp16", f"fp16 autocast ({why})")
    if not native:
        return "off", f"fp32 ({why})"
    fp32, bf16 = _conv_step_seconds(device, None), _conv_step_seconds(device, torch.bfloat16)
    if bf16 < 0.9 * fp32:
        return "bf16", f"bf16 autocast ({why}; a conv step measured {fp32 / bf16:.1f}x faster than fp32)"
    return "off", f"fp32 ({why}, but a conv step measured no faster in bf16: {fp32 / bf16:.2g}x)"


# Inference precision: fp32 (the default: the trained function to float rounding), bf16 / fp16
# autocast (fp16 on CUDA only), or auto = bf16 where the device runs it natively, else fp32.
INFERENCE_PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DEFAULT_INFERENCE_PRECISION = ["fp32"]


def default_inference_precision() -> str:
    return _DEFAULT_INFERENCE_PRECISION[0]


@contextlib.contextmanager
def inference_precision(precision: str) -> Iterator[None]:
    """Within the block, translators built without an explicit precision use `precision`
    (what `pixtrans translate / evaluate / serve --precision` set)."""
    check_inference_precision(precision)
    previous, _DEFAULT_INFERENCE_PRECISION[0] = _DEFAULT_INFERENCE_PRECISION[0], precision
    try:
        yield
    finally:
        _DEFAULT_INFERENCE_PRECISION[0] = previous


def check_inference_precision(precision: str) -> None:
    if precision not in INFERENCE_PRECISIONS:
        raise PixtransError(
            f"unknown inference precision '{precision}'; valid: {', '.join(INFERENCE_PRECISIONS)}"
        )


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a translator at `precision` runs its nets in on `device` (None: fp32)."""
    check_inference_precision(precision)
    if precision == "auto":
        native, _ = native_bf16(device)
        if native:
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp16" and device.type != "cuda":
        raise PixtransError("precision fp16 needs a CUDA device; on the CPU use bf16 (or fp32)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_to(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast on `device` to `dtype`, or a no-op for None (fp32)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def backend_precision(backend: str, precision: str | None, device: str | torch.device) -> str | None:
    """The precision a translator on `backend` runs at: ONNX Runtime backends run the exported
    fp32 (or int8) graph, so there `auto` means fp32 and bf16/fp16 are refused."""
    chosen = precision or default_inference_precision()
    if backend == "torch":
        return precision
    if chosen == "auto":
        return "fp32"
    if inference_dtype(chosen, resolve_device(device)) is not None:
        raise PixtransError(
            f"precision {chosen} runs with the torch backend only; backend {backend} runs its own "
            "fp32 graph (or int8: backend onnxruntime-int8): drop --precision or use --backend torch"
        )
    return chosen
