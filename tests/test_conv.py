"""The GEMM path of the small-map convolutions computes what nn.Conv2d / nn.ConvTranspose2d do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixtrans.nets import conv
from pixtrans.nets.conv import SmallMapConv2d, SmallMapConvTranspose2d
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
        (SmallMapConv2d, nn.Conv2d, (6, 5, 4), {"stride": 2, "padding": 1, "bias": False}, (8, 6)),
        (SmallMapConv2d, nn.Conv2d, (6, 5, 3), {"stride": 1, "padding": 1}, (5, 7)),
        (SmallMapConv2d, nn.Conv2d, (6, 5, 4), {"stride": 2, "padding": 1}, (2, 2)),
        (SmallMapConvTranspose2d, nn.ConvTranspose2d, (6, 5, 4), {"stride": 2, "padding": 1}, (1, 1)),
        (SmallMapConvTranspose2d, nn.ConvTranspose2d, (6, 5, 4), {"stride": 2, "padding": 1}, (4, 3)),
        (SmallMapConvTranspose2d, nn.ConvTranspose2d, (6, 5, 3), {"stride": 1, "bias": False}, (5, 5)),
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
    big = SmallMapConv2d(2, 2, 3, padding=1)
    big(torch.randn(1, 2, 17, 16))  # 272 pixels > SMALL_MAP_PIXELS
    SmallMapConv2d(2, 2, 3, padding=1, padding_mode="reflect")(torch.randn(1, 2, 4, 4))
    SmallMapConv2d(2, 2, 3, padding="same")(torch.randn(1, 2, 4, 4))
    SmallMapConv2d(2, 2, 3, padding=2, dilation=2)(torch.randn(1, 2, 4, 4))
    assert conv.SMALL_MAP_PIXELS == 256 and calls == []


def test_bf16_autocast_keeps_bf16_and_matches_the_parent():
    ours, ref = _pair(SmallMapConvTranspose2d, nn.ConvTranspose2d, 8, 4, 4, stride=2, padding=1)
    x = torch.randn(2, 8, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ours, y_ref = ours(x), ref(x)
    assert y_ours.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y_ours.float(), y_ref.float(), atol=2e-2, rtol=2e-2)


def test_unet_inner_levels_use_it_and_keep_official_keys():
    net = UnetGenerator(3, 3, num_downs=5, ngf=4)
    kinds = {type(m) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    assert kinds == {SmallMapConv2d, SmallMapConvTranspose2d}
    ref_keys = set(net.state_dict())
    assert "model.model.0.weight" in ref_keys and "model.model.1.model.1.weight" in ref_keys


def test_an_image_translates_the_same_whatever_else_is_in_its_batch():
    torch.manual_seed(0)
    net = nn.Sequential(SmallMapConv2d(4, 8, 4, 2, 1), SmallMapConvTranspose2d(8, 4, 4, 2, 1))
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert torch.equal(together, alone)
