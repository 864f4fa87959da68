"""Continuing a run folder: may these settings continue it, and from which checkpoint.

A resumed run must use the settings it was started with, apart from those config.py marks as
free to change (where it stops, how often it logs, where the data lives) or as a schedule
(train.epochs, train.epochs_decay: only where the run has not been yet). Nothing here writes to
the folder before every check has passed, so a refused resume leaves it as it was.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import Found, NoLoadableCheckpoint, find_latest, set_aside
from pixtrans.artifacts.runs import RunFolder
from pixtrans.config import Config, from_dict, net_spec_fields, resume_rules, save_config
from pixtrans.training.schedules import lr_factor


def _flatten(d: dict, prefix: str = "") -> dict:
    """Dotted key -> value; a network spec (model.G ...) is one value, compared as a whole."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix == "model." and k in net_spec_fields()):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_run_dir(cfg: Config, run_dir: Path) -> Config | None:
    """The config the run in `run_dir` was started with (None for a new run), after checking
    that `cfg` may continue it; schedule changes are checked against the step by `check_schedule`."""
    saved_path = RunFolder(run_dir).config
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
        rules = resume_rules()  # settings marked free or schedule in config.py may differ
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in rules]
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
    run = RunFolder(run_dir)
    run.samples.mkdir(parents=True, exist_ok=True)
    tmp = run.root / ".config.yaml.tmp"
    save_config(cfg, tmp)
    os.replace(tmp, run.config)


def resume(trainer, run: RunFolder, say: bool = True) -> tuple[Found | None, list[Path]]:
    """Check that the trainer's config may continue the run in `run` and load the checkpoint it
    continues from (found, or None for a new run); returns it and the damaged checkpoint files
    to set aside once the run folder may change. Writes nothing."""
    cfg = trainer.cfg
    saved = check_run_dir(cfg, run.root)
    found, damaged = find_resume_point(run.checkpoints, cfg.train.resume, say=say)
    if found is not None:
        trainer.load_state_dict(found.state)
        if saved is not None:
            check_schedule(saved, cfg, trainer.step, trainer.steps_per_epoch, run.root)
        if say:
            print(f"resuming {run.root} from {found.path.name} (step {trainer.step})", flush=True)
    return found, damaged


def open_run_folder(cfg: Config, run: RunFolder, damaged: list[Path]) -> None:
    """Every check passed: set damaged checkpoints aside and record the config the run now uses."""
    for path, new in zip(damaged, set_aside(damaged), strict=True):
        print(f"warning: checkpoint {path.name} is damaged; kept as {new.name}", file=sys.stderr, flush=True)
    write_run_dir(cfg, run.root)
