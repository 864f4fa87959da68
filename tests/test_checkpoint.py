"""Checkpoint files: safe reading, fallback past damaged files, rotation that keeps good ones."""

import os
import pickle

import pytest
import torch

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import (
    CheckpointError,
    CheckpointWriter,
    NoLoadableCheckpoint,
    checkpoint_path,
    find_latest,
    list_checkpoints,
    read_checkpoint,
)


def state(step: int) -> dict:
    return {"step": step, "config": {"method": "pix2pix"}, "nets": {"G": {"w": torch.ones(3) * step}}}


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


class Payload:
    """Unpickling this runs `touch MARKER`: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_files(folder, marker) -> list:
    """The same payload as a torch.save zip and as a plain pickle, under checkpoint names."""
    folder.mkdir(parents=True, exist_ok=True)
    zip_file, plain = checkpoint_path(folder, 7), checkpoint_path(folder, 8)
    torch.save({"step": 7, "config": {}, "nets": {"G": Payload(marker)}}, zip_file)
    plain.write_bytes(pickle.dumps({"step": 8, "config": {}, "nets": Payload(marker)}))
    return [zip_file, plain]


def test_keeps_last_k_and_ignores_partial_writes(tmp_path):
    writer = CheckpointWriter(tmp_path, keep=2)
    for step in (10, 20, 30, 40):
        writer.save(step, state(step))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000030.pt", "step_000000040.pt"]
    # a write killed mid-way leaves only a temporary file, which loading never picks
    (tmp_path / ".step_000000050.pt.tmp123").write_bytes(b"\x00" * 10)
    found = find_latest(tmp_path)
    assert found.state["step"] == 40 and found.path.name == "step_000000040.pt" and not found.damaged


def test_damaged_newest_falls_back_to_older_and_says_which(tmp_path):
    writer = CheckpointWriter(tmp_path, keep=3)
    writer.save(1, state(1))
    writer.save(2, state(2))
    truncate(tmp_path / "step_000000002.pt")
    found = find_latest(tmp_path)
    assert found.state["step"] == 1
    assert [e.path.name for e in found.damaged] == ["step_000000002.pt"]
    assert "damaged" in str(found.damaged[0]) and "code" not in str(found.damaged[0])
    assert find_latest(tmp_path / "none") is None


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_all_damaged_is_an_error_naming_the_files(tmp_path, damage):
    writer = CheckpointWriter(tmp_path, keep=3)
    spoil = {
        "truncate": truncate,
        "empty": lambda p: p.write_bytes(b""),
        "garbage": lambda p: p.write_bytes(b"x"),
    }
    for step in (1, 2):
        writer.save(step, state(step))
    for step in (1, 2):
        spoil[damage](checkpoint_path(tmp_path, step))
    with pytest.raises(NoLoadableCheckpoint) as err:
        find_latest(tmp_path, hint="; start over")
    text = str(err.value)
    assert "step_000000002.pt" in text and "step_000000001.pt" in text and "damaged" in text
    assert "\n" not in text and text.endswith("; start over")


def test_hostile_checkpoints_are_refused_and_run_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    for path in hostile_files(tmp_path / "ckpt", marker):
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        assert err.value.reason == "unsafe" and "posix.system" in str(err.value)
        with pytest.raises(CheckpointError):
            read_checkpoint(path, mmap=True)
    # the newest file is hostile: the search stops there instead of skipping to an older file
    with pytest.raises(CheckpointError, match="would run code"):
        find_latest(tmp_path / "ckpt")
    assert not marker.exists()


def test_a_foreign_file_is_not_a_training_state(tmp_path):
    path = tmp_path / "step_000000001.pt"
    torch.save({"model.0.weight": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="pixtrans convert") as err:
        read_checkpoint(path)
    assert err.value.reason == "foreign"
    with pytest.raises(PixtransError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")


def test_rotation_keeps_good_checkpoints_and_sets_damaged_ones_aside(tmp_path):
    # good 1..3 from an earlier session, damaged 4 and 5 (higher steps than the next save)
    earlier = CheckpointWriter(tmp_path, keep=5)
    for step in (1, 2, 3, 4, 5):
        earlier.save(step, state(step))
    truncate(checkpoint_path(tmp_path, 4))
    checkpoint_path(tmp_path, 5).write_bytes(b"")
    writer = CheckpointWriter(tmp_path, keep=3)  # a new session: it knows none of these files
    with pytest.warns(UserWarning, match="does not load; set aside"):
        writer.save(6, state(6))
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_000000002.pt",
        "step_000000003.pt",
        "step_000000006.pt",
    ]
    assert sorted(p.name for p in tmp_path.glob("*.damaged")) == [
        "step_000000004.pt.damaged",
        "step_000000005.pt.damaged",
    ]
    assert all(read_checkpoint(p)["step"] in (2, 3, 6) for p in list_checkpoints(tmp_path))
