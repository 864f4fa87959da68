"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation with cycle consistency.

Two generators G_ab: A -> B and G_ba: B -> A, two discriminators D_b (judges domain B, the
official D_A) and D_a (judges domain A, the official D_B):

    L = L_GAN(G_ab, D_b) + L_GAN(G_ba, D_a) + lambda * (L_cyc_a + L_cyc_b)               (eq. 3)
        + lambda * lambda_idt * (L_idt_a + L_idt_b)                                     (§5.2)
    L_cyc_a = ||G_ba(G_ab(a)) - a||_1,  L_idt_a = ||G_ab(b) - b||_1  (as the official code)

LSGAN objective (§4), D trained on a 50-image history of fakes (image_pool.py) and its loss
halved. Update order as the official `optimize_parameters`: both G together with the Ds frozen,
then both Ds on the same step's fakes.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.losses.adversarial import build_gan_loss, gradient_penalty
from pixtrans.methods.base import Method
from pixtrans.methods.image_pool import ImagePool
from pixtrans.nets import build_discriminator, build_generator
from pixtrans.nets.init import init_weights
from pixtrans.registry import METHODS


@METHODS.register("cyclegan")
class CycleGAN(Method):
    phases = ("G", "D")
    exported = ("G_ab", "G_ba")

    def __init__(
        self,
        G_ab: nn.Module,  # A -> B (official G_A)
        G_ba: nn.Module,  # B -> A (official G_B)
        D_a: nn.Module,  # judges domain A images (official D_B)
        D_b: nn.Module,  # judges domain B images (official D_A)
        gan_mode: str = "lsgan",  # vanilla | lsgan | hinge | wgan-gp
        lambda_cycle: float = 10.0,  # weight of each cycle L1 term (official lambda_A = lambda_B)
        lambda_idt: float = 0.5,  # identity weight relative to lambda_cycle; 0 = off
        pool_size: int = 50,  # fakes remembered per discriminator; 0 = newest only
        d_loss_scale: float = 0.5,  # the official code halves each D objective
        lambda_gp: float = 10.0,  # gradient-penalty weight, wgan-gp only
    ):
        super().__init__()
        self.G_ab, self.G_ba, self.D_a, self.D_b = G_ab, G_ba, D_a, D_b
        self.gan_mode = gan_mode
        self.gan_loss = build_gan_loss(gan_mode)
        self.lambda_cycle = lambda_cycle
        self.lambda_idt = lambda_idt
        self.d_loss_scale = d_loss_scale
        self.lambda_gp = lambda_gp
        self.pool_a = ImagePool(pool_size)  # fakes of domain A, for D_a
        self.pool_b = ImagePool(pool_size)  # fakes of domain B, for D_b

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> CycleGAN:
        loss, model = cfg.loss, cfg.model
        if loss.pool_size < 0:
            raise PixtransError(f"config key 'loss.pool_size' must be >= 0, got {loss.pool_size}")
        lambda_idt = loss.lambda_idt
        if lambda_idt > 0 and input_nc != output_nc:
            # G_ab(b) needs B images to fit G_ab's input: impossible with different channel counts
            warnings.warn(
                f"loss.lambda_idt={lambda_idt} ignored: the identity loss needs data.input_nc == "
                f"data.output_nc (got {input_nc} and {output_nc}); set loss.lambda_idt=0 to silence this",
                stacklevel=2,
            )
            lambda_idt = 0.0

        def init(net: nn.Module) -> nn.Module:
            return init_weights(net, model.init, model.init_gain)

        # built and initialised one by one in the official order (G_A, G_B, D_A, D_B), so a
        # seeded run draws its initial weights in the same sequence
        G_ab = init(build_generator(model.G, input_nc=input_nc, output_nc=output_nc))
        G_ba = init(build_generator(model.G, input_nc=output_nc, output_nc=input_nc))
        D_b = init(build_discriminator(model.D, input_nc=output_nc))
        D_a = init(build_discriminator(model.D, input_nc=input_nc))
        return cls(
            G_ab,
            G_ba,
            D_a,
            D_b,
            gan_mode=loss.gan_mode,
            lambda_cycle=loss.lambda_cycle,
            lambda_idt=lambda_idt,
            pool_size=loss.pool_size,
            d_loss_scale=loss.d_loss_scale,
            lambda_gp=loss.lambda_gp,
        )

    def phase_nets(self, phase: str) -> list[str]:
        return {"G": ["G_ab", "G_ba"], "D": ["D_a", "D_b"]}[phase]

    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        real_a, real_b = batch["real_a"], batch["real_b"]  # [B, C_a, H, W], [B, C_b, H, W]
        fake_b = self.G_ab(real_a)  # [B, C_b, H, W]
        rec_a = self.G_ba(fake_b)  # [B, C_a, H, W]
        fake_a = self.G_ba(real_b)
        rec_b = self.G_ab(fake_a)
        return {
            "real_a": real_a,
            "real_b": real_b,
            "fake_a": fake_a,
            "fake_b": fake_b,
            "rec_a": rec_a,
            "rec_b": rec_b,
        }

    def losses(self, ctx: dict[str, Any], phase: str) -> dict[str, torch.Tensor]:
        real_a, real_b = ctx["real_a"], ctx["real_b"]
        if phase == "G":
            # dict order = the official sum order: gan, gan, cycle, cycle, idt, idt
            out = {
                "G/gan_ab": self.gan_loss.g_loss(self.D_b(ctx["fake_b"])),  # D_b(G_ab(a)) -> real
                "G/gan_ba": self.gan_loss.g_loss(self.D_a(ctx["fake_a"])),
                "G/cycle_a": (ctx["rec_a"] - real_a).abs().mean() * self.lambda_cycle,
                "G/cycle_b": (ctx["rec_b"] - real_b).abs().mean() * self.lambda_cycle,
            }
            if self.lambda_idt > 0:
                # G_ab should leave B images alone and G_ba A images (keeps colours; paper §5.2)
                w = self.lambda_cycle * self.lambda_idt
                out["G/idt_a"] = (self.G_ab(real_b) - real_b).abs().mean() * w
                out["G/idt_b"] = (self.G_ba(real_a) - real_a).abs().mean() * w
            return out
        if phase == "D":
            out = {}
            # official order: D_A (our D_b) with the B pool first, then D_B (our D_a)
            for side, D, real, pool, fake in (
                ("b", self.D_b, real_b, self.pool_b, ctx["fake_b"]),
                ("a", self.D_a, real_a, self.pool_a, ctx["fake_a"]),
            ):
                fake = pool.query(fake.detach())
                loss_real, loss_fake = self.gan_loss.d_loss(D(real), D(fake))
                out[f"D/{side}_real"] = loss_real * self.d_loss_scale
                out[f"D/{side}_fake"] = loss_fake * self.d_loss_scale
                if self.gan_mode == "wgan-gp":
                    out[f"D/{side}_gp"] = gradient_penalty(D, real, fake, lambda_gp=self.lambda_gp)
            return out
        raise KeyError(f"cyclegan has no phase '{phase}'")

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # eval mode (deterministic; instance norm has no buffers to use or change), modes restored
        nets = (self.G_ab, self.G_ba)
        modes = [{m: m.training for m in net.modules()} for net in nets]
        try:
            for net in nets:
                net.eval()
            real_a, real_b = batch["real_a"], batch["real_b"]
            fake_b = self.G_ab(real_a)
            fake_a = self.G_ba(real_b)
            return {
                "real_a": real_a,
                "fake_b": fake_b,
                "rec_a": self.G_ba(fake_b),
                "real_b": real_b,
                "fake_a": fake_a,
                "rec_b": self.G_ab(fake_a),
            }
        finally:
            for saved in modes:
                for m, mode in saved.items():
                    m.training = mode

    def extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_a" in state:
            self.pool_a.load_state_dict(state["pool_a"])
        if "pool_b" in state:
            self.pool_b.load_state_dict(state["pool_b"])
