"""train.logger: TensorBoard events read back with TensorBoard's own reader, across a resume;
a logger whose package is missing stops the run before anything is written."""

import importlib.util

import pytest
from conftest import tiny_overrides

from pixtrans.cli import main


def test_tensorboard_gets_losses_lr_and_samples_across_a_resume(tmp_path, synth_root):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    over = tiny_overrides(run, synth_root, **{"train.logger": "tensorboard", "train.sample_every": 4})
    assert main(["train", "pix2pix/demo", *over, "train.max_steps=4"]) == 0
    assert main(["train", "pix2pix/demo", *over, "train.max_steps=8"]) == 0
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"G/gan", "G/l1", "D/real", "D/fake", "lr", "images_per_s"} <= set(tags["scalars"])
    steps = [e.step for e in events.Scalars("G/l1")]
    assert steps == [2, 4, 6, 8]  # log_every=2, no step twice after the resume
    samples = events.Images("samples")
    assert [e.step for e in samples] == [4, 8] and samples[0].width > 0


def test_a_missing_logger_package_is_one_line_and_writes_nothing(tmp_path, synth_root, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    run = tmp_path / "run"
    code = main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.logger": "wandb"})])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "pip install 'pixtrans[wandb]'" in err and "train.logger" in err
    assert not (run / "config.yaml").exists()
