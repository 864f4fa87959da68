"""Networks, and the builders that turn a config spec {"name": ..., **kwargs} into one.

Networks are plain nn.Modules with explicit keyword arguments; only the builders here read config
specs. Constructor arguments without a default (input_nc, output_nc) come from the data, not the
spec. Builders do not initialise weights: call `init_weights` (the method decides the recipe).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from torch import nn

from pixtrans import PixtransError
from pixtrans.config import net_spec_fields
from pixtrans.nets import pix2pixhd, resnet  # noqa: F401 - their classes register on import
from pixtrans.nets.init import INIT_TYPES, init_weights
from pixtrans.nets.layers import NORM_KINDS, conv_bias, get_norm_layer
from pixtrans.nets.patchgan import NLayerDiscriminator, PixelDiscriminator
from pixtrans.nets.unet import UnetGenerator
from pixtrans.registry import DISCRIMINATORS, GENERATORS, Registry, did_you_mean

__all__ = [
    "INIT_TYPES",
    "NORM_KINDS",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "complete_specs",
    "conv_bias",
    "get_norm_layer",
    "init_weights",
    "spec_defaults",
]


def _spec_params(cls) -> dict[str, inspect.Parameter]:
    """Constructor arguments a spec may set: the ones with a default."""
    params = inspect.signature(cls).parameters.values()
    return {p.name: p for p in params if p.default is not inspect.Parameter.empty}


def spec_defaults(registry: Registry, name: str) -> dict[str, Any]:
    """The full spec of `name` with every default filled in, e.g. for saving a complete config:
    spec_defaults(GENERATORS, "unet") -> {"name": "unet", "num_downs": 8, "ngf": 64, ...}."""
    return {"name": name, **{k: p.default for k, p in _spec_params(registry.get(name)).items()}}


REGISTRIES = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}


def complete_specs(cfg) -> None:
    """Check the config's network specs (model.G, model.D, model.E) against their registries and
    write every constructor default into them, so a saved config states the whole architecture.
    A builder step: run once on a freshly resolved config, before the run folder is compared or
    written (saved configs are complete already)."""
    for key, meta in net_spec_fields().items():
        spec = getattr(cfg.model, key)
        if meta["optional"] and not spec:
            continue
        try:
            full = spec_defaults(REGISTRIES[meta["net"]], spec["name"])
        except PixtransError as e:
            raise PixtransError(f"config key 'model.{key}.name': {e}") from None
        setattr(cfg.model, key, {**full, **spec})


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    args = typing.get_args(hint)
    if args and type(None) in args:  # Optional[X] / X | None
        return value is None or any(_type_ok(value, a) for a in args if a is not type(None))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # bool is an int subclass, but `ngf: true` is a typo, not a width
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation we do not check


def _build(registry: Registry, spec: Mapping[str, Any], prefix: str, data_args: dict[str, Any]) -> nn.Module:
    if not isinstance(spec, Mapping):
        raise PixtransError(f"{prefix} must be a mapping with a 'name' key, got {type(spec).__name__}")
    if "name" not in spec:
        raise PixtransError(f"{prefix}.name is missing; valid: {', '.join(registry.names())}")
    name = spec["name"]
    try:
        cls = registry.get(name)
    except PixtransError as e:
        raise PixtransError(f"{prefix}.name: {e}") from None

    params = _spec_params(cls)
    hints = typing.get_type_hints(cls.__init__)
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    for key, value in kwargs.items():
        if key in data_args:
            raise PixtransError(
                f"{prefix}.{key} is set from the data for {registry.kind} '{name}'; remove it"
            )
        if key not in params:
            valid = ["name", *params]
            raise PixtransError(
                f"unknown key '{prefix}.{key}' for {registry.kind} '{name}'{did_you_mean(key, valid)}; "
                f"valid: {', '.join(valid)}"
            )
        hint = hints.get(key, Any)
        if not _type_ok(value, hint):
            want = getattr(hint, "__name__", str(hint))
            raise PixtransError(
                f"{prefix}.{key} must be {want} for {registry.kind} '{name}', "
                f"got {type(value).__name__} {value!r}"
            )
    try:
        return cls(**data_args, **kwargs)
    except PixtransError as e:
        raise PixtransError(f"{prefix} ({registry.kind} '{name}'): {e}") from None


def build_generator(
    spec: Mapping[str, Any], input_nc: int, output_nc: int, *, prefix: str = "model.G"
) -> nn.Module:
    """Build a registered generator from {"name": ..., **kwargs}; `prefix` names the config key
    in error messages (e.g. "model.G")."""
    return _build(GENERATORS, spec, prefix, {"input_nc": input_nc, "output_nc": output_nc})


def build_discriminator(spec: Mapping[str, Any], input_nc: int, *, prefix: str = "model.D") -> nn.Module:
    """Build a registered discriminator from {"name": ..., **kwargs}."""
    return _build(DISCRIMINATORS, spec, prefix, {"input_nc": input_nc})
