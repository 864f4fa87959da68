"""GAN objectives on discriminator logits, and the WGAN-GP gradient penalty.

Every objective has the same interface:
  d_loss(pred_real, pred_fake) -> (real_term, fake_term)   scalars; D minimises their sum
  g_loss(pred_fake)            -> scalar                   G minimises it
Predictions are logits: a tensor (N, 1, h, w) from a PatchGAN, or a list over scales from a
multi-scale D, whose terms are summed over scales (each scale a mean). A scale may itself be a
list of intermediate features (pix2pixHD getIntermFeat); then its last entry is the prediction.
Weights such as pix2pix's 0.5 on the D loss belong to the method, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixtrans.registry import GAN_LOSSES

Preds = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]


def predictions(pred: Preds) -> list[Tensor]:
    """Flatten a D output to one logits tensor per scale."""
    if isinstance(pred, Tensor):
        return [pred]
    return [p if isinstance(p, Tensor) else p[-1] for p in pred]


def _over_scales(term: Callable[[Tensor], Tensor], pred: Preds) -> Tensor:
    preds = predictions(pred)
    total = term(preds[0])
    for p in preds[1:]:  # scale 0 + scale 1 + ..., the order pix2pixHD accumulates in
        total = total + term(p)
    return total


class GANObjective:
    """Base: subclasses define the per-scale terms on one logits tensor."""

    name: str = ""
    needs_gradient_penalty = False  # True: the method must add gradient_penalty() to D's loss

    def real_term(self, pred: Tensor) -> Tensor:  # D on real samples
        raise NotImplementedError

    def fake_term(self, pred: Tensor) -> Tensor:  # D on generated samples
        raise NotImplementedError

    def gen_term(self, pred: Tensor) -> Tensor:  # G on generated samples
        raise NotImplementedError

    def d_loss(self, pred_real: Preds, pred_fake: Preds) -> tuple[Tensor, Tensor]:
        return _over_scales(self.real_term, pred_real), _over_scales(self.fake_term, pred_fake)

    def g_loss(self, pred_fake: Preds) -> Tensor:
        return _over_scales(self.gen_term, pred_fake)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@GAN_LOSSES.register("vanilla")
class VanillaGANLoss(GANObjective):
    """Goodfellow et al. 2014 with the non-saturating G loss; BCE on logits, as the official
    GANLoss('vanilla'): D: -log D(x) - log(1 - D(G(z))), G: -log D(G(z)), D = sigmoid(logit)."""

    name = "vanilla"

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        self.real_label = real_label  # < 1 gives one-sided label smoothing
        self.fake_label = fake_label

    def _bce(self, pred: Tensor, target: float) -> Tensor:
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, target))

    def real_term(self, pred: Tensor) -> Tensor:
        return self._bce(pred, self.real_label)

    def fake_term(self, pred: Tensor) -> Tensor:
        return self._bce(pred, self.fake_label)

    def gen_term(self, pred: Tensor) -> Tensor:
        return self._bce(pred, self.real_label)


@GAN_LOSSES.register("lsgan")
class LSGANLoss(GANObjective):
    """Mao et al. 2017 (a=0, b=c=1), as CycleGAN: D: (D(x)-1)^2 + D(G(z))^2, G: (D(G(z))-1)^2,
    each a mean over patches. Note the raw logit is regressed; there is no sigmoid."""

    name = "lsgan"

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        self.real_label = real_label
        self.fake_label = fake_label

    def _mse(self, pred: Tensor, target: float) -> Tensor:
        return F.mse_loss(pred, torch.full_like(pred, target))

    def real_term(self, pred: Tensor) -> Tensor:
        return self._mse(pred, self.real_label)

    def fake_term(self, pred: Tensor) -> Tensor:
        return self._mse(pred, self.fake_label)

    def gen_term(self, pred: Tensor) -> Tensor:
        return self._mse(pred, self.real_label)


@GAN_LOSSES.register("hinge")
class HingeGANLoss(GANObjective):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D: relu(1 - D(x)) + relu(1 + D(G(z))),
    G: -D(G(z))."""

    name = "hinge"

    def real_term(self, pred: Tensor) -> Tensor:
        return F.relu(1.0 - pred).mean()

    def fake_term(self, pred: Tensor) -> Tensor:
        return F.relu(1.0 + pred).mean()

    def gen_term(self, pred: Tensor) -> Tensor:
        return -pred.mean()


@GAN_LOSSES.register("wgan-gp")
class WGANGPLoss(GANObjective):
    """Wasserstein critic loss (Gulrajani et al. 2017, eq. 3): D: -D(x) + D(G(z)), G: -D(G(z)).
    Needs gradient_penalty() on the D side (the official 'wgangp' mode)."""

    name = "wgan-gp"
    needs_gradient_penalty = True

    def real_term(self, pred: Tensor) -> Tensor:
        return -pred.mean()

    def fake_term(self, pred: Tensor) -> Tensor:
        return pred.mean()

    def gen_term(self, pred: Tensor) -> Tensor:
        return -pred.mean()


def build_gan_loss(mode: str, **kwargs) -> GANObjective:
    """`mode` in GAN_LOSSES.names(): vanilla | lsgan | hinge | wgan-gp."""
    return GAN_LOSSES.get(mode)(**kwargs)


def gradient_penalty(
    D: nn.Module | Callable[[Tensor], Preds],
    real: Tensor,
    fake: Tensor,
    lambda_gp: float = 10.0,
) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, eq. 3): lambda * E[(||grad_x D(x)||_2 - 1)^2] at
    x = a*real + (1-a)*fake, a ~ U[0, 1) per sample (official cal_gradient_penalty, type 'mixed').

    real, fake: (N, C, H, W) exactly as D sees them (pix2pix: source and target concatenated);
    both are detached, so only D gets gradients. The graph is kept (create_graph=True) so the
    penalty can be backpropagated into D's parameters. For a patch or multi-scale D, grad_x is
    the gradient of the sum of all logits of all scales. Returns a scalar.
    """
    if lambda_gp <= 0.0:
        return real.new_zeros(())
    n = real.shape[0]
    # one alpha per sample (N draws, as officially), broadcast over C, H, W
    alpha = torch.rand(n, *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = sum(p.sum() for p in predictions(D(x)))
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    # +1e-16 as officially: keeps the norm's derivative finite where a sample's gradient is 0
    norm = (grad.reshape(n, -1) + 1e-16).norm(2, dim=1)  # (N,)
    return ((norm - 1.0) ** 2).mean() * lambda_gp
