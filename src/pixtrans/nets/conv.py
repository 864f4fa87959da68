"""Convolutions with two CPU fast paths: small feature maps as matrix products (one per image),
and large stride-1 maps through NNPACK's fast algorithms (inference, and training when asked).

**Small maps.** At batch 1 the U-Net's inner levels apply 4-32 MB weights to maps of 1x1 to 16x16 pixels, and
oneDNN runs those shapes at a small fraction of its peak (a 2x2 -> 4x4 transposed conv with
1024 -> 512 channels took 27 ms forward + 42 ms backward for 0.07 GFLOP), so the inner levels
of unet_256 took about a quarter of a CPU training step for 4% of its FLOPs.
Written as im2col + GEMM the same maths is bound by reading the weight once:

  conv      y[n] = W (Cout, Cin*k*k) @ unfold(x[n]) (Cin*k*k, Hout*Wout)
  transpose y[n] = fold(W (Cin, Cout*k*k)^T @ x[n] (Cin, H*W))      (fold = col2im, the adjoint)

Autograd differentiates matmul/unfold/fold, so the backward pass is GEMMs too. The modules are
plain subclasses of nn.Conv2d / nn.ConvTranspose2d: parameters, state-dict keys, initialisation
and the maths are unchanged, and every other input (large maps, CUDA, groups, dilation, non-zero
padding modes) takes the parent's path. Results agree with it to float rounding (summation order).

**Large maps, inference.** Without gradients, a stride-1 convolution of a map of at least
FAST_ALGO_MIN_PIXELS output pixels and FAST_ALGO_MIN_CHANNELS input channels runs through NNPACK
(built into torch's x86 wheels): Winograd F(6x6, 3x3) for 3x3 kernels, FFT for larger ones. The same
function with fewer multiplications. Measured on a 2-core AVX2 EPYC against oneDNN's direct
convolution (benchmarks/fast_conv.py, results/fast_conv.json), inference: the ResNet blocks' 256 ch
at 64x64 0.53x the time, pix2pixHD's 1024 ch at 32x64 0.69x, its 7x7 input layer (36 -> 64 ch at
512x1024) 0.24x; under 2048 pixels it does not pay (512 ch at 32x32: 1.01x, 1024 ch at 16x32: 1.32x).
On an AVX-512 CPU oneDNN's direct 3x3 is faster than NNPACK's AVX2 Winograd, so there only the
larger kernels take it (`winograd_pays`). Fewer multiplications also round differently:
results lie ~1e-5 of the output's range from the direct form's, far inside what an 8-bit or even
16-bit image can show. `exact_convs()` (or PIXTRANS_FAST_CONV=0) turns it off.
In training (gradients needed) only inside `fast_training_convs()`, which the trainer enters
for train.fast_conv=auto|on: forward and input gradient through NNPACK, the weight gradient through
oneDNN (CycleGAN step 0.89x, median of 4 interleaved steps, p10 0.84x). Export, CUDA and bf16
keep the direct convolution.

**Wide layers, training.** Inside `fast_training_convs()`, 3x3 and 4x4 stride-1 convolutions
with at least WINOGRAD_MIN_CHANNELS in and out channels and WINOGRAD_MIN_PIXELS output pixels run
as our own Winograd F(4x4, 3x3) / F(3x3, 4x4) in torch ops (nets/winograd.py), which autograd
differentiates, weight gradient included: 0.41-0.61x the direct time on an fp32-only (AVX2)
CPU's kernels, 0.49-0.76x on AVX-512 (benchmarks/winograd.py). `WinogradConv2d` is nn.Conv2d
with that path only (the discriminators' and the VGG loss's layers).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pixtrans.nets.winograd import winograd_conv2d

# Input maps with at most this many pixels take the GEMM path (measured on 2-core AVX-512 CPUs:
# faster up to 16x16 inputs for both directions, slower from 32x32 on).
SMALL_MAP_PIXELS = 256

# GEMM widths (output pixels of a conv, input pixels of a transposed conv) left to oneDNN in fp32
# on CPUs whose vendor is not Intel (None = that rule; a tuple = those widths everywhere): with a
# width of 4 (2x2 maps) MKL's sgemm takes a slow generic kernel for the transposed weight on an
# AVX2 AMD EPYC (37 ms against 6.6 ms for the same 8192x1024 @ 1024x4 product untransposed), and
# oneDNN wins there (U-Net 1024 -> 512 transposed, 2x2 input: 27 against 59 ms forward +
# backward). On an Intel Xeon the GEMM wins at 2x2 too (7.6 against 12.7 ms in fp32), and under
# bf16 autocast, where matmuls run through oneDNN rather than MKL's sgemm, everywhere (8.3 against
# 24 ms: oneDNN's bf16 convolution is slower than its fp32 one on these weight-bound shapes).
GEMM_SKIPPED_WIDTHS: tuple[int, ...] | None = None

# NNPACK in inference for stride-1 convolutions with at least this many output pixels and input
# channels (measured crossover on a 2-core AVX2 EPYC: 2048 px; a 3-channel input layer gains nothing)
FAST_ALGO_MIN_PIXELS = 2048
FAST_ALGO_MIN_CHANNELS = 16

# Our Winograd in training for stride-1 3x3/4x4 layers at least this wide and this large (measured,
# benchmarks/winograd.py, fp32 forward + backward: 256 -> 256 ch at 64x64 0.54x the direct time
# capped to AVX2, 0.61x on AVX-512; 512 ch at 16x32 0.74x / 0.98x; 64-128 ch at large maps and
# 512 ch at 8x8 1.0-2.3x slower, their transforms cost more than the products save)
WINOGRAD_MIN_CHANNELS = 256
WINOGRAD_MIN_PIXELS = 512

# Off while a graph is traced for export (deploy/onnx_export.py): the traced graph must hold plain
# Conv/ConvTranspose nodes, valid at every input size, not Unfold/MatMul chosen for the trace's size.
_GEMM_PATH = [True]
_FAST_ALGO = [os.environ.get("PIXTRANS_FAST_CONV", "1") not in ("0", "off", "false")]
# with gradients too: forward and input gradient through NNPACK, weight gradient through oneDNN
_FAST_ALGO_TRAIN = [False]


@contextlib.contextmanager
def plain_convs() -> Iterator[None]:
    """Within the block, Fast* convs always take the parent nn.Conv2d/ConvTranspose2d path."""
    previous = _GEMM_PATH[0], _FAST_ALGO[0]
    _GEMM_PATH[0] = _FAST_ALGO[0] = False
    try:
        yield
    finally:
        _GEMM_PATH[0], _FAST_ALGO[0] = previous


@contextlib.contextmanager
def exact_convs() -> Iterator[None]:
    """Within the block, inference keeps oneDNN's direct convolution (no Winograd/FFT rounding)."""
    previous, _FAST_ALGO[0] = _FAST_ALGO[0], False
    try:
        yield
    finally:
        _FAST_ALGO[0] = previous


