"""The command line: one-line errors for bad input, nothing written lost, translate/export/convert."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_overrides
from PIL import Image

from pixtrans import runtime
from pixtrans.artifacts.checkpoints import list_checkpoints
from pixtrans.cli import main
from pixtrans.nets import conv

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def aligned_pair(path: Path, w=64, h=32, color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), color).save(path)


def paired_root(tmp_path, n=4, **kw) -> Path:
    root = tmp_path / "ds"
    for i in range(n):
        aligned_pair(root / "train" / f"{i}.png", **kw)
    return root


def run_main(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def small(run, root, **extra):
    over = tiny_overrides(run, root, **{"data.dataset": "paired", **extra})
    return [o for o in over if not o.startswith("data.synthetic")]


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda t: t / "missing", "missing"),
        (lambda t: (t / "empty" / "train").mkdir(parents=True) or t / "empty", "empty"),
        (lambda t: paired_root(t, w=63), "even width"),
    ],
)
def test_bad_dataset_gives_one_line_error_naming_the_path(tmp_path, capsys, setup, fragment):
    root = setup(tmp_path)
    code, err = run_main(capsys, "train", "pix2pix/demo", *small(tmp_path / "run", root))
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert str(root) in err or root.name in err
    assert fragment in err.lower()
    assert not (tmp_path / "run").exists()  # failed before writing anything


def test_corrupt_image_is_named(tmp_path, capsys):
    root = paired_root(tmp_path)
    (root / "train" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    code, err = run_main(capsys, "train", "pix2pix/demo", *small(tmp_path / "run", root))
    assert code == 2 and "2.png" in err and "\n" not in err


def test_image_smaller_than_crop_is_named(tmp_path, capsys):
    root = paired_root(tmp_path, w=24, h=12)
    code, err = run_main(
        capsys, "train", "pix2pix/demo", *small(tmp_path / "run", root, **{"data.preprocess": "crop"})
    )
    assert code == 2 and "crop" in err and ".png" in err and "\n" not in err


@pytest.mark.parametrize(
    "override, fragment",
    [("train.batch_size=abc", "train.batch_size"), ("train.bach_size=2", "did you mean 'batch_size'")],
)
def test_bad_config_value(tmp_path, capsys, override, fragment):
    code, err = run_main(capsys, "train", "pix2pix/demo", f"run_dir={tmp_path / 'r'}", override)
    assert code == 2 and fragment in err and "\n" not in err


def test_bad_input_later_never_touches_existing_checkpoints(tmp_path, capsys, synth_root):
    run = tmp_path / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 4})]) == 0
    out = capsys.readouterr().out  # a finished run says where to look and what to try next
    for line in (f"report   {run / 'index.html'}", f"pixtrans translate {run}", f"pixtrans serve {run}"):
        assert line in out, line
    before = {p.name: p.read_bytes() for p in list_checkpoints(run / "checkpoints")}
    code, err = run_main(
        capsys,
        "train",
        "pix2pix/demo",
        *tiny_overrides(run, tmp_path / "nowhere", **{"train.max_steps": 8, "data.dataset": "paired"}),
    )
    assert code == 2 and "nowhere" in err
    after = {p.name: p.read_bytes() for p in list_checkpoints(run / "checkpoints")}
    assert before == after and (run / "export" / "config.json").is_file()


def test_translate_export_convert_from_the_command_line(tmp_path, synth_root):
    run = tmp_path / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 2})]) == 0
    images = tmp_path / "in"
    images.mkdir()
    Image.new("RGB", (37, 21), (0, 90, 200)).save(images / "a.png")
    Image.new("L", (16, 16), 128).save(images / "b.png")
    assert main(["translate", str(run), str(images), str(tmp_path / "out"), "--mode", "eval"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (37, 21)
    assert Image.open(tmp_path / "out" / "b.png").size == (16, 16)
    exact = ["translate", str(run), str(images / "a.png"), str(tmp_path / "exact.png"), "--exact-convs"]
    assert main([*exact, "--mode", "eval"]) == 0 and Image.open(tmp_path / "exact.png").size == (37, 21)
    assert conv.fast_algorithms_enabled() == conv.nnpack_available()  # on again after the command
    bf16 = ["translate", str(run), str(images / "a.png"), str(tmp_path / "bf16.png"), "--mode", "eval"]
    assert main([*bf16, "--precision", "bf16"]) == 0
    fp32, half = (np.asarray(Image.open(tmp_path / f), dtype=float) for f in ("exact.png", "bf16.png"))
    assert fp32.shape == half.shape and np.abs(fp32 - half).mean() < 8  # bf16: a few levels at most
    assert runtime.default_inference_precision() == "fp32"  # back to the default after the command
    assert main(["export", str(run), str(tmp_path / "exp")]) == 0
    assert (tmp_path / "exp" / "config.json").is_file()


def test_cli_process_exit_code_and_single_line(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixtrans.cli",
            "train",
            "pix2pix/facades",
            f"data.root={tmp_path / 'nope'}",
            f"run_dir={tmp_path / 'r'}",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0], res.stderr


def test_translate_one_file_to_a_named_file(tmp_path, synth_root):
    run = tmp_path / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 2})]) == 0
    Image.new("RGB", (30, 50), (10, 200, 30)).save(tmp_path / "x.jpg")
    assert (
        main(
            [
                "translate",
                str(run / "export"),
                str(tmp_path / "x.jpg"),
                str(tmp_path / "y.png"),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "y.png").size == (30, 50)


def test_official_training_flags_translate_one_to_one(tmp_path, capsys):
    # the junyanz command line of the facades experiment, after the preset
    code = main(
        [
            "config",
            "pix2pix/facades",
            "--dataroot",
            str(tmp_path / "facades"),
            "--name",
            "facades_pix2pix",
            "--model",
            "pix2pix",
            "--netG",
            "unet_128",
            "--netD",
            "basic",
            "--direction",
            "AtoB",
            "--preprocess",
            "crop",
            "--no_flip",
            "--gan_mode",
            "wgangp",
            "--lambda_L1",
            "50",
            "--display_id",
            "0",
            "train.batch_size=2",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and "no effect in pixtrans: --display_id" in err
    import yaml

    cfg = yaml.safe_load(out)
    assert cfg["data"]["root"] == str(tmp_path / "facades") and cfg["run_dir"] == "runs/facades_pix2pix"
    assert cfg["model"]["G"]["name"] == "unet" and cfg["model"]["G"]["num_downs"] == 7
    assert cfg["model"]["D"]["name"] == "patchgan" and cfg["model"]["D"]["n_layers"] == 3
    assert (cfg["data"]["direction"], cfg["data"]["preprocess"], cfg["data"]["flip"]) == (
        "AtoB",
        "crop",
        False,
    )
    assert (cfg["loss"]["gan_mode"], cfg["loss"]["lambda_l1"], cfg["train"]["batch_size"]) == (
        "wgan-gp",
        50.0,
        2,
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "pix2pix/demo", "--netX", "unet_256"], "unknown option '--netX'"),
        (["train", "pix2pix/demo", "--lr_policy", "cosine"], "--lr_policy cosine"),
        (["train", "pix2pix/demo", "--model", "cut"], "--model cut"),
        (["translate", "a", "b", "c", "--netG", "unet_256"], "unrecognized arguments"),
    ],
)
def test_unknown_or_unsupported_official_flags_are_one_line(capsys, args, fragment):
    with pytest.raises(SystemExit) if fragment == "unrecognized arguments" else _nothing():
        code, err = run_main(capsys, *args)
        assert code == 2 and fragment in err and "\n" not in err
    if fragment == "unrecognized arguments":
        assert fragment in capsys.readouterr().err


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_version_and_config_keys(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("pixtrans ")
    assert main(["config", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "train.batch_size = 1  (int)\n    images per step per process" in out
    assert "data.root = ''  (str)" in out and "[may change on resume]" in out
