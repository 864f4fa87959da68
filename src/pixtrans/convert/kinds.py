"""The checkpoint kinds pixtrans knows, their detection, and the dispatch that converts files.

Each Kind names a key-pattern detector and either a converter or, for files that are never
converted (an encoder alone, a discriminator), a hint saying what to pass instead. A kind with
a companion converts two files: its main file and one of the companion kind (a CycleGAN G_A
with its G_B, a pix2pixHD generator with its encoder). Detection looks only at key names and
shapes; in kind="auto" the first kind in KINDS whose detector matches is taken.

The dispatch completes the converter's partial config like a training run's, lets the method's
declaration (`Method.net_io`) say what each net reads and writes wherever it agrees with what the
weights say, and writes the export with the files' names and digests as provenance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.artifacts.exports import full_spec
from pixtrans.config import from_dict
from pixtrans.convert.base import Conversion, Converter, Options
from pixtrans.convert.junyanz import convert_resnet, convert_unet, is_resnet, is_unet
from pixtrans.convert.pix2pixhd import (
    convert_pix2pixhd,
    has_pix2pixhd_layout,
    is_pix2pixhd_encoder,
    is_pix2pixhd_generator,
)
from pixtrans.convert.state import Checkpoint, any_key, read_checkpoint, sha256
from pixtrans.methods import export_generators
from pixtrans.nets import spec_defaults
from pixtrans.registry import DISCRIMINATORS, GENERATORS, METHODS

Detector = Callable[[Mapping[str, torch.Tensor]], bool]


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    detect: Detector  # auto detection: the file is most likely of this kind
    convert: Converter | None = None
    companion: str = ""  # the kind of the second file this kind converts with ("" = one file only)
    # what an explicit `kind=name` converts; default `detect`. Wider where auto detection must
    # guess between kinds whose keys look alike
    accepts: Detector | None = None
    hint: str = ""  # for kinds that are never converted: what to pass instead

    def __post_init__(self):
        if (self.convert is None) == (not self.hint):
            raise ValueError(f"checkpoint kind '{self.name}' needs a converter or a hint, not both")

    def takes(self, state: Mapping[str, torch.Tensor]) -> bool:
        return (self.accepts or self.detect)(state)


def is_discriminator(state: Mapping[str, torch.Tensor]) -> bool:
    """junyanz PatchGAN / pixel D (model.0 conv) or pix2pixHD multiscale D (scale{i}_layer{j})."""
    return any_key(state, r"(model\.0\.weight|scale\d+_layer\d+\.|model\d+\.|layer\d+\.)")


# Order matters: the first kind whose detector matches is taken in kind="auto".
KINDS: list[Kind] = [
    Kind(
        "pix2pix_unet",
        "pix2pix U-Net generator (junyanz *_net_G.pth)",
        is_unet,
        convert_unet,
    ),
    Kind(
        "cyclegan_resnet",
        "CycleGAN ResNet generator (junyanz *_net_G_A.pth / *_net_G_B.pth)",
        is_resnet,
        convert_resnet,
        companion="cyclegan_resnet",
    ),
    Kind(
        "pix2pixhd",
        "pix2pixHD generator (NVIDIA latest_net_G.pth: global or local enhancer)",
        is_pix2pixhd_generator,
        convert_pix2pixhd,
        companion="pix2pixhd_encoder",
        accepts=has_pix2pixhd_layout,
    ),
    Kind(
        "pix2pixhd_encoder",
        "pix2pixHD feature encoder (latest_net_E.pth)",
        is_pix2pixhd_encoder,
        hint="convert it together with its generator: pixtrans convert latest_net_G.pth latest_net_E.pth OUT",
    ),
    Kind(
        "discriminator",
        "PatchGAN / multiscale discriminator (*_net_D*.pth)",
        is_discriminator,
        hint="only generators are converted: pass the *_net_G*.pth file of the same run",
    ),
]
CONVERTIBLE = [k.name for k in KINDS if k.convert is not None]


def detect_kind(state: Mapping[str, torch.Tensor]) -> Kind | None:
    return next((k for k in KINDS if k.detect(state)), None)


def _kind_named(name: str) -> Kind | None:
    """The convertible kind `name`; None for "auto"."""
    if name == "auto":
        return None
    found = next((k for k in KINDS if k.name == name and k.convert is not None), None)
    if found is None:
        raise PixtransError(f"unknown checkpoint kind '{name}'; valid: auto, {', '.join(CONVERTIBLE)}")
    return found


def _unknown(file: Checkpoint) -> PixtransError:
    sample = ", ".join(list(file.state)[:3])
    return PixtransError(
        f"'{file.path}' is not a checkpoint kind pixtrans knows ({len(file.state)} tensors, keys like "
        f"{sample}); supported: {', '.join(CONVERTIBLE)}"
    )


def _kind_of_one(file: Checkpoint, wanted: Kind | None) -> Kind:
    found = detect_kind(file.state)
    if wanted is not None and wanted.takes(file.state):
        return wanted
    if found is None:
        raise _unknown(file)
    if wanted is not None:
        raise PixtransError(f"'{file.path}' looks like a {found.description}, not '{wanted.name}'")
    if found.convert is None:
        raise PixtransError(f"'{file.path}' looks like a {found.description}; {found.hint}")
    return found


def _kind_of_pair(files: Sequence[Checkpoint], wanted: Kind | None) -> tuple[Kind, Checkpoint, Checkpoint]:
    """The kind converting the two files, its main file and its companion, in the given order
    where both files could be either."""
    found = [detect_kind(f.state) for f in files]
    if wanted is not None and not wanted.companion:
        raise PixtransError(f"checkpoint kind '{wanted.name}' converts one file, got two")
    for kind in [wanted] if wanted else [k for k in KINDS if k.companion]:
        for main, other in ((0, 1), (1, 0)):
            companion = found[other]
            if kind.takes(files[main].state) and companion is not None and companion.name == kind.companion:
                return kind, files[main], files[other]
    pairs = ", ".join(f"{k.name} + {k.companion}" for k in KINDS if k.companion)
    what = [f"'{f.path}' ({k.name if k else 'unknown'})" for f, k in zip(files, found, strict=True)]
    hints = "".join(f"; '{f.path.name}': {k.hint}" for f, k in zip(files, found, strict=True) if k and k.hint)
    as_kind = f" as kind '{wanted.name}'" if wanted else ""
    raise PixtransError(
        f"{what[0]} and {what[1]} are not a pair pixtrans converts{as_kind}{hints}; pairs: {pairs}"
    )


# ----------------------------------------------------------------------------------------------
# Writing the export


def _complete_config(partial: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in and validated, like a training run's; net specs with every
    constructor keyword written out, as saved configs are."""
    config = from_dict(dict(partial)).to_dict()
    model = config["model"]
    for key, registry in (("G", GENERATORS), ("D", DISCRIMINATORS), ("E", GENERATORS)):
        if model.get(key):  # an empty E: no encoder
            model[key] = {**spec_defaults(registry, model[key]["name"]), **model[key]}
    return config