@contextlib.contextmanager
def fast_training_convs(enabled: bool = True) -> Iterator[None]:
    """Within the block, convolutions that need gradients may take the NNPACK path too (the
    backward runs where the forward chose, after the block)."""
    previous, _FAST_ALGO_TRAIN[0] = _FAST_ALGO_TRAIN[0], enabled
    try:
        yield
    finally:
        _FAST_ALGO_TRAIN[0] = previous


def fast_algorithms_enabled() -> bool:
    return _FAST_ALGO[0] and nnpack_available()


@functools.cache
def nnpack_available() -> bool:
    # also initialises NNPACK: its convolution refuses to run before this call
    return bool(torch.backends.nnpack.is_available())


@functools.cache
def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _gemm_skipped(width: int, x: torch.Tensor) -> bool:
    """Does a GEMM of this width go to oneDNN instead (see GEMM_SKIPPED_WIDTHS)?"""
    if GEMM_SKIPPED_WIDTHS is not None:
        return width in GEMM_SKIPPED_WIDTHS
    if torch.is_autocast_enabled(x.device.type) or x.dtype != torch.float32:
        return False
    return width == 4 and _cpu_vendor() != "GenuineIntel"


def _tracing() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def _small_cpu_map(x: torch.Tensor) -> bool:
    if not _GEMM_PATH[0] or _tracing():
        return False
    return x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] * x.shape[-1] <= SMALL_MAP_PIXELS


