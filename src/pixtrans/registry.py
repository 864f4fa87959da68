"""Small name -> callable registries that list their valid names on a bad lookup."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from pixtrans import PixtransError


def did_you_mean(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str):
        def deco(fn):
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._items:
            raise PixtransError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}; "
                f"valid: {', '.join(sorted(self._items))}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
GAN_LOSSES = Registry("gan loss")
METHODS = Registry("method")
DATASETS = Registry("dataset")
METRICS = Registry("metric")
# how inference runs a method's exports (Method.translator names one): "image", "labelmap"
TRANSLATORS = Registry("translator")
