"""PatchGAN and PixelGAN discriminators (Isola et al. 2017, Sec. 3.2.2 and appendix 6.1.2).

Both return raw logits (no sigmoid): the GAN objectives in pixtrans.losses take logits.
Keys and arithmetic follow junyanz/pytorch-CycleGAN-and-pix2pix `NLayerDiscriminator`
(`model.0.weight` ...) and `PixelDiscriminator` (`net.0.weight` ...).
"""

from __future__ import annotations

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.nets.conv import WinogradConv2d
from pixtrans.nets.layers import check_norm, conv_bias, get_norm_layer
from pixtrans.registry import DISCRIMINATORS


@DISCRIMINATORS.register("patchgan")
class NLayerDiscriminator(nn.Module):
    """PatchGAN: classifies each overlapping patch as real/fake; n_layers=3 is the 70x70 PatchGAN.

    Layout: C(ndf, stride 2, no norm) - n_layers-1 x C(min(2**n, 8)*ndf, stride 2)
            - C(min(2**n_layers, 8)*ndf, stride 1) - conv to 1 channel (stride 1).
    All convs are 4x4, padding 1, LeakyReLU(0.2). (N, input_nc, 256, 256) -> (N, 1, 30, 30) at
    n_layers=3. Receptive field: 16 (n=1), 34, 70, 142 (n=4).
    """

    def __init__(
        self,
        input_nc: int,  # channels seen by D (pix2pix: source + target concatenated)
        ndf: int = 64,  # channels of the first conv
        n_layers: int = 3,  # stride-2 convs; 3 = 70x70 patches
        norm: str = "batch",  # batch | instance | none (never on the first conv)
    ):
        super().__init__()
        if n_layers < 0:
            raise PixtransError(f"patchgan n_layers must be >= 0, got {n_layers}")
        if ndf < 1:
            raise PixtransError(f"patchgan ndf must be >= 1, got {ndf}")
        make_norm = get_norm_layer(norm)
        bias = conv_bias(norm)

        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),  # no norm: keeps its bias
            nn.LeakyReLU(0.2),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=2, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            # 256 -> 512 at 31x31 (n_layers=3): Winograd in CPU fp32 training (nets/winograd.py)
            WinogradConv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
            make_norm(ndf * mult),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1),  # (N, 1, h, w) logits
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@DISCRIMINATORS.register("pixel")
class PixelDiscriminator(nn.Module):
    """PixelGAN (1x1 PatchGAN): per-pixel real/fake logits, (N, input_nc, H, W) -> (N, 1, H, W).

    Layout: 1x1 C(ndf, no norm) - 1x1 C(2*ndf) + norm - 1x1 conv to 1 channel. As officially,
    the last conv's bias follows the norm rule (so with batch norm it has none).
    """

    def __init__(
        self,
        input_nc: int,  # channels seen by D
        ndf: int = 64,  # channels of the first conv
        norm: str = "batch",  # batch | instance | none
    ):
        super().__init__()
        if ndf < 1:
            raise PixtransError(f"pixel ndf must be >= 1, got {ndf}")
        check_norm(norm)
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias),
            get_norm_layer(norm)(ndf * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
