"""Weight initialisation of the pix2pix / CycleGAN papers (official `init_weights` arithmetic).

The modules are visited with `net.apply`, i.e. children before parents in registration order,
which is the order the official code draws its random numbers in. With the same seed, the same
module tree and the same construction order, the weights come out bit-identical.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.conv import _ConvNd

from pixtrans import PixtransError

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(
    net: nn.Module, init_type: str = "normal", gain: float = 0.02, zero_bias: bool = True
) -> nn.Module:
    """Initialise `net` in place and return it.

    Conv*/ConvTranspose*/Linear: weight from `init_type`, bias = 0 (zero_bias=False keeps
    PyTorch's default bias init, as NVIDIA pix2pixHD's `weights_init` does).
      normal      N(0, gain)                        (pix2pix / CycleGAN default, gain 0.02)
      xavier      xavier_normal_(gain=gain)
      kaiming     kaiming_normal_(a=0, mode='fan_in')  (gain is ignored, as in the official code)
      orthogonal  orthogonal_(gain=gain)
    BatchNorm2d: weight ~ N(1, gain), bias = 0, whatever `init_type` is (a scale, not a matrix).
    Everything else (InstanceNorm without affine, Identity, activations) is left alone.
    """
    if init_type not in INIT_TYPES:
        raise PixtransError(f"unknown init_type '{init_type}'; valid: {', '.join(INIT_TYPES)}")

    def init_module(m: nn.Module) -> None:
        if isinstance(m, (_ConvNd, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None and zero_bias:
                nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.constant_(m.bias, 0.0)

    # nn.init.* run under no_grad themselves; apply() = post-order, same as the official loop
    net.apply(init_module)
    return net
