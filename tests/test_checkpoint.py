import torch

from pixtrans.training.checkpoint import list_checkpoints, load_latest, save_checkpoint


def test_keeps_last_k_and_ignores_partial_writes(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(3) * step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000030.pt", "step_000000040.pt"]
    # a write killed mid-way leaves only a temporary file, which loading never picks
    (tmp_path / ".step_000000050.pt.tmp123").write_bytes(b"\x00" * 10)
    path, state = load_latest(tmp_path)
    assert state["step"] == 40 and path.name == "step_000000040.pt"


def test_damaged_newest_falls_back_to_older(tmp_path):
    save_checkpoint(tmp_path, 1, {"step": 1}, keep=3)
    save_checkpoint(tmp_path, 2, {"step": 2}, keep=3)
    (tmp_path / "step_000000002.pt").write_bytes(b"garbage")
    import pytest

    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        _, state = load_latest(tmp_path)
    assert state["step"] == 1
    assert load_latest(tmp_path / "none") is None
