"""`pixtrans bench CONFIG --against official`: the official implementation's training iteration
and generator inference, built from its own Python sources with the settings of CONFIG, fed the
same batch as ours, and timed interleaved with our step in the same process.

The official sources are imported by path from a folder holding the two repositories as
`../shared/reference` does (`junyanz-pytorch-CycleGAN-and-pix2pix/`, `NVIDIA-pix2pixHD/`, the
latter with its CPU patches); nothing of them is copied into pixtrans. Their top-level packages
are called `models`, `options`, `data`, `util`, so each is imported in isolation and removed from
`sys.modules` afterwards.

One baseline per method, registered under the method's name in `OFFICIAL_BASELINES`:
  pix2pix    junyanz `pix2pix` model: `set_input` + `optimize_parameters()` (their train.py's step)
  cyclegan   junyanz `cycle_gan` model: the same
  pix2pixhd  NVIDIA `Pix2PixHDModel`: forward with losses, G step, D step (their train.py's step)
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.registry import Registry

OFFICIAL_BASELINES = Registry("official baseline")
JUNYANZ = "junyanz-pytorch-CycleGAN-and-pix2pix"
NVIDIA = "NVIDIA-pix2pixHD"
_THEIR_PACKAGES = ("models", "options", "data", "util")


@dataclass
class Baseline:
    """The official implementation, ready to time: `step()` one training iteration on the fixed
    batch, `infer()` one generator forward in eval mode on the fixed input."""

    name: str  # e.g. "junyanz pix2pix (netG unet_256, netD basic)"
    step: Callable[[], Any]
    infer: Callable[[], Any]
    settings: dict[str, Any]


def default_root() -> Path | None:
    """../shared/reference beside the checkout, where this project keeps the official sources."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "reference"
        if (cand / JUNYANZ).is_dir() or (cand / NVIDIA).is_dir():
            return cand
    return None


@contextlib.contextmanager
def reference_code(repo: Path) -> Iterator[None]:
    """Their packages importable for the duration (their train.py runs from the repo root)."""
    if not repo.is_dir():
        raise PixtransError(
            f"official sources not found at '{repo}'; pass --against-root DIR holding "
            f"{JUNYANZ}/ and {NVIDIA}/"
        )
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _THEIR_PACKAGES}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        sys.path.remove(str(repo))
        for k in [k for k in sys.modules if k.split(".")[0] in _THEIR_PACKAGES]:
            del sys.modules[k]
        sys.modules.update(saved)


def _parse_options(module: str, argv: list[str]):
    """Their option parser on `argv`, its printout swallowed (it also writes a file into the
    temporary checkpoints folder we give it)."""
    options = importlib.import_module(module)
    old_argv = sys.argv
    sys.argv = ["train.py", *argv]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return options.TrainOptions().parse()
    except SystemExit:
        raise PixtransError(f"the official option parser refused {' '.join(argv)}") from None
    finally:
        sys.argv = old_argv


def _unet_or_resnet(spec: dict) -> str:
    if spec["name"] == "unet" and spec.get("num_downs") in (7, 8):
        return {7: "unet_128", 8: "unet_256"}[spec["num_downs"]]
    if spec["name"] == "resnet" and spec.get("n_blocks") in (6, 9):
        return {6: "resnet_6blocks", 9: "resnet_9blocks"}[spec["n_blocks"]]
    raise PixtransError(f"model.G {spec} has no official junyanz equivalent (unet_128/256, resnet_6/9blocks)")


def _patchgan(spec: dict) -> list[str]:
    if spec["name"] == "pixel":
        return ["--netD", "pixel"]
    if spec["name"] == "patchgan":
        return ["--netD", "n_layers", "--n_layers_D", str(spec.get("n_layers", 3))]
    raise PixtransError(f"model.D {spec} has no official junyanz equivalent (basic, n_layers, pixel)")


def _junyanz_argv(cfg, model: str, tmp: str) -> list[str]:
    g, d = cfg.model.G, cfg.model.D
    argv = ["--dataroot", tmp, "--name", "bench", "--checkpoints_dir", tmp, "--model", model]
    argv += ["--netG", _unet_or_resnet(g), *_patchgan(d), "--ngf", str(g.get("ngf", 64))]
    argv += ["--ndf", str(d.get("ndf", 64)), "--norm", str(g.get("norm", "batch"))]
    argv += ["--input_nc", str(cfg.data.input_nc), "--output_nc", str(cfg.data.output_nc)]
    argv += ["--batch_size", str(cfg.train.batch_size), "--num_threads", "0"]  # device: set after parsing
    argv += ["--crop_size", str(cfg.data.crop_size), "--load_size", str(cfg.data.load_size)]
    argv += ["--lr", str(cfg.train.lr), "--beta1", str(cfg.train.beta1), "--direction", "AtoB"]
    gan = {"wgan-gp": "wgangp"}.get(cfg.loss.gan_mode, cfg.loss.gan_mode)
    argv += ["--gan_mode", gan, "--init_type", cfg.model.init, "--init_gain", str(cfg.model.init_gain)]
    if not g.get("dropout", False):
        argv.append("--no_dropout")
    return argv


