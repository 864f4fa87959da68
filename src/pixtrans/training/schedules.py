"""Learning-rate schedules: pure functions of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations


def lr_factor(step: int, steps_per_epoch: int, epochs: int, epochs_decay: int) -> float:
    """pix2pix/CycleGAN schedule: constant for `epochs`, then linear decay over `epochs_decay`.

    Same arithmetic as the official per-epoch LambdaLR: during (0-based) epoch e the factor is
    1 - max(0, e + 1 - epochs) / (epochs_decay + 1).
    """
    epoch = step // steps_per_epoch
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
