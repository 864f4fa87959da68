"""Convolutions that run small feature maps as matrix products (one per image) on the CPU.

At batch 1 the U-Net's inner levels apply 4-32 MB weights to maps of 1x1 to 16x16 pixels, and
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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

# Input maps with at most this many pixels take the GEMM path (measured on 2-core AVX-512 CPUs:
# faster up to 16x16 inputs for both directions, slower from 32x32 on).
SMALL_MAP_PIXELS = 256

# Off while a graph is traced for export (deploy/onnx_export.py): the traced graph must hold plain
# Conv/ConvTranspose nodes, valid at every input size, not Unfold/MatMul chosen for the trace's size.
_GEMM_PATH = [True]


@contextlib.contextmanager
def plain_convs() -> Iterator[None]:
    """Within the block, SmallMap convs always take the parent nn.Conv2d/ConvTranspose2d path."""
    previous, _GEMM_PATH[0] = _GEMM_PATH[0], False
    try:
        yield
    finally:
        _GEMM_PATH[0] = previous


def _small_cpu_map(x: torch.Tensor) -> bool:
    if not _GEMM_PATH[0] or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        return False
    return x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] * x.shape[-1] <= SMALL_MAP_PIXELS


def _per_sample_mm(w: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(M, K) @ (N, K, L) -> (N, M, L) as N identical 2-D products.

    One batched product would round differently for different N (BLAS picks other kernels), and
    an image's translation must not depend on what else is in its batch. At batch 1 (training)
    this is one GEMM; for more images the weight is read once per image, which these
    weight-bound layers pay anyway.
    """
    return torch.stack([w @ c for c in cols.unbind(0)])


class SmallMapConv2d(nn.Conv2d):
    """nn.Conv2d; on the CPU, inputs of <= SMALL_MAP_PIXELS pixels run as unfold + matmul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (N, Cin*kh*kw, L)
        y = _per_sample_mm(self.weight.reshape(self.out_channels, -1), cols)  # (N, Cout, L)
        y = y.view(n, self.out_channels, h_out, w_out)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)


class SmallMapConvTranspose2d(nn.ConvTranspose2d):
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
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        # weight (Cin, Cout, kh, kw): every input pixel scatters a Cout x kh x kw patch
        cols = _per_sample_mm(self.weight.reshape(c, -1).t(), x.reshape(n, c, h * w))  # (N, Cout*kh*kw, H*W)
        y = F.fold(cols, (h_out, w_out), (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)