def _junyanz(cfg, batch: dict[str, torch.Tensor], root: Path, model: str, extra: list[str]) -> Baseline:
    repo = root / JUNYANZ
    with reference_code(repo):
        tmp = tempfile.mkdtemp(prefix="pixtrans-official-")
        opt = _parse_options("options.train_options", _junyanz_argv(cfg, model, tmp) + extra)
        # their nets go to cuda:0 whenever CUDA is visible; our batch is on the trainer's device
        opt.device = batch["real_a"].device
        models = importlib.import_module("models")
        with contextlib.redirect_stdout(io.StringIO()):
            net_model = models.create_model(opt)
            net_model.setup(opt)
    data = {"A": batch["real_a"], "B": batch["real_b"], "A_paths": [""], "B_paths": [""]}

    def step():
        net_model.set_input(data)
        net_model.optimize_parameters()

    generator = getattr(net_model, "netG", None) or net_model.netG_A
    x = batch["real_a"][:1]

    def infer():
        generator.eval()
        with torch.no_grad():
            generator(x)
        generator.train()

    name = f"junyanz {model} (netG {opt.netG}, netD {opt.netD}, norm {opt.norm})"
    return Baseline(
        name, step, infer, {"repo": str(repo), "model": model, "netG": opt.netG, "netD": opt.netD}
    )


@OFFICIAL_BASELINES.register("pix2pix")
def junyanz_pix2pix(cfg, batch, root: Path) -> Baseline:
    return _junyanz(cfg, batch, root, "pix2pix", ["--lambda_L1", str(cfg.loss.lambda_l1), "--pool_size", "0"])


@OFFICIAL_BASELINES.register("cyclegan")
def junyanz_cyclegan(cfg, batch, root: Path) -> Baseline:
    loss = cfg.loss
    extra = ["--pool_size", str(loss.pool_size), "--lambda_identity", str(loss.lambda_idt)]
    extra += ["--lambda_A", str(loss.lambda_cycle), "--lambda_B", str(loss.lambda_cycle)]
    return _junyanz(cfg, batch, root, "cycle_gan", extra)


@OFFICIAL_BASELINES.register("pix2pixhd")
def nvidia_pix2pixhd(cfg, batch, root: Path) -> Baseline:
    repo = root / NVIDIA
    if batch["real_b"].device.type != "cpu":
        raise PixtransError(
            "the NVIDIA pix2pixHD sources in ../shared/reference are patched to run on the CPU only; "
            "compare pix2pixHD on the CPU (train.device=cpu) or point --against-root at unpatched sources"
        )
    g, d, data, loss = cfg.model.G, cfg.model.D, cfg.data, cfg.loss
    if g["name"] != "global" or cfg.model.E:
        raise PixtransError(
            "--against official times pix2pixHD's global generator without the feature encoder "
            "(model.G.name=global, model.E={})"
        )
    h, w = batch["real_b"].shape[-2:]
    argv = ["--name", "bench", "--netG", "global", "--ngf", str(g["ngf"]), "--gpu_ids", "-1"]
    argv += ["--n_downsample_global", str(g["n_downsampling"]), "--n_blocks_global", str(g["n_blocks"])]
    argv += ["--num_D", str(d.get("num_D", 2)), "--n_layers_D", str(d.get("n_layers", 3))]
    argv += ["--ndf", str(d.get("ndf", 64)), "--label_nc", str(data.label_nc), "--batchSize"]
    argv += [str(cfg.train.batch_size), "--loadSize", str(w), "--fineSize", str(w), "--nThreads", "0"]
    argv += ["--norm", str(g.get("norm", "instance")), "--lr", str(cfg.train.lr)]
    if not data.instance:
        argv.append("--no_instance")
    if loss.lambda_vgg == 0:
        argv.append("--no_vgg_loss")
    if loss.lambda_feat == 0:
        argv.append("--no_ganFeat_loss")
    if data.dontcare_label:
        argv.append("--contain_dontcare_label")
    with reference_code(repo):
        tmp = tempfile.mkdtemp(prefix="pixtrans-official-")
        opt = _parse_options("options.train_options", [*argv, "--checkpoints_dir", tmp])
        models = importlib.import_module("models.models")
        with contextlib.redirect_stdout(io.StringIO()):
            model = models.create_model(opt)
    names = model.loss_names
    label = batch["label"].float() if "label" in batch else batch["real_a"]
    inst = batch["inst"].float() if "inst" in batch else torch.zeros(1)
    image, feat = batch["real_b"], torch.zeros(1)

    def step():  # what their train.py does per iteration
        losses, _ = model(label, inst, image, feat, infer=False)
        losses = [torch.mean(x) if not isinstance(x, int) else x for x in losses]
        parts = dict(zip(names, losses, strict=True))
        loss_d = (parts["D_fake"] + parts["D_real"]) * 0.5
        loss_g = parts["G_GAN"] + parts.get("G_GAN_Feat", 0) + parts.get("G_VGG", 0)
        model.optimizer_G.zero_grad()
        loss_g.backward()
        model.optimizer_G.step()
        model.optimizer_D.zero_grad()
        loss_d.backward()
        model.optimizer_D.step()

    with torch.no_grad():
        g_in = model.encode_input(label[:1], inst[:1])[0]

    def infer():
        model.netG.eval()
        with torch.no_grad():
            model.netG(g_in)
        model.netG.train()

    name = f"NVIDIA pix2pixHD (global G ngf {g['ngf']}, {d.get('num_D', 2)} D, {h}x{w})"
    return Baseline(name, step, infer, {"repo": str(repo), "argv": argv})


def official_baseline(cfg, batch: dict[str, torch.Tensor], root: str | Path | None) -> Baseline:
    root = Path(root) if root else default_root()
    if root is None:
        raise PixtransError(
            "--against official needs the official sources: pass --against-root DIR holding "
            f"{JUNYANZ}/ and {NVIDIA}/ (this project keeps them in ../shared/reference)"
        )
    if cfg.method not in OFFICIAL_BASELINES:
        raise PixtransError(
            f"no official baseline for method '{cfg.method}' (have: {', '.join(OFFICIAL_BASELINES.names())})"
        )
    return OFFICIAL_BASELINES.get(cfg.method)(cfg, {k: v.detach().clone() for k, v in batch.items()}, root)
