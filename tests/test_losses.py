"""GAN objectives: known values on constructed logits, multi-scale handling, gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixtrans import PixtransError
from pixtrans.losses import GANObjective, build_gan_loss, gradient_penalty, predictions
from pixtrans.registry import GAN_LOSSES


def logits(value: float, shape=(2, 1, 3, 3)) -> torch.Tensor:
    return torch.full(shape, value)


@pytest.mark.parametrize("mode", GAN_LOSSES.names())
def test_interface(mode):
    loss = build_gan_loss(mode)
    assert isinstance(loss, GANObjective) and loss.name == mode
    assert loss.needs_gradient_penalty == (mode == "wgan-gp")
    real = torch.randn(2, 1, 5, 5, requires_grad=True)
    fake = torch.randn(2, 1, 5, 5, requires_grad=True)
    d_real, d_fake = loss.d_loss(real, fake)
    g = loss.g_loss(fake)
    assert d_real.shape == d_fake.shape == g.shape == ()
    (d_real + d_fake).backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
    fake.grad = None
    g.backward()  # (wgan-gp's d_fake + g is constant in fake, so check G on its own)
    assert fake.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", GAN_LOSSES.names())
def test_multiscale_sums_scales(mode):
    loss = build_gan_loss(mode)
    torch.manual_seed(0)
    real = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)]
    fake = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)]
    d_real, d_fake = loss.d_loss(real, fake)
    per_scale = [loss.d_loss(r, f) for r, f in zip(real, fake, strict=True)]
    torch.testing.assert_close(d_real, per_scale[0][0] + per_scale[1][0])
    torch.testing.assert_close(d_fake, per_scale[0][1] + per_scale[1][1])
    torch.testing.assert_close(loss.g_loss(fake), loss.g_loss(fake[0]) + loss.g_loss(fake[1]))
    # pix2pixHD getIntermFeat layout: per scale a list of features, the last one the logits
    feats = [[torch.randn(2, 8, 8, 8), f] for f in fake]
    torch.testing.assert_close(loss.g_loss(feats), loss.g_loss(fake))
    assert [p.shape for p in predictions(feats)] == [f.shape for f in fake]


@pytest.mark.parametrize(
    ("mode", "value", "real", "fake", "gen"),
    [
        # sigmoid(0) = 1/2: every BCE term is -log(1/2) = ln 2
        ("vanilla", 0.0, math.log(2), math.log(2), math.log(2)),
        # logit ln 3: D = 3/4 -> real -log(3/4), fake -log(1/4), G (non-saturating) -log(3/4)
        ("vanilla", math.log(3), -math.log(0.75), -math.log(0.25), -math.log(0.75)),
        ("lsgan", 0.5, 0.25, 0.25, 0.25),  # (0.5-1)^2, 0.5^2, (0.5-1)^2
        ("lsgan", 2.0, 1.0, 4.0, 1.0),
        ("lsgan", -1.0, 4.0, 1.0, 4.0),
        ("hinge", 0.5, 0.5, 1.5, -0.5),  # relu(1-x), relu(1+x), -x
        ("hinge", 2.0, 0.0, 3.0, -2.0),
        ("hinge", -3.0, 4.0, 0.0, 3.0),
        ("wgan-gp", 1.5, -1.5, 1.5, -1.5),  # -x, x, -x
    ],
)
def test_known_values(mode, value, real, fake, gen):
    loss = build_gan_loss(mode)
    d_real, d_fake = loss.d_loss(logits(value), logits(value))
    assert d_real.item() == pytest.approx(real, rel=1e-6, abs=1e-7)
    assert d_fake.item() == pytest.approx(fake, rel=1e-6, abs=1e-7)
    assert loss.g_loss(logits(value)).item() == pytest.approx(gen, rel=1e-6, abs=1e-7)


def test_vanilla_and_lsgan_match_official_ganloss_arithmetic():
    # official GANLoss: BCEWithLogitsLoss / MSELoss against a target tensor of 1s or 0s
    torch.manual_seed(0)
    pred_real, pred_fake = torch.randn(4, 1, 30, 30), torch.randn(4, 1, 30, 30)
    ones, zeros = torch.ones_like(pred_real), torch.zeros_like(pred_fake)
    van = build_gan_loss("vanilla")
    d_real, d_fake = van.d_loss(pred_real, pred_fake)
    assert torch.equal(d_real, nn.BCEWithLogitsLoss()(pred_real, ones))
    assert torch.equal(d_fake, nn.BCEWithLogitsLoss()(pred_fake, zeros))
    assert torch.equal(van.g_loss(pred_fake), nn.BCEWithLogitsLoss()(pred_fake, ones))
    ls = build_gan_loss("lsgan")
    d_real, d_fake = ls.d_loss(pred_real, pred_fake)
    assert torch.equal(d_real, nn.MSELoss()(pred_real, ones))
    assert torch.equal(d_fake, nn.MSELoss()(pred_fake, zeros))


def test_label_smoothing():
    loss = build_gan_loss("vanilla", real_label=0.9)
    d_real, _ = loss.d_loss(logits(0.0), logits(0.0))
    assert d_real.item() == pytest.approx(math.log(2))  # BCE at p = 1/2 does not depend on the target
    pred = logits(2.0)
    expected = F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, 0.9))
    assert torch.equal(loss.d_loss(pred, pred)[0], expected)


def test_build_gan_loss_unknown():
    with pytest.raises(PixtransError, match=r"unknown gan loss 'lsgann' \(did you mean 'lsgan'\?\); valid: "):
        build_gan_loss("lsgann")


# ---------------------------------------------------------------- gradient penalty


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: grad_x D = w for every x, so the penalty is λ(||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)  # (C, H, W)

    def forward(self, x):
        return (x * self.w).sum(dim=(1, 2, 3)).view(-1, 1, 1, 1)


def test_gradient_penalty_zero_for_unit_gradient():
    # 4 entries of ±0.5: ||w|| = 1 exactly in fp32, so the penalty is exactly 0 for any alpha
    D = LinearCritic(torch.tensor([[[0.5, -0.5], [-0.5, 0.5]]]))
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    gp = gradient_penalty(D, real, fake)
    assert gp.item() == 0.0


def test_gradient_penalty_known_value_and_create_graph():
    # ||w|| = 2: penalty λ(2-1)^2 = 10; d/dw = 2λ(||w||-1) w/||w|| = 10 w
    w = torch.tensor([[[1.0, -1.0], [1.0, 1.0]]])
    D = LinearCritic(w.clone())
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    gp = gradient_penalty(D, real, fake, lambda_gp=10.0)
    assert gp.item() == pytest.approx(10.0, rel=1e-6)
    gp.backward()  # possible only because the input gradient was built with create_graph=True
    torch.testing.assert_close(D.w.grad, 10 * w)
    assert real.grad is None and fake.grad is None  # only D is penalised


def test_gradient_penalty_interpolates_per_sample():
    # D(x) = ||x||^2 / 2 per sample: grad = x_hat itself, so the penalty depends on alpha
    def D(x):
        return 0.5 * (x**2).sum(dim=(1, 2, 3))

    torch.manual_seed(0)
    real, fake = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    torch.manual_seed(123)
    alpha = torch.rand(4, 1, 1, 1)  # the one draw gradient_penalty makes: one alpha per sample
    x_hat = alpha * real + (1 - alpha) * fake
    expected = ((x_hat.reshape(4, -1).norm(dim=1) - 1) ** 2).mean() * 10.0
    torch.manual_seed(123)
    gp = gradient_penalty(D, real, fake)
    torch.testing.assert_close(gp, expected)
    assert gp > 0


def test_gradient_penalty_patch_and_multiscale_d():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 1, 3)
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    torch.manual_seed(1)
    single = gradient_penalty(conv, real, fake)
    torch.manual_seed(1)
    # two "scales" of the same D: the gradient of the summed logits doubles
    double = gradient_penalty(lambda x: [conv(x), conv(x)], real, fake, lambda_gp=10.0)
    assert single > 0 and torch.isfinite(single)
    torch.manual_seed(1)
    x_grad_norm_sq_term = gradient_penalty(lambda x: 2 * conv(x), real, fake)
    torch.testing.assert_close(double, x_grad_norm_sq_term)
    single.backward()
    assert conv.weight.grad.abs().sum() > 0


def test_gradient_penalty_disabled():
    D = LinearCritic(torch.ones(1, 2, 2))
    gp = gradient_penalty(D, torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2), lambda_gp=0.0)
    assert gp.item() == 0.0
