"""Winograd minimal filtering for training: stride-1 3x3 and 4x4 convolutions with fewer
multiplications, forward and both gradients, written in differentiable torch ops.

Lavin & Gray (2016): an m x m output tile of an r x r correlation over an a x a input tile,
a = m + r - 1, is

  Y = A^T [ (G g G^T) * (B^T d B) ] A                                              (eq. 8)

so for C_in -> C_out channels each of the a*a tile positions e is one matrix product
  M[e] (C_out, tiles) = U[e] (C_out, C_in) @ V[e] (C_in, tiles),
with a*a / (m*m) products per output pixel instead of r*r. We use a = 6: F(4x4, 3x3) and
F(3x3, 4x4), both 4x fewer multiplications than the direct form.

Why not NNPACK (nets/conv.py)? NNPACK has no weight-gradient call, so in training its Winograd
covers the forward and the input gradient only, and the weight gradient - a third of a conv's
training FLOPs - stays direct. Here autograd differentiates the products themselves:
  dV[e] = U[e]^T dM[e],  dU[e] = dM[e] V[e]^T,
and the transforms' adjoints carry dU, dV back to dW, dX (unfold's adjoint is fold). Every op is a
GEMM or memory-bound, so fp32 runs near the BLAS rate with 1/4 of the arithmetic: on a 2-core
Xeon with every library capped to AVX2, a 1024-channel 3x3 layer at 16x32 (pix2pixHD's residual
blocks) takes 86 ms forward + backward against 166 ms direct, 256 channels at 64x64 (CycleGAN's)
41 against 78 ms (benchmarks/winograd.py). Rounding: ~1e-5 of the output's range from the direct
form (the transforms hold 1/24 and 8), as NNPACK's F(6x6, 3x3); same inputs, same bits, so resume
stays exact. Double backward works (the gradient penalty may use it).

The transform matrices come from Cook-Toom interpolation at the points 0, 1, -1, 2, -2 and
infinity (`_transforms`), checked against the direct correlation when they are built.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

TILE = 6  # a = m + r - 1: the input tile side for both kernel sizes
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0)  # finite interpolation points (a - 1 of them) + infinity


@functools.cache
def _transforms_1d(r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A^T (m, a), G (a, r), B^T (a, a)) in float64 for F(m, r), m = TILE - r + 1.

    A^T and G are Vandermonde rows at the points (infinity as the last coefficient), G's rows
    scaled by 1 / prod_{j != i} (p_i - p_j); B^T is then the one matrix that makes
    y_i = sum_k d_{i+k} g_k hold for every d, g, found as a linear system and checked exactly.
    """
    m, a = TILE - r + 1, TILE
    p = torch.tensor(_POINTS, dtype=torch.float64)
    at = torch.zeros(m, a, dtype=torch.float64)
    g = torch.zeros(a, r, dtype=torch.float64)
    for i in range(a - 1):
        at[:, i] = p[i] ** torch.arange(m)
        scale = math.prod(p[i].item() - p[j].item() for j in range(a - 1) if j != i)
        g[i] = p[i] ** torch.arange(r) / scale
    at[m - 1, a - 1] = 1.0
    g[a - 1, r - 1] = 1.0
    # sum_k AT[i, k] G[k, s] BT[k, t] = [t == i + s] for all i < m, s < r, t < a: linear in BT
    rows = torch.einsum("ik,ks->isk", at, g).reshape(m * r, a)  # (i, s) -> coefficients over k
    target = torch.zeros(m, r, a, dtype=torch.float64)
    for i in range(m):
        for s in range(r):
            target[i, s, i + s] = 1.0
    bt = torch.linalg.lstsq(rows, target.reshape(m * r, a)).solution  # (a, a): BT[k, t]
    bt = bt.round()  # integer by construction at these points; rounding removes lstsq noise
    check = torch.einsum("ik,ks,kt->ist", at, g, bt)
    if not torch.allclose(check, target, rtol=0, atol=1e-12):
        raise AssertionError(f"Winograd F({m}, {r}) transforms do not reproduce the correlation")
    return at, g, bt


