"""Networks: parity with the official pix2pix/CycleGAN nets, shapes, norms, init, builders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from pixtrans import PixtransError
from pixtrans.losses import predictions
from pixtrans.nets import (
    INIT_TYPES,
    NLayerDiscriminator,
    PixelDiscriminator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    conv_bias,
    get_norm_layer,
    init_weights,
    spec_defaults,
)
from pixtrans.registry import DISCRIMINATORS, GENERATORS


def reference_dir() -> Path:
    # repo at <root>/main, shared data at <root>/shared (CI: a fresh clone with shared/ beside it)
    shared = os.environ.get("PIXTRANS_SHARED", Path(__file__).resolve().parents[2] / "shared")
    return Path(shared) / "fixtures/reference"


# the sidecars' tolerance_hint: fp32 CPU; the reference reproduces itself bit-exactly, but conv
# kernels differ across CPUs at the ulp level (we see ~4e-9 on outputs of absmax ~0.03)
RTOL, ATOL = 1e-4, 1e-6

# fixture stem -> (our constructor matching the sidecar's `constructor`, what the sidecar must say)
FIXTURES = {
    "junyanz_unet256_ngf8_batch_dropout": (
        lambda: UnetGenerator(3, 3, num_downs=8, ngf=8, norm="batch", dropout=True),
        "UnetGenerator(3, 3, num_downs=8, ngf=8",
    ),
    "junyanz_patchgan_basic_ndf8_batch": (
        lambda: NLayerDiscriminator(3, ndf=8, n_layers=3, norm="batch"),
        "NLayerDiscriminator(3, ndf=8, n_layers=3",
    ),
}


def load_fixture(stem: str) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    ref = reference_dir()
    if not ref.is_dir():
        pytest.skip(f"reference fixtures not found at {ref} (set PIXTRANS_SHARED to the shared/ folder)")
    meta = json.loads((ref / f"{stem}.json").read_text())
    return meta, load_file(ref / f"{stem}.safetensors")


@pytest.mark.parametrize("stem", sorted(FIXTURES))
def test_reference_parity(stem):
    meta, tensors = load_fixture(stem)
    make, constructor = FIXTURES[stem]
    assert constructor in meta["constructor"]
    x, y_ref = tensors.pop("input"), tensors.pop("output")
    net = make()
    # same keys in the same order: the order is the module tree the init draws its numbers in
    assert list(net.state_dict()) == [k["name"] for k in meta["state_dict_keys"]]
    net.load_state_dict(tensors, strict=True)
    net.eval()
    with torch.no_grad():
        y = net(x)
    assert list(y.shape) == meta["output_shape"]
    torch.testing.assert_close(y, y_ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("stem", sorted(FIXTURES))
def test_seeded_init_reproduces_reference(stem):
    """Sidecar recipe: manual_seed(0); build; init_weights('normal', 0.02); then 3 train-mode
    forwards under no_grad on fresh torch.rand(1,3,256,256)*2-1 to fill the BN running stats.

    Parameters come out bit-exact (RNG draws only). The running stats go through convolutions,
    so they match to fp32 noise of the CPU's conv kernels, not bitwise; dropout (train mode) draws
    from the same stream, so a misplaced Dropout would break this test, not just shift it.
    """
    meta, tensors = load_fixture(stem)
    assert "manual_seed(0)" in meta["init"] and "'normal', 0.02" in meta["init"]
    make, _ = FIXTURES[stem]
    x, y_ref = tensors.pop("input"), tensors.pop("output")
    torch.manual_seed(0)
    net = init_weights(make(), "normal", 0.02)
    for name, p in net.named_parameters():
        assert torch.equal(p, tensors[name]), name

    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(1, 3, 256, 256) * 2 - 1)
    for name, b in net.named_buffers():
        if name.endswith("num_batches_tracked"):
            assert b.item() == tensors[name].item() == 3
        else:
            torch.testing.assert_close(b, tensors[name], rtol=1e-3, atol=1e-6, msg=name)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), y_ref, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- U-Net


@pytest.mark.parametrize("num_downs", range(1, 9))
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_shapes(num_downs, norm):
    net = UnetGenerator(3, 2, num_downs=num_downs, ngf=4, norm=norm, dropout=True)
    assert net.size_multiple == 2**num_downs
    s = net.size_multiple
    x = torch.rand(2, 3, s, 2 * s) * 2 - 1
    y = net(x)
    assert y.shape == (2, 2, s, 2 * s)
    assert y.abs().max() <= 1  # tanh
    # official dropout placement: the 8ngf -> 8ngf levels around the bottleneck only
    n_dropout = sum(isinstance(m, nn.Dropout) for m in net.modules())
    assert n_dropout == max(0, num_downs - 5)


@pytest.mark.parametrize("ngf", [1, 3, 5])
def test_unet_any_width(ngf):
    net = UnetGenerator(1, 4, num_downs=6, ngf=ngf, norm="instance")
    assert net(torch.zeros(1, 1, 64, 64)).shape == (1, 4, 64, 64)
    # widths min(2**i, 8)*ngf: the level-5 (innermost) down conv takes and gives 8*ngf
    innermost = net.model
    for _ in range(5):
        innermost = innermost.model[1 if innermost is net.model else 3]
    assert innermost.model[1].weight.shape == (8 * ngf, 8 * ngf, 4, 4)


@pytest.mark.parametrize("num_downs", [5, 7])
def test_unet_official_key_layout(num_downs):
    # unet_128 (7) and the smallest official U-Net (5): keys follow the recursive block nesting
    keys = list(UnetGenerator(3, 3, num_downs=num_downs, ngf=2).state_dict())
    inner = "model.model.1" + ".model.3" * (num_downs - 2)
    assert keys[0] == "model.model.0.weight" and "model.model.0.bias" not in keys  # BN -> no bias
    assert f"{inner}.model.1.weight" in keys and f"{inner}.model.3.weight" in keys
    assert f"{inner}.model.4.running_mean" in keys
    assert keys[-2:] == ["model.model.3.weight", "model.model.3.bias"]  # outermost up conv + bias


def test_unet_dropout_train_vs_eval():
    torch.manual_seed(0)
    net = UnetGenerator(3, 3, num_downs=6, ngf=4, norm="instance", dropout=True)
    x = torch.rand(1, 3, 64, 64)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))
    net_nodrop = UnetGenerator(3, 3, num_downs=6, ngf=4, norm="instance", dropout=False).train()
    assert torch.equal(net_nodrop(x), net_nodrop(x))


def test_unet_rejects_bad_sizes_and_args():
    net = UnetGenerator(3, 3, num_downs=3, ngf=2)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 3, 12, 16))
    with pytest.raises(PixtransError, match="num_downs"):
        UnetGenerator(3, 3, num_downs=0)


# ---------------------------------------------------------------- norms and init


@pytest.mark.parametrize("kind", ["batch", "instance", "none"])
def test_norm_layer_semantics(kind):
    layer = get_norm_layer(kind)(6)
    if kind == "batch":
        assert isinstance(layer, nn.BatchNorm2d) and layer.affine and layer.track_running_stats
        assert not conv_bias(kind)
    elif kind == "instance":
        assert isinstance(layer, nn.InstanceNorm2d)
        assert not layer.affine and not layer.track_running_stats
        assert list(layer.state_dict()) == []
        assert conv_bias(kind)
    else:
        assert isinstance(layer, nn.Identity) and not conv_bias(kind)  # official rule: no bias without a norm


def test_norm_layer_unknown():
    with pytest.raises(PixtransError, match="unknown norm 'group'; valid: batch, instance, none"):
        get_norm_layer("group")


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_conv_bias_follows_norm(norm):
    net = NLayerDiscriminator(3, ndf=4, n_layers=2, norm=norm)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # first and last convs are not followed by a norm: always a bias
    assert convs[0].bias is not None and convs[-1].bias is not None
    assert all((c.bias is not None) == (norm == "instance") for c in convs[1:-1])


@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_init_weights(init_type):
    torch.manual_seed(0)
    net = UnetGenerator(3, 3, num_downs=5, ngf=4, norm="batch")
    assert init_weights(net, init_type, gain=0.02) is net
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.bias == 0)
            assert (m.weight - 1).abs().max() < 0.2  # N(1, 0.02) whatever init_type is
    w = net.model.model[0].weight  # (4, 3, 4, 4)
    if init_type == "normal":
        assert 0.01 < w.std() < 0.03
    if init_type == "kaiming":  # gain ignored: std = sqrt(2 / fan_in) = sqrt(2/48)
        assert 0.1 < w.std() < 0.3
    if init_type == "orthogonal":
        flat = w.reshape(4, -1)
        torch.testing.assert_close(flat @ flat.T, 0.02**2 * torch.eye(4), atol=1e-7, rtol=0)


def test_init_weights_unknown():
    with pytest.raises(PixtransError, match="unknown init_type 'gaussian'; valid: normal"):
        init_weights(nn.Conv2d(1, 1, 1), "gaussian")


# ---------------------------------------------------------------- discriminators


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_patchgan_shapes(n_layers, norm):
    net = NLayerDiscriminator(6, ndf=4, n_layers=n_layers, norm=norm)
    # max(n_layers, 1) halvings of 64, then two stride-1 4x4 convs with padding 1 (-1 each)
    s = 64 // 2 ** max(n_layers, 1) - 2
    assert net(torch.rand(2, 6, 64, 64)).shape == (2, 1, s, s)
    assert list(net.state_dict())[0] == "model.0.weight"


def test_patchgan_70x70_receptive_field():
    # one output logit depends on exactly a 70x70 input window
    net = NLayerDiscriminator(1, ndf=2, n_layers=3, norm="none")
    x = torch.rand(1, 1, 96, 96, requires_grad=True)
    net(x)[0, 0, 5, 5].backward()  # away from the zero-padded border
    rows, cols = (x.grad[0, 0] != 0).nonzero().unbind(1)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_pixelgan(norm):
    net = PixelDiscriminator(4, ndf=4, norm=norm)
    assert net(torch.rand(2, 4, 9, 7)).shape == (2, 1, 9, 7)
    keys = list(net.state_dict())
    assert keys[:3] == ["net.0.weight", "net.0.bias", "net.2.weight"]
    # official quirk kept: the last 1x1 conv's bias follows the norm rule
    assert ("net.5.bias" in keys) == (norm == "instance")
    assert ("net.3.running_mean" in keys) == (norm == "batch")


# ---------------------------------------------------------------- registry and builders


def tiny_spec(registry, name: str) -> dict:
    spec = spec_defaults(registry, name)
    for key in ("ngf", "ndf"):
        if key in spec:
            spec[key] = 4
    return spec


@pytest.mark.parametrize("name", GENERATORS.names())
def test_every_generator_builds_and_runs(name):
    net = build_generator(tiny_spec(GENERATORS, name), input_nc=3, output_nc=2)
    # reflect padding needs maps wider than 3 pixels at the coarsest level
    s = max(getattr(net, "size_multiple", 1) * 4, 32)
    net.eval()
    extra = [torch.zeros(1, 1, s, s, dtype=torch.int32)] if name == "encoder" else []  # instance ids
    with torch.no_grad():
        assert net(torch.rand(1, 3, s, s), *extra).shape == (1, 2, s, s)


@pytest.mark.parametrize("name", DISCRIMINATORS.names())
def test_every_discriminator_builds_and_runs(name):
    net = build_discriminator(tiny_spec(DISCRIMINATORS, name), input_nc=5)
    with torch.no_grad():
        preds = predictions(net(torch.rand(2, 5, 64, 64)))
    assert preds and all(p.dim() == 4 and p.shape[:2] == (2, 1) for p in preds)


def test_spec_defaults_are_complete():
    spec = spec_defaults(GENERATORS, "unet")
    assert spec == {"name": "unet", "num_downs": 8, "ngf": 64, "norm": "batch", "dropout": False}
    assert spec_defaults(DISCRIMINATORS, "patchgan") == {
        "name": "patchgan",
        "ndf": 64,
        "n_layers": 3,
        "norm": "batch",
    }
    assert spec_defaults(DISCRIMINATORS, "pixel") == {"name": "pixel", "ndf": 64, "norm": "batch"}


def test_build_passes_kwargs():
    net = build_generator({"name": "unet", "num_downs": 3, "ngf": 2, "dropout": True}, 1, 3)
    assert isinstance(net, UnetGenerator) and net.size_multiple == 8
    assert net.model.model[0].weight.shape == (2, 1, 4, 4)
    d = build_discriminator({"name": "patchgan", "n_layers": 1, "norm": "instance"}, 6)
    assert isinstance(d, NLayerDiscriminator) and d.model[0].in_channels == 6


def test_build_unknown_key_suggests():
    with pytest.raises(PixtransError) as e:
        build_generator({"name": "unet", "ngff": 8}, 3, 3)
    msg = str(e.value)
    assert "unknown key 'model.G.ngff' for generator 'unet' (did you mean 'ngf'?)" in msg
    assert "valid: name, num_downs, ngf, norm, dropout" in msg
    with pytest.raises(PixtransError, match=r"'model.D.nlayers' .* \(did you mean 'n_layers'\?\)"):
        build_discriminator({"name": "patchgan", "nlayers": 2}, 6)
    with pytest.raises(PixtransError, match="'netD.ndf2'"):
        build_discriminator({"name": "pixel", "ndf2": 2}, 6, prefix="netD")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"name": "unet", "ngf": "64"}, r"model.G.ngf must be int for generator 'unet', got str '64'"),
        ({"name": "unet", "ngf": True}, r"model.G.ngf must be int"),
        ({"name": "unet", "ngf": 8.0}, r"model.G.ngf must be int"),
        ({"name": "unet", "dropout": 1}, r"model.G.dropout must be bool"),
        ({"name": "unet", "norm": None}, r"model.G.norm must be str"),
        ({"name": "unett"}, r"model.G.name: unknown generator 'unett' \(did you mean 'unet'\?\); valid: "),
        ({"ngf": 8}, r"model.G.name is missing; valid: "),
        ({"name": "unet", "input_nc": 3}, r"model.G.input_nc is set from the data"),
        ({"name": "unet", "norm": "group"}, r"model.G \(generator 'unet'\): unknown norm 'group'; valid"),
        ({"name": "unet", "num_downs": 0}, r"num_downs must be >= 1"),
        ("unet", r"model.G must be a mapping"),
    ],
)
def test_build_errors(spec, pattern):
    with pytest.raises(PixtransError, match=pattern):
        build_generator(spec, 3, 3)
