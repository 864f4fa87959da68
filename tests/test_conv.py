"""The CPU fast paths of nets/conv.py (small maps as GEMMs, large maps through NNPACK in inference)
compute what nn.Conv2d / nn.ConvTranspose2d do, and are taken exactly where they should be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixtrans.nets import conv
from pixtrans.nets.conv import FastConv2d, FastConvTranspose2d
from pixtrans.nets.unet import UnetGenerator


def _pair(cls, parent, *args, **kw):
    torch.manual_seed(0)
    ours = cls(*args, **kw)
    ref = parent(*args, **kw)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize(
    "cls,parent,args,kw,hw",
    [
        (FastConv2d, nn.Conv2d, (6, 5, 4), {"stride": 2, "padding": 1, "bias": False}, (8, 6)),
        (FastConv2d, nn.Conv2d, (6, 5, 3), {"stride": 1, "padding": 1}, (5, 7)),
        (FastConv2d, nn.Conv2d, (6, 5, 4), {"stride": 2, "padding": 1}, (2, 2)),
        (FastConvTranspose2d, nn.ConvTranspose2d, (6, 5, 4), {"stride": 2, "padding": 1}, (1, 1)),
        (FastConvTranspose2d, nn.ConvTranspose2d, (6, 5, 4), {"stride": 2, "padding": 1}, (4, 3)),
        (FastConvTranspose2d, nn.ConvTranspose2d, (6, 5, 3), {"stride": 1, "bias": False}, (5, 5)),
    ],
)
def test_gemm_path_matches_the_parent_forward_and_backward(cls, parent, args, kw, hw):
    ours, ref = _pair(cls, parent, *args, **kw)
    x = torch.randn(3, args[0], *hw, dtype=torch.float64, requires_grad=True)
    ours.double(), ref.double()
    y_ours, y_ref = ours(x), ref(x)
    assert y_ours.shape == y_ref.shape
    torch.testing.assert_close(y_ours, y_ref)
    g = torch.randn_like(y_ref)
    (gx_ours, *gp_ours) = torch.autograd.grad(y_ours, [x, *ours.parameters()], g)
    (gx_ref, *gp_ref) = torch.autograd.grad(y_ref, [x, *ref.parameters()], g)
    torch.testing.assert_close(gx_ours, gx_ref)
    for a, b in zip(gp_ours, gp_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_large_maps_and_unsupported_settings_take_the_parent_path(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.nn.functional, "unfold", lambda *a, **k: calls.append(1) or None)
    big = FastConv2d(2, 2, 3, padding=1)
    big(torch.randn(1, 2, 17, 16))  # 272 pixels > SMALL_MAP_PIXELS
    FastConv2d(2, 2, 3, padding=1, padding_mode="reflect")(torch.randn(1, 2, 4, 4))
    FastConv2d(2, 2, 3, padding="same")(torch.randn(1, 2, 4, 4))
    FastConv2d(2, 2, 3, padding=2, dilation=2)(torch.randn(1, 2, 4, 4))
    assert conv.SMALL_MAP_PIXELS == 256 and calls == []


def test_bf16_autocast_keeps_bf16_and_matches_the_parent():
    ours, ref = _pair(FastConvTranspose2d, nn.ConvTranspose2d, 8, 4, 4, stride=2, padding=1)
    x = torch.randn(2, 8, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ours, y_ref = ours(x), ref(x)
    assert y_ours.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y_ours.float(), y_ref.float(), atol=2e-2, rtol=2e-2)


def test_unet_inner_levels_use_it_and_keep_official_keys():
    net = UnetGenerator(3, 3, num_downs=5, ngf=4)
    kinds = {type(m) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    assert kinds == {FastConv2d, FastConvTranspose2d}
    ref_keys = set(net.state_dict())
    assert "model.model.0.weight" in ref_keys and "model.model.1.model.1.weight" in ref_keys


def test_an_image_translates_the_same_whatever_else_is_in_its_batch():
    torch.manual_seed(0)
    net = nn.Sequential(FastConv2d(4, 8, 4, 2, 1), FastConvTranspose2d(8, 4, 4, 2, 1))
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert torch.equal(together, alone)


WINOGRAD_PAYS = conv.winograd_pays
needs_nnpack = pytest.mark.skipif(not conv.nnpack_available(), reason="this torch has no NNPACK")


@pytest.fixture
def nnpack_calls(monkeypatch):
    calls = []
    real = torch._nnpack_spatial_convolution

    def counting(x, *args):
        calls.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", counting)
    # 3x3 layers take Winograd on every CPU here, as on AVX2 ones, so the path is tested anywhere
    monkeypatch.setattr(conv, "winograd_pays", lambda: True)
    return calls


@needs_nnpack
def test_on_avx512_3x3_layers_stay_direct_and_7x7_still_take_nnpack(nnpack_calls, monkeypatch):
    monkeypatch.setattr(conv, "winograd_pays", WINOGRAD_PAYS.__wrapped__)  # uncached, real rule
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    (c3, _), (c7, _) = (_pair(FastConv2d, nn.Conv2d, 16, 8, k, padding=k // 2) for k in (3, 7))
    x = torch.randn(1, 16, 50, 50)
    with torch.inference_mode():
        c3(x)
        assert nnpack_calls == []
        c7(x)
        assert nnpack_calls == [(1, 16, 50, 50)]
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with torch.inference_mode():
        c3(x)
    assert nnpack_calls == [(1, 16, 50, 50)] * 2


@needs_nnpack
@pytest.mark.parametrize("kernel,padding", [(3, 1), (3, 0), (7, 3)])
def test_large_maps_in_inference_run_through_nnpack_and_match_the_direct_conv(nnpack_calls, kernel, padding):
    ours, ref = _pair(FastConv2d, nn.Conv2d, 16, 8, kernel, padding=padding)
    x = torch.randn(2, 16, 50, 50)  # >= 2048 output pixels, 16 input channels
    with torch.inference_mode():
        y_ours, y_ref = ours(x), ref(x)
    assert nnpack_calls == [(1, 16, 50, 50)] * 2  # one image at a time
    # Winograd/FFT round differently from the direct sum: ~1e-5 of the output's range
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-4, atol=1e-4 * y_ref.abs().max().item())
    assert not torch.equal(y_ours, y_ref) or kernel == 1  # it really is another algorithm


@needs_nnpack
def test_the_fast_algorithms_stay_out_of_training_export_and_unfitting_layers(nnpack_calls):
    x = torch.randn(1, 16, 50, 50)
    layer = FastConv2d(16, 8, 3, padding=1)
    layer(x)  # gradients on: the weight requires grad
    layer(x.requires_grad_())
    with torch.no_grad():
        FastConv2d(16, 8, 3, stride=2, padding=1)(x)
        FastConv2d(16, 8, 3, padding=1, padding_mode="reflect")(x)
        FastConv2d(3, 8, 7, padding=3)(torch.randn(1, 3, 50, 50))  # a 3-channel input layer
        FastConv2d(16, 8, 3, padding=1)(torch.randn(1, 16, 40, 40))  # 1600 < 2048 pixels
        FastConv2d(16, 8, 3, padding=1).to(torch.float64)(x.double())
        with conv.exact_convs():
            layer(x)
        with conv.plain_convs():
            layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(x)
        layer(x)  # and back on after the blocks
    assert nnpack_calls == [(1, 16, 50, 50)]


@needs_nnpack
def test_a_large_image_translates_the_same_whatever_else_is_in_its_batch():
    torch.manual_seed(0)
    net = nn.Sequential(FastConv2d(16, 16, 3, padding=1), nn.ReLU(), FastConv2d(16, 3, 7, padding=3))
    x = torch.randn(3, 16, 48, 48)
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert torch.equal(together, alone)


@needs_nnpack
@pytest.mark.parametrize("name", ["resnet", "global"])
def test_generators_in_eval_match_their_exact_convolutions(nnpack_calls, name):
    from pixtrans.nets import build_generator

    torch.manual_seed(0)
    spec = {
        "resnet": {"name": "resnet", "ngf": 16, "n_blocks": 2},
        "global": {"name": "global", "ngf": 8, "n_downsampling": 1, "n_blocks": 2},
    }
    net = build_generator(spec[name], 3, 3).eval()
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.inference_mode():
        fast = net(x)
        with conv.exact_convs():
            exact = net(x)
    assert nnpack_calls  # the large maps took the fast path...
    torch.testing.assert_close(fast, exact, rtol=0, atol=1e-4)  # ...and the image is the same


@needs_nnpack
def test_flop_counts_see_the_direct_convolution_the_floor_is_defined_by(nnpack_calls):
    from pixtrans.bench.floor import conv2d_flops, count_flops

    layer = FastConv2d(16, 8, 3, padding=1)
    with torch.inference_mode():
        flops = count_flops(lambda: layer(torch.randn(1, 16, 50, 50)))
    assert flops == conv2d_flops(16, 8, 3, 50, 50) and nnpack_calls == []


@needs_nnpack
def test_training_convs_give_the_direct_gradients_and_repeat_bitwise(nnpack_calls):
    ours, ref = _pair(FastConv2d, nn.Conv2d, 16, 8, 3, padding=1)
    x = torch.randn(2, 16, 48, 48)

    def grads(layer, fast):
        xx = x.clone().requires_grad_()
        with conv.fast_training_convs(fast):
            y = layer(xx)
        (y.square().sum()).backward()  # the backward runs outside the block, where the forward chose
        out = [xx.grad, layer.weight.grad, layer.bias.grad]
        layer.zero_grad(set_to_none=True)
        return out

    fast, again, direct = grads(ours, True), grads(ours, True), grads(ref, False)
    assert len(nnpack_calls) == 2 * (2 + 2)  # forward and input gradient, per image, twice
    for a, b, c in zip(fast, again, direct, strict=True):
        assert torch.equal(a, b)  # same run, same bits: resume stays exact
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4 * c.abs().max().item())
    grads(ours, False)
    assert len(nnpack_calls) == 8  # outside the block training keeps the direct convolution


def _count_gemm_calls(monkeypatch) -> tuple[list, list]:
    unfolds, folds = [], []
    real_unfold, real_fold = torch.nn.functional.unfold, torch.nn.functional.fold
    monkeypatch.setattr(
        torch.nn.functional, "unfold", lambda *a, **k: unfolds.append(1) or real_unfold(*a, **k)
    )
    monkeypatch.setattr(torch.nn.functional, "fold", lambda *a, **k: folds.append(1) or real_fold(*a, **k))
    return unfolds, folds


def test_two_by_two_gemm_widths_are_left_to_onednn_in_fp32_off_intel(monkeypatch):
    unfolds, folds = _count_gemm_calls(monkeypatch)
    monkeypatch.setattr(conv, "_cpu_vendor", lambda: "AuthenticAMD")  # MKL's slow generic kernel
    down, down_ref = _pair(FastConv2d, nn.Conv2d, 6, 5, 4, stride=2, padding=1)
    up, up_ref = _pair(FastConvTranspose2d, nn.ConvTranspose2d, 6, 5, 4, stride=2, padding=1)
    x4, x2 = torch.randn(1, 6, 4, 4), torch.randn(1, 6, 2, 2)
    assert torch.equal(down(x4), down_ref(x4)) and torch.equal(up(x2), up_ref(x2))  # 2x2: oneDNN itself
    assert unfolds == [] and folds == []
    down(torch.randn(1, 6, 8, 8)), up(torch.randn(1, 6, 4, 4))  # 4x4 widths: the GEMM path
    assert unfolds == [1] and folds == [1]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 matmuls are oneDNN's, not MKL's: GEMM
        torch.testing.assert_close(down(x4).float(), down_ref(x4).float(), rtol=2e-2, atol=2e-2)
        up(x2)
    assert unfolds == [1, 1] and folds == [1, 1]


def test_two_by_two_gemm_widths_take_the_gemm_on_intel_or_when_set(monkeypatch):
    unfolds, folds = _count_gemm_calls(monkeypatch)
    monkeypatch.setattr(conv, "_cpu_vendor", lambda: "GenuineIntel")
    down, down_ref = _pair(FastConv2d, nn.Conv2d, 6, 5, 4, stride=2, padding=1)
    up, up_ref = _pair(FastConvTranspose2d, nn.ConvTranspose2d, 6, 5, 4, stride=2, padding=1)
    x4, x2 = torch.randn(1, 6, 4, 4), torch.randn(1, 6, 2, 2)
    torch.testing.assert_close(down(x4), down_ref(x4)), torch.testing.assert_close(up(x2), up_ref(x2))
    assert unfolds == [1] and folds == [1]
    monkeypatch.setattr(conv, "GEMM_SKIPPED_WIDTHS", (4,))  # an explicit tuple holds on every CPU
    down(x4), up(x2)
    assert unfolds == [1] and folds == [1]


@needs_nnpack
def test_a_trainable_bias_alone_still_gets_its_gradient():
    ours, ref = _pair(FastConv2d, nn.Conv2d, 16, 8, 3, padding=1)
    for layer in (ours, ref):
        layer.weight.requires_grad_(False)
    x = torch.randn(1, 16, 48, 48)
    with torch.no_grad():  # and in inference nothing is recorded
        assert not ours(x).requires_grad
    ours(x).sum().backward()  # outside fast_training_convs: the direct conv
    with conv.fast_training_convs():
        y = ours(x)
    grad_direct, ours.bias.grad = ours.bias.grad, None
    y.sum().backward()
    ref(x).sum().backward()
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(grad_direct, ref.bias.grad)
