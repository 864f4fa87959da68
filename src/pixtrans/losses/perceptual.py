"""pix2pixHD's extra generator losses: VGG19 perceptual loss and discriminator feature matching.

  L_VGG = sum_i w_i * L1(F_i(G(s)), F_i(x))                       w = 1/32, 1/16, 1/8, 1/4, 1
  L_FM  = sum_k sum_{j<T} 4/(n_layers+1) * 1/num_D * lambda_feat * L1(D_k^j(s, G(s)), D_k^j(s, x))

F_i = VGG19 activations relu1_1 ... relu5_1; D_k^j = layer j of the discriminator at scale k
(paper eq. 4, with the weights of the official `Pix2PixHDModel`). The VGG weights are
torchvision's ImageNet `vgg19-dcbb9e9d.pth`, read from disk only: nothing here downloads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixtrans import PixtransError
from pixtrans.nets.conv import FastConv2d

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
VGG19_ENV = "PIXTRANS_VGG19"

# torchvision vgg19 ("E") `features` up to relu5_1: conv widths, "M" = 2x2 max pool. Each conv
# is followed by a ReLU, so the module indices are torchvision's: conv1_1 = 0, relu1_1 = 1, ...
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# slice boundaries after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (module indices)
_SLICE_ENDS = (2, 7, 12, 21, 30)
# ImageNet statistics torchvision's weights were trained with (inputs in [0, 1])
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_modules() -> list[nn.Module]:
    """torchvision vgg19().features[0:30]: 3x3 convs (padding 1) + ReLU, 2x2 max pools."""
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # frozen, but G's gradient passes through: the fast training paths apply (nets/conv.py)
            layers += [FastConv2d(in_ch, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = item
    assert len(layers) == _SLICE_ENDS[-1]
    return layers


def _vgg19_shapes() -> dict[str, tuple[int, ...]]:
    """Feature-index keys ("0.weight", "0.bias", ..., "28.bias") -> shapes, for checking a file."""
    shapes = {}
    for i, m in enumerate(_vgg19_modules_meta()):
        if isinstance(m, nn.Conv2d):
            shapes[f"{i}.weight"] = tuple(m.weight.shape)
            shapes[f"{i}.bias"] = tuple(m.bias.shape)
    return shapes


def _vgg19_modules_meta() -> list[nn.Module]:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        return _vgg19_modules()


def _default_vgg19_path() -> tuple[Path, str]:
    """(where "auto" looks, how that place was chosen)."""
    env = os.environ.get(VGG19_ENV)
    if env:
        return Path(env).expanduser(), f"${VGG19_ENV}"
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE, "the torch hub cache"


def load_vgg19_weights(weights: str) -> dict[str, Tensor] | None:
    """VGG19 conv weights up to conv5_1, keyed by torchvision `features` index ("0.weight", ...,
    "28.bias"), float32 on the CPU; None for "random".

    weights: a path to a torchvision-format file (the full vgg19 state dict with `features.N.*`
    keys, or only the features with `N.*` keys); "auto" = $PIXTRANS_VGG19 if set, else
    <torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth; "random" = no weights (tests only).
    Never downloads.
    """
    if weights == "random":
        return None
    if weights == "auto":
        path, origin = _default_vgg19_path()
        if not path.is_file():
            raise PixtransError(
                f"VGG19 weights for the perceptual loss not found at {path} ({origin}, "
                f"loss.vgg_weights=auto): download {VGG19_URL} on a machine with internet and put it "
                f"there, or set loss.vgg_weights=PATH, or turn the loss off with loss.lambda_vgg=0"
            )
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PixtransError(
                f"config key 'loss.vgg_weights': '{path}' does not exist; give the path of {VGG19_FILE} "
                f"({VGG19_URL}), 'auto', or turn the loss off with loss.lambda_vgg=0"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise PixtransError(
            f"cannot read VGG19 weights '{path}' ({type(e).__name__}); it should be torchvision's "
            f"{VGG19_FILE} ({VGG19_URL}): re-download it"
        ) from None
    if not isinstance(state, dict):
        raise PixtransError(
            f"VGG19 weights '{path}' hold a {type(state).__name__}, not a state dict; "
            f"use torchvision's {VGG19_FILE} ({VGG19_URL})"
        )
    # full torchvision state dict ("features.0.weight") or its features only ("0.weight")
    if any(isinstance(k, str) and k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    expected = _vgg19_shapes()
    missing = [k for k in expected if k not in state]
    wrong = [
        k
        for k in expected
        if k in state and (not isinstance(state[k], Tensor) or tuple(state[k].shape) != expected[k])
    ]
    if missing or wrong:
        detail = f"missing {missing[:3]}" if missing else f"wrong shape {wrong[:3]}"
        raise PixtransError(
            f"'{path}' is not a torchvision VGG19 state dict ({detail}); use {VGG19_FILE} ({VGG19_URL})"
        )
    return {k: state[k].detach().to(device="cpu", dtype=torch.float32) for k in expected}


class VGG19Features(nn.Module):
    """Frozen VGG19 trunk: (N, 3, H, W) -> the 5 activations relu1_1 [N, 64, H, W], relu2_1
    [N, 128, H/2, W/2], relu3_1 [N, 256, H/4, W/4], relu4_1 [N, 512, H/8, W/8], relu5_1
    [N, 512, H/16, W/16].

    The input goes in as is, like the official pix2pixHD, which feeds [-1, 1] images to the
    ImageNet network unnormalised; normalize_input=True maps [-1, 1] to ImageNet statistics
    first. Always in eval mode with requires_grad False (gradients still flow to the input).
    `slices[i]` holds torchvision's modules under their own indices (slices.1.2 = features[2]).
    """

    def __init__(
        self,
        weights: str = "auto",  # path | auto | random, see load_vgg19_weights
        normalize_input: bool = False,  # [-1, 1] -> ImageNet-normalised before the first conv
    ):
        super().__init__()
        state = load_vgg19_weights(weights)
        layers = _vgg19_modules()
        self.slices = nn.ModuleList()
        start = 0
        for end in _SLICE_ENDS:
            part = nn.Sequential()
            for i in range(start, end):
                part.add_module(str(i), layers[i])
            self.slices.append(part)
            start = end
        if state is not None:
            with torch.no_grad():
                for key, value in state.items():
                    index, name = key.split(".")
                    getattr(layers[int(index)], name).copy_(value)
        self.normalize_input = normalize_input
        # x_imagenet = ((x + 1) / 2 - mean) / std; non-persistent: not part of any checkpoint
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # a fixed feature extractor: no train mode

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise PixtransError(
                f"the VGG19 perceptual loss needs RGB images [N, 3, H, W], got {list(x.shape)}; "
                "turn it off with loss.lambda_vgg=0"
            )
        if self.normalize_input:
            x = ((x + 1) * 0.5 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outs = []
        for part in self.slices:
            x = part(x)
            outs.append(x)
        return outs


class VGGLoss(nn.Module):
    """pix2pixHD perceptual loss: sum_i w_i * L1(F_i(x), F_i(y)), F_i = VGG19 relu{i}_1.

    x: generated images, y: targets, both (N, 3, H, W) in [-1, 1]. y's features are computed
    without a graph (the official code detaches them), so gradients reach x only. Returns a scalar;
    the method multiplies it by lambda_vgg.
    """

    def __init__(
        self,
        weights: str = "auto",  # VGG19 weights: path | auto | random, see load_vgg19_weights
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),  # relu1_1 .. relu5_1
        normalize_input: bool = False,  # see VGG19Features
    ):
        super().__init__()
        if len(layer_weights) != len(_SLICE_ENDS):
            raise PixtransError(
                f"VGGLoss layer_weights needs {len(_SLICE_ENDS)} values (relu1_1 .. relu5_1), "
                f"got {len(layer_weights)}"
            )
        self.vgg = VGG19Features(weights=weights, normalize_input=normalize_input)
        self.layer_weights = tuple(float(w) for w in layer_weights)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x_feats = self.vgg(x)
        with torch.no_grad():
            y_feats = self.vgg(y)
        loss = x.new_zeros(())
        for w, fx, fy in zip(self.layer_weights, x_feats, y_feats, strict=True):
            loss = loss + w * F.l1_loss(fx, fy)
        return loss


def feature_matching_loss(
    pred_fake: Sequence[Sequence[Tensor]],
    pred_real: Sequence[Sequence[Tensor]],
    lambda_feat: float = 10.0,
) -> Tensor:
    """pix2pixHD feature matching (eq. 4): for every scale k of num_D and every layer j but the
    last (the prediction), (4 / (n_layers + 1)) * (1 / num_D) * lambda_feat * L1(fake_kj, real_kj).

    pred_fake / pred_real: MultiscaleDiscriminator(get_interm_feat=True) outputs, a list over
    scales of the n_layers + 2 layer outputs each (so n_layers = len(scale) - 2). Real features
    are detached. Returns a scalar.
    """
    if len(pred_fake) != len(pred_real) or not pred_fake:
        raise PixtransError(
            f"feature matching needs real and fake discriminator outputs over the same scales, got "
            f"{len(pred_real)} and {len(pred_fake)}"
        )
    num_d = len(pred_fake)
    loss: Tensor | float = 0.0
    for fake, real in zip(pred_fake, pred_real, strict=True):
        if isinstance(fake, Tensor) or isinstance(real, Tensor) or len(fake) < 2 or len(fake) != len(real):
            raise PixtransError(
                "feature matching needs the discriminator's intermediate features: set "
                "model.D.get_interm_feat=true, or turn it off with loss.lambda_feat=0"
            )
        layer_weight = 4.0 / (len(fake) - 2 + 1)  # 4 / (n_layers + 1)
        for f, r in zip(fake[:-1], real[:-1], strict=True):
            # the official order of the products: D weight * layer weight * L1 * lambda
            loss = loss + (1.0 / num_d) * layer_weight * F.l1_loss(f, r.detach()) * lambda_feat
    assert isinstance(loss, Tensor)
    return loss
