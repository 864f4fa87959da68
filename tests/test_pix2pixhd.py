"""pix2pixHD end to end on the shared Cityscapes sample at low resolution: train, resume, encode
features, cluster, translate with chosen styles; coarse-to-fine; conversion of NVIDIA checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SHARED
from test_train import assert_same_training_state, final_state

from pixtrans import PixtransError
from pixtrans.cli import main as cli
from pixtrans.config import load_config
from pixtrans.inference import Translator
from pixtrans.inference.label_translator import LabelTranslator, instance_class
from pixtrans.training.loop import Trainer, fit

SAMPLE = SHARED / "datasets/pix2pixhd_cityscapes_sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"shared sample not found at {SAMPLE}")


def tiny_hd(run_dir, **extra) -> list[str]:
    """pix2pixHD small enough for a CPU test: 32x64 maps, 4-channel nets."""
    base = {
        "run_dir": str(run_dir),
        "data.root": str(SAMPLE),
        "data.load_size": 64,
        "data.crop_size": 32,  # scale_width keeps the height >= crop_size
        "data.val_split": "",
        "model.G": "{name: global, ngf: 4, n_downsampling: 2, n_blocks: 1, norm: instance}",
        "model.D": "{name: multiscale, ndf: 4, n_layers: 2, num_D: 2, norm: instance, get_interm_feat: true}",
        "model.E": "{name: encoder, ngf: 4, n_downsampling: 2, norm: instance}",
        "loss.lambda_vgg": 0,
        "train.batch_size": 2,
        "train.epochs": 2,
        "train.epochs_decay": 2,
        "train.log_every": 2,
        "train.sample_every": 4,
        "train.report_every": 4,
        "train.checkpoint_every": 4,
        "train.progress": "false",
        "train.amp": "off",  # one precision on every CPU (auto takes bf16 where it is native)
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def hd_run(tmp_path_factory):
    if not SAMPLE.is_dir():
        pytest.skip(f"shared sample not found at {SAMPLE}")
    run = tmp_path_factory.mktemp("hd") / "run"
    fit(load_config("pix2pixhd/cityscapes_sample", tiny_hd(run, **{"train.max_steps": 8})))
    return run


@needs_sample
def test_training_logs_every_loss_and_writes_a_report(hd_run):
    rec = json.loads((hd_run / "stats.jsonl").read_text().splitlines()[-1])
    assert {"G/gan", "G/feat", "D/real", "D/fake"} <= set(rec)
    assert all(torch.isfinite(torch.tensor(rec[k])) for k in ("G/gan", "G/feat", "D/real", "D/fake"))
    for name in (
        "index.html",
        "losses.png",
        "samples/step_000000008.png",
        "export/G.safetensors",
        "export/E.safetensors",
    ):
        assert (hd_run / name).is_file(), name
    info = json.loads((hd_run / "export/config.json").read_text())
    # G reads 35 one-hot classes + 1 boundary channel + 3 encoder features
    assert info["generators"]["G"]["input_nc"] == 39 and info["generators"]["E"]["output_nc"] == 3


@needs_sample
def test_interrupted_run_resumes_to_identical_weights(hd_run, tmp_path):
    part = tmp_path / "part"
    fit(load_config("pix2pixhd/cityscapes_sample", tiny_hd(part, **{"train.max_steps": 4})))
    fit(load_config("pix2pixhd/cityscapes_sample", tiny_hd(part, **{"train.max_steps": 8})))
    assert_same_training_state(final_state(hd_run), final_state(part))


@needs_sample
def test_features_clusters_and_two_styles_for_one_car(hd_run, tmp_path):
    assert cli(["features", str(hd_run), "--clusters", "3", "--min-area", "0"]) == 0
    info = json.loads((hd_run / "export/config.json").read_text())
    assert 26 in info["clusters"]["classes"]  # cars
    translator = Translator.from_pretrained(hd_run)
    assert isinstance(translator, LabelTranslator) and len(translator.clusters[26]) >= 2

    # a test map at a quarter of its 1024x2048 resolution (nearest), to keep the test fast
    import numpy as np
    from PIL import Image

    from pixtrans.data.io import load_array

    stem = "frankfurt_000000_000576"
    label = load_array(SAMPLE / f"test_label/{stem}_gtFine_labelIds.png")[::4, ::4].squeeze().copy()
    inst = (
        load_array(SAMPLE / f"test_inst/{stem}_gtFine_instanceIds.png")[::4, ::4].squeeze().astype(np.int32)
    )
    ids = torch.from_numpy(inst)
    cars = [int(i) for i in torch.unique(ids) if i >= 1000 and instance_class(int(i)) == 26]
    assert cars, "the test map has cars"
    car = max(cars, key=lambda i: int((ids == i).sum()))  # the largest
    mask = ids == car
    a = translator(label, inst, styles={car: 0}, seed=1)
    b = translator(label, inst, styles={car: 1}, seed=1)
    again = translator(label, inst, styles={car: 0}, seed=1)
    assert a.size == (512, 256) and np.array_equal(np.asarray(a), np.asarray(again))
    diff = np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).sum(-1)
    # the car changes most; elsewhere only through instance norm's image-wide statistics
    inside, outside = diff[mask.numpy()].mean(), diff[~mask.numpy()].mean()
    assert inside > 1.0 and inside > 4 * outside
    # bf16 autocast through G (and the cluster features): the same picture to a few levels
    half = Translator.from_pretrained(hd_run, precision="bf16")(label, inst, styles={car: 0}, seed=1)
    assert half.size == a.size
    assert 0 < np.abs(np.asarray(half, dtype=np.float32) - np.asarray(a, dtype=np.float32)).mean() < 8
    with pytest.raises(PixtransError, match="not in the instance map"):
        translator(label, inst, styles={26999: 0})
    with pytest.raises(PixtransError, match="clusters"):
        translator(label, inst, styles={car: 99})

    # the command line on a folder of maps; the style applies where that instance appears
    labels, insts, out = tmp_path / "labels", tmp_path / "insts", tmp_path / "out"
    labels.mkdir(), insts.mkdir()
    for name in (stem, "frankfurt_000001_013710"):
        lab = load_array(SAMPLE / f"test_label/{name}_gtFine_labelIds.png")[::4, ::4].squeeze()
        ins = load_array(SAMPLE / f"test_inst/{name}_gtFine_instanceIds.png")[::4, ::4].squeeze()
        Image.fromarray(np.ascontiguousarray(lab)).save(labels / f"{name}_gtFine_labelIds.png")
        Image.fromarray(np.ascontiguousarray(ins.astype(np.uint16))).save(
            insts / f"{name}_gtFine_instanceIds.png"
        )
    args = ["translate", str(hd_run / "export"), str(labels), str(out), "--instances", str(insts)]
    assert cli([*args, "--styles", f"{car}:1", "--seed", "1"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "frankfurt_000000_000576.png",
        "frankfurt_000001_013710.png",
    ]
    assert np.array_equal(np.asarray(Image.open(out / f"{stem}.png")), np.asarray(b))
    assert cli([*args, "--styles", "bad"]) == 2


@needs_sample
def test_encoder_styles_from_a_real_photo(hd_run):
    translator = Translator.from_pretrained(hd_run / "export")
    label = SAMPLE / "train_label/aachen_000000_000019_gtFine_labelIds.png"
    inst = SAMPLE / "train_inst/aachen_000000_000019_gtFine_instanceIds.png"
    photo = SAMPLE / "train_img/aachen_000000_000019_leftImg8bit.png"
    out = translator(label, inst, image=photo)
    assert out.size == (2048, 1024)  # full resolution, padded to the generator's multiple and back


@needs_sample
def test_local_enhancer_starts_from_the_global_run_and_freezes_it(hd_run, tmp_path):
    overrides = tiny_hd(
        tmp_path / "local",
        **{
            "data.load_size": 128,
            "model.G": "{name: local, ngf: 2, n_downsample_global: 2, n_blocks_global: 1, "
            "n_local_enhancers: 1, n_blocks_local: 1, norm: instance}",
            "model.load_global": str(hd_run),
            "train.fix_global_epochs": 1,
        },
    )
    cfg = load_config("pix2pixhd/cityscapes_sample", overrides)
    trainer = Trainer(cfg, tmp_path / "local")
    from safetensors.torch import load_file

    global_weights = load_file(str(hd_run / "export/G.safetensors"))
    G = trainer.method.G
    for key, value in global_weights.items():
        if key in G.state_dict():
            assert torch.equal(G.state_dict()[key], value), key
    before = {k: v.clone() for k, v in G.state_dict().items()}
    batch = trainer.to_device(torch.utils.data.default_collate([
        {k: v for k, v in trainer.dataset[i].items() if isinstance(v, torch.Tensor)} for i in range(2)
    ]))  # fmt: skip
    trainer.train_step(batch)  # epoch 0: only the enhancer learns
    after = G.state_dict()
    assert all(
        torch.equal(before[k], after[k]) for k in global_weights if k in after and k.startswith("model.")
    )
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("model1_"))
    trainer.step = trainer.steps_per_epoch  # epoch 1: both
    trainer.train_step(batch)
    assert any(
        not torch.equal(before[k], G.state_dict()[k]) for k in global_weights if k.startswith("model.")
    )


@needs_sample
def test_bad_settings_fail_before_training(tmp_path):
    with pytest.raises(PixtransError, match="label_nc"):
        Trainer(load_config("pix2pixhd/cityscapes_sample", tiny_hd(tmp_path / "a", **{"data.label_nc": 20})))
    with pytest.raises(PixtransError, match="instance"):
        Trainer(
            load_config("pix2pixhd/cityscapes_sample", tiny_hd(tmp_path / "b", **{"data.instance": "false"}))
        )
    with pytest.raises(PixtransError, match="vgg19-dcbb9e9d.pth"):
        cfg = load_config(
            "pix2pixhd/cityscapes_sample",
            tiny_hd(
                tmp_path / "c", **{"loss.lambda_vgg": 10, "loss.vgg_weights": str(tmp_path / "none.pth")}
            ),
        )
        Trainer(cfg)
    with pytest.raises(PixtransError, match="load_global"):
        Trainer(
            load_config(
                "pix2pixhd/cityscapes_sample",
                tiny_hd(tmp_path / "d", **{"model.load_global": str(tmp_path / "nope")}),
            )
        )


@needs_sample
def test_vgg_loss_trains_with_random_weights_when_asked(tmp_path):
    cfg = load_config(
        "pix2pixhd/cityscapes_sample",
        tiny_hd(tmp_path / "run", **{
            "data.load_size": 32, "data.crop_size": 16, "model.E": "{}",
            "loss.lambda_vgg": 10, "loss.vgg_weights": "random", "train.max_steps": 2,
        }),
    )  # fmt: skip
    trainer = fit(cfg)
    rec = json.loads((Path(cfg.run_dir) / "stats.jsonl").read_text().splitlines()[-1])
    assert rec["G/vgg"] > 0 and trainer.step == 2
    assert "vgg" not in trainer.state_dict()["nets"]  # a loss, not a trained net


# ----------------------------------------------------------------------------------------------
# NVIDIA checkpoints: same key names as ours, so official-layout state dicts are built by our nets


@pytest.mark.parametrize("netG", ["global", "local"])
def test_convert_nvidia_pix2pixhd_generator_and_encoder(tmp_path, netG):
    from pixtrans.nets import build_generator, init_weights

    torch.manual_seed(0)
    if netG == "global":
        spec = {"name": "global", "ngf": 4, "n_downsampling": 3, "n_blocks": 2, "norm": "instance"}
    else:
        spec = {"name": "local", "ngf": 2, "n_downsample_global": 2, "n_blocks_global": 2,
                "n_local_enhancers": 1, "n_blocks_local": 2, "norm": "instance"}  # fmt: skip
    G = init_weights(build_generator(spec, 8 + 1 + 3, 3), zero_bias=False)
    E = init_weights(build_generator({"name": "encoder", "ngf": 4, "n_downsampling": 2}, 3, 3))
    torch.save(G.state_dict(), tmp_path / "latest_net_G.pth")
    torch.save(E.state_dict(), tmp_path / "latest_net_E.pth")
    out = tmp_path / "export"
    assert (
        cli(
            [
                "convert",
                str(tmp_path / "latest_net_E.pth"),
                str(tmp_path / "latest_net_G.pth"),
                str(out),
                "--label-nc",
                "8",
            ]
        )
        == 0
    )
    info = json.loads((out / "config.json").read_text())
    assert info["method"] == "pix2pixhd" and info["generators"]["G"]["spec"]["name"] == netG
    translator = Translator.from_pretrained(out)
    label = torch.randint(0, 8, (1, 1, 32, 48))
    inst = label * 1000
    y = translator(label, inst)  # no clusters yet: zero features, as the official test code
    x = translator.encode_input(label, inst)
    assert x.shape[1] == 9
    with torch.no_grad():
        expected = G.eval()(torch.cat([x, torch.zeros(1, 3, 32, 48)], 1))
    torch.testing.assert_close(y, expected)
    photo = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        expected = G(torch.cat([x, E.eval()(photo, inst)], 1))
    torch.testing.assert_close(translator(label, inst, image=photo), expected)
    # a wrong --label-nc is caught by the channel count
    assert cli(["convert", str(tmp_path / "latest_net_G.pth"), str(tmp_path / "e2"), "--label-nc", "35"]) == 2


@needs_sample
def test_torchrun_two_processes_match_one_process_double_batch(tmp_path):
    """pix2pixHD under DDP (gloo): 2 processes x batch 1 = 1 process x batch 2. Instance norm and
    the per-image encoder pooling keep samples independent, so the averaged gradients agree."""
    import os
    import subprocess
    import sys

    extra = {"train.max_steps": 2, "train.export_at_end": "false"}
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "pixtrans.cli", "train", "pix2pixhd/cityscapes_sample",
           *tiny_hd(ddp, **extra, **{"train.batch_size": 1})]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        "OMP_NUM_THREADS": "1",
    }
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    single = tmp_path / "single"
    fit(load_config("pix2pixhd/cityscapes_sample", tiny_hd(single, **extra, **{"train.batch_size": 2})))
    a, b = final_state(ddp), final_state(single)
    assert a["step"] == b["step"] == 2
    for net in ("G", "D", "E"):
        for k, v in a["nets"][net].items():
            # a conv bias in front of instance norm has a zero gradient up to rounding, which
            # Adam's normalised step turns into +-lr of either sign: only weights are comparable
            if k.endswith(".weight"):
                torch.testing.assert_close(v, b["nets"][net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")
