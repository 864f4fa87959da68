"""Hostile and damaged files, and nonsense settings, never run code, lose work or dump a traceback.

Every case runs the real command line on a real run folder and checks the folder byte for byte.
"""

import os
import shutil

import pytest
from conftest import tiny_overrides
from PIL import Image
from test_checkpoint import hostile_files, truncate

from pixtrans.artifacts.checkpoints import list_checkpoints, read_checkpoint
from pixtrans.cli import main


def snapshot(folder) -> dict:
    """Every file under `folder` with its bytes: what "left unchanged" means."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_main(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root):
    """A finished 8-step run (checkpoints at 4 and 8, export, report), copied per test."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 8})]) == 0
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def train_args(run, synth_root, **extra):
    return ["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 12, **extra})]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.png"
    Image.new("RGB", (16, 16), (30, 120, 200)).save(path)
    return path


# ----------------------------------------------------------------------------------------------
# Checkpoints that would run code


@pytest.mark.parametrize("form", ["torch_zip", "plain_pickle"])
def test_hostile_checkpoint_is_refused_everywhere_and_runs_nothing(
    run, synth_root, tmp_path, capsys, image, form
):
    marker = tmp_path / "MARKER"
    zip_file, plain = hostile_files(tmp_path / "made", marker)
    hostile = run / "checkpoints" / "step_000000099.pt"  # the newest: what resume would pick
    shutil.copy(zip_file if form == "torch_zip" else plain, hostile)
    before = snapshot(run)
    commands = [
        train_args(run, synth_root),
        ["export", run],
        ["export", hostile, tmp_path / "exported"],
        ["translate", run, image, tmp_path / "out.png"],
        ["translate", hostile, image, tmp_path / "out2.png"],
        ["evaluate", run, "--metrics", "l1"],
        ["evaluate", hostile, "--metrics", "l1"],
    ]
    for args in commands:
        code, err = run_main(capsys, *args)
        assert_one_line_error(code, err, "step_000000099.pt", "would run code")
        assert "damaged" not in err
    assert not marker.exists()
    assert snapshot(run) == before
    assert not (tmp_path / "exported").exists() and not (tmp_path / "out.png").exists()


# ----------------------------------------------------------------------------------------------
# Damaged checkpoints


def test_all_checkpoints_truncated_stops_and_leaves_the_run_byte_identical(run, synth_root, capsys):
    for path in list_checkpoints(run / "checkpoints"):
        truncate(path)
    before = snapshot(run)
    code, err = run_main(capsys, *train_args(run, synth_root))
    assert_one_line_error(code, err, "step_000000004.pt", "step_000000008.pt", "damaged", "run_dir=")
    assert "train.resume=restart" in err
    assert snapshot(run) == before


def test_restart_starts_again_and_keeps_the_damaged_files(run, synth_root, capsys):
    damaged = {p.name: p.read_bytes()[:100] for p in list_checkpoints(run / "checkpoints")}
    for path in list_checkpoints(run / "checkpoints"):
        truncate(path, keep=0.1)
    assert main(train_args(run, synth_root, **{"train.resume": "restart", "train.max_steps": 4})) == 0
    kept = {p.name.removesuffix(".damaged") for p in (run / "checkpoints").glob("*.damaged")}
    assert kept == set(damaged)
    assert [read_checkpoint(p)["step"] for p in list_checkpoints(run / "checkpoints")] == [4]
    assert "kept as step_000000008.pt.damaged" in capsys.readouterr().err
    # restart is for runs with nothing to resume: with a good checkpoint it is refused
    before = snapshot(run)
    code, err = run_main(capsys, *train_args(run, synth_root, **{"train.resume": "restart"}))
    assert_one_line_error(code, err, "train.resume", "step_000000004.pt")
    assert snapshot(run) == before


def test_truncated_newest_falls_back_to_the_previous_and_matches_an_uninterrupted_run(
    run, trained, synth_root, capsys
):
    truncate(run / "checkpoints" / "step_000000008.pt")
    assert main(train_args(run, synth_root, **{"train.max_steps": 8})) == 0
    err = capsys.readouterr().err
    assert "step_000000008.pt" in err and "damaged" in err and "step_000000004.pt" in err
    assert (run / "checkpoints" / "step_000000008.pt.damaged").is_file()
    redone = read_checkpoint(run / "checkpoints" / "step_000000008.pt")
    original = read_checkpoint(trained / "checkpoints" / "step_000000008.pt")
    for net, tensors in original["nets"].items():
        for key, value in tensors.items():
            assert value.equal(redone["nets"][net][key]), f"{net}.{key}"


# ----------------------------------------------------------------------------------------------
# Settings that used to crash after writing, or were silently accepted


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"train.checkpoint_every": 0}, "train.checkpoint_every"),
        ({"train.log_every": 0}, "train.log_every"),
        ({"train.sample_every": 0}, "train.sample_every"),
        ({"train.report_every": 0}, "train.report_every"),
        ({"train.checkpoint_every": -5}, "train.checkpoint_every"),
        ({"train.max_steps": -1}, "train.max_steps"),
        ({"train.epochs": -1}, "train.epochs"),
        ({"train.epochs": 0, "train.epochs_decay": 0}, "zero epochs"),
        ({"data.num_workers": -2}, "data.num_workers"),
        ({"train.beta1": 1.0}, "train.beta1"),
        ({"train.beta1": -0.1}, "train.beta1"),
        ({"train.beta2": 1.5}, "train.beta2"),
        ({"train.lr": "nan"}, "train.lr"),
        ({"loss.lambda_l1": -1}, "loss.lambda_l1"),
        ({"train.batch_size": 1000}, "larger than the training set"),
        ({"data.preprocess": "none"}, "multiples of 16"),
        ({"data.preprocess": "scale_width"}, "multiples of 16"),
    ],
)
def test_bad_setting_is_one_line_and_the_run_folder_stays_unchanged(
    run, synth_root, capsys, override, fragment
):
    before = snapshot(run)
    code, err = run_main(capsys, *train_args(run, synth_root, **override))
    assert_one_line_error(code, err, fragment)
    assert snapshot(run) == before


