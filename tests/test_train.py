"""Training end to end on tiny nets: resume equivalence, interruption, run folder, DDP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_overrides

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import find_latest, list_checkpoints
from pixtrans.config import load_config
from pixtrans.training.loop import fit, lr_factor

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def final_state(run_dir: Path) -> dict:
    state = find_latest(run_dir / "checkpoints").state
    return state


def assert_same_training_state(a: dict, b: dict):
    assert a["step"] == b["step"]
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.equal(v, b["nets"][net][k]), f"{net}.{k} differs"
    for phase in a["optimizers"]:
        sa, sb = a["optimizers"][phase]["state"], b["optimizers"][phase]["state"]
        for pid in sa:
            for k in sa[pid]:
                assert torch.equal(sa[pid][k], sb[pid][k]), f"optimizer {phase} {pid} {k} differs"


def test_lr_schedule_matches_official_lambda():
    # 2 constant epochs, 2 decay epochs, 10 steps per epoch
    f = [lr_factor(s, 10, 2, 2) for s in (0, 19, 20, 30, 39)]
    assert f == [1.0, 1.0, 1 - 1 / 3, 1 - 2 / 3, 1 - 2 / 3]


def test_interrupted_run_resumes_to_identical_weights(tmp_path, synth_root):
    full = tmp_path / "full"
    fit(load_config("pix2pix/demo", tiny_overrides(full, synth_root, **{"train.max_steps": 16})))
    part = tmp_path / "part"
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **{"train.max_steps": 8})))
    assert final_state(part)["step"] == 8
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **{"train.max_steps": 16})))
    assert_same_training_state(final_state(full), final_state(part))
    # stats from both sessions form one history without duplicates
    steps = [json.loads(line)["step"] for line in (part / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 16


def test_schedule_changed_before_it_matters_resumes_to_identical_weights(tmp_path, synth_root):
    # the first 12 steps (about one epoch) have the full rate under 3+3 and under 2+1 epochs
    full = tmp_path / "full"
    fit(
        load_config(
            "pix2pix/demo", tiny_overrides(full, synth_root, **{"train.epochs": 2, "train.epochs_decay": 1})
        )
    )
    part = tmp_path / "part"
    started = {"train.epochs": 3, "train.epochs_decay": 3, "train.max_steps": 12}
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **started)))
    fit(
        load_config(
            "pix2pix/demo", tiny_overrides(part, synth_root, **{"train.epochs": 2, "train.epochs_decay": 1})
        )
    )
    state = final_state(part)
    assert state["step"] == 3 * state["data"]["steps_per_epoch"]
    assert_same_training_state(final_state(full), final_state(part))
    assert "epochs: 2" in (part / "config.yaml").read_text()


def test_schedule_change_that_rewrites_the_past_is_refused(tmp_path, synth_root):
    run = tmp_path / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 30})))  # in decay
    saved = (run / "config.yaml").read_text()
    cfg = load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.epochs": 3}))
    with pytest.raises(PixtransError, match="epoch 2 another learning rate"):
        fit(cfg)
    assert (run / "config.yaml").read_text() == saved and final_state(run)["step"] == 30  # nothing lost


def test_run_folder_contents(tmp_path, synth_root):
    run = tmp_path / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 10})))
    for name in (
        "config.yaml",
        "stats.jsonl",
        "index.html",
        "losses.png",
        "export/config.json",
        "export/G.safetensors",
        "samples/step_000000010.png",
    ):
        assert (run / name).is_file(), name
    rec = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert {"step", "lr", "images_per_s", "G/gan", "G/l1", "D/real", "D/fake"} <= set(rec)
    assert len(list_checkpoints(run / "checkpoints")) <= 3
    html = (run / "index.html").read_text()
    assert "samples/step_000000010.png" in html and "G/l1" in html


def test_resume_refuses_a_changed_setting(tmp_path, synth_root):
    run = tmp_path / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 2})))
    cfg = load_config(
        "pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 4, "train.lr": 0.1})
    )
    with pytest.raises(PixtransError, match="train.lr"):
        fit(cfg)
    assert final_state(run)["step"] == 2  # nothing lost


@pytest.mark.parametrize("gan_mode", ["lsgan", "hinge", "wgan-gp"])
def test_other_gan_objectives_train(tmp_path, synth_root, gan_mode):
    run = tmp_path / gan_mode
    trainer = fit(
        load_config(
            "pix2pix/demo",
            tiny_overrides(
                run,
                synth_root,
                **{"train.max_steps": 2, "loss.gan_mode": gan_mode, "train.export_at_end": "false"},
            ),
        )
    )
    rec = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert trainer.step == 2 and all(map(lambda v: v == v, rec.values()))
    if gan_mode == "wgan-gp":
        assert rec["D/gp"] > 0


def cli(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "pixtrans.cli", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def wait_for_checkpoint(run: Path, proc, timeout=60):
    t0 = time.time()
    while not list_checkpoints(run / "checkpoints"):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)])
def test_signal_checkpoints_and_the_same_command_resumes(tmp_path, synth_root, sig, code):
    run = tmp_path / "run"
    args = ["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 400})]
    proc = cli(*args)
    wait_for_checkpoint(run, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out
    assert "run the same command to resume" in out
    stopped = final_state(run)["step"]
    assert 4 <= stopped < 400
    proc = cli(*args[:-1], "train.max_steps=" + str(stopped + 3))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and f"from step_{stopped:09d}.pt" in out, out


def test_kill_9_at_random_moments_never_breaks_resume(tmp_path, synth_root):
    """kill -9 during start-up, training and checkpoint writes; the run still finishes, identical."""
    steps = 24
    ref = tmp_path / "ref"
    fit(load_config("pix2pix/demo", tiny_overrides(ref, synth_root, **{"train.max_steps": steps})))
    run = tmp_path / "run"
    args = [
        "train",
        "pix2pix/demo",
        *tiny_overrides(
            run,
            synth_root,
            **{"train.max_steps": steps, "train.checkpoint_every": 1, "train.report_every": 1},
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        proc = cli(*args)
        time.sleep(1.0 + 3.0 * torch.rand((), generator=gen).item())
        proc.kill()
        proc.wait()
    proc = cli(*args)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert_same_training_state(final_state(ref), final_state(run))


def test_torchrun_two_process_gloo_matches_one_process_double_batch(tmp_path, synth_root):
    """2 processes x batch 1 average gradients to exactly what 1 process x batch 2 computes
    (no batch norm, no dropout: the per-sample losses are independent)."""
    extra = {
        "train.max_steps": 4,
        "train.export_at_end": "false",
        "model.G": "{name: unet, num_downs: 4, ngf: 4, norm: none, dropout: false}",
        "model.D": "{name: patchgan, ndf: 4, n_layers: 2, norm: none}",
    }
    ddp = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "pixtrans.cli",
        "train",
        "pix2pix/demo",
        *tiny_overrides(ddp, synth_root, **extra, **{"train.batch_size": 1}),
    ]
    res = subprocess.run(
        cmd, env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240
    )
    assert res.returncode == 0, res.stdout + res.stderr
    single = tmp_path / "single"
    fit(load_config("pix2pix/demo", tiny_overrides(single, synth_root, **extra, **{"train.batch_size": 2})))
    a, b = final_state(ddp), final_state(single)
    assert a["step"] == b["step"] == 4
    for net in ("G", "D"):
        for k, v in a["nets"][net].items():
            torch.testing.assert_close(v, b["nets"][net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")


def test_bf16_autocast_on_cpu_trains(tmp_path, synth_root):
    run = tmp_path / "bf16"
    fit(
        load_config(
            "pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 2, "train.amp": "bf16"})
        )
    )
    rec = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert all(v == v for v in rec.values())  # finite losses, no NaN


def test_fp16_without_cuda_is_a_clear_error(tmp_path, synth_root):
    cfg = load_config("pix2pix/demo", tiny_overrides(tmp_path / "r", synth_root, **{"train.amp": "fp16"}))
    with pytest.raises(PixtransError, match="train.amp"):
        fit(cfg)


def test_crop_that_the_unet_cannot_take_is_a_clear_error(tmp_path, synth_root):
    cfg = load_config("pix2pix/demo", tiny_overrides(tmp_path / "r", synth_root, **{"data.crop_size": 12}))
    with pytest.raises(PixtransError, match="data.crop_size.*multiple of 16"):
        fit(cfg)


def test_bf16_resume_is_exact(tmp_path, synth_root):
    over = {"train.amp": "bf16"}
    full, part = tmp_path / "full", tmp_path / "part"
    fit(load_config("pix2pix/demo", tiny_overrides(full, synth_root, **over, **{"train.max_steps": 8})))
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **over, **{"train.max_steps": 4})))
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **over, **{"train.max_steps": 8})))
    assert_same_training_state(final_state(full), final_state(part))


def test_winograd_training_resumes_exactly_and_tracks_the_direct_run(tmp_path, synth_root, monkeypatch):
    from pixtrans.nets import conv

    calls = []
    real = conv.winograd_conv2d
    monkeypatch.setattr(conv, "winograd_conv2d", lambda x, *a: calls.append(1) or real(x, *a))
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 4)  # the tiny D's stride-1 4x4 layer, 8 -> 16
    monkeypatch.setattr(conv, "WINOGRAD_MIN_PIXELS", 1)
    full, part, direct = tmp_path / "full", tmp_path / "part", tmp_path / "direct"
    fit(load_config("pix2pix/demo", tiny_overrides(full, synth_root, **{"train.max_steps": 8})))
    assert calls  # D's forward and its gradients went through nets/winograd.py
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **{"train.max_steps": 4})))
    fit(load_config("pix2pix/demo", tiny_overrides(part, synth_root, **{"train.max_steps": 8})))
    assert_same_training_state(final_state(full), final_state(part))
    n = len(calls)
    over = {"train.max_steps": 8, "train.fast_conv": "off"}
    fit(load_config("pix2pix/demo", tiny_overrides(direct, synth_root, **over)))
    assert len(calls) == n  # off = the direct convolution
    # another rounding, the same training: 8 steps later the weights still agree closely
    ours, ref = final_state(full)["nets"]["D"], final_state(direct)["nets"]["D"]
    for k, v in ref.items():
        if v.is_floating_point():
            torch.testing.assert_close(ours[k], v, rtol=1e-3, atol=1e-3, msg=f"D.{k}")


@pytest.mark.parametrize(
    "native, fp32_s, bf16_s, chosen",
    [(False, 1.0, 0.1, "fp32"), (True, 1.0, 0.3, "bf16"), (True, 1.0, 0.95, "fp32")],
)
def test_amp_auto_takes_bf16_only_where_native_and_faster(
    tmp_path, synth_root, monkeypatch, capsys, native, fp32_s, bf16_s, chosen
):
    from pixtrans import runtime

    monkeypatch.setattr(runtime, "native_bf16", lambda device: (native, "a CPU of this test"))
    monkeypatch.setattr(runtime, "_conv_step_seconds", lambda device, dtype: bf16_s if dtype else fp32_s)
    run = tmp_path / "run"
    trainer = fit(
        load_config(
            "pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 2, "train.amp": "auto"})
        )
    )
    assert trainer.amp_dtype == (torch.bfloat16 if chosen == "bf16" else None)
    assert (
        f"precision: train.amp=auto: {'bf16 autocast' if chosen == 'bf16' else 'fp32'}"
        in capsys.readouterr().out
    )
    saved = load_config(str(run / "config.yaml"))
    assert saved.train.amp == "auto" and saved.train.amp_chosen == chosen


@pytest.mark.parametrize("preset", ["pix2pix/demo", "pix2pixhd"])
def test_a_training_step_never_waits_for_the_device(tmp_path, synth_root, monkeypatch, preset):
    """CUDA-graph-friendly: no .item() / .tolist() / .cpu() / bool(tensor) inside train_step (they
    would make the host wait for the GPU every step); the loop reads losses only at log steps.
    Checked on the CPU by counting calls of the Tensor methods that synchronise on CUDA."""
    from pixtrans.bench.command import bench_dataset
    from pixtrans.training.loop import Trainer

    if preset == "pix2pixhd":
        from test_pix2pixhd import tiny_hd

        cfg = load_config("pix2pixhd/cityscapes_sample", tiny_hd(tmp_path / "run", **{"model.E": "{}"}))
        cfg.data.dataset, cfg.data.label_nc = "labelmap", 8
    else:
        cfg = load_config(preset, tiny_overrides(tmp_path / "run", synth_root))
    dataset = bench_dataset(cfg, 4)
    trainer = Trainer(cfg, run_dir=tmp_path / "run", dataset=dataset)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(cfg.train.batch_size)])
    batch = trainer.to_device({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    trainer.train_step(batch)  # warm-up outside the count
    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *a, _name=name, _original=original, **k):
            calls.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    trainer.train_step(batch)
    monkeypatch.undo()
    assert calls == []


def test_compiled_training_matches_eager_and_keeps_plain_state_dicts(tmp_path, synth_root):
    """train.compile=on (torch.compile, in place): the same weights as eager to float tolerance,
    checkpoints with the eager parameter names (no `_orig_mod.`), resumable eagerly. (Train mode
    only, no samples or export: each eval-mode graph would be one more compile.)"""
    over = {"train.max_steps": 2, "train.export_at_end": "false", "train.sample_every": 100}
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    fit(load_config("pix2pix/demo", tiny_overrides(eager, synth_root, **over)))
    on = {**over, "train.compile": "on"}
    trainer = fit(load_config("pix2pix/demo", tiny_overrides(compiled, synth_root, **on)))
    assert trainer.compiled and "torch.compile: on" in " ".join(trainer.speed_choices())
    a, b = final_state(eager), final_state(compiled)
    for net in a["nets"]:
        assert a["nets"][net].keys() == b["nets"][net].keys()
        for k, v in a["nets"][net].items():
            if v.is_floating_point():
                torch.testing.assert_close(b["nets"][net][k], v, rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")
    # the compiled run continues eagerly (train.compile may change on resume)
    fit(load_config("pix2pix/demo", tiny_overrides(compiled, synth_root, **{**over, "train.max_steps": 3})))
    assert final_state(compiled)["step"] == 3
