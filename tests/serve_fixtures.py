"""Tiny trained models of each method and a real uvicorn server on a free loopback port, shared
by test_serve.py and test_serve_browser.py."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from conftest import tiny_overrides
from PIL import Image
from test_cyclegan import make_unpaired, tiny_cyclegan
from test_pix2pixhd import tiny_hd

from pixtrans.config import load_config
from pixtrans.training.loop import fit

H, W = 32, 64  # pix2pixHD maps: Cityscapes' 1:2


def make_city(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    """A Cityscapes-like pix2pixHD folder: road / building / sky and two or three cars a map
    (instance ids 26000+k), photos coloured per class with noise; 32x64."""
    rng = np.random.default_rng(0)
    colours = {7: (128, 64, 128), 11: (70, 70, 70), 23: (70, 130, 180), 26: (0, 0, 142)}
    for split, n in (("train", n_train), ("test", n_test)):
        for sub in ("label", "inst", "img"):
            (root / f"{split}_{sub}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = np.full((H, W), 23, np.uint8)
            label[8:20] = 11
            label[20:] = 7
            inst = label.astype(np.uint16)
            for k in range(2 + i % 2):
                x0 = 4 + 20 * k + int(rng.integers(0, 4))
                label[18:28, x0 : x0 + 12] = 26
                inst[18:28, x0 : x0 + 12] = 26000 + k
            photo = np.zeros((H, W, 3), np.float32)
            for c, rgb in colours.items():
                photo[label == c] = rgb
            for k in range(3):  # each car its own shade, so the encoder has styles to find
                photo[inst == 26000 + k] *= 0.6 + 0.4 * k
            photo = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
            stem = f"city_{split}_{i:03d}"
            Image.fromarray(label).save(root / f"{split}_label/{stem}_gtFine_labelIds.png")
            Image.fromarray(inst).save(root / f"{split}_inst/{stem}_gtFine_instanceIds.png")
            Image.fromarray(photo).save(root / f"{split}_img/{stem}_leftImg8bit.png")
    return root


_BUILT: dict[str, dict[str, Path]] = {}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """method -> export folder of a model trained for a few steps (seconds on a CPU). Built once
    per session: both test modules import this fixture, which pytest would otherwise run twice."""
    if "models" not in _BUILT:
        _BUILT["models"] = _train_tiny_models(tmp_path_factory.mktemp("serve_models"))
    return _BUILT["models"]


def _train_tiny_models(base: Path) -> dict[str, Path]:
    pix = base / "demo"
    fit(load_config("pix2pix/demo", tiny_overrides(pix, base / "synth", **{"train.max_steps": 4})))
    cyc = base / "cyclegan"
    unpaired = make_unpaired(base / "unpaired")
    fit(load_config("cyclegan/summer2winter", tiny_cyclegan(cyc, unpaired, **{"train.max_steps": 2})))
    hd = base / "city"
    city = make_city(base / "city_data")
    over = tiny_hd(hd, **{"data.root": str(city), "train.max_steps": 4})
    fit(load_config("pix2pixhd/cityscapes_sample", over))
    from pixtrans.inference.features import run_features

    run_features(hd, n_clusters=3, min_area=0.0, progress=False)
    return {"pix2pix": pix / "export", "cyclegan": cyc / "export", "pix2pixhd": hd / "export"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a thread of this process (so a test can reach the app's models), real sockets."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start within 30 s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
