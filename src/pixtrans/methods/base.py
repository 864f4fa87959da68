"""The contract between an algorithm (pix2pix, CycleGAN, pix2pixHD) and the rest of pixtrans.

Training: a method owns its networks and loss weights. Per step the loop calls `prepare(batch)`
once (the shared generator forward), then `losses(ctx, phase)` for each phase in `phases`; the
method returns named, already-weighted losses and never calls backward or an optimizer. The loop
owns backward, optimizer steps, AMP, gradient averaging across processes, logging and
checkpoints.

Everything else: what a trained model of the method *is* (which nets an export holds, what each
reads and writes, how inference runs it) is declared once here, as class-level attributes and
classmethods that take the resolved config as a plain dict, so exports, checkpoints, inference,
evaluation, conversion and benchmarks read the declaration instead of comparing method names.

Adding a method: subclass Method in methods/<name>.py, register it with @METHODS.register(name),
and import the module in methods/__init__.py. A method whose generators map data.input_nc
channels to data.output_nc channels ("G"; "G_ba" for the reverse direction) needs no
declaration beyond `exported`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def reverse_direction(direction: str) -> str:
    return {"AtoB": "BtoA", "BtoA": "AtoB"}.get(direction, direction)


class Method(nn.Module):
    #: phases in update order; each phase has one optimizer over `phase_nets(phase)`
    phases: tuple[str, ...] = ()
    #: nets an export holds: the generators (and what they need at inference); see exported_nets
    exported: tuple[str, ...] = ("G",)
    #: how inference runs an export: a registry.TRANSLATORS key, "image" (image in, image out)
    #: or "labelmap" (pix2pixHD: class-id and instance maps in)
    translator: str = "image"

    # -- the declaration: what a trained model is, from its resolved config (a plain dict) --------

    @classmethod
    def exported_nets(cls, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the nets an export of a run with this config holds."""
        return cls.exported

    @classmethod
    def net_io(cls, config: Mapping[str, Any], name: str) -> dict[str, Any]:
        """{"spec", "input_nc", "output_nc", "direction"} of exported net `name`.

        Default: the spec is `model.<name>` when the config has such a section, else `model.G`;
        the net maps the data's input side to its output side, and a name ending in "_ba" (the
        CycleGAN inverse) the other way.
        """
        data, model = config.get("data", {}), config.get("model", {})
        spec = model.get(name) if isinstance(model.get(name), Mapping) else model.get("G")
        io = {
            "spec": dict(spec or {}),
            "input_nc": int(data.get("input_nc", 3)),
            "output_nc": int(data.get("output_nc", 3)),
            "direction": data.get("direction", "AtoB"),
        }
        if name.lower().endswith("_ba"):
            io.update(
                input_nc=io["output_nc"],
                output_nc=io["input_nc"],
                direction=reverse_direction(io["direction"]),
            )
        return io

    # -- training ---------------------------------------------------------------------------------

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

    def scored_pair(
        self, cols: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(generated, real) images that held-out metrics compare, from `visuals(batch)`."""
        return cols.get("output", cols.get("fake_b")), batch["real_b"]

    def translator_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the first exported net reads for this batch (benchmarks time it on this)."""
        return batch["real_a"]

    def frozen_parameters(self, step: int, steps_per_epoch: int) -> list[nn.Parameter]:
        """Parameters of a phase's nets that get no gradient at this step (e.g. pix2pixHD's global
        generator while only the local enhancer trains). Adam skips them: they keep their values
        and their optimizer state until they are released."""
        return []

    def extra_state(self) -> dict[str, Any]:
        """State outside nets and optimizers that resume needs (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass
