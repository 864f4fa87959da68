"""pix2pixHD networks (Wang et al., CVPR 2018): coarse-to-fine generator, multi-scale
discriminator, and the instance-wise feature encoder of §3.4.

Module trees and state-dict keys match NVIDIA/pix2pixHD `models/networks.py`, so official
`latest_net_G.pth` / `latest_net_D.pth` / `latest_net_E.pth` state dicts load key for key, and
modules are created in the official order, so a seeded build + `init_weights(net, "normal",
0.02, zero_bias=False)` draws the same numbers as the official `weights_init`.

Differences from pytorch-CycleGAN-and-pix2pix that matter for parity:
  * every conv has a bias, whatever the norm (the CycleGAN code drops it before batch norm);
  * discriminator convs are 4x4 with padding ceil(3/2) = 2 (not 1), so the stride-1 layers
    grow the map by one pixel each, and widths are capped at 512 channels (not 8 * ndf);
  * norm "none" is ours (Identity, so indices do not shift); the official code has batch and
    instance only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.nets.conv import FastConv2d, WinogradConv2d
from pixtrans.nets.layers import check_norm, get_norm_layer
from pixtrans.registry import DISCRIMINATORS, GENERATORS

PADDING_TYPES = ("reflect", "replicate", "zero")


def _check_at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise PixtransError(f"{name} must be >= {low}, got {value}")


def _check_size(net: nn.Module, x: torch.Tensor) -> None:
    h, w = x.shape[-2:]
    m = net.size_multiple
    if h % m or w % m:
        raise PixtransError(
            f"{type(net).__name__} needs H and W divisible by {m}, got {h}x{w}; pad the input "
            "or change data.crop_size"
        )


def _same_pad(padding_type: str) -> tuple[list[nn.Module], int]:
    """(padding modules, conv padding) that keep the size through a 3x3 conv."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    return [], 1  # zero: the conv pads itself, no module, so the block's indices shift


class HDResnetBlock(nn.Module):
    """x + F(x), F = pad - conv3x3 - norm - ReLU - pad - conv3x3 - norm; (N, dim, H, W) both ways.

    Same key layout as the CycleGAN block (`conv_block.1` / `conv_block.5` with reflect or
    replicate padding, `conv_block.0` / `.3` with zero padding), but both convs always carry a
    bias, as in pix2pixHD.
    """

    def __init__(
        self,
        dim: int,  # channels in and out
        padding_type: str = "reflect",  # reflect | replicate | zero
        norm: str = "instance",  # batch | instance | none
    ):
        super().__init__()
        if padding_type not in PADDING_TYPES:
            raise PixtransError(f"unknown padding_type '{padding_type}'; valid: {', '.join(PADDING_TYPES)}")
        make_norm = get_norm_layer(norm)
        pad1, p1 = _same_pad(padding_type)
        pad2, p2 = _same_pad(padding_type)
        self.conv_block = nn.Sequential(
            *pad1,
            FastConv2d(dim, dim, kernel_size=3, padding=p1),
            make_norm(dim),
            nn.ReLU(inplace=True),
            *pad2,
            FastConv2d(dim, dim, kernel_size=3, padding=p2),
            make_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _down_up_layers(
    ngf: int, n_downsampling: int, make_norm, make_bottom: Callable[[], list[nn.Module]]
) -> list[nn.Module]:
    """n stride-2 3x3 convs (channels x2 each), make_bottom()'s modules, n 3x3 transposed convs
    back up (channels /2 each); every conv followed by norm + ReLU. Shared by G and the encoder.
    The bottom is built between the downs and the ups: the official creation (RNG) order."""
    layers: list[nn.Module] = []
    for i in range(n_downsampling):  # (N, ngf*2^i, H/2^i, W/2^i) -> (N, ngf*2^(i+1), H/2^(i+1), ...)
        ch = ngf * 2**i
        layers += [
            nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1),
            make_norm(ch * 2),
            nn.ReLU(inplace=True),
        ]
    layers += make_bottom()
    for i in range(n_downsampling):  # output_padding=1: exactly doubles H and W
        ch = ngf * 2 ** (n_downsampling - i)
        layers += [
            nn.ConvTranspose2d(ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1),
            make_norm(ch // 2),
            nn.ReLU(inplace=True),
        ]
    return layers


def _stem(input_nc: int, ngf: int, make_norm) -> list[nn.Module]:
    """Reflect-padded 7x7 conv + norm + ReLU: (N, input_nc, H, W) -> (N, ngf, H, W)."""
    return [
        nn.ReflectionPad2d(3),
        FastConv2d(input_nc, ngf, kernel_size=7, padding=0),
        make_norm(ngf),
        nn.ReLU(inplace=True),
    ]


def _head(ngf: int, output_nc: int) -> list[nn.Module]:
    """Reflect-padded 7x7 conv to output_nc + Tanh: values in (-1, 1)."""
    return [nn.ReflectionPad2d(3), FastConv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]


# ----------------------------------------------------------------------------------------------
# Generators


@GENERATORS.register("global")
class GlobalGenerator(nn.Module):
    """pix2pixHD G1: (N, input_nc, H, W) -> (N, output_nc, H, W) in (-1, 1).

    A reflect-padded 7x7 conv to ngf channels, n_downsampling stride-2 3x3 convs (doubling the
    channels), n_blocks residual blocks at ngf * 2**n_downsampling channels, as many stride-2
    transposed convs back up, a reflect-padded 7x7 conv and Tanh; norm + ReLU after every conv but
    the last. H and W must be multiples of `size_multiple` = 2**n_downsampling. Keys (d = n_downsampling,
    b = n_blocks):

      model.1                            stem conv (model.0 its ReflectionPad2d(3))
      model.4, model.7, ...              the d down convs (norm at +1, e.g. model.5 with batch norm)
      model.{3d+4} ... model.{3d+3+b}    residual blocks: .conv_block.1.weight, .conv_block.5.weight
      model.{3d+4+b}, ... (step 3)       the d transposed convs
      model.{6d+5+b}                     output conv (model.{6d+4+b} its pad, then Tanh)
    """

    def __init__(
        self,
        input_nc: int,  # label channels (+1 instance edges, + encoder features)
        output_nc: int,  # image channels
        ngf: int = 64,  # channels after the stem conv
        n_downsampling: int = 4,  # stride-2 levels (official option n_downsample_global)
        n_blocks: int = 9,  # residual blocks at the bottom (n_blocks_global)
        norm: str = "instance",  # instance | batch | none
        padding_type: str = "reflect",  # reflect | replicate | zero, inside the residual blocks
    ):
        super().__init__()
        _check_at_least("global ngf", ngf, 1)
        _check_at_least("global n_downsampling", n_downsampling, 0)
        _check_at_least("global n_blocks", n_blocks, 0)
        check_norm(norm)
        if padding_type not in PADDING_TYPES:
            raise PixtransError(
                f"unknown global padding_type '{padding_type}'; valid: {', '.join(PADDING_TYPES)}"
            )
        make_norm = get_norm_layer(norm)
        self.size_multiple = 2**n_downsampling
        dim = ngf * 2**n_downsampling  # channels at the bottom

        def blocks() -> list[nn.Module]:
            return [HDResnetBlock(dim, padding_type=padding_type, norm=norm) for _ in range(n_blocks)]

        self.model = nn.Sequential(
            *_stem(input_nc, ngf, make_norm),
            *_down_up_layers(ngf, n_downsampling, make_norm, blocks),
            *_head(ngf, output_nc),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(self, x)
        return self.model(x)


@GENERATORS.register("local")
class LocalEnhancer(nn.Module):
    """pix2pixHD G = {G1, G2}: a global generator at 1/2**n_local_enhancers resolution wrapped by
    n_local_enhancers local enhancers, each doubling the resolution (§3.2, Fig. 3).

    (N, input_nc, H, W) -> (N, output_nc, H, W) in (-1, 1); H, W multiples of `size_multiple` =
    2**(n_downsample_global + n_local_enhancers). The input pyramid is made with AvgPool2d(3,
    stride 2, padding 1, count_include_pad=False). Enhancer k (1 = coarsest, n_local_enhancers =
    finest, which alone has the 7x7 output conv + Tanh) works at ngf_k = ngf * 2**(n - k)
    channels: its front end (7x7 stem + one stride-2 conv to 2 ngf_k) is added to the coarser
    level's last feature map, then its back end (n_blocks_local blocks at 2 ngf_k, a transposed
    conv to ngf_k) upsamples. Keys, as officially:

      model.*        the global generator (ngf_global = ngf * 2**n_local_enhancers) without its
                     last 3 modules (pad, 7x7 output conv, Tanh): a trained GlobalGenerator's
                     keys minus the output conv, see `load_global_state`
      model{k}_1.*   front end: .1 stem conv, .4 stride-2 conv (norm at .2/.5)
      model{k}_2.*   back end: .0 ... blocks, then the transposed conv, (finest) the output conv
    """

    def __init__(
        self,
        input_nc: int,  # label channels (+1 instance edges, + encoder features)
        output_nc: int,  # image channels
        ngf: int = 32,  # channels of the finest enhancer's stem
        n_downsample_global: int = 4,  # stride-2 levels inside the global generator
        n_blocks_global: int = 9,  # residual blocks of the global generator
        n_local_enhancers: int = 1,  # each one doubles the output resolution
        n_blocks_local: int = 3,  # residual blocks per enhancer
        norm: str = "instance",  # instance | batch | none
        padding_type: str = "reflect",  # reflect | replicate | zero, inside every residual block
    ):
        super().__init__()
        _check_at_least("local ngf", ngf, 1)
        _check_at_least("local n_local_enhancers", n_local_enhancers, 1)
        _check_at_least("local n_blocks_local", n_blocks_local, 0)
        make_norm = get_norm_layer(norm)
        self.n_local_enhancers = n_local_enhancers
        self.size_multiple = 2 ** (n_downsample_global + n_local_enhancers)
        self.global_config = {
            "ngf": ngf * 2**n_local_enhancers,
            "n_downsampling": n_downsample_global,
            "n_blocks": n_blocks_global,
            "norm": norm,
            "padding_type": padding_type,
        }
        # the whole G1 is built (its output conv too, then dropped) so seeded builds draw the
        # same numbers as the official constructor
        full = GlobalGenerator(input_nc, output_nc, **self.global_config).model
        self.model = nn.Sequential(*list(full)[:-3])
        self._global_head_index = len(full) - 2  # the dropped output conv, model.{this}.*

        for k in range(1, n_local_enhancers + 1):
            ch = ngf * 2 ** (n_local_enhancers - k)
            front = [
                *_stem(input_nc, ch, make_norm),
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1),
                make_norm(ch * 2),
                nn.ReLU(inplace=True),
            ]
            back: list[nn.Module] = [
                HDResnetBlock(ch * 2, padding_type=padding_type, norm=norm) for _ in range(n_blocks_local)
            ]
            back += [
                nn.ConvTranspose2d(ch * 2, ch, kernel_size=3, stride=2, padding=1, output_padding=1),
                make_norm(ch),
                nn.ReLU(inplace=True),
            ]
            if k == n_local_enhancers:
                back += _head(ngf, output_nc)
            setattr(self, f"model{k}_1", nn.Sequential(*front))
            setattr(self, f"model{k}_2", nn.Sequential(*back))
        # (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)); border means over the real pixels only
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(self, x)
        pyramid = [x]  # pyramid[i]: the input at 1/2**i
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        # G1's last feature map: (N, ngf * 2**n, H / 2**n, W / 2**n), n = n_local_enhancers
        out = self.model(pyramid[-1])
        for k in range(1, self.n_local_enhancers + 1):
            front = getattr(self, f"model{k}_1")
            back = getattr(self, f"model{k}_2")
            out = back(front(pyramid[self.n_local_enhancers - k]) + out)
        return out

    def global_parameters(self) -> Iterator[nn.Parameter]:
        """G1's parameters: frozen during the first niter_fix_global epochs of the paper's schedule."""
        return self.model.parameters()

    def load_global_state(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load a trained GlobalGenerator's state dict (same ngf = this ngf * 2**n_local_enhancers,
        n_downsampling, n_blocks, norm, padding_type) into G1. Its output conv is not used here
        and is skipped; anything else missing, unexpected or of the wrong shape is an error."""
        ours = self.model.state_dict()
        theirs = {k[len("model.") :]: v for k, v in state_dict.items() if k.startswith("model.")}
        head = (f"{self._global_head_index}.weight", f"{self._global_head_index}.bias")
        missing = sorted(set(ours) - set(theirs))
        unexpected = sorted(set(theirs) - set(ours) - set(head))
        wrong = sorted(
            f"model.{k} {tuple(theirs[k].shape)} != {tuple(v.shape)}"
            for k, v in ours.items()
            if k in theirs and theirs[k].shape != v.shape
        )
        if missing or unexpected or wrong:
            parts = [
                f"{what} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                for what, names in (
                    ("missing", [f"model.{k}" for k in missing]),
                    ("unexpected", [f"model.{k}" for k in unexpected]),
                    ("wrong shape", wrong),
                )
                if names
            ]
            cfg = ", ".join(f"{k}={v}" for k, v in self.global_config.items())
            raise PixtransError(
                f"global generator weights do not fit this local enhancer's global part (needs a "
                f"global generator with {cfg}): {'; '.join(parts)}"
            )
        self.model.load_state_dict({k: theirs[k] for k in ours}, strict=True)


# ----------------------------------------------------------------------------------------------
# Discriminator


@DISCRIMINATORS.register("multiscale")
class MultiscaleDiscriminator(nn.Module):
    """num_D PatchGANs on the input at 1, 1/2, 1/4, ... resolution (§3.2, "multi-scale
    discriminators"); the copies are made with AvgPool2d(3, stride 2, padding 1,
    count_include_pad=False).

    Each PatchGAN: 4x4 conv (stride 2, padding 2) to ndf + LeakyReLU(0.2); n_layers - 1 stride-2
    4x4 convs doubling the width (cap 512) + norm + LeakyReLU; one stride-1 4x4 conv doubling it
    again (cap 512) + norm + LeakyReLU; a stride-1 4x4 conv to 1 channel. Logits unless
    use_sigmoid. (N, 39, 64, 128) -> e.g. (N, 1, 11, 19) at full scale with n_layers=3.

    forward(x) -> list over scales, [0] = full resolution; each entry is the list of the
    n_layers + 2 layer outputs (get_interm_feat; last = the prediction), else [prediction].
    As officially, scale s (0 = full) is computed by the modules stored under index
    num_D - 1 - s. Keys:

      get_interm_feat=True    scale{i}_layer{j}.0.weight   j = 0 .. n_layers + 1; norm at .1
      get_interm_feat=False   layer{i}.{m}.weight          one Sequential per scale, convs at
                                                           m = 0, 2, 5, 8, ... (3 apart)
    """

    def __init__(
        self,
        input_nc: int,  # channels D sees: label input + image
        ndf: int = 64,  # channels of the first conv
        n_layers: int = 3,  # stride-2 convs per PatchGAN
        norm: str = "instance",  # instance | batch | none (never on the first / last conv)
        use_sigmoid: bool = False,  # sigmoid on the prediction; pixtrans' GAN losses want logits
        num_D: int = 3,  # scales
        get_interm_feat: bool = True,  # return every layer's output (needed by feature matching)
    ):
        super().__init__()
        _check_at_least("multiscale ndf", ndf, 1)
        _check_at_least("multiscale n_layers", n_layers, 0)
        _check_at_least("multiscale num_D", num_D, 1)
        make_norm = get_norm_layer(norm)
        self.n_layers = n_layers
        self.num_D = num_D
        self.use_sigmoid = use_sigmoid
        self.get_interm_feat = get_interm_feat
        for i in range(num_D):  # official creation order: scale 0's modules first
            groups = self._patchgan_layers(input_nc, ndf, n_layers, make_norm)
            if get_interm_feat:
                for j, group in enumerate(groups):
                    setattr(self, f"scale{i}_layer{j}", nn.Sequential(*group))
            else:
                setattr(self, f"layer{i}", nn.Sequential(*(m for group in groups for m in group)))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    @staticmethod
    def _patchgan_layers(input_nc: int, ndf: int, n_layers: int, make_norm) -> list[list[nn.Module]]:
        """The n_layers + 2 groups of one PatchGAN: [conv, (norm,) LeakyReLU] ..., [conv]."""
        pad = 2  # ceil((4 - 1) / 2): with stride 1 the map grows by one pixel
        groups = [[nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=pad), nn.LeakyReLU(0.2, True)]]
        ch = ndf
        for n in range(1, n_layers + 1):
            prev, ch = ch, min(ch * 2, 512)
            stride = 2 if n < n_layers else 1  # the last widening conv keeps the size
            groups.append(
                [
                    # the stride-1 one (256 -> 512) takes Winograd in CPU fp32 training
                    WinogradConv2d(prev, ch, kernel_size=4, stride=stride, padding=pad),
                    make_norm(ch),
                    nn.LeakyReLU(0.2, True),
                ]
            )
        groups.append([nn.Conv2d(ch, 1, kernel_size=4, stride=1, padding=pad)])
        return groups

    def _one_scale(self, index: int, x: torch.Tensor) -> list[torch.Tensor]:
        if self.get_interm_feat:
            outs = []
            for j in range(self.n_layers + 2):
                x = getattr(self, f"scale{index}_layer{j}")(x)
                outs.append(x)
        else:
            outs = [getattr(self, f"layer{index}")(x)]
        if self.use_sigmoid:
            outs[-1] = torch.sigmoid(outs[-1])
        return outs

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for s in range(self.num_D):  # s = 0: full resolution, by the modules stored last
            result.append(self._one_scale(self.num_D - 1 - s, x))
            if s != self.num_D - 1:
                x = self.downsample(x)
        return result


# ----------------------------------------------------------------------------------------------
# Feature encoder


def _dense_ids(ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(index of each id among the sorted distinct ids, number of distinct ids) = torch.unique's
    inverse. Instance ids usually span a small range (Cityscapes: < 34000), where a presence
    table + cumsum is several times faster than unique's sort on the CPU."""
    if ids.numel() == 0:
        return ids, 1
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo < 4 * ids.numel() + 65536:
        flat = (ids - lo).reshape(-1)
        present = torch.bincount(flat, minlength=hi - lo + 1) > 0
        rank = present.cumsum(0) - 1  # id - lo -> its index among the present ids
        return rank[flat].view_as(ids), int(rank[-1]) + 1
    distinct, inverse = torch.unique(ids, return_inverse=True)
    return inverse, distinct.numel()


def instance_mean(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """Replace each channel of `features` [B, C, H, W] by its mean over each instance of `inst`
    [B, 1, H, W] (integer ids; float maps are rounded), separately for every image: pixels of id
    7 in image 0 and id 7 in image 1 are different instances. Returns [B, C, H, W].

    Vectorised: each (image, id) pair gets a group number, per-group sums (accumulated in float64)
    and pixel counts come from one index_add_ / bincount, and each pixel gathers its group mean.
    Differentiable in `features`.
    """
    if features.dim() != 4 or inst.dim() != 4 or inst.shape[1] != 1:
        raise PixtransError(
            f"instance_mean needs features [B, C, H, W] and an instance map [B, 1, H, W], got "
            f"{list(features.shape)} and {list(inst.shape)}"
        )
    b, c, h, w = features.shape
    if inst.shape[0] != b or inst.shape[2:] != features.shape[2:]:
        raise PixtransError(
            f"instance map {list(inst.shape)} does not match the features {list(features.shape)}: "
            "same batch size, height and width needed"
        )
    ids = inst.round() if inst.is_floating_point() else inst
    ids = ids.reshape(b, h * w).to(device=features.device, dtype=torch.long)
    inverse, n_ids = _dense_ids(ids)  # [B, HW] in [0, U)
    offsets = torch.arange(b, device=ids.device).unsqueeze(1) * n_ids
    group = (inverse + offsets).reshape(-1)  # [B*HW], (image, id) -> b * U + id index

    acc = torch.float32 if features.device.type == "mps" else torch.float64
    pixels = features.permute(0, 2, 3, 1).reshape(b * h * w, c)  # [B*HW, C]
    sums = pixels.new_zeros(b * n_ids, c, dtype=acc).index_add(0, group, pixels.to(acc))
    counts = torch.bincount(group, minlength=b * n_ids).clamp_min(1).to(acc)  # absent pairs: 0/1
    means = (sums / counts.unsqueeze(1)).to(features.dtype)  # [B*U, C]
    return means[group].reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()


@GENERATORS.register("encoder")
class Encoder(nn.Module):
    """pix2pixHD feature encoder E (§3.4): (N, input_nc, H, W) image + (N, 1, H, W) instance ids
    -> (N, output_nc, H, W) features, constant over each instance of each image.

    A reflect-padded 7x7 conv to ngf, n_downsampling stride-2 3x3 convs, as many stride-2
    transposed convs back up (no residual blocks, no skips), a reflect-padded 7x7 conv to
    output_nc (the official feat_num) and Tanh, then `instance_mean`. Keys (d = n_downsampling):
    model.1 stem conv, model.4 ... model.{3d+1} downs, model.{3d+4} ... model.{6d+1} ups,
    model.{6d+5} output conv. The official loop averages per image too; this one is vectorised.
    """

    def __init__(
        self,
        input_nc: int,  # image channels
        output_nc: int,  # feature channels (official feat_num, 3)
        ngf: int = 16,  # channels after the stem (official option nef)
        n_downsampling: int = 4,  # stride-2 levels (official option n_downsample_E)
        norm: str = "instance",  # instance | batch | none
    ):
        super().__init__()
        _check_at_least("encoder ngf", ngf, 1)
        _check_at_least("encoder n_downsampling", n_downsampling, 0)
        check_norm(norm)
        make_norm = get_norm_layer(norm)
        self.size_multiple = 2**n_downsampling
        self.model = nn.Sequential(
            *_stem(input_nc, ngf, make_norm),
            *_down_up_layers(ngf, n_downsampling, make_norm, list),
            *_head(ngf, output_nc),
        )

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        _check_size(self, image)
        return instance_mean(self.model(image), inst)
