"""The named pieces `fit` runs after every training step: loss logging, sample grids, held-out
evaluation with best-model keeping, stop agreement across processes, checkpoints and reports.

Each piece is called once per step with `done` (the last step of the run) and decides from the
step number whether it has work; pieces marked *collective* must run on every process, the others
only on rank 0 (the one that writes the run folder).
"""

from __future__ import annotations

import json
import math
import signal
import time
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import CheckpointWriter
from pixtrans.artifacts.runs import RunFolder
from pixtrans.data.build import batches_of_one_size, build_dataset
from pixtrans.fsutil import atomic_write_bytes
from pixtrans.methods import export_generators
from pixtrans.training.dist import all_reduce_mean
from pixtrans.training.report import save_sample_grid, write_report
from pixtrans.training.validation import TrainingEvaluator


def export_nets(trainer, out_dir, *, source: dict | None = None):
    """The trainer's exported nets, as they are now, as an export in `out_dir`."""
    nets = {name: trainer.method.nets[name].state_dict() for name in trainer.exported}
    cfg = trainer.cfg
    provenance = {"kind": "pixtrans-train", "command": trainer.command, **(source or {})}
    return export_generators(out_dir, cfg.to_dict(), nets, cfg.method, source=provenance, step=trainer.step)


class StatsWriter:
    """stats.jsonl: one JSON line per logging step; a resume first drops lines past its step."""

    def __init__(self, path, resume_step: int):
        self.path = path
        if path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by kill -9
            atomic_write_bytes(path, "".join(s + "\n" for s in kept).encode())

    def write(self, record: dict[str, Any]) -> None:
        # __init__ rewrote the file with whole lines only, so appending never glues two lines
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class LossLog:
    """Averages the losses over `train.log_every` steps into stats.jsonl and the progress bar.
    Collective: the averages are taken over every process."""

    def __init__(self, trainer, stats: StatsWriter | None, progress: bool, name: str, logger=None):
        self.trainer, self.stats, self.logger = trainer, stats, logger
        self.images_per_step = trainer.cfg.train.batch_size * trainer.dist.world_size
        self.window: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.t_start = self.t_window = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=trainer.end_step,
                initial=trainer.step,
                unit="step",
                dynamic_ncols=True,
                desc=name,
                smoothing=0.1,
            )

    def __call__(self, logs: dict[str, torch.Tensor], done: bool) -> None:
        trainer = self.trainer
        for k, v in logs.items():
            self.window[k] = self.window.get(k, 0.0) + v
        self.steps += 1
        step = trainer.step
        if step % trainer.cfg.train.log_every == 0 or done:
            # the only host syncs of a step: once per log line
            values = {k: (v / self.steps).item() for k, v in self.window.items()}
            if trainer.dist.enabled:
                values = all_reduce_mean(values, trainer.device)
            now = time.perf_counter()
            ips = self.steps * self.images_per_step / max(now - self.t_window, 1e-9)
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                warnings.warn(
                    f"step {step}: non-finite loss {bad}; lower train.lr or use train.amp=off", stacklevel=1
                )
            lr = trainer.optimizers[trainer.method.phases[0]].param_groups[0]["lr"]
            if self.stats is not None:
                self.stats.write(
                    {
                        "step": step,
                        "epoch": step / trainer.steps_per_epoch,
                        "images": step * self.images_per_step,
                        "time": now - self.t_start,
                        "lr": lr,
                        "images_per_s": ips,
                        **values,
                    }
                )
            if self.logger is not None:
                self.logger.scalars(step, {"lr": lr, "images_per_s": ips, **values})
            if self.bar is not None:
                postfix = {"img/s": f"{ips:.1f}", **{k: f"{v:.3f}" for k, v in values.items()}}
                self.bar.set_postfix(postfix, refresh=False)
            self.window, self.steps, self.t_window = {}, 0, now
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SampleGrids:
    """input | output | target grids of a fixed batch every `train.sample_every` steps: the first
    images of the held-out split that the generators take (else of the training split)."""

    def __init__(self, trainer, run: RunFolder, n: int = 4):
        self.trainer, self.run = trainer, run
        self.logger = None  # set once the run folder may be written
        self.batch = self._pick(n)

    def _pick(self, n: int) -> dict[str, Any]:
        trainer, cfg = self.trainer, self.trainer.cfg
        sources = [trainer.dataset]
        if cfg.data.val_split:
            try:
                sources.insert(0, build_dataset(cfg, cfg.data.val_split, run_dir=trainer.run_dir))
            except PixtransError:
                pass  # no held-out split: show training images
        m = trainer.size_multiple
        for dataset in sources:
            chosen: list[dict[str, Any]] = []
            for i in range(min(len(dataset), 64)):
                item = dataset[i]
                h, w = next(v for v in item.values() if isinstance(v, torch.Tensor)).shape[-2:]
                if h % m == 0 and w % m == 0:
                    chosen.append(item)
            if chosen:
                return trainer.to_device(next(batches_of_one_size(chosen, n)))
        raise PixtransError(
            f"no image of the training set fits the generator (sides must be multiples of {m})"
        )

    def __call__(self, done: bool) -> None:
        step = self.trainer.step
        if step % self.trainer.cfg.train.sample_every == 0 or done:
            path = save_sample_grid(self.trainer.method.visuals(self.batch), self.run.sample(step))
            if self.logger is not None:
                self.logger.image(step, "samples", np.asarray(Image.open(path).convert("RGB")))


