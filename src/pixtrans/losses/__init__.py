"""Loss functions. Adversarial objectives are registered in GAN_LOSSES by name; pix2pixHD's
VGG19 perceptual and feature-matching losses live in `perceptual`."""

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
from pixtrans.losses.perceptual import VGG19Features, VGGLoss, feature_matching_loss, load_vgg19_weights

__all__ = [
    "GANObjective",
    "HingeGANLoss",
    "LSGANLoss",
    "VanillaGANLoss",
    "VGG19Features",
    "VGGLoss",
    "WGANGPLoss",
    "build_gan_loss",
    "feature_matching_loss",
    "gradient_penalty",
    "load_vgg19_weights",
    "predictions",
]
