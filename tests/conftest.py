import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("PIXTRANS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def tiny_overrides(run_dir, data_root, **extra) -> list[str]:
    """A pix2pix small enough to train for a few steps in a second on a CPU."""
    base = {
        "run_dir": str(run_dir),
        "data.dataset": "synthetic",
        "data.root": str(data_root),
        "data.synthetic_size": 24,
        "data.synthetic_resolution": 20,
        "data.load_size": 20,
        "data.crop_size": 16,
        "model.G": "{name: unet, num_downs: 4, ngf: 4, norm: batch, dropout: true}",
        "model.D": "{name: patchgan, ndf: 4, n_layers: 2, norm: batch}",
        "train.batch_size": 2,
        "train.epochs": 2,
        "train.epochs_decay": 2,
        "train.log_every": 2,
        "train.sample_every": 5,
        "train.report_every": 5,
        "train.checkpoint_every": 4,
        "train.progress": "false",
        # paper-exact fp32 on every CPU (auto takes bf16 where it is native): tests that compare
        # numbers across runs or processes need one precision; the precision tests set their own
        "train.amp": "off",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic")
