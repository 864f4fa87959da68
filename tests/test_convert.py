"""Converting official pytorch-CycleGAN-and-pix2pix generator checkpoints into pixtrans exports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pixtrans import PixtransError
from pixtrans.convert import convert_official, detect_kind
from pixtrans.inference import Translator
from pixtrans.nets import build_generator

SHARED = Path(os.environ.get("PIXTRANS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UNET256 = SHARED / "fixtures" / "reference" / "junyanz_unet256_ngf8_batch_dropout.safetensors"


def _official_unet(tmp_path: Path, *, num_downs=7, ngf=4, norm="instance", legacy=True, prefix=""):
    """An official-style `latest_net_G.pth` written with torch.save, plus the net it came from."""
    torch.manual_seed(0)
    net = build_generator({"name": "unet", "num_downs": num_downs, "ngf": ngf, "norm": norm}, 3, 2).eval()
    state = dict(net.state_dict())
    if legacy:  # what PyTorch < 0.4 saved for InstanceNorm layers (the official loader drops them)
        for name, m in net.named_modules():
            if isinstance(m, nn.InstanceNorm2d):
                state[f"{name}.running_mean"] = torch.zeros(m.num_features)
                state[f"{name}.running_var"] = torch.ones(m.num_features)
                state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    state = {prefix + k: v for k, v in state.items()}
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    return path, net


@pytest.mark.skipif(not UNET256.is_file(), reason=f"reference fixtures not found under {SHARED}")
def test_official_unet256_reproduces_reference_output(tmp_path):
    stored = load_file(UNET256)
    x, expected = stored.pop("input"), stored.pop("output")
    sidecar = json.loads(UNET256.with_suffix(".json").read_text())
    assert sorted(stored) == sorted(k["name"] for k in sidecar["state_dict_keys"])
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(stored, ckpt)  # exactly what the official save_networks writes

    out = convert_official(ckpt, tmp_path / "export")
    info = json.loads((out / "config.json").read_text())
    g = info["generators"]["G"]
    assert g["spec"] == {"name": "unet", "num_downs": 8, "ngf": 8, "norm": "batch", "dropout": True}
    assert (g["input_nc"], g["output_nc"], g["size_multiple"]) == (3, 3, 256)
    assert info["source"]["kind"] == "pix2pix_unet" and info["source"]["file"] == "latest_net_G.pth"
    assert info["config"]["model"]["G"]["ngf"] == 8

    translator = Translator.from_pretrained(out)
    y = translator(x, mode="eval")
    assert y.shape == expected.shape
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_instance_norm_unet128_with_legacy_keys(tmp_path, prefix):
    ckpt, net = _official_unet(tmp_path, prefix=prefix)
    out = convert_official(ckpt, tmp_path / "export", dropout=False, direction="BtoA")
    info = json.loads((out / "config.json").read_text())
    g = info["generators"]["G"]
    assert g["spec"] == {"name": "unet", "num_downs": 7, "ngf": 4, "norm": "instance", "dropout": False}
    assert (g["input_nc"], g["output_nc"], g["size_multiple"]) == (3, 2, 128)
    assert info["direction"] == "BtoA" and info["config"]["data"]["direction"] == "BtoA"
    assert not any("running" in k for k in load_file(out / "G.safetensors"))

    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        expected = net(x)
    torch.testing.assert_close(Translator.from_pretrained(out)(x), expected)


def test_batch_norm_unet_and_dropout_default(tmp_path):
    ckpt, _ = _official_unet(tmp_path, num_downs=5, norm="batch", legacy=False)
    info = json.loads((convert_official(ckpt, tmp_path / "e") / "config.json").read_text())
    assert info["generators"]["G"]["spec"]["norm"] == "batch"
    assert info["generators"]["G"]["spec"]["dropout"] is True  # pix2pix's setting, not in the weights
    assert info["source"]["dropout_assumed"] is True


def test_unknown_and_unsupported_checkpoints(tmp_path):
    garbage = tmp_path / "garbage_net_G.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(PixtransError, match="garbage_net_G.pth"):
        convert_official(garbage, tmp_path / "e")

    odd = tmp_path / "odd.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, odd)
    with pytest.raises(PixtransError, match=r"odd\.pth.*encoder\.weight"):
        convert_official(odd, tmp_path / "e")

    resnet = tmp_path / "latest_net_G_A.pth"
    torch.save(
        {"model.1.weight": torch.zeros(8, 3, 7, 7), "model.10.conv_block.1.weight": torch.zeros(8, 8, 3, 3)},
        resnet,
    )
    # a stem and one block: neither a whole CycleGAN nor a pix2pixHD generator
    with pytest.raises(PixtransError, match="not a checkpoint kind pixtrans knows"):
        convert_official(resnet, tmp_path / "e")

    disc = tmp_path / "latest_net_D.pth"
    torch.save({"model.0.weight": torch.zeros(8, 6, 4, 4), "model.0.bias": torch.zeros(8)}, disc)
    with pytest.raises(PixtransError, match="net_G"):
        convert_official(disc, tmp_path / "e")

    with pytest.raises(PixtransError, match="does not exist"):
        convert_official(tmp_path / "missing.pth", tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_shape_mismatch_and_kind_argument(tmp_path):
    ckpt, net = _official_unet(tmp_path, legacy=False)
    state = torch.load(ckpt, weights_only=True)
    assert detect_kind(state).name == "pix2pix_unet"
    with pytest.raises(PixtransError, match="unknown checkpoint kind"):
        convert_official(ckpt, tmp_path / "e", kind="cyclegan")
    # a damaged U-Net: one inner conv with the wrong width
    key = "model.model.1.model.3.model.1.weight"
    state[key] = torch.zeros(5, *state[key].shape[1:])
    bad = tmp_path / "bad_net_G.pth"
    torch.save(state, bad)
    with pytest.raises(PixtransError, match="bad_net_G.pth"):
        convert_official(bad, tmp_path / "e")
