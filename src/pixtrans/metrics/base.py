"""What a registered metric is: a name, a kind, a direction, a one-line description, a function.

Two kinds:
  paired        needs each fake image next to the real image of the same name; `compute(real,
                fake, options)` scores one pair (HxWxC float arrays in [0,1]) and the score is
                the mean over pairs.
  distribution  compares the two sets as wholes; `compute(real, fake)` takes two `FeatureSet`s
                (Inception features and their statistics) and returns {"value": ..., extras}.

`check(options)` raises a one-line PixtransError when the metric cannot run here (weights
missing) and says how to make it runnable; `options` holds the evaluation settings (e.g.
"inception": an explicit weights path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pixtrans import PixtransError
from pixtrans.registry import METRICS

Kind = Literal["paired", "distribution"]


def _always(options: Mapping[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    higher_is_better: bool
    description: str
    compute: Callable[..., Any]
    check: Callable[[Mapping[str, Any]], None] = field(default=_always)
    needs: str = ""  # what `check` looks for, for listings: "" | "inception" | "lpips"

    def __call__(self, *args, **kwargs):
        return self.compute(*args, **kwargs)

    def unavailable(self, options: Mapping[str, Any] | None = None) -> str | None:
        """None when the metric can run with `options`, else the reason (one line)."""
        try:
            self.check(options or {})
        except PixtransError as e:
            return str(e)
        return None


def register(metric: Metric) -> Metric:
    return METRICS.register(metric.name)(metric)


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def all_metrics() -> list[Metric]:
    return [METRICS.get(n) for n in METRICS.names()]