@functools.cache
def _transforms(r: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 2-D transforms as Kronecker products, float32: B (a*a, a*a) for the input tiles,
    G (a*a, r*r) for the kernels, A (m*m, a*a) for the output tiles."""
    at, g, bt = _transforms_1d(r)
    return tuple(torch.kron(t, t).float().to(device) for t in (bt, g, at))  # type: ignore[return-value]


def _filter_transform(weight: torch.Tensor, kg: torch.Tensor) -> torch.Tensor:
    """U[e] = (G g G^T)[e] for every filter: (C_out, C_in, r, r) -> (a*a, C_out, C_in)."""
    c_out, c_in, r, _ = weight.shape
    return (kg @ weight.reshape(c_out * c_in, r * r).t()).view(-1, c_out, c_in)


# Filter transforms are built for this many bytes of U at a time (a block of output channels):
# whole, a 1024-channel layer's U is 151 MB, and such transients, freed and re-requested at other
# sizes every layer, fragmented the heap that tune_malloc keeps (pix2pixHD RSS 5.2 -> 9.2 GB).
# Blocks of output channels read each weight once (blocks of tile positions re-read all of it
# per block: 1024-channel layer 176 ms against 92 ms whole).
FILTER_CHUNK_BYTES = 16 << 20


def _channel_blocks(weight: torch.Tensor, e: int) -> list[slice]:
    c_out, c_in = weight.shape[:2]
    step = max(1, min(c_out, FILTER_CHUNK_BYTES // (e * c_in * weight.element_size())))
    return [slice(i, i + step) for i in range(0, c_out, step)]


class _WinogradProducts(torch.autograd.Function):
    """M[e] = U[e] @ V[e] with U = the filter transform of the weight, built a block of output
    channels at a time and rebuilt in the backward rather than kept: U holds a*a / r*r (4x /
    2.25x) the weight, 2.7 GB over pix2pixHD's 18 residual convs, against one more transform
    (~6 ms) each. The backward is written in differentiable ops, so a double backward works."""

    @staticmethod
    def forward(ctx, weight, v, kg):
        # V is needed for dW only (a frozen layer, like the VGG loss's, keeps nothing of it)
        ctx.save_for_backward(weight, v if ctx.needs_input_grad[0] else None, kg)
        parts = [torch.bmm(_filter_transform(weight[b], kg), v) for b in _channel_blocks(weight, kg.shape[0])]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (e, C_out, T)

    @staticmethod
    def backward(ctx, grad):
        weight, v, kg = ctx.saved_tensors
        need_w, need_v = ctx.needs_input_grad[:2]
        grad_v, grad_w_parts = None, []
        for b in _channel_blocks(weight, kg.shape[0]):
            u, g = _filter_transform(weight[b], kg), grad[:, b]
            if need_v:  # dV = U^T dM, summed over the blocks of output channels
                term = torch.bmm(u.transpose(1, 2), g)
                grad_v = term if grad_v is None else grad_v + term
            if need_w:
                grad_u = torch.bmm(g, v.transpose(1, 2))  # dU = dM V^T, (e, block, C_in)
                # U = KG @ W^T (flattened), so dW^T = KG^T @ dU
                grad_wt = kg.t() @ grad_u.reshape(kg.shape[0], -1)
                grad_w_parts.append(grad_wt.t().reshape(weight[b].shape))
        grad_w = None
        if need_w:
            grad_w = grad_w_parts[0] if len(grad_w_parts) == 1 else torch.cat(grad_w_parts)
        return grad_w, grad_v, None


def winograd_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
) -> torch.Tensor:
    """Same as F.conv2d(x, weight, bias, stride=1, padding=padding) for r x r kernels, r in {3, 4}.

    x (N, C_in, H, W), weight (C_out, C_in, r, r) -> (N, C_out, H + 2p - r + 1, W + 2p - r + 1).
    """
    n, c_in, h, w = x.shape
    c_out, _, r, _ = weight.shape
    m, a = TILE - r + 1, TILE
    e = a * a
    (ph, pw) = padding
    h_out, w_out = h + 2 * ph - r + 1, w + 2 * pw - r + 1
    th, tw = -(-h_out // m), -(-w_out // m)  # tiles per side (the last one may hang over)
    # zero padding: the conv's own, plus whatever completes the last tiles (cropped again below)
    x = F.pad(x, (pw, pw + tw * m + r - 1 - (w + 2 * pw), ph, ph + th * m + r - 1 - (h + 2 * ph)))
    kb, kg, ka = _transforms(r, x.device)
    tiles = th * tw
    d = F.unfold(x, a, stride=m).view(n, c_in, e, tiles)  # (N, C_in, e, T): overlapping a x a tiles
    d = d.permute(2, 1, 0, 3).reshape(e, c_in * n * tiles)
    v = (kb @ d).view(e, c_in, n * tiles)  # B^T d B per tile
    prod = _WinogradProducts.apply(weight, v, kg)  # (e, C_out, N*T): the a*a independent products
    y = (ka @ prod.view(e, -1)).view(m, m, c_out, n, th, tw)  # A^T M A
    y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, c_out, th * m, tw * m)[:, :, :h_out, :w_out]
    return y if bias is None else y + bias.view(1, -1, 1, 1)
