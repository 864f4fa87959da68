"""Typed configuration: defaults, then a YAML preset, then dotted command-line overrides.

Resolved once at the edge, validated with errors that name the key, then treated as read-only
and saved with every run, checkpoint and export. Only builder functions read it.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pixtrans import PixtransError
from pixtrans.registry import did_you_mean

PRESET_DIR = Path(__file__).parent / "configs"


# Field metadata. "resume": how a setting may change when a run is resumed. Settings marked FREE
# do not change what a run computes (where it stops, how often it logs, where the data is);
# SCHEDULE settings may change only where the run has not been yet (training/loop.py
# check_schedule); every other setting must stay as the run was started. "net": the section is
# a network spec {name, **constructor keywords} checked against that registry (nets/__init__.py).
FREE = {"resume": "free"}
SCHEDULE = {"resume": "schedule"}


# The official pytorch-CycleGAN-and-pix2pix names of its networks (--netG / --netD), so a model.G
# or model.D spec may name one: `model.G.name=unet_256` is {name: unet, num_downs: 8}.
NET_ALIASES = {
    "generator": {
        "unet_256": {"name": "unet", "num_downs": 8},
        "unet_128": {"name": "unet", "num_downs": 7},
        "resnet_9blocks": {"name": "resnet", "n_blocks": 9},
        "resnet_6blocks": {"name": "resnet", "n_blocks": 6},
    },
    "discriminator": {
        "basic": {"name": "patchgan", "n_layers": 3},
        "n_layers": {"name": "patchgan"},
        "pixel": {"name": "pixel"},
    },
}


def net_spec(kind: str, default, optional: bool = False):
    """A model section holding a network spec of a registry `kind` ("generator", "discriminator")."""
    return field(default_factory=lambda: dict(default), metadata={"net": kind, "optional": optional})


@dataclass
class DataConfig:
    dataset: str = "paired"  # registry name: paired | unpaired | synthetic | labelmap
    # dataset folder (paired) or cache folder (synthetic; empty = inside the run)
    root: str = field(default="", metadata=FREE)
    layout: Literal["auto", "aligned", "folders"] = "auto"  # A|B in one file, or A/ and B/ folders
    # AtoB: A is the input; BtoA swaps the sides (facades labels -> photo)
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    input_nc: int = 3  # channels of the network input (1 grey, 3 RGB, 4 RGBA, any for .npy)
    output_nc: int = 3  # channels of the network output
    # how images become training inputs (docs/data.md)
    preprocess: Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"] = (
        "resize_and_crop"
    )
    load_size: int = 286  # side (or width for scale_width) images are resized to before cropping
    crop_size: int = 256  # side of the random training crop
    flip: bool = True  # random horizontal flips
    train_split: str = "train"  # split (sub-folder) trained on
    val_split: str = "val"  # held-out split for sample grids ("" = use train images)
    max_images: int = 0  # 0 = all
    # DataLoader workers; -1 = auto (0 on CPU, where decoding is cached)
    num_workers: int = field(default=-1, metadata=FREE)
    # keep decoded images in memory
    cache: Literal["auto", "on", "off"] = field(default="auto", metadata=FREE)
    # "auto" caches only when the decoded set fits under this
    cache_max_gb: float = field(default=4.0, metadata=FREE)
    bad_files: Literal["fail", "skip"] = "fail"  # policy for unreadable images, see docs/data.md
    # unpaired only: pair image i of the input domain with image i of the other (else a random one)
    serial_batches: bool = False
    # synthetic dataset only
    synthetic_size: int = 200
    synthetic_resolution: int = 64  # synthetic dataset only: side of each image in pixels
    # labelmap dataset (pix2pixHD) only: classes of the label-id maps (0 = RGB images from
    # {split}_A instead)
    label_nc: int = 0
    dontcare_label: bool = False  # labelmap only: id 255 becomes an extra "don't care" class
    instance: bool = True  # labelmap only: read {split}_inst instance maps (edges for G and D, regions for E)
    features: bool = False  # labelmap only: read precomputed {split}_feat feature maps


@dataclass
class ModelConfig:
    # the generator spec {name, **constructor keywords}, checked against the constructor
    # (unet | resnet | global | local; official names: unet_256, unet_128, resnet_9blocks ...)
    G: dict = net_spec(
        "generator", {"name": "unet", "num_downs": 8, "ngf": 64, "norm": "batch", "dropout": True}
    )
    # the discriminator spec (patchgan | pixel | multiscale; official: basic, n_layers, pixel)
    D: dict = net_spec("discriminator", {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "batch"})
    # weight initialisation of the papers
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal"
    init_gain: float = 0.02  # scale of the initial weights
    # pix2pixHD: instance-feature encoder ({} = off, else e.g. {name: encoder, ngf: 16}), the
    # number of feature channels it feeds G, and a trained global generator (run, export or
    # checkpoint) whose weights start a local-enhancer run (the paper's coarse-to-fine training)
    E: dict = net_spec("generator", {}, optional=True)
    feat_num: int = 3  # pix2pixHD: feature channels the encoder feeds G
    # pix2pixHD: a trained global generator (run, export, checkpoint) to start a local enhancer from
    load_global: str = ""


@dataclass
class LossConfig:
    # the official repository spells wgan-gp "wgangp"
    gan_mode: Literal["vanilla", "lsgan", "hinge", "wgan-gp"] = field(
        default="vanilla", metadata={"aliases": {"wgangp": "wgan-gp"}}
    )
    lambda_l1: float = 100.0  # pix2pix: weight of the L1 term (paper: 100)
    lambda_gp: float = 10.0  # wgan-gp only
    d_loss_scale: float = 0.5  # the paper halves the D objective to slow D relative to G
    # CycleGAN
    lambda_cycle: float = 10.0  # weight of each cycle-consistency L1 term (A->B->A and B->A->B)
    lambda_idt: float = 0.5  # identity L1 weight, relative to lambda_cycle (0 = off)
    pool_size: int = 50  # history of fakes shown to each D (0 = only the newest)
    # pix2pixHD
    lambda_feat: float = 10.0  # discriminator feature matching (paper eq. 4; 0 = off)
    lambda_vgg: float = 10.0  # VGG19 perceptual loss (0 = off)
    vgg_weights: str = "auto"  # torchvision vgg19-dcbb9e9d.pth path | auto (hub cache) | random (tests)


@dataclass
class TrainConfig:
    batch_size: int = 1  # images per step per process
    epochs: int = field(default=100, metadata=SCHEDULE)  # epochs at constant learning rate
    epochs_decay: int = field(default=100, metadata=SCHEDULE)  # then linearly decayed to zero
    fix_global_epochs: int = 0  # pix2pixHD local enhancer: train only the enhancer this long first
    max_steps: int = field(default=0, metadata=FREE)  # >0 stops early (the schedule still follows the epochs)
    lr: float = 2e-4  # Adam learning rate (papers: 2e-4)
    beta1: float = 0.5  # Adam beta1 (papers: 0.5)
    beta2: float = 0.999  # Adam beta2
    # auto: bf16 autocast where the device runs bf16 natively and it measured faster, else fp32
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    # what the run trains in (fp32 | bf16 | fp16): written by the run, for the record
    amp_chosen: str = field(default="", metadata=FREE)
    # memory format: auto = on for CUDA, off on the CPU (measured slower there)
    channels_last: Literal["auto", "on", "off"] = "auto"
    # torch.compile the nets' forward (inductor): auto = on for CUDA, off on the CPU, where the
    # compiled step measured no faster (benchmarks/ab_trainer.py); the first steps pay the compile
    compile: Literal["auto", "on", "off"] = field(default="auto", metadata=FREE)
    # CPU fp32 training convolutions with fewer multiplications (nets/conv.py): stride-1 layers of
    # >= 2048 px maps through NNPACK's Winograd/FFT (forward and input gradient), wide 3x3/4x4
    # ones through our Winograd (nets/winograd.py, every gradient); auto = on; off = oneDNN's
    # direct convolution, the official code's rounding
    fast_conv: Literal["auto", "on", "off"] = "auto"
    deterministic: bool = False  # bitwise-repeatable kernels (slower); resume is exact either way on CPU
    device: str = field(default="auto", metadata=FREE)  # auto | cpu | cuda | cuda:N
    log_every: int = field(default=20, metadata=FREE)  # steps between stats.jsonl lines
    sample_every: int = field(default=200, metadata=FREE)  # steps between sample grids
    # steps between report (index.html + loss plot) refreshes
    report_every: int = field(default=200, metadata=FREE)
    checkpoint_every: int = field(default=500, metadata=FREE)  # steps between checkpoints
    # also checkpoint when this much time has passed
    checkpoint_minutes: float = field(default=10.0, metadata=FREE)
    keep_checkpoints: int = field(default=3, metadata=FREE)  # checkpoints kept (the newest that load)
    # auto: continue from the newest checkpoint that loads; restart: start again from step 0 in
    # a run folder whose checkpoints are all damaged (they are kept as step_*.pt.damaged)
    resume: Literal["auto", "restart"] = field(default="auto", metadata=FREE)
    # also log scalars and sample grids to TensorBoard (RUN/tensorboard) or Weights & Biases
    logger: Literal["none", "tensorboard", "wandb"] = field(default="none", metadata=FREE)
    export_at_end: bool = field(default=True, metadata=FREE)  # write RUN/export when the run ends
    progress: bool = field(default=True, metadata=FREE)  # show a progress bar


@dataclass
class EvalConfig:
    """Metrics on a held-out split during training (see docs/evaluation.md)."""

    every: int = field(default=0, metadata=FREE)  # steps between evaluations; 0 = off
    # names from `pixtrans evaluate --list`, comma separated
    metrics: str = field(default="l1,psnr,ssim", metadata=FREE)
    split: str = field(default="", metadata=FREE)  # "" = data.val_split
    max_images: int = field(default=0, metadata=FREE)  # 0 = the whole split
    # keep RUN/best/ (an export) at the best value of this metric; "" = off
    best: str = field(default="", metadata=FREE)


@dataclass
class Config:
    method: str = "pix2pix"  # the algorithm (registry name): pix2pix | cyclegan | pix2pixhd
    # the run folder: config, checkpoints, samples, report, export
    run_dir: str = field(default="runs/default", metadata=FREE)
    seed: int = 0  # seeds weights, data order, crops and dropout; a resumed run keeps them exact
    # licence written into exported model cards (an SPDX id, e.g. CC-BY-4.0); "" = not stated
    license: str = field(default="", metadata=FREE)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _walk(cls, prefix: str = ""):
    """(dotted key, dataclass field) for every leaf setting of a config dataclass."""
    for f in dataclasses.fields(cls):
        sub = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(sub):
            yield from _walk(sub, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def resume_rules() -> dict[str, str]:
    """Dotted key -> "free" | "schedule" for the settings a resumed run may change (see FREE)."""
    return {key: f.metadata["resume"] for key, f in _walk(Config) if "resume" in f.metadata}


def net_spec_fields() -> dict[str, dict]:
    """model.<name> sections that hold network specs -> {"net": registry kind, "optional"}."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(ModelConfig) if "net" in f.metadata}


