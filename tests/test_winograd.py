"""Our Winograd convolution (nets/winograd.py) and where the training path takes it (nets/conv.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixtrans.nets import conv, winograd
from pixtrans.nets.conv import FastConv2d, WinogradConv2d
from pixtrans.nets.winograd import _transforms_1d, winograd_conv2d


def test_the_transforms_are_lavin_and_grays_for_f4x4_3x3():
    at, g, bt = _transforms_1d(3)
    assert bt[0].tolist() == [4, 0, -5, 0, 1, 0] and bt[5].tolist() == [0, 4, 0, -5, 0, 1]
    assert at[3].tolist() == [0, 1, -1, 8, -8, 1]
    torch.testing.assert_close(g[3], torch.tensor([1 / 24, 1 / 12, 1 / 6], dtype=torch.float64))


# (in, out, kernel, padding, height, width): tiles that fit, tiles that hang over, non-square maps
SHAPES = [
    (16, 20, 3, 1, 13, 17),
    (16, 24, 4, 1, 31, 33),
    (16, 24, 4, 2, 30, 30),
    (8, 8, 3, 0, 8, 8),
    (32, 16, 4, 2, 5, 7),
]


@pytest.mark.parametrize(
    "chunk_bytes", [16 << 20, 1]
)  # whole filter transforms, or one output channel at a time
@pytest.mark.parametrize("cin, cout, k, pad, h, w", SHAPES)
def test_forward_and_every_gradient_match_the_direct_convolution(
    cin, cout, k, pad, h, w, chunk_bytes, monkeypatch
):
    monkeypatch.setattr(winograd, "FILTER_CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(0)
    x = torch.randn(2, cin, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(cout, cin, k, k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    y_ref = F.conv2d(x, weight, bias, padding=pad)  # float64: the exact answer to fp32 precision
    grad = torch.randn_like(y_ref)
    ref = [y_ref, *torch.autograd.grad(y_ref, (x, weight, bias), grad)]
    xf, wf, bf = (t.detach().float().requires_grad_() for t in (x, weight, bias))
    y = winograd_conv2d(xf, wf, bf, (pad, pad))
    ours = [y, *torch.autograd.grad(y, (xf, wf, bf), grad.float())]
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        # the transforms hold 1/24 and 8: a few 1e-6 of the range, as NNPACK's Winograd
        torch.testing.assert_close(a.double(), b, rtol=0, atol=2e-5 * b.abs().max().item())


@pytest.mark.parametrize("chunk_bytes", [16 << 20, 36 * 16 * 4 * 5])  # whole, or 5 channels at a time
def test_it_is_bitwise_repeatable_and_differentiable_twice(chunk_bytes, monkeypatch):
    monkeypatch.setattr(winograd, "FILTER_CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(0)
    x = torch.randn(1, 16, 12, 12, requires_grad=True)
    weight = torch.randn(16, 16, 4, 4, requires_grad=True)
    y1, y2 = (winograd_conv2d(x, weight, None, (1, 1)) for _ in range(2))
    assert torch.equal(y1, y2)  # same inputs, same bits: resume stays exact
    # a gradient penalty differentiates D's input gradient again
    (gx,) = torch.autograd.grad(y1.square().sum(), x, create_graph=True)
    (gw,) = torch.autograd.grad(gx.square().sum(), weight)
    x64, w64 = x.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    (gx64,) = torch.autograd.grad(F.conv2d(x64, w64, padding=1).square().sum(), x64, create_graph=True)
    (gw64,) = torch.autograd.grad(gx64.square().sum(), w64)
    torch.testing.assert_close(gw.double(), gw64, rtol=0, atol=1e-4 * gw64.abs().max().item())


@pytest.fixture
def winograd_calls(monkeypatch):
    calls = []
    real = conv.winograd_conv2d

    def counting(x, *args):
        calls.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(conv, "winograd_conv2d", counting)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 16)  # test-sized layers
    monkeypatch.setattr(conv, "WINOGRAD_MIN_PIXELS", 64)
    return calls


@pytest.mark.parametrize("cls", [FastConv2d, WinogradConv2d])
def test_training_takes_it_for_wide_stride1_layers_only(winograd_calls, cls):
    x = torch.randn(1, 16, 12, 12)
    layer = cls(16, 16, 3, padding=1)
    with conv.fast_training_convs():
        layer(x)  # the weight requires grad: training
        layer(x.requires_grad_())
        with torch.no_grad():
            layer(x)  # inference: not here (NNPACK's rule, or direct)
        cls(16, 16, 3, stride=2, padding=1)(x)
        cls(16, 16, 5, padding=2)(x)  # kernels 3 and 4 only
        cls(16, 8, 3, padding=1)(x)  # too few outputs
        cls(16, 16, 3, padding=1)(torch.randn(1, 16, 6, 6))  # 36 < 64 pixels
        cls(16, 16, 3, padding=1, padding_mode="reflect")(x)
        cls(16, 16, 3, padding=1).double()(x.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(x)
        with conv.exact_convs():
            layer(x)
    layer(x)  # outside the block training keeps the direct convolution
    assert winograd_calls == [(1, 16, 12, 12)] * 2


def test_training_layers_give_the_direct_gradients(winograd_calls):
    torch.manual_seed(0)
    ours = WinogradConv2d(16, 24, 4, padding=1)
    ref = nn.Conv2d(16, 24, 4, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 16, 15, 15)

    def grads(layer):
        xx = x.clone().requires_grad_()
        with conv.fast_training_convs():
            y = layer(xx)
        y.square().sum().backward()  # the backward runs outside the block, where the forward chose
        return [y, xx.grad, layer.weight.grad, layer.bias.grad]

    for a, b in zip(grads(ours), grads(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * b.abs().max().item())
    assert len(winograd_calls) == 1


def test_discriminators_and_the_vgg_loss_keep_their_official_keys():
    from pixtrans.losses.perceptual import VGG19Features
    from pixtrans.nets import build_discriminator

    patchgan = build_discriminator({"name": "patchgan", "ndf": 64, "n_layers": 3}, input_nc=6)
    assert isinstance(patchgan.model[8], WinogradConv2d) and "model.8.weight" in patchgan.state_dict()
    multiscale = build_discriminator({"name": "multiscale", "ndf": 64, "n_layers": 3, "num_D": 1}, input_nc=6)
    assert any(isinstance(m, WinogradConv2d) and m.stride == (1, 1) for m in multiscale.modules())
    vgg = VGG19Features(weights="random")
    assert all(isinstance(m, FastConv2d) for m in vgg.modules() if isinstance(m, nn.Conv2d))
