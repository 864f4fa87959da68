"""pix2pixHD (Wang et al., CVPR 2018): label maps to high-resolution photos.

    min_G ( max_{D1,D2,D3} sum_k L_GAN(G, D_k) + lambda * sum_k L_FM(G, D_k) ) + lambda * L_VGG   (eq. 4)

G reads the one-hot label map with an instance-boundary channel (and, with the encoder E, the
per-instance features of the real photo, §3.4); the multi-scale discriminators D_k judge
(label input, image) pairs at 1, 1/2, 1/4 resolution and also return their intermediate
features, which the feature-matching term compares between real and generated images. LSGAN
objective, VGG19 perceptual loss, both extra terms weighted 10 as in the official code.

Update order and arithmetic as the official `Pix2PixHDModel`: every loss is computed with the
current D, then G (with E) steps, then D steps; the D loss is halved. D's prediction on the real
pair is computed once, in `prepare`, and serves both the D loss and (detached) feature matching.

Coarse to fine (§3.2): a local-enhancer run starts from a trained global generator
(`model.load_global`) and, for `train.fix_global_epochs`, trains only the enhancer (the global
part gets no gradient and Adam skips it), then both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import load_run_checkpoint
from pixtrans.artifacts.exports import CONFIG_NAME, clean_state_dict, is_complete_export, read_export_info
from pixtrans.artifacts.runs import RunFolder
from pixtrans.data.labelmap import LabelInput
from pixtrans.data.palettes import voc_colormap
from pixtrans.losses.adversarial import build_gan_loss
from pixtrans.losses.perceptual import VGGLoss, feature_matching_loss
from pixtrans.methods.base import Method
from pixtrans.nets import build_discriminator, build_generator
from pixtrans.nets.init import init_weights
from pixtrans.registry import METHODS


def load_global_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The G weights of a trained global-generator run folder, export folder or checkpoint."""
    path = Path(path)
    if not path.exists():
        raise PixtransError(
            f"config key 'model.load_global': '{path}' does not exist; point it at the global "
            "generator's run folder, export folder or checkpoint"
        )
    export = path if (path / CONFIG_NAME).is_file() else RunFolder(path).export
    if path.is_dir() and is_complete_export(export):
        info = read_export_info(export)
        if "G" not in info["generators"]:
            raise PixtransError(f"config key 'model.load_global': export '{export}' has no generator G")
        return load_file(str(export / info["generators"]["G"]["file"]))
    _, ckpt = load_run_checkpoint(path)
    if "G" not in ckpt["nets"]:
        raise PixtransError(f"config key 'model.load_global': '{path}' holds no generator G")
    return clean_state_dict(ckpt["nets"]["G"])


CITYSCAPES_INPUT = LabelInput(35)  # the paper's setting: 35 classes + instance edges


