"""CycleGAN ResNet generator (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016 architecture).

    c7s1-ngf, d2ngf, d4ngf, R4ngf x n_blocks, u2ngf, ungf, c7s1-output_nc, Tanh

i.e. a reflect-padded 7x7 conv, two stride-2 3x3 convs, n_blocks residual blocks at 1/4 size,
two stride-2 3x3 transposed convs back up, a reflect-padded 7x7 conv. The paper uses 9 blocks at
256x256 ('resnet_9blocks') and 6 at 128x128 ('resnet_6blocks'). Module tree, state-dict keys and
arithmetic follow junyanz/pytorch-CycleGAN-and-pix2pix `ResnetGenerator` / `ResnetBlock`:

  model.1.weight                  stem 7x7 conv       (model.0 is its ReflectionPad2d(3))
  model.4 / model.7               the two down convs  (+ norm, ReLU after each)
  model.10 ... model.{9+n}        residual blocks: model.10.conv_block.1.weight, .5.weight, ...
  model.{10+n}, model.{13+n}      the two up convs (ConvTranspose2d: weight [in, out, 3, 3])
  model.{17+n}.weight             the output 7x7 conv (model.{16+n} is its ReflectionPad2d(3))

so official `*_net_G_A.pth` / `*_net_G_B.pth` state dicts load as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.nets.conv import FastConv2d
from pixtrans.nets.layers import check_norm, conv_bias, get_norm_layer
from pixtrans.registry import GENERATORS

PADDING_TYPES = ("reflect", "replicate", "zero")


def _pad(padding_type: str) -> tuple[list[nn.Module], int]:
    """(padding modules, conv padding) for a 3x3 conv keeping the size."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    return [], 1  # zero: the conv pads by itself, so no module (and the indices shift)


class ResnetBlock(nn.Module):
    """x + F(x), F = pad - conv3x3 - norm - ReLU - (Dropout 0.5) - pad - conv3x3 - norm.

    (N, dim, H, W) -> (N, dim, H, W). `conv_block` indices (state-dict keys) as officially:
      reflect/replicate  1 conv, 2 norm, 5 conv, 6 norm     (dropout: 1, 2, 6, 7)
      zero               0 conv, 1 norm, 3 conv, 4 norm     (dropout: 0, 1, 4, 5)
    """

    def __init__(
        self,
        dim: int,  # channels in and out
        padding_type: str = "reflect",  # reflect | replicate | zero
        norm: str = "instance",  # batch | instance | none
        dropout: bool = False,  # Dropout(0.5) between the two convs
    ):
        super().__init__()
        make_norm = get_norm_layer(norm)
        bias = conv_bias(norm)
        layers: list[nn.Module] = []
        pad, p = _pad(padding_type)
        layers += [*pad, FastConv2d(dim, dim, kernel_size=3, padding=p, bias=bias), make_norm(dim), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        pad, p = _pad(padding_type)
        layers += [*pad, FastConv2d(dim, dim, kernel_size=3, padding=p, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@GENERATORS.register("resnet")
class ResnetGenerator(nn.Module):
    """CycleGAN generator: (N, input_nc, H, W) in [-1, 1] -> (N, output_nc, H, W) in [-1, 1].

    H and W must be multiples of `size_multiple` = 4 (two stride-2 levels; translators pad to
    it). Channels: ngf after the stem, 2ngf and 4ngf after the downs, 4ngf in every block.
    """

    size_multiple = 4

    def __init__(
        self,
        input_nc: int,  # channels of the source domain's images
        output_nc: int,  # channels of the target domain's images
        ngf: int = 64,  # channels after the stem conv
        n_blocks: int = 9,  # residual blocks: 9 = 'resnet_9blocks' (256 px), 6 = 'resnet_6blocks'
        norm: str = "instance",  # instance (CycleGAN) | batch | none
        dropout: bool = False,  # Dropout(0.5) inside each block; CycleGAN trains without
        padding_type: str = "reflect",  # reflect | replicate | zero, inside the blocks
    ):
        super().__init__()
        if n_blocks < 0:
            raise PixtransError(f"resnet n_blocks must be >= 0, got {n_blocks}")
        if ngf < 1:
            raise PixtransError(f"resnet ngf must be >= 1, got {ngf}")
        if padding_type not in PADDING_TYPES:
            raise PixtransError(
                f"unknown resnet padding_type '{padding_type}'; valid: {', '.join(PADDING_TYPES)}"
            )
        check_norm(norm)
        make_norm = get_norm_layer(norm)
        bias = conv_bias(norm)
        n_down = 2

        # modules are created in the official order, so a seeded build draws the same numbers
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FastConv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(ngf),
            nn.ReLU(),
        ]
        for i in range(n_down):  # (N, ngf*2^i, H/2^i, W/2^i) -> (N, ngf*2^(i+1), H/2^(i+1), ...)
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(),
            ]
        mult = 2**n_down
        layers += [
            ResnetBlock(ngf * mult, padding_type=padding_type, norm=norm, dropout=dropout)
            for _ in range(n_blocks)
        ]
        for i in range(n_down):  # output_padding=1: exactly doubles H and W
            mult = 2 ** (n_down - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=bias,
                ),
                make_norm(ngf * mult // 2),
                nn.ReLU(),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            FastConv2d(ngf, output_nc, kernel_size=7, padding=0),  # no norm after it: keeps its bias
            nn.Tanh(),
        ]
        self.n_blocks = n_blocks
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(
                f"ResnetGenerator needs H and W divisible by {self.size_multiple}, got {h}x{w}; "
                "pad the input first"
            )
        return self.model(x)
