"""The layout of a run folder: every file a run writes, named once.

RUN/config.yaml      the resolved config the run trains with
RUN/stats.jsonl      one JSON line per logged step (losses, lr, images/s; val/<metric>)
RUN/samples/         sample grids, step_000001200.png
RUN/index.html       the report page, with RUN/losses.png
RUN/checkpoints/     training states, step_000001200.pt (artifacts/checkpoints.py)
RUN/export/          the final export (artifacts/exports.py); RUN/best/ the best by eval.best
RUN/eval/SPLIT/      `pixtrans evaluate` outputs; RUN/eval_during/ those of eval.every
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def stats(self) -> Path:
        return self.root / "stats.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def sample(self, step: int) -> Path:
        return self.samples / f"step_{step:09d}.png"

    @property
    def report(self) -> Path:
        return self.root / "index.html"

    @property
    def losses_plot(self) -> Path:
        return self.root / "losses.png"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def eval_during(self) -> Path:
        return self.root / "eval_during"

    def eval(self, split: str) -> Path:
        return self.root / "eval" / split

    @classmethod
    def of(cls, path: str | os.PathLike) -> RunFolder:
        """The run folder a run, export or checkpoint path belongs to (the path itself when it
        is none of those, e.g. a converted export)."""
        path = Path(path)
        if path.is_file():
            return cls(path.parent.parent if path.parent.name == "checkpoints" else path.parent)
        if path.name in ("export", "best") and (path.parent / "checkpoints").is_dir():
            return cls(path.parent)
        return cls(path)
