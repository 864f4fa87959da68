"""The one training loop: every method (pix2pix, CycleGAN, pix2pixHD) runs through `Trainer`.

Per step:  ctx = method.prepare(batch);  for phase in method.phases: losses -> backward -> step.
Everything that makes a run resumable is a function of the step (learning rate, data order,
augmentation seeds, dropout noise) or lives in the checkpoint (nets, optimizers, AMP scaler,
method state such as image pools), so a run stopped at step N and restarted continues exactly
as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import (
    CheckpointWriter,
    Found,
    NoLoadableCheckpoint,
    find_latest,
    set_aside,
)
from pixtrans.config import Config, from_dict, save_config
from pixtrans.data.build import batches_of_one_size, build_dataset, check_sizes
from pixtrans.data.sampler import StepBatchSampler, _mix
from pixtrans.fsutil import atomic_write_bytes
from pixtrans.methods import Method
from pixtrans.registry import METHODS
from pixtrans.runtime import resolve_device
from pixtrans.training import dist as D

# settings that may change between sessions of one run without changing what it computes
RESUMABLE_CHANGES = {
    "run_dir",  # a run folder may be moved or copied; it is wherever it is now
    "train.max_steps",
    "train.log_every",
    "train.sample_every",
    "train.report_every",
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.keep_checkpoints",
    "train.export_at_end",
    "train.progress",
    "train.device",
    "train.resume",
    "data.num_workers",
    "data.cache",
    "data.cache_max_gb",
    "data.root",
    "eval.every",
    "eval.metrics",
    "eval.split",
    "eval.max_images",
    "eval.best",
}


# the schedule's length may change on resume (lengthen or shorten a run still at its constant
# rate) as long as every step already taken had the same learning rate under the new schedule
SCHEDULE_KEYS = ("train.epochs", "train.epochs_decay")


def lr_factor(step: int, steps_per_epoch: int, epochs: int, epochs_decay: int) -> float:
    """pix2pix/CycleGAN schedule: constant for `epochs`, then linear decay over `epochs_decay`.

    Same arithmetic as the official per-epoch LambdaLR: during (0-based) epoch e the factor is
    1 - max(0, e + 1 - epochs) / (epochs_decay + 1).
    """
    epoch = step // steps_per_epoch
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("G", "D", "E"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Trainer:
    def __init__(self, cfg: Config, run_dir: str | Path | None = None, dataset=None):
        self.cfg = cfg
        self.run_dir = Path(run_dir or cfg.run_dir)
        t = cfg.train
        self.dist = D.init_distributed("cuda" if t.device != "cpu" and torch.cuda.is_available() else "cpu")
        self.device = resolve_device(
            t.device, local_rank=self.dist.local_rank, key="config key 'train.device'"
        )
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not t.deterministic

        # --- data ----------------------------------------------------------------------------
        # `dataset` lets benchmarks and tests train on in-memory tensors
        self.dataset = (
            dataset if dataset is not None else build_dataset(cfg, cfg.data.train_split, self.run_dir)
        )
        world = self.dist.world_size
        if len(self.dataset) // world < t.batch_size:
            per = f" per process x {world} processes" if world > 1 else ""
            raise PixtransError(
                f"config key 'train.batch_size' ({t.batch_size}{per}) is larger than the training set: "
                f"{len(self.dataset)} item(s) in split '{cfg.data.train_split}' of data.root="
                f"'{cfg.data.root}'; lower train.batch_size or add images"
            )
        self.sampler = StepBatchSampler(
            len(self.dataset), t.batch_size, cfg.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.total_steps = (t.epochs + t.epochs_decay) * self.steps_per_epoch
        self.end_step = min(self.total_steps, t.max_steps) if t.max_steps > 0 else self.total_steps

        # --- method, optimizers, precision ----------------------------------------------------
        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        method_cls = METHODS.get(cfg.method)
        self.method: Method = method_cls.from_config(cfg, cfg.data.input_nc, cfg.data.output_nc).to(
            self.device
        )
        self.exported = method_cls.exported_nets(cfg.to_dict())  # the nets an export holds
        self._check_sizes()
        # channels_last suits cuDNN; on the CPU it is slower here (oneDNN re-lays out the large
        # ConvTranspose weights on every call, measured in bench.py), so "auto" keeps NCHW there
        self.channels_last = t.channels_last == "on" or (
            t.channels_last == "auto" and self.device.type == "cuda"
        )
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            D.broadcast_module(self.method)
        fused = self.device.type in ("cpu", "cuda")
        self.optimizers = {
            phase: torch.optim.Adam(self.phase_params(phase), lr=t.lr, betas=(t.beta1, t.beta2), fused=fused)
            for phase in self.method.phases
        }
        amp = t.amp
        if amp == "auto":
            amp = "fp16" if self.device.type == "cuda" else "off"
        if amp == "fp16" and self.device.type != "cuda":
            raise PixtransError(
                "config key 'train.amp': fp16 needs CUDA; use train.amp=bf16 or off on the CPU"
            )
        self.amp_dtype = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.step = 0
        self.best: dict[str, Any] | None = None  # eval.best: {"metric", "value", "step"}

    def _check_sizes(self) -> None:
        check_sizes(self.cfg, self.dataset, self.size_multiple, self.cfg.train.batch_size)

    @property
    def size_multiple(self) -> int:
        """What every side of a generator input must be a multiple of (all exported nets)."""
        return math.lcm(*(getattr(self.method.nets[n], "size_multiple", 1) for n in self.exported))

    # ------------------------------------------------------------------------------------------
    def phase_params(self, phase: str) -> list[torch.nn.Parameter]:
        return [p for name in self.method.phase_nets(phase) for p in self.method.nets[name].parameters()]

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)
                if self.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step over all phases; returns detached losses (no host sync)."""
        t = self.cfg.train
        factor = lr_factor(self.step, self.steps_per_epoch, t.epochs, t.epochs_decay)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = t.lr * factor
        # dropout noise is a function of (seed, rank, step): exact resume needs no RNG state
        torch.manual_seed(_mix(self.cfg.seed, self.dist.rank, self.step, 2))
        nets = self.method.nets
        for net in nets.values():
            net.train().requires_grad_(True)
        frozen = self.method.frozen_parameters(self.step, self.steps_per_epoch)
        for p in frozen:  # before prepare: autograd records requires_grad at forward time
            p.requires_grad_(False)
        with self.autocast():
            ctx = self.method.prepare(batch)
        logs: dict[str, torch.Tensor] = {}
        for phase in self.method.phases:
            trained = set(self.method.phase_nets(phase))
            # nets outside this phase pass gradients through but compute none for themselves
            for name, net in nets.items():
                net.requires_grad_(name in trained)
            for p in frozen:
                p.requires_grad_(False)
            with self.autocast():
                losses = self.method.losses(ctx, phase)
            total = sum(losses.values())
            opt = self.optimizers[phase]
            opt.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if self.dist.enabled:
                D.average_gradients(self.phase_params(phase), self.dist.world_size)
            self.scaler.step(opt)
            logs.update({k: v.detach().float() for k, v in losses.items()})
        self.scaler.update()
        self.step += 1
        return logs

    # ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "pixtrans-train-state",
            "version": 1,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "method": self.cfg.method,
            "nets": {name: net.state_dict() for name, net in self.method.nets.items()},
            "optimizers": {phase: opt.state_dict() for phase, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "method_state": self.method.extra_state(),
            "best": self.best,
            "data": {
                "n": len(self.dataset),
                "batch_size": self.cfg.train.batch_size,
                "world_size": self.dist.world_size,
                "steps_per_epoch": self.steps_per_epoch,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.method.nets.items():
            net.load_state_dict(state["nets"][name])
        for phase, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][phase])
        self.scaler.load_state_dict(state["scaler"])
        per_rank = state.get("method_state_ranks")
        if per_rank is not None and len(per_rank) == self.dist.world_size:
            self.method.load_extra_state(per_rank[self.dist.rank])
        else:
            self.method.load_extra_state(state.get("method_state", {}))
        saved = state["data"]
        if saved["steps_per_epoch"] != self.steps_per_epoch:
            warnings.warn(
                f"the dataset/batch/world size changed since the checkpoint ({saved} -> "
                f"{len(self.dataset)} images, {self.steps_per_epoch} steps/epoch): data order differs from "
                "an uninterrupted run",
                stacklevel=2,
            )
        self.step = state["step"]
        self.best = state.get("best")


