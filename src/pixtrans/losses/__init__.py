"""Loss functions. Adversarial objectives are registered in GAN_LOSSES by name."""

from __future__ import annotations

from pixtrans.losses.adversarial import (
    GANObjective,
    HingeGANLoss,
    LSGANLoss,
    VanillaGANLoss,
    WGANGPLoss,
    build_gan_loss,
    gradient_penalty,
    predictions,
)

__all__ = [
    "GANObjective",
    "HingeGANLoss",
    "LSGANLoss",
    "VanillaGANLoss",
    "WGANGPLoss",
    "build_gan_loss",
    "gradient_penalty",
    "predictions",
]