@METHODS.register("pix2pixhd")
class Pix2PixHD(Method):
    phases = ("G", "D")
    exported = ("G", "E")  # E only with the feature encoder (model.E)
    translator = "labelmap"  # class-id + instance maps in, a photo out (with per-object styles)

    @classmethod
    def exported_nets(cls, config) -> tuple[str, ...]:
        return ("G", "E") if config.get("model", {}).get("E") else ("G",)

    @classmethod
    def net_io(cls, config, name: str) -> dict[str, Any]:
        """G reads [label input | encoder features]; E reads the photo, writes feat_num channels."""
        data, model = config.get("data", {}), config.get("model", {})
        inputs = LabelInput.from_config(config)
        output_nc, direction = int(data.get("output_nc", 3)), data.get("direction", "AtoB")
        if name == "G":
            return {
                "spec": dict(model["G"]),
                "input_nc": inputs.channels,
                "output_nc": output_nc,
                "direction": direction,
            }
        if name == "E" and model.get("E"):
            return {
                "spec": dict(model["E"]),
                "input_nc": output_nc,
                "output_nc": inputs.feat_num,
                "direction": direction,
            }
        raise PixtransError(
            f"a pix2pixHD model with this config exports {', '.join(cls.exported_nets(config))}, not '{name}'"
        )

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        E: nn.Module | None = None,
        vgg: nn.Module | None = None,  # VGGLoss, frozen; None = no perceptual loss
        *,
        inputs: LabelInput = CITYSCAPES_INPUT,  # what G and D read besides the photo
        gan_mode: str = "lsgan",
        lambda_feat: float = 10.0,  # feature matching weight (0 = off)
        lambda_vgg: float = 10.0,  # VGG weight (the official code reuses lambda_feat)
        d_loss_scale: float = 0.5,
        fix_global_epochs: int = 0,
    ):
        super().__init__()
        self.G, self.D = G, D
        self.E = E
        self.vgg = vgg
        self.inputs = inputs
        self.gan_loss = build_gan_loss(gan_mode)
        self.lambda_feat = lambda_feat
        self.lambda_vgg = lambda_vgg
        self.d_loss_scale = d_loss_scale
        self.fix_global_epochs = fix_global_epochs
        # label maps shown in [-1, 1] in the sample grids
        palette = voc_colormap(max(inputs.classes + 1, 1)).float() / 127.5 - 1.0
        self.register_buffer("palette", palette, persistent=False)

    @property
    def nets(self) -> dict[str, nn.Module]:
        # the frozen VGG is a loss, not a trained net: not checkpointed, not toggled by the loop
        out = {"G": self.G, "D": self.D}
        if self.E is not None:
            out["E"] = self.E
        return out

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> Pix2PixHD:
        data, model, loss = cfg.data, cfg.model, cfg.loss
        if data.label_nc < 0:
            raise PixtransError(f"config key 'data.label_nc' must be >= 0, got {data.label_nc}")
        if model.E and not data.instance:
            raise PixtransError(
                "config key 'model.E': the feature encoder averages over instances and needs "
                "instance maps; set data.instance=true or model.E={}"
            )
        if data.label_nc > 0 and data.dataset != "labelmap":
            raise PixtransError(
                f"config key 'data.dataset' is '{data.dataset}', but data.label_nc={data.label_nc} needs "
                "label maps: use data.dataset=labelmap (or data.label_nc=0 for image inputs)"
            )
        inputs = LabelInput.from_config(cfg.to_dict())

        def init(net: nn.Module) -> nn.Module:
            # the official weights_init: conv weights N(0, 0.02), conv biases left at default
            return init_weights(net, model.init, model.init_gain, zero_bias=False)

        G = init(build_generator(model.G, input_nc=inputs.channels, output_nc=output_nc))
        D = init(build_discriminator(model.D, input_nc=inputs.label_channels + output_nc))
        E = None
        if model.E:
            E = init(
                build_generator(model.E, input_nc=output_nc, output_nc=inputs.feat_num, prefix="model.E")
            )
        if model.load_global:
            if not hasattr(G, "load_global_state"):
                raise PixtransError(
                    f"config key 'model.load_global' needs a local-enhancer generator "
                    f"(model.G.name=local), got '{model.G['name']}'"
                )
            G.load_global_state(load_global_weights(model.load_global))
        if cfg.train.fix_global_epochs > 0 and not hasattr(G, "global_parameters"):
            raise PixtransError(
                "config key 'train.fix_global_epochs' needs a local-enhancer generator (model.G.name=local)"
            )
        vgg = VGGLoss(weights=loss.vgg_weights) if loss.lambda_vgg > 0 else None
        return cls(
            G,
            D,
            E,
            vgg,
            inputs=inputs,
            gan_mode=loss.gan_mode,
            lambda_feat=loss.lambda_feat,
            lambda_vgg=loss.lambda_vgg,
            d_loss_scale=loss.d_loss_scale,
            fix_global_epochs=cfg.train.fix_global_epochs,
        )

    def phase_nets(self, phase: str) -> list[str]:
        # E learns through G's losses (the official code puts it in G's optimizer)
        return {"G": ["G", "E"] if self.E is not None else ["G"], "D": ["D"]}[phase]

    def frozen_parameters(self, step: int, steps_per_epoch: int) -> list[nn.Parameter]:
        if self.fix_global_epochs > 0 and step < self.fix_global_epochs * steps_per_epoch:
            return list(self.G.global_parameters())
        return []

    # ------------------------------------------------------------------------------------------
    def label_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, inputs.label_channels, H, W]: one-hot labels or the input image, + boundaries."""
        source = batch["label"] if self.inputs.label_nc > 0 else batch["real_a"]
        return self.inputs.encode(source, batch.get("inst"))

    def generator_input(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(label input, G input): G also reads E's per-instance features of the real photo."""
        label_in = self.label_input(batch)
        if self.E is None:
            return label_in, label_in
        feat = self.E(batch["real_b"], batch["inst"])  # [B, feat_num, H, W], constant per instance
        return label_in, torch.cat([label_in, feat], dim=1)

    def translator_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator_input(batch)[1]

    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        real_b = batch["real_b"]
        label_in, g_in = self.generator_input(batch)
        fake_b = self.G(g_in)
        # D on the real pair once, graph kept: the D loss backpropagates through it after G's step
        # (D's weights have not changed by then), feature matching reads it detached
        pred_real = self.D(torch.cat([label_in, real_b], dim=1))
        return {"label_in": label_in, "real_b": real_b, "fake_b": fake_b, "pred_real": pred_real}

    def losses(self, ctx: dict[str, Any], phase: str) -> dict[str, torch.Tensor]:
        label_in, real_b, fake_b = ctx["label_in"], ctx["real_b"], ctx["fake_b"]
        if phase == "G":
            pred_fake = self.D(torch.cat([label_in, fake_b], dim=1))
            out = {"G/gan": self.gan_loss.g_loss(pred_fake)}
            if self.lambda_feat > 0:
                real_feats = [[f.detach() for f in scale] for scale in ctx["pred_real"]]
                out["G/feat"] = feature_matching_loss(pred_fake, real_feats, lambda_feat=self.lambda_feat)
            if self.vgg is not None:
                out["G/vgg"] = self.vgg(fake_b, real_b) * self.lambda_vgg
            return out
        if phase == "D":
            pred_fake = self.D(torch.cat([label_in, fake_b.detach()], dim=1))
            loss_real, loss_fake = self.gan_loss.d_loss(ctx["pred_real"], pred_fake)
            return {"D/real": loss_real * self.d_loss_scale, "D/fake": loss_fake * self.d_loss_scale}
        raise KeyError(f"pix2pixHD has no phase '{phase}'")

    @torch.no_grad()
    def show_labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Label maps as colour images [B, 3, H, W] in [-1, 1] (the input image when label_nc=0)."""
        if self.inputs.label_nc == 0:
            return batch["real_a"]
        label = batch["label"][:, 0].clamp(0, self.palette.shape[0] - 1)
        return self.palette[label].permute(0, 3, 1, 2)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        was_training = {name: net.training for name, net in self.nets.items()}
        for net in self.nets.values():
            net.eval()
        try:
            _, g_in = self.generator_input(batch)
            fake_b = self.G(g_in)
        finally:
            for name, net in self.nets.items():
                net.train(was_training[name])
        out = {"labels": self.show_labels(batch), "output": fake_b}
        if "real_b" in batch:
            out["target"] = batch["real_b"]
        return out