# ----------------------------------------------------------------------------------------------
# Resolution: defaults <- YAML (may `base:` another preset) <- dotted overrides.


def _type_name(tp) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


class Text(str):
    """A value as typed on the command line (key=value): parsed by the declared type of the
    field it sets, so a text field keeps `0123` or `2024-01-01` as written instead of YAML's
    83 or a date, and a number or a switch is read as one."""


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def from_text(raw: Text, tp, key: str) -> Any:
    """A command-line value -> the Python value of a field of type `tp` (then checked by coerce)."""
    origin = typing.get_origin(tp)
    if tp is str or origin is Literal:
        return str(raw)
    if origin in (typing.Union, types.UnionType):
        if raw.strip().lower() in ("", "null", "none", "~"):
            return None
        return from_text(raw, [a for a in typing.get_args(tp) if a is not type(None)][0], key)
    if tp is bool:
        word = raw.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise PixtransError(f"config key '{key}': expected true/false, got {str(raw)!r}")
    if tp is int:
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
            raise PixtransError(f"config key '{key}': expected an integer, got {str(raw)!r}") from None
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            raise PixtransError(f"config key '{key}': expected a number, got {str(raw)!r}") from None
    return _yaml_value(raw, key)  # a mapping (net spec, section) or a value inside one