def _fast_algo_fits(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """The CPU, fp32, stride 1, a large map, no gradients (or inside fast_training_convs()):
    NNPACK's Winograd/FFT pays."""
    if not (_FAST_ALGO[0] and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4):
        return False
    if _needs_grad(conv, x) and not _FAST_ALGO_TRAIN[0]:
        return False
    if torch.is_autocast_enabled("cpu") or _tracing():
        return False
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or isinstance(conv.padding, str):
        return False
    if conv.padding_mode != "zeros" or conv.in_channels < FAST_ALGO_MIN_CHANNELS:
        return False
    (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
    h_out, w_out = x.shape[-2] + 2 * ph - kh + 1, x.shape[-1] + 2 * pw - kw + 1
    if (kh, kw) == (3, 3) and not winograd_pays():
        return False
    return kh > 1 and h_out * w_out >= FAST_ALGO_MIN_PIXELS and nnpack_available()


def _winograd_fits(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Training (inside fast_training_convs()), the CPU, fp32, stride 1, a 3x3 or 4x4 kernel, wide
    layers on maps that are not small: nets/winograd.py pays."""
    if not (_FAST_ALGO_TRAIN[0] and _FAST_ALGO[0] and x.device.type == "cpu" and x.dtype == torch.float32):
        return False
    if x.dim() != 4 or not _needs_grad(conv, x) or torch.is_autocast_enabled("cpu") or _tracing():
        return False
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or isinstance(conv.padding, str):
        return False
    if conv.padding_mode != "zeros" or conv.kernel_size not in ((3, 3), (4, 4)):
        return False
    if min(conv.in_channels, conv.out_channels) < WINOGRAD_MIN_CHANNELS:
        return False
    k, (ph, pw) = conv.kernel_size[0], conv.padding
    return (x.shape[-2] + 2 * ph - k + 1) * (x.shape[-1] + 2 * pw - k + 1) >= WINOGRAD_MIN_PIXELS


@functools.cache
def winograd_pays() -> bool:
    """NNPACK's kernels are AVX2 code: on an AVX-512 CPU oneDNN's direct 3x3 convolution beats
    its Winograd (1.2-1.4x NNPACK's time in inference on an AMX Xeon, results/fast_conv_amx.json),
    while its FFT still wins for 7x7 kernels there (0.34-0.64x), so only 3x3 layers stay direct."""
    return torch.backends.cpu.get_cpu_capability() != "AVX512"


def _needs_grad(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    tensors = (x, conv.weight) if conv.bias is None else (x, conv.weight, conv.bias)
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _nnpack_per_image(x: torch.Tensor, weight: torch.Tensor, bias, padding: list[int]) -> torch.Tensor:
    # one image at a time: NNPACK takes another algorithm for batches, and a translation must not
    # depend on the rest of its batch
    weight = weight.contiguous()
    return torch.cat(
        [
            torch._nnpack_spatial_convolution(xi.contiguous(), weight, bias, padding, [1, 1])
            for xi in x.split(1)
        ]
    )


class _NnpackConvFunction(torch.autograd.Function):
    """y = conv(x, W) + b through NNPACK; dx = conv(dy, flip(W)^T) through NNPACK too (a stride-1
    conv's input gradient is a stride-1 conv with padding k-1-p); dW, db through oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return _nnpack_per_image(x, weight, bias, padding)

    @staticmethod
    @torch.autograd.function.once_differentiable  # a double backward raises instead of going wrong
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x:
            kh, kw = weight.shape[-2:]
            flipped = weight.flip(2, 3).transpose(0, 1)
            back_pad = [kh - 1 - ctx.padding[0], kw - 1 - ctx.padding[1]]
            grad_x = _nnpack_per_image(grad, flipped, None, back_pad)
        if need_w or (ctx.has_bias and need_b):
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if ctx.has_bias else None,
                [1, 1], ctx.padding, [1, 1], False, [0, 0], 1,
                [False, need_w, ctx.has_bias and need_b],
            )  # fmt: skip
        return grad_x, grad_w, grad_b, None


def _nnpack_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    padding = list(conv.padding)
    if _needs_grad(conv, x):
        return _NnpackConvFunction.apply(x, conv.weight, conv.bias, padding)
    return _nnpack_per_image(x, conv.weight, conv.bias, padding)


def _per_sample_mm(w: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(M, K) @ (N, K, L) -> (N, M, L) as N identical 2-D products.

    One batched product would round differently for different N (BLAS picks other kernels), and
    an image's translation must not depend on what else is in its batch. At batch 1 (training)
    this is one GEMM; for more images the weight is read once per image, which these
    weight-bound layers pay anyway.
    """
    return torch.stack([w @ c for c in cols.unbind(0)])


class FastConv2d(nn.Conv2d):
    """nn.Conv2d; on the CPU, inputs of <= SMALL_MAP_PIXELS pixels run as unfold + matmul, and
    large stride-1 maps through NNPACK (inference; training inside fast_training_convs())."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _winograd_fits(self, x):
            return winograd_conv2d(x, self.weight, self.bias, self.padding)
        if _fast_algo_fits(self, x):
            return _nnpack_conv(self, x)
        if not (
            _small_cpu_map(x)
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
        ):
            return super().forward(x)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if _gemm_skipped(h_out * w_out, x):
            return super().forward(x)
        cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (N, Cin*kh*kw, L)
        y = _per_sample_mm(self.weight.reshape(self.out_channels, -1), cols)  # (N, Cout, L)
        y = y.view(n, self.out_channels, h_out, w_out)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)


class WinogradConv2d(nn.Conv2d):
    """nn.Conv2d whose wide stride-1 3x3/4x4 layers run nets/winograd.py in CPU fp32 training
    (inside fast_training_convs()); everything else, inference included, is the parent's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _winograd_fits(self, x):
            return winograd_conv2d(x, self.weight, self.bias, self.padding)
        return super().forward(x)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d; on the CPU, inputs of <= SMALL_MAP_PIXELS pixels run as matmul + fold."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not (
            _small_cpu_map(x)
            and output_size is None
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.output_padding == (0, 0)
        ):
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        if _gemm_skipped(h * w, x):
            return super().forward(x, output_size)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        # weight (Cin, Cout, kh, kw): every input pixel scatters a Cout x kh x kw patch
        cols = _per_sample_mm(self.weight.reshape(c, -1).t(), x.reshape(n, c, h * w))  # (N, Cout*kh*kw, H*W)
        y = F.fold(cols, (h_out, w_out), (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)
