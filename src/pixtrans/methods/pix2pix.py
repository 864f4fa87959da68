"""pix2pix (Isola et al., CVPR 2017): paired translation with a conditional GAN.

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G)                       (paper eq. 4)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))],  L_L1 = E ||y - G(x)||_1

D sees the input concatenated with the real or generated output (the conditional PatchGAN).
The only noise is dropout in G. The D objective is halved to slow D relative to G (paper §3.3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixtrans.losses.adversarial import build_gan_loss, gradient_penalty
from pixtrans.methods.base import Method
from pixtrans.nets import build_discriminator, build_generator
from pixtrans.nets.init import init_weights
from pixtrans.nets.modes import paper_mode
from pixtrans.registry import METHODS


@METHODS.register("pix2pix")
class Pix2Pix(Method):
    phases = ("D", "G")
    exported = ("G",)

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        gan_mode: str = "vanilla",  # vanilla | lsgan | hinge | wgan-gp
        lambda_l1: float = 100.0,  # weight of the L1 term (paper: 100)
        lambda_gp: float = 10.0,  # gradient-penalty weight, wgan-gp only
        d_loss_scale: float = 0.5,  # paper halves the D objective
    ):
        super().__init__()
        self.G = G
        self.D = D
        self.gan_mode = gan_mode
        self.gan_loss = build_gan_loss(gan_mode)
        self.lambda_l1 = lambda_l1
        self.lambda_gp = lambda_gp
        self.d_loss_scale = d_loss_scale

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> Pix2Pix:
        G = build_generator(cfg.model.G, input_nc=input_nc, output_nc=output_nc)
        # conditional D: judges (input, output) pairs -> input_nc + output_nc channels
        D = build_discriminator(cfg.model.D, input_nc=input_nc + output_nc)
        init_weights(G, cfg.model.init, cfg.model.init_gain)
        init_weights(D, cfg.model.init, cfg.model.init_gain)
        return cls(
            G,
            D,
            gan_mode=cfg.loss.gan_mode,
            lambda_l1=cfg.loss.lambda_l1,
            lambda_gp=cfg.loss.lambda_gp,
            d_loss_scale=cfg.loss.d_loss_scale,
        )

    def phase_nets(self, phase: str) -> list[str]:
        return {"D": ["D"], "G": ["G"]}[phase]

    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        real_a, real_b = batch["real_a"], batch["real_b"]  # [B, C_in, H, W], [B, C_out, H, W]
        fake_b = self.G(real_a)
        return {"real_a": real_a, "real_b": real_b, "fake_b": fake_b}

    def losses(self, ctx: dict[str, Any], phase: str) -> dict[str, torch.Tensor]:
        real_a, real_b, fake_b = ctx["real_a"], ctx["real_b"], ctx["fake_b"]
        if phase == "D":
            # real and fake pairs go through D separately, so batch norm sees each on its own
            fake_ab = torch.cat([real_a, fake_b.detach()], dim=1)
            real_ab = torch.cat([real_a, real_b], dim=1)
            loss_real, loss_fake = self.gan_loss.d_loss(self.D(real_ab), self.D(fake_ab))
            out = {"D/real": loss_real * self.d_loss_scale, "D/fake": loss_fake * self.d_loss_scale}
            if self.gan_mode == "wgan-gp":
                out["D/gp"] = gradient_penalty(self.D, real_ab, fake_ab, lambda_gp=self.lambda_gp)
            return out
        if phase == "G":
            fake_ab = torch.cat([real_a, fake_b], dim=1)
            return {
                "G/gan": self.gan_loss.g_loss(self.D(fake_ab)),
                "G/l1": (fake_b - real_b).abs().mean() * self.lambda_l1,
            }
        raise KeyError(f"pix2pix has no phase '{phase}'")

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # the paper's test mode (dropout on, per-image batch statistics), buffers untouched
        with paper_mode(self.G):
            fake_b = torch.cat([self.G(a[None]) for a in batch["real_a"]])
        return {"input": batch["real_a"], "output": fake_b, "target": batch["real_b"]}
