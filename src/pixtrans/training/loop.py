"""The one training loop: every method (pix2pix, CycleGAN, pix2pixHD) runs through `Trainer`.

Per step:  ctx = method.prepare(batch);  for phase in method.phases: losses -> backward -> step.
Everything that makes a run resumable is a function of the step (learning rate, data order,
augmentation seeds, dropout noise) or lives in the checkpoint (nets, optimizers, AMP scaler,
method state such as image pools), so a run stopped at step N and restarted continues exactly
as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import (
    CheckpointWriter,
)
from pixtrans.artifacts.runs import RunFolder
from pixtrans.config import Config
from pixtrans.data.build import build_dataset, check_sizes
from pixtrans.data.sampler import StepBatchSampler, _mix
from pixtrans.methods import Method
from pixtrans.nets import complete_specs
from pixtrans.nets.conv import (
    WINOGRAD_MIN_CHANNELS,
    WINOGRAD_MIN_PIXELS,
    fast_training_convs,
    nnpack_available,
    winograd_pays,
)
from pixtrans.registry import METHODS
from pixtrans.runtime import choose_amp, resolve_device
from pixtrans.training.dist import average_gradients, barrier, broadcast_module, cleanup, init_distributed
from pixtrans.training.loggers import check_logger, make_logger
from pixtrans.training.pieces import (
    Checkpoints,
    LossLog,
    Reports,
    SampleGrids,
    StatsWriter,
    StopAgreement,
    Validation,
    export_nets,
)
from pixtrans.training.resume import open_run_folder, resume
from pixtrans.training.schedules import lr_factor


class Trainer:
    def __init__(self, cfg: Config, run_dir: str | Path | None = None, dataset=None):
        complete_specs(cfg)  # the saved config states every net's whole architecture
        self.cfg = cfg
        self.run_dir = Path(run_dir or cfg.run_dir)
        t = cfg.train
        self.dist = init_distributed("cuda" if t.device != "cpu" and torch.cuda.is_available() else "cpu")
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
        # ConvTranspose weights on every call, measured with pixtrans bench), so "auto" keeps NCHW there
        self.channels_last = t.channels_last == "on" or (
            t.channels_last == "auto" and self.device.type == "cuda"
        )
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            broadcast_module(self.method)
        # in place (Module.compile): parameter names, state dicts and exports stay as they are
        self.compiled = t.compile == "on" or (t.compile == "auto" and self.device.type == "cuda")
        if self.compiled:
            for net in self.method.nets.values():
                net.compile()
        fused = self.fused_adam = self.device.type in ("cpu", "cuda")
        self.optimizers = {
            phase: torch.optim.Adam(self.phase_params(phase), lr=t.lr, betas=(t.beta1, t.beta2), fused=fused)
            for phase in self.method.phases
        }
        amp, self.precision = t.amp, f"train.amp={t.amp}"
        if amp == "auto":
            amp, why = choose_amp(self.device)
            self.precision = f"train.amp=auto: {why}"
        t.amp_chosen = {"off": "fp32"}.get(amp, amp)  # recorded in config.yaml and printed
        if amp == "fp16" and self.device.type != "cuda":
            raise PixtransError(
                "config key 'train.amp': fp16 needs CUDA; use train.amp=bf16 or off on the CPU"
            )
        self.amp_dtype = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.step = 0
        self.command: str | None = None  # what started the run, when known (model cards)
        self.best: dict[str, Any] | None = None  # eval.best: {"metric", "value", "step"}

    def _check_sizes(self) -> None:
        check_sizes(self.cfg, self.dataset, self.size_multiple, self.cfg.train.batch_size)

    def speed_choices(self) -> list[str]:
        """What this trainer runs with for speed, and why (printed by `pixtrans bench`)."""
        cl = self.cfg.train.channels_last
        return [
            f"precision: {self.precision}",
            f"channels_last: {'on' if self.channels_last else 'off'} (train.channels_last={cl}; "
            "auto = on for CUDA, off on the CPU, where oneDNN measured slower with it)",
            f"optimizer: Adam, fused={self.fused_adam}",
            f"torch.compile: {'on' if self.compiled else 'off'} (train.compile={self.cfg.train.compile}; "
            "auto = on for CUDA, off on the CPU, where it measured no faster)",
            "convolutions on maps of <= 256 px: "
            + ("im2col + GEMM (nets/conv.py)" if self.device.type == "cpu" else "cuDNN"),
            f"stride-1 convolutions on maps of >= 2048 px: {self._fast_conv_choice()}",
            f"stride-1 3x3/4x4 convolutions of >= {WINOGRAD_MIN_CHANNELS} channels on >= "
            f"{WINOGRAD_MIN_PIXELS} px: {self._winograd_choice()}",
        ]

    def _winograd_choice(self) -> str:
        fc = self.cfg.train.fast_conv
        if self.device.type != "cpu" or fc == "off":
            return "direct"
        if self.amp_dtype is not None:
            return f"direct (train.fast_conv={fc}, but our Winograd runs fp32 only and this step is bf16)"
        return (
            "Winograd F(4x4, 3x3) / F(3x3, 4x4), forward and both gradients "
            f"(nets/winograd.py; train.fast_conv={fc}, off = direct)"
        )

    def _fast_conv_choice(self) -> str:
        fc = self.cfg.train.fast_conv
        if self.device.type != "cpu" or fc == "off" or not nnpack_available():
            return "direct"
        if self.amp_dtype is not None:
            return f"direct (train.fast_conv={fc}, but NNPACK runs fp32 only and this step is bf16)"
        algos = (
            "Winograd/FFT"
            if winograd_pays()
            else "FFT for kernels > 3x3 (3x3 direct: this AVX-512 CPU runs it faster)"
        )
        return (
            f"NNPACK {algos}, forward and input gradient (nets/conv.py; train.fast_conv={fc}, off = direct)"
        )

    @property
    def size_multiple(self) -> int:
        """What every side of a generator input must be a multiple of (all exported nets)."""
        return math.lcm(*(getattr(self.method.nets[n], "size_multiple", 1) for n in self.exported))

    # ------------------------------------------------------------------------------------------
    def phase_params(self, phase: str) -> list[torch.nn.Parameter]:
        return [p for name in self.method.phase_nets(phase) for p in self.method.nets[name].parameters()]

    def autocast(self):
        """The forward passes' context: precision, and which convolution algorithms may run."""
        stack = contextlib.ExitStack()
        stack.enter_context(fast_training_convs(self.cfg.train.fast_conv != "off"))
        if self.amp_dtype is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.amp_dtype))
        return stack

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
                average_gradients(self.phase_params(phase), self.dist.world_size)
            self.scaler.step(opt)
            logs.update({k: v.detach().float() for k, v in losses.items()})
        self.scaler.update()
        self.step += 1
        return logs

    def batches(self) -> torch.utils.data.DataLoader:
        """This process's batches from the current step on (the order is a function of the step)."""
        trainer, cfg = self, self.cfg
        workers = cfg.data.num_workers
        if workers < 0:
            workers = 0 if trainer.device.type == "cpu" else min(4, max(1, (os.cpu_count() or 2) - 1))
        sampler = StepBatchSampler(
            len(trainer.dataset),
            cfg.train.batch_size,
            cfg.seed,
            start_step=self.step,
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


def fit(cfg: Config, run_dir: str | Path | None = None, *, command: str | None = None) -> Trainer:
    """Train (or resume) the run in `run_dir`; returns the trainer at the end.

    1. check everything: data, settings against the folder's config, the checkpoint to resume;
    2. only then write the run folder; 3. steps, each followed by the pieces (training/pieces.py);
    4. on a signal, checkpoint and exit 128 + signal; at the end, export.
    """
    run = RunFolder(run_dir or cfg.run_dir)
    trainer = Trainer(cfg, run.root)
    trainer.command = command  # the command line, for the exports' model cards
    main = trainer.dist.is_main
    t = cfg.train
    found, damaged = resume(trainer, run, say=main)
    if main:
        print(f"precision: {trainer.precision}", flush=True)
    running = trainer.step < trainer.end_step
    # pieces that can still refuse the run (a held-out split the generator cannot take) come
    # before anything is written
    grids = SampleGrids(trainer, run) if main and running else None
    validation = Validation(trainer, run) if main and running and cfg.eval.every > 0 else None
    if main:
        check_logger(t.logger)  # a missing TensorBoard / W&B package stops the run here
    barrier()  # every rank has checked the folder before rank 0 changes anything in it
    if main:
        open_run_folder(cfg, run, damaged)
    barrier()
    stats = StatsWriter(run.stats, trainer.step) if main else None
    if not running:
        if main:
            why = "train.max_steps" if trainer.end_step < trainer.total_steps else "the end of its schedule"
            print(f"{run.root} already reached step {trainer.step} ({why}); nothing to do")
        return trainer

    logger = make_logger(t.logger, run, trainer.step, cfg.to_dict()) if main else None
    for piece in (grids, validation):
        if piece is not None:
            piece.logger = logger
    if validation is not None:
        validation.stats = stats
    log = LossLog(trainer, stats, progress=main and t.progress, name=run.root.name, logger=logger)
    writer = CheckpointWriter(run.checkpoints, t.keep_checkpoints, known_good=[found.path] if found else [])
    checkpoints = Checkpoints(trainer, writer if main else None)
    reports = Reports(trainer, run) if main else None
    session_start = trainer.step
    with StopAgreement(trainer) as stop:
        for batch in trainer.batches():
            logs = trainer.train_step(trainer.to_device(batch))
            done = trainer.step >= trainer.end_step
            log(logs, done)
            if grids is not None:
                grids(done)
            if validation is not None:
                validation(done)
            halt, timed = stop()
            if checkpoints(force=done or halt or timed):
                stop.last_checkpoint = time.monotonic()
            if reports is not None:
                reports(done, stopping=halt)
            if done or halt:
                break
    log.close()
    if logger is not None:
        logger.close()
    if stop.signum is not None and trainer.step < trainer.end_step:
        if main:
            print(
                f"stopped at step {trainer.step} ({trainer.step - session_start} this session); "
                f"checkpoint saved in {run.checkpoints}; run the same command to resume",
                flush=True,
            )
        cleanup()
        raise SystemExit(128 + stop.signum)
    if main and t.export_at_end:
        export_nets(trainer, run.export)
    cleanup()
    return trainer