# ----------------------------------------------------------------------------------------------
# Run folder handling


def check_run_dir(cfg: Config, run_dir: Path) -> Config | None:
    """The config the run in `run_dir` was started with (None for a new run), after checking
    that `cfg` may continue it; schedule changes are checked against the step by `check_schedule`."""
    saved_path = run_dir / "config.yaml"
    saved = None
    if saved_path.is_file():
        try:
            saved = from_dict(yaml.safe_load(saved_path.read_text()))
        except PixtransError:
            raise
        except Exception as e:
            raise PixtransError(
                f"{saved_path} is unreadable ({e}); move the run folder away or fix the file"
            ) from None
        old, new = _flatten(saved.to_dict()), _flatten(cfg.to_dict())
        changed = [
            k
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES and k not in SCHEDULE_KEYS
        ]
        if changed:
            k = changed[0]
            raise PixtransError(
                f"run folder {run_dir} was started with {k}={old.get(k)!r}, now {new.get(k)!r}; "
                "resume with the same settings or choose another run_dir=..."
            )
    return saved


def check_schedule(saved: Config, cfg: Config, step: int, steps_per_epoch: int, run_dir: Path) -> None:
    """A new train.epochs / train.epochs_decay must give every step already taken its old rate."""
    a, b = saved.train, cfg.train
    if (a.epochs, a.epochs_decay) == (b.epochs, b.epochs_decay) or step == 0:
        return
    for epoch in range((step - 1) // steps_per_epoch + 1):
        s = epoch * steps_per_epoch
        if lr_factor(s, steps_per_epoch, a.epochs, a.epochs_decay) != lr_factor(
            s, steps_per_epoch, b.epochs, b.epochs_decay
        ):
            raise PixtransError(
                f"run folder {run_dir} is at step {step} (epoch {step / steps_per_epoch:.2f}) of a "
                f"train.epochs={a.epochs} + train.epochs_decay={a.epochs_decay} schedule; "
                f"{b.epochs} + {b.epochs_decay} would have given epoch {epoch} another learning rate. "
                "A schedule may only change where the run has not been yet: keep the old one or "
                "choose another run_dir=..."
            )


def find_resume_point(ckpt_dir: Path, resume: str, say: bool = True) -> tuple[Found | None, list[Path]]:
    """(the checkpoint to resume from or None, damaged checkpoint files to set aside).

    A damaged newest checkpoint falls back to the previous one (and says so). When checkpoint
    files exist and none loads, the run stops with an error that changes nothing, unless
    train.resume=restart asks to start again from step 0 (the damaged files are kept aside).
    """
    hint = (
        ". To train this run again from step 0 add train.resume=restart (the damaged files are "
        "kept as step_*.pt.damaged), or choose a new run_dir=..."
    )
    try:
        found = find_latest(ckpt_dir, hint=hint)
    except NoLoadableCheckpoint as e:
        if resume != "restart":
            raise
        return None, [err.path for err in e.errors]
    if found is None:
        return None, []
    if resume == "restart":
        raise PixtransError(
            f"config key 'train.resume' is 'restart', but {found.path} loads (step {found.step}); "
            "restart only applies when no checkpoint loads: resume it (train.resume=auto) or choose "
            "another run_dir=..."
        )
    for err in found.damaged if say else ():
        print(
            f"warning: {err}; resuming from the older {found.path.name} (step {found.step})",
            file=sys.stderr,
            flush=True,
        )
    return found, [err.path for err in found.damaged]


def write_run_dir(cfg: Config, run_dir: Path) -> None:
    """Create the run folder and (atomically) record the config it now runs with."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    tmp = run_dir / ".config.yaml.tmp"
    save_config(cfg, tmp)
    os.replace(tmp, run_dir / "config.yaml")


class StatsWriter:
    """stats.jsonl: one JSON line per logging step; a resume first drops lines past its step."""

    def __init__(self, path: Path, resume_step: int):
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


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to checkpoint and stop; a second Ctrl-C stops at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _loader(trainer: Trainer, start_step: int):
    cfg = trainer.cfg
    workers = cfg.data.num_workers
    if workers < 0:
        workers = 0 if trainer.device.type == "cpu" else min(4, max(1, (os.cpu_count() or 2) - 1))
    sampler = StepBatchSampler(
        len(trainer.dataset),
        cfg.train.batch_size,
        cfg.seed,
        start_step=start_step,
        rank=trainer.dist.rank,
        world_size=trainer.dist.world_size,
    )
    return torch.utils.data.DataLoader(
        trainer.dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=trainer.device.type == "cuda",
        persistent_workers=False,
        collate_fn=getattr(trainer.dataset, "collate", None),
    )


def _sample_batch(trainer: Trainer, n: int = 4) -> dict[str, Any]:
    """Fixed images for the sample grids: the held-out split when there is one (its first `n`
    images of the first image's size that the generators take), else the training split."""
    cfg = trainer.cfg
    sources = [trainer.dataset]
    if cfg.data.val_split:
        try:
            sources.insert(0, build_dataset(cfg, cfg.data.val_split, run_dir=trainer.run_dir))
        except PixtransError:
            pass
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
    raise PixtransError(f"no image of the training set fits the generator (sides must be multiples of {m})")


def fit(cfg: Config, run_dir: str | Path | None = None) -> Trainer:
    """Train (or resume) the run in `run_dir`; returns the trainer at the end."""
    from pixtrans.methods import export_generators
    from pixtrans.training.report import save_sample_grid, write_report

    run_dir = Path(run_dir or cfg.run_dir)
    t = cfg.train
    trainer = Trainer(cfg, run_dir)
    is_main = trainer.dist.is_main
    saved = check_run_dir(cfg, run_dir)
    ckpt_dir = run_dir / "checkpoints"
    found, damaged = find_resume_point(ckpt_dir, t.resume, say=is_main)
    if found is not None:
        trainer.load_state_dict(found.state)
        if saved is not None:
            check_schedule(saved, cfg, trainer.step, trainer.steps_per_epoch, run_dir)
        if is_main:
            print(f"resuming {run_dir} from {found.path.name} (step {trainer.step})", flush=True)
    # built before anything is written, so a held-out split the generator cannot take stops here
    samples = evaluator = None
    if is_main and trainer.step < trainer.end_step:
        samples = _sample_batch(trainer)
        if cfg.eval.every > 0:
            from pixtrans.training.evaluation import TrainingEvaluator

            evaluator = TrainingEvaluator(trainer, run_dir)
    D.barrier()  # every rank has checked the folder before rank 0 changes anything in it
    if is_main:
        # every check passed: only now are damaged checkpoints renamed and the config rewritten
        for path, new in zip(damaged, set_aside(damaged), strict=True):
            print(
                f"warning: checkpoint {path.name} is damaged; kept as {new.name}", file=sys.stderr, flush=True
            )
        write_run_dir(cfg, run_dir)
    D.barrier()
    writer = CheckpointWriter(ckpt_dir, t.keep_checkpoints, known_good=[found.path] if found else [])
    stats = StatsWriter(run_dir / "stats.jsonl", trainer.step) if is_main else None
    if trainer.step >= trainer.end_step:
        if is_main:
            why = "train.max_steps" if trainer.end_step < trainer.total_steps else "the end of its schedule"
            print(f"{run_dir} already reached step {trainer.step} ({why}); nothing to do")
        return trainer

    images_per_step = t.batch_size * trainer.dist.world_size
    progress = None
    if is_main and t.progress:
        from tqdm import tqdm

        progress = tqdm(
            total=trainer.end_step,
            initial=trainer.step,
            unit="step",
            dynamic_ncols=True,
            desc=run_dir.name,
            smoothing=0.1,
        )

    def checkpoint():
        # collective: per-process method state (e.g. each rank's image pools) goes to rank 0
        ranks_state = None
        if trainer.dist.enabled:
            ranks_state = [None] * trainer.dist.world_size
            torch.distributed.all_gather_object(ranks_state, trainer.method.extra_state())
        if is_main:
            state = trainer.state_dict()
            if ranks_state is not None:
                state["method_state_ranks"] = ranks_state
            writer.save(trainer.step, state)

    def report(running: bool):
        if is_main:
            write_report(run_dir, running=running)

    def sample():
        if is_main:
            save_sample_grid(
                trainer.method.visuals(samples), run_dir / "samples" / f"step_{trainer.step:09d}.png"
            )

    window: dict[str, torch.Tensor] = {}
    window_steps = 0
    t_start = t_window = time.perf_counter()
    last_ckpt = time.monotonic()
    session_start_step = trainer.step
    stop = _StopFlag()
    with stop:
        for batch in _loader(trainer, trainer.step):
            logs = trainer.train_step(trainer.to_device(batch))
            for k, v in logs.items():
                window[k] = window.get(k, 0.0) + v
            window_steps += 1
            step = trainer.step
            done = step >= trainer.end_step
            if step % t.log_every == 0 or done:
                values = {k: (v / window_steps).item() for k, v in window.items()}
                if trainer.dist.enabled:
                    values = D.all_reduce_mean(values, trainer.device)
                now = time.perf_counter()
                ips = window_steps * images_per_step / max(now - t_window, 1e-9)
                record = {
                    "step": step,
                    "epoch": step / trainer.steps_per_epoch,
                    "images": step * images_per_step,
                    "time": now - t_start,
                    "lr": trainer.optimizers[trainer.method.phases[0]].param_groups[0]["lr"],
                    "images_per_s": ips,
                    **values,
                }
                if any(not math.isfinite(v) for v in values.values()):
                    bad = [k for k, v in values.items() if not math.isfinite(v)]
                    warnings.warn(
                        f"step {step}: non-finite loss {bad}; lower train.lr or use train.amp=off",
                        stacklevel=1,
                    )
                if stats is not None:
                    stats.write(record)
                if progress is not None:
                    progress.set_postfix(
                        {"img/s": f"{ips:.1f}", **{k: f"{v:.3f}" for k, v in values.items()}}, refresh=False
                    )
                window, window_steps, t_window = {}, 0, now
            if progress is not None:
                progress.update(1)
            if step % t.sample_every == 0 or done:
                sample()
            if evaluator is not None and (step % cfg.eval.every == 0 or done):
                scores = evaluator()
                if stats is not None:
                    stats.write({"step": step, **{f"val/{k}": v for k, v in scores.items()}})
                value = scores.get(cfg.eval.best, math.nan)
                if evaluator.improved(value, trainer.best):
                    trainer.best = {"metric": cfg.eval.best, "value": value, "step": step}
                    gens = {name: trainer.method.nets[name].state_dict() for name in trainer.exported}
                    export_generators(
                        run_dir / "best",
                        cfg.to_dict(),
                        gens,
                        method=cfg.method,
                        source={"kind": "best", **trainer.best},
                        step=step,
                    )
            # every rank must agree to stop at the same step (they exchange gradients)
            want_stop = stop.signum is not None
            timed = time.monotonic() - last_ckpt > t.checkpoint_minutes * 60
            if trainer.dist.enabled:
                flags = torch.tensor([float(want_stop), float(timed)], device=trainer.device)
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                want_stop, timed = bool(flags[0].item()), bool(flags[1].item())
            if step % t.checkpoint_every == 0 or done or want_stop or timed:
                checkpoint()
                last_ckpt = time.monotonic()
            if step % t.report_every == 0 or done or want_stop:
                report(running=not done)
            if done or want_stop:
                break
    if progress is not None:
        progress.close()
    if stop.signum is not None and trainer.step < trainer.end_step:
        if is_main:
            print(
                f"stopped at step {trainer.step} ({trainer.step - session_start_step} this session); "
                f"checkpoint saved in {ckpt_dir}; run the same command to resume",
                flush=True,
            )
        D.cleanup()
        raise SystemExit(128 + stop.signum)
    if is_main and t.export_at_end:
        gens = {name: trainer.method.nets[name].state_dict() for name in trainer.exported}
        export_generators(
            run_dir / "export",
            cfg.to_dict(),
            gens,
            method=cfg.method,
            step=trainer.step,
        )
    D.cleanup()
    return trainer
