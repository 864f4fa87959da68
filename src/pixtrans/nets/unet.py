"""pix2pix U-Net generator (Isola et al. 2017, Sec. 3.2.1 and appendix 6.1.1).

Encoder C64-C128-C256-C512-C512-C512-C512-C512, mirrored decoder, skip connections by channel
concat between mirrored levels, Tanh output. Module tree, state-dict keys and arithmetic follow
junyanz/pytorch-CycleGAN-and-pix2pix `UnetGenerator` / `UnetSkipConnectionBlock`, e.g.

  model.model.0.weight                       outermost down conv (no bias, no norm)
  model.model.1.model.1.weight               level-1 down conv
  model.model.1.model.2.running_mean         level-1 down norm
  model.model.1.model.3. ...                 level-2 block, and so on inwards
"""

from __future__ import annotations

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.nets.conv import FastConv2d, FastConvTranspose2d
from pixtrans.nets.layers import check_norm, conv_bias, get_norm_layer
from pixtrans.registry import GENERATORS


class UnetSkipBlock(nn.Module):
    """One U-Net level: x -> [down -> inner levels -> up] -> cat(x, up) (outermost: no concat).

    Shapes for a non-outermost block, x: (N, outer_nc, H, W):
      down  (N, inner_nc, H/2, W/2) -> submodule (N, 2*inner_nc, H/2, W/2)
      up    (N, outer_nc, H, W)     -> returns cat (N, 2*outer_nc, H, W)
    Sequential layouts (indices are state-dict keys):
      outermost  [down_conv, submodule, relu, up_conv, tanh]
      innermost  [lrelu, down_conv, relu, up_conv, up_norm]
      middle     [lrelu, down_conv, down_norm, submodule, relu, up_conv, up_norm, (dropout)]
    """

    def __init__(
        self,
        *,
        outer_nc: int,  # channels this block receives from (and returns to) its parent
        inner_nc: int,  # channels after this block's down conv
        input_nc: int | None = None,  # outermost only: image channels, when != outer_nc
        submodule: nn.Module | None = None,  # the next level inwards; None = innermost
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,  # Dropout(0.5) after up_norm (pix2pix's noise source)
    ):
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        make_norm = get_norm_layer(norm)
        bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc

        # down conv is created before up conv, as officially, so a seeded build draws the same numbers
        # (Fast*: nn.Conv2d / nn.ConvTranspose2d that run the inner levels' tiny maps as GEMMs)
        down_conv = FastConv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        # the innermost level has nothing to concat, so its up conv sees inner_nc, others 2*inner_nc
        up_in = inner_nc if innermost else 2 * inner_nc
        if outermost:
            # no norm follows the last up conv, so it always has a bias
            up_conv = FastConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1)
            inner = [] if innermost else [submodule]  # innermost too only when num_downs == 1
            layers = [down_conv, *inner, nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            # 1x1 bottleneck at the paper's sizes: no down norm there (BatchNorm of one pixel)
            up_conv = FastConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), up_conv, make_norm(outer_nc)]
        else:
            up_conv = FastConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, make_norm(inner_nc), submodule]
            layers += [nn.ReLU(), up_conv, make_norm(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The official block's in-place LeakyReLU rewrites x, so its concat carries lrelu(x).
        # The parent's up path starts with ReLU and relu(lrelu(x)) == relu(x) (gradient too),
        # so the network's output is the same; only a block called on its own differs.
        return torch.cat([x, self.model(x)], dim=1)


@GENERATORS.register("unet")
class UnetGenerator(nn.Module):
    """pix2pix U-Net: (N, input_nc, H, W) in [-1, 1] -> (N, output_nc, H, W) in [-1, 1].

    H and W must be divisible by `size_multiple` = 2**num_downs (translators pad to it).
    Level i (0 = outermost) has min(2**i, 8) * ngf channels after its down conv. For
    num_downs >= 5 this is exactly the official net (unet_128 = 7, unet_256 = 8). For
    num_downs < 5 the official code silently builds 5 levels anyway; here you get num_downs levels
    with the same channel rule (e.g. num_downs=3: ngf, 2ngf, 4ngf), for small images and tests.
    Dropout(0.5), as officially, sits only in the 8ngf -> 8ngf levels around the bottleneck
    (levels 4 .. num_downs-2), so `dropout` has no effect for num_downs < 6.
    """

    def __init__(
        self,
        input_nc: int,  # channels of the source image (or label map)
        output_nc: int,  # channels of the translated image
        num_downs: int = 8,  # stride-2 levels; 8 = 'unet_256' (256x256 -> 1x1 bottleneck)
        ngf: int = 64,  # channels after the first conv
        norm: str = "batch",  # batch | instance | none
        dropout: bool = False,  # pix2pix trains (and, in the paper, tests) with dropout on
    ):
        super().__init__()
        if num_downs < 1:
            raise PixtransError(f"unet num_downs must be >= 1, got {num_downs}")
        if ngf < 1:
            raise PixtransError(f"unet ngf must be >= 1, got {ngf}")
        check_norm(norm)
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs
        width = [min(2**i, 8) * ngf for i in range(num_downs)]

        # innermost first, like the official constructor, so seeded builds match draw for draw
        block = None
        for level in reversed(range(num_downs)):
            block = UnetSkipBlock(
                outer_nc=output_nc if level == 0 else width[level - 1],
                inner_nc=width[level],
                input_nc=input_nc if level == 0 else None,
                submodule=block,
                outermost=level == 0,
                norm=norm,
                dropout=dropout and 4 <= level <= num_downs - 2,
            )
        self.model = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(
                f"UnetGenerator(num_downs={self.num_downs}) needs H and W divisible by "
                f"{self.size_multiple}, got {h}x{w}; pad the input first"
            )
        return self.model(x)