def test_bad_setting_on_a_new_run_writes_nothing(tmp_path, synth_root, capsys):
    code, err = run_main(capsys, *train_args(tmp_path / "new", synth_root, **{"train.batch_size": 1000}))
    assert_one_line_error(code, err, "train.batch_size", "22 item(s)")
    assert not (tmp_path / "new").exists()


def test_images_of_several_sizes_cannot_share_a_batch(tmp_path, capsys):
    root = tmp_path / "ds" / "train"
    root.mkdir(parents=True)
    for i, w in enumerate((32, 32, 64, 64)):
        Image.new("RGB", (2 * w, 32), (i * 40, 90, 10)).save(root / f"{i}.png")
    over = tiny_overrides(
        tmp_path / "r", tmp_path / "ds", **{"data.dataset": "paired", "data.preprocess": "none"}
    )
    over = [o for o in over if not o.startswith("data.synthetic")]
    code, err = run_main(capsys, "train", "pix2pix/demo", *over)
    assert_one_line_error(code, err, "cannot share a batch", "train.batch_size=1")
    assert not (tmp_path / "r").exists()
    # one image at a time, sizes that fit the generator: it trains
    assert main(["train", "pix2pix/demo", *over, "train.batch_size=1", "train.max_steps=2"]) == 0


def test_translate_to_a_name_with_an_unknown_extension_is_refused(run, image, tmp_path, capsys):
    out = tmp_path / "out" / "x.xyz"
    code, err = run_main(capsys, "translate", run, image, out, "--mode", "eval")
    assert_one_line_error(code, err, "x.xyz", ".xyz")
    assert not out.exists() and not out.parent.exists()
    # a known extension writes that file; no extension means a folder
    assert main(["translate", str(run), str(image), str(tmp_path / "y.tif"), "--mode", "eval"]) == 0
    assert Image.open(tmp_path / "y.tif").size == (16, 16)
    assert main(["translate", str(run), str(image), str(tmp_path / "folder"), "--mode", "eval"]) == 0
    assert (tmp_path / "folder" / "in.png").is_file()
    assert os.listdir(tmp_path / "folder") == ["in.png"]