def _export_io(method: str, config: Mapping[str, Any], name: str, io: Mapping[str, Any]) -> dict | None:
    """None where the method's declaration says what `io` (read from the weights) says, else
    the declared io overridden by `io`: what the config cannot express (a G_ba of another
    architecture than model.G)."""
    declared = METHODS.get(method).net_io(config, name)
    merged = {**declared, **io}
    same_spec = full_spec(merged["spec"]) == full_spec(declared["spec"])
    if same_spec and all(merged[k] == v for k, v in declared.items() if k != "spec"):
        return None
    return merged


def _source(kind: Kind, conversion: Conversion) -> dict[str, Any]:
    files = conversion.files
    if isinstance(files, Path):
        file, digest = files.name, sha256(files)
    else:
        file = {name: p.name for name, p in files.items()}
        digest = {name: sha256(p) for name, p in files.items()}
    return {
        "kind": kind.name,
        "description": conversion.description or kind.description,
        "file": file,
        "sha256": digest,
        **conversion.notes,
    }


def write_conversion(out_dir: str | os.PathLike, kind: Kind, conversion: Conversion) -> Path:
    config = _complete_config(conversion.config)
    specs = {}
    for name, (io, _) in conversion.nets.items():
        if (override := _export_io(conversion.method, config, name, io)) is not None:
            specs[name] = override
    return export_generators(
        out_dir,
        config,
        {name: net for name, (_, net) in conversion.nets.items()},
        conversion.method,
        specs=specs or None,
        source=_source(kind, conversion),
    )


def convert_official(
    checkpoint_path: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    kind: str = "auto",
    *,
    dropout: bool | None = None,
    direction: str = "AtoB",
    label_nc: int = 35,
    instance: bool = True,
    dontcare_label: bool = False,
) -> Path:
    """Convert an official generator checkpoint into a pixtrans export folder; returns out_dir.

    checkpoint_path: one file, or a pair: the two CycleGAN files [G_A, G_B] (e.g.
      latest_net_G_A.pth and latest_net_G_B.pth, in either order when the names say which is
      which; else G_A first), which become one export with generators "G_ab" and "G_ba"; or a
      pix2pixHD generator and its feature encoder [latest_net_G, latest_net_E], in either order.
    kind: "auto" (detect from key names and shapes) or one of the convertible KINDS names.
    dropout: the U-Net's dropout flag, which weights cannot reveal; default on (pix2pix's setting;
      it only matters for mode="paper" translation). A ResNet's dropout shows in its keys.
    direction: what the checkpoint was trained for, "AtoB" or "BtoA" (recorded, not used by the
      net); for a pair, the direction of G_A.
    label_nc / instance / dontcare_label: pix2pixHD's training flags (--label_nc, not
      --no_instance, --contain_dontcare_label).
    """
    if direction not in ("AtoB", "BtoA"):
        raise PixtransError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    options = Options(
        dropout=dropout,
        direction=direction,
        label_nc=label_nc,
        instance=instance,
        dontcare_label=dontcare_label,
    )
    if isinstance(checkpoint_path, (str, os.PathLike)):
        paths = [Path(checkpoint_path)]
    else:
        paths = [Path(p) for p in checkpoint_path]
    if len(paths) not in (1, 2):
        raise PixtransError(
            f"give one checkpoint or a pair (CycleGAN G_A + G_B, pix2pixHD G + E), got {len(paths)} files"
        )
    wanted = _kind_named(kind)
    files = [read_checkpoint(p) for p in paths]
    if len(files) == 1:
        found, main, companion = _kind_of_one(files[0], wanted), files[0], None
    else:
        found, main, companion = _kind_of_pair(files, wanted)
    return write_conversion(out_dir, found, found.convert(main, companion, options))