def _yaml_value(raw: str, key: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise PixtransError(
            f"config key '{key}': cannot read {str(raw)!r} ({str(e).splitlines()[0]})"
        ) from None


def _parse_texts(value: Any, key: str) -> Any:
    """Command-line values inside a mapping (a net spec's keys): YAML, typed later by the net."""
    if isinstance(value, Text):
        return _yaml_value(value, key)
    if isinstance(value, dict):
        return {k: _parse_texts(v, f"{key}.{k}") for k, v in value.items()}
    return value


def coerce(value: Any, tp, key: str, aliases: dict | None = None) -> Any:
    """Check/convert one value against a dataclass field type; errors name the key."""
    if isinstance(value, Text):
        value = from_text(value, tp, key)
    if aliases and isinstance(value, str):
        value = aliases.get(value, value)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads on/off/yes/no as booleans: train.amp=off
            spelled = {"on", "yes", "true"} if value else {"off", "no", "false"}
            value = next((c for c in choices if c in spelled), value)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise PixtransError(f"config key '{key}': {value!r} is not one of {_type_name(tp)}{hint}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, args[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise PixtransError(f"config key '{key}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise PixtransError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PixtransError(f"config key '{key}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise PixtransError(f"config key '{key}': expected a string, got {value!r}")
        return str(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise PixtransError(f"config key '{key}': expected a mapping, got {value!r}")
        return value
    return value


def _expand_alias(spec: dict, kind: str | None) -> dict:
    alias = NET_ALIASES.get(kind or "", {}).get(spec.get("name"))
    return {**alias, **{k: v for k, v in spec.items() if k != "name"}} if alias else spec


def _merge_into(obj, data: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    names = list(fields)
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise PixtransError(f"unknown config key '{full}'{did_you_mean(key, names)}")
        current = getattr(obj, key)
        meta = fields[key].metadata
        if hints[key] is dict or (dataclasses.is_dataclass(current) and isinstance(value, Text)):
            value = _parse_texts(value, full)  # a mapping typed on the command line, or a net spec
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise PixtransError(f"config key '{full}': expected a section (mapping), got {value!r}")
            _merge_into(current, value, prefix=f"{full}.")
        elif hints[key] is dict and isinstance(value, dict) and isinstance(current, dict):
            value = _expand_alias(value, meta.get("net"))
            # net specs merge key by key, so `model.G.ngf=32` keeps the other settings; a new
            # `name` starts from an empty spec so keys of another net do not leak in
            # (an empty mapping clears the spec: `model.E={}` turns the encoder off)
            new_name = "name" in value and value["name"] != current.get("name")
            base = {} if new_name or not value else dict(current)
            base.update(value)
            setattr(obj, key, base)
        else:
            setattr(obj, key, coerce(value, hints[key], full, meta.get("aliases")))


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise PixtransError(f"override '{text}' must look like key.sub=value (e.g. train.batch_size=4)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), Text(raw)


def _nest(path: list[str], value: Any) -> dict:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


def resolve_preset(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    for cand in (PRESET_DIR / name_or_path, PRESET_DIR / f"{name_or_path}.yaml"):
        if cand.is_file():
            return cand
    presets = sorted(str(p.relative_to(PRESET_DIR).with_suffix("")) for p in PRESET_DIR.rglob("*.yaml"))
    raise PixtransError(
        f"config file '{name_or_path}' not found{did_you_mean(name_or_path, presets)}; "
        f"give a YAML path or a preset: {', '.join(presets)}"
    )


def load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PixtransError(f"config file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PixtransError(f"config file '{path}' must hold a mapping of settings")
    base = data.pop("base", None)
    if base is not None:
        parent = resolve_preset(str(path.parent / base)) if (path.parent / base).is_file() else None
        parent = parent or resolve_preset(base)
        merged = load_yaml(parent)
        _deep_update(merged, data)
        return merged
    return data


def _deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        # a net spec with a new name replaces the old one; an empty spec ({}) clears it (no E)
        is_new_spec = k in net_spec_fields() and ("name" in v or not v) if isinstance(v, dict) else False
        if isinstance(v, dict) and isinstance(dst.get(k), dict) and not is_new_spec:
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def from_dict(data: dict) -> Config:
    cfg = Config()
    _merge_into(cfg, data)
    validate(cfg)
    return cfg


def load_config(preset: str | None = None, overrides: list[str] | tuple = ()) -> Config:
    cfg = Config()
    if preset:
        _merge_into(cfg, load_yaml(resolve_preset(preset)))
    for text in overrides:
        path, value = parse_override(text)
        _merge_into(cfg, _nest(path, value))
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks that a single field's type cannot express."""
    d, t = cfg.data, cfg.train
    for key, val, least, what in (
        ("data.input_nc", d.input_nc, 1, "channels"),
        ("data.output_nc", d.output_nc, 1, "channels"),
        ("data.load_size", d.load_size, 1, "pixels"),
        ("data.crop_size", d.crop_size, 1, "pixels"),
        ("data.max_images", d.max_images, 0, "images; 0 = all"),
        ("data.num_workers", d.num_workers, -1, "DataLoader workers; -1 = auto"),
        ("data.synthetic_size", d.synthetic_size, 1, "images"),
        ("data.synthetic_resolution", d.synthetic_resolution, 8, "pixels"),
        ("train.batch_size", t.batch_size, 1, "images per step"),
        ("train.epochs", t.epochs, 0, "epochs at the constant rate"),
        ("train.epochs_decay", t.epochs_decay, 0, "epochs of linear decay"),
        ("train.fix_global_epochs", t.fix_global_epochs, 0, "epochs"),
        ("train.max_steps", t.max_steps, 0, "steps; 0 = the whole schedule"),
        ("train.log_every", t.log_every, 1, "steps between stats lines"),
        ("train.sample_every", t.sample_every, 1, "steps between sample grids"),
        ("train.report_every", t.report_every, 1, "steps between report refreshes"),
        ("train.checkpoint_every", t.checkpoint_every, 1, "steps between checkpoints"),
        ("train.keep_checkpoints", t.keep_checkpoints, 1, "checkpoints kept"),
        ("eval.every", cfg.eval.every, 0, "steps between evaluations; 0 = off"),
        ("eval.max_images", cfg.eval.max_images, 0, "images; 0 = the whole split"),
    ):
        if val < least:
            raise PixtransError(f"config key '{key}' must be >= {least} ({what}), got {val}")
    if t.epochs + t.epochs_decay < 1:
        raise PixtransError(
            "config keys 'train.epochs' + 'train.epochs_decay' give a schedule of zero epochs; "
            "set train.epochs (constant rate) and/or train.epochs_decay to at least 1"
        )
    for key, val in (("train.beta1", t.beta1), ("train.beta2", t.beta2)):
        if not 0.0 <= val < 1.0:
            raise PixtransError(f"config key '{key}' must lie in [0, 1) (an Adam moment decay), got {val}")
    if not t.checkpoint_minutes > 0:
        raise PixtransError(
            f"config key 'train.checkpoint_minutes' must be > 0 (minutes between timed checkpoints), "
            f"got {t.checkpoint_minutes}"
        )
    if d.preprocess in ("resize_and_crop", "scale_width_and_crop") and d.crop_size > d.load_size:
        raise PixtransError(
            f"config key 'data.crop_size' ({d.crop_size}) is larger than 'data.load_size' ({d.load_size}); "
            "set data.load_size >= data.crop_size"
        )
    if not t.lr > 0 or t.lr == float("inf"):  # also refuses nan
        raise PixtransError(f"config key 'train.lr' must be a finite number > 0, got {t.lr}")
    loss = cfg.loss
    for key in ("lambda_l1", "lambda_gp", "lambda_cycle", "lambda_idt", "lambda_feat", "lambda_vgg"):
        val = getattr(loss, key)
        if not 0 <= val < float("inf"):
            raise PixtransError(f"config key 'loss.{key}' must be a finite weight >= 0, got {val}")
    if not 0 < loss.d_loss_scale < float("inf"):
        raise PixtransError(f"config key 'loss.d_loss_scale' must be > 0, got {loss.d_loss_scale}")
    if loss.pool_size < 0:
        raise PixtransError(
            f"config key 'loss.pool_size' must be >= 0 (0 = no history), got {loss.pool_size}"
        )
    if not d.cache_max_gb >= 0:
        raise PixtransError(f"config key 'data.cache_max_gb' must be >= 0, got {d.cache_max_gb}")
    for key, meta in net_spec_fields().items():
        spec = getattr(cfg.model, key)
        if meta["optional"] and not spec:
            continue  # e.g. no encoder
        if "name" not in spec:
            raise PixtransError(f"config key 'model.{key}' needs a 'name' (e.g. model.{key}.name=unet)")


def save_config_text(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(save_config_text(cfg))


def _field_help(cls) -> dict[str, str]:
    """Field name -> the comment written next to it (or on the lines just above) in this file:
    the schema's help text lives where the field is declared, once."""
    import inspect

    helps, pending = {}, []
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            pending.append(text.lstrip("# ").strip())
            continue
        m = re.match(r"^(\w+)\s*:", text)
        if m and not text.startswith(("def ", "return")):
            trailing = text.split("  # ", 1)[1].strip() if "  # " in text else ""
            helps[m.group(1)] = trailing or " ".join(pending)
        if not text.startswith(("@", '"""')) and text:
            pending = []
    return helps


def describe_keys() -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, help) for every setting: what `pixtrans config --keys` lists."""
    rows, helps = [], {}
    default = Config().to_dict()
    for key, f in _walk(Config):
        owner = _owner_class(key)
        if owner not in helps:
            helps[owner] = _field_help(owner)
        value: Any = default
        for part in key.split("."):
            value = value[part]
        tp = typing.get_type_hints(owner)[f.name]
        type_name = "net spec" if "net" in f.metadata else _type_name(tp).replace("'", "")
        help_text = helps[owner].get(f.name, "")
        if f.metadata.get("resume") == "free":
            help_text += " [may change on resume]"
        rows.append((key, type_name, value, help_text.strip()))
    return rows


def _owner_class(key: str):
    cls = Config
    for part in key.split(".")[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return cls
