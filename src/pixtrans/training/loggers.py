"""`train.logger`: the run's scalars (losses, learning rate, images/s, val/<metric>) and sample
grids, also in TensorBoard or Weights & Biases, next to stats.jsonl and the report page.

  tensorboard  event files in RUN/tensorboard (torch.utils.tensorboard; needs the `tensorboard`
               package). A resumed run purges events past its step, so the curves have no
               duplicates, as stats.jsonl.
  wandb        a W&B run whose id is kept in RUN/wandb_id, so a resumed run continues it; files in
               RUN/wandb. WANDB_MODE=offline works with no network (`wandb sync` uploads later).
Both are optional: asking for one that is not installed stops the run, before anything is
written, with the pip command that installs it.
"""

from __future__ import annotations

import importlib.util
import uuid
from typing import Any

import numpy as np

from pixtrans import PixtransError
from pixtrans.artifacts.runs import RunFolder

PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_logger(kind: str) -> None:
    """Fail now (nothing written yet) when `kind` needs a package that is not installed."""
    if kind == "none":
        return
    module, extra = PACKAGES[kind]
    if importlib.util.find_spec(module) is None:
        raise PixtransError(
            f"config key 'train.logger' is '{kind}', but the {module} package is not installed: "
            f"pip install 'pixtrans[{extra}]' (or pip install {module}), or set train.logger=none"
        )


class TensorBoardLogger:
    def __init__(self, run: RunFolder, step: int, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        # events a stopped session logged after its checkpoint (steps > `step`) are dropped, as the
        # lines of stats.jsonl are
        self.writer = SummaryWriter(
            log_dir=str(run.root / "tensorboard"), purge_step=step + 1 if step else None
        )
        if step == 0:
            self.writer.add_text("config", "```\n" + _yaml(config) + "\n```", 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def image(self, step: int, tag: str, rgb: np.ndarray) -> None:
        self.writer.add_image(tag, rgb, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, run: RunFolder, step: int, config: dict[str, Any]):
        import wandb

        id_file = run.root / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        self.wandb = wandb
        self.run = wandb.init(
            project="pixtrans",
            name=run.root.name,
            id=run_id,
            resume="allow",
            dir=str(run.root),
            config=config,
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def image(self, step: int, tag: str, rgb: np.ndarray) -> None:
        self.run.log({tag: self.wandb.Image(rgb)}, step=step)

    def close(self) -> None:
        self.run.finish()


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def make_logger(kind: str, run: RunFolder, step: int, config: dict[str, Any]):
    """The logger `train.logger` names (None for "none"); `step` is where this session starts."""
    check_logger(kind)
    if kind == "tensorboard":
        return TensorBoardLogger(run, step, config)
    if kind == "wandb":
        return WandbLogger(run, step, config)
    return None