class Validation:
    """`eval.every`: held-out metrics as val/<metric> lines in stats.jsonl, and the best model so
    far (by `eval.best`) kept as an export in RUN/best/."""

    def __init__(self, trainer, run: RunFolder, stats: StatsWriter | None = None):
        self.trainer, self.run, self.stats = trainer, run, stats
        self.logger = None  # set once the run folder may be written
        self.evaluator = TrainingEvaluator(trainer, run.root)

    def __call__(self, done: bool) -> None:
        trainer, cfg = self.trainer, self.trainer.cfg.eval
        step = trainer.step
        if step % cfg.every and not done:
            return
        scores = self.evaluator()
        values = {f"val/{k}": v for k, v in scores.items()}
        if self.stats is not None:
            self.stats.write({"step": step, **values})
        if self.logger is not None:
            self.logger.scalars(step, values)
        value = scores.get(cfg.best, math.nan)
        if self.evaluator.improved(value, trainer.best):
            trainer.best = {"metric": cfg.best, "value": value, "step": step}
            export_nets(trainer, self.run.best, source={"kind": "best", **trainer.best})


class StopAgreement:
    """Ctrl-C / SIGTERM ask the run to checkpoint and stop (a second Ctrl-C stops at once), and
    `train.checkpoint_minutes` asks for a timed checkpoint. Collective: every process must stop
    at the same step, since they exchange gradients, so the wishes are reduced over processes."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.signum: int | None = None
        self._old: dict = {}
        self.last_checkpoint = time.monotonic()

    def __enter__(self) -> StopAgreement:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __call__(self) -> tuple[bool, bool]:
        """(stop now, checkpoint now because of the clock), the same on every process."""
        trainer = self.trainer
        stop = self.signum is not None
        timed = time.monotonic() - self.last_checkpoint > trainer.cfg.train.checkpoint_minutes * 60
        if trainer.dist.enabled:
            flags = torch.tensor([float(stop), float(timed)], device=trainer.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            stop, timed = bool(flags[0].item()), bool(flags[1].item())
        return stop, timed


class Checkpoints:
    """A full training state every `train.checkpoint_every` steps and whenever forced (the end, a
    stop, the clock). Collective: each process's method state (e.g. its image pools) is gathered
    to rank 0, which writes."""

    def __init__(self, trainer, writer: CheckpointWriter | None):
        self.trainer, self.writer = trainer, writer

    def __call__(self, force: bool) -> bool:
        trainer = self.trainer
        if trainer.step % trainer.cfg.train.checkpoint_every and not force:
            return False
        ranks_state = None
        if trainer.dist.enabled:
            ranks_state = [None] * trainer.dist.world_size
            torch.distributed.all_gather_object(ranks_state, trainer.method.extra_state())
        if self.writer is not None:
            state = trainer.state_dict()
            if ranks_state is not None:
                state["method_state_ranks"] = ranks_state
            self.writer.save(trainer.step, state)
        return True


class Reports:
    """RUN/index.html and its loss plot every `train.report_every` steps, at a stop and at the end."""

    def __init__(self, trainer, run: RunFolder):
        self.trainer, self.run = trainer, run

    def __call__(self, done: bool, stopping: bool) -> None:
        if self.trainer.step % self.trainer.cfg.train.report_every == 0 or done or stopping:
            write_report(self.run.root, running=not done)
