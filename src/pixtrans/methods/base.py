"""The contract between an algorithm (pix2pix, CycleGAN, pix2pixHD) and the training loop.

A method owns its networks and loss weights. Per step the loop calls `prepare(batch)` once (the
shared generator forward), then `losses(ctx, phase)` for each phase in `phases`; the method
returns named, already-weighted losses and never calls backward or an optimizer. The loop owns
backward, optimizer steps, AMP, gradient averaging across processes, logging and checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Method(nn.Module):
    #: phases in update order; each phase has one optimizer over `phase_nets(phase)`
    phases: tuple[str, ...] = ()
    #: nets saved in exports (the translators); a subset of `self.nets`
    exported: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> Method:
        """The only place a method reads the config: turn it into explicit arguments."""
        raise NotImplementedError

    @property
    def nets(self) -> dict[str, nn.Module]:
        return {name: module for name, module in self.named_children() if isinstance(module, nn.Module)}

    def phase_nets(self, phase: str) -> list[str]:
        raise NotImplementedError

    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        raise NotImplementedError

    def losses(self, ctx: dict[str, Any], phase: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Columns for the sample grid, e.g. {"input": ..., "output": ..., "target": ...}."""
        raise NotImplementedError

    def frozen_parameters(self, step: int, steps_per_epoch: int) -> list[nn.Parameter]:
        """Parameters of a phase's nets that get no gradient at this step (e.g. pix2pixHD's global
        generator while only the local enhancer trains). Adam skips them: they keep their values
        and their optimizer state until they are released."""
        return []

    def export_specs(self) -> dict[str, dict[str, Any]] | None:
        """name -> {"spec", "input_nc", "output_nc"} for exported nets whose channels do not follow
        the data config (see inference.export.generator_io); None = follow it."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """State outside nets and optimizers that resume needs (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass
