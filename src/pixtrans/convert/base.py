"""The contract between a checkpoint kind's converter and the dispatch that writes the export.

A converter gets the kind's main file, its companion file (or None) and the user's Options, and
returns a Conversion: the nets built from the weights, what it read about each (io), and the
part of the config the weights and options fix. The dispatch (kinds.py) completes the config,
takes each net's io from the method's declaration where that agrees, and writes the export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from pixtrans.convert.state import Checkpoint


@dataclass(frozen=True)
class Options:
    """What the user says about the training run: what the weights cannot show."""

    dropout: bool | None = None  # U-Net dropout flag; None = pix2pix's setting (on), noted as assumed
    direction: str = "AtoB"  # trained direction, recorded; for a CycleGAN pair, G_A's direction
    label_nc: int = 35  # pix2pixHD --label_nc
    instance: bool = True  # pix2pixHD: not --no_instance
    dontcare_label: bool = False  # pix2pixHD --contain_dontcare_label


@dataclass(frozen=True)
class Conversion:
    """One export's worth of converted nets."""

    method: str  # the pixtrans method these nets belong to (recorded in the export)
    config: dict[str, Any]  # partial config (what the weights and options fix); defaults fill the rest
    # name -> (io read from the weights: {"spec", "input_nc", "output_nc"}, net with the weights)
    nets: dict[str, tuple[dict[str, Any], nn.Module]]
    files: Path | dict[str, Path]  # the file converted, or net name -> the file it came from
    description: str = ""  # provenance, where more precise than the kind's description
    notes: dict[str, Any] = field(default_factory=dict)  # more provenance, e.g. an assumed flag


# (main file, companion file or None, options) -> Conversion
Converter = Callable[[Checkpoint, Checkpoint | None, Options], Conversion]
