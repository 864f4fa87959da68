"""pix2pixHD networks and losses: parity with NVIDIA/pix2pixHD fixtures, the per-image instance
pooling of the encoder, the local enhancer's global part, the VGG19 and feature-matching losses."""

from __future__ import annotations

import math
import re

import pytest
import torch
from test_nets import ATOL, RTOL, load_fixture

from pixtrans import PixtransError
from pixtrans.losses import VGG19Features, VGGLoss, feature_matching_loss, load_vgg19_weights, predictions
from pixtrans.losses.adversarial import LSGANLoss
from pixtrans.nets import build_discriminator, build_generator, init_weights, spec_defaults
from pixtrans.nets.pix2pixhd import (
    Encoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    instance_mean,
)
from pixtrans.registry import DISCRIMINATORS, GENERATORS

# fixture stem -> (our constructor matching the sidecar's `constructor`, what the sidecar must
# say, the names of the forward's inputs in the fixture file)
FIXTURES = {
    "pix2pixhd_global_ngf8_down3_instance": (
        lambda: GlobalGenerator(36, 3, ngf=8, n_downsampling=3, n_blocks=9, norm="instance"),
        "GlobalGenerator(36, 3, ngf=8, n_downsampling=3, n_blocks=9",
        ("input",),
    ),
    "pix2pixhd_multiscaleD_ndf8_numD2_intermfeat": (
        lambda: MultiscaleDiscriminator(
            39, ndf=8, n_layers=3, norm="instance", use_sigmoid=False, num_D=2, get_interm_feat=True
        ),
        "MultiscaleDiscriminator(39, ndf=8, n_layers=3, InstanceNorm2d, use_sigmoid=False, num_D=2, "
        "getIntermFeat=True)",
        ("input",),
    ),
    "pix2pixhd_encoder_ngf4_instance": (
        lambda: Encoder(3, 3, ngf=4, n_downsampling=4, norm="instance"),
        "Encoder(3, 3, ngf=4, n_downsampling=4",
        ("input", "inst"),
    ),
}


def _split(tensors: dict[str, torch.Tensor], inputs) -> tuple[dict, dict, dict]:
    """(inputs, outputs, weights) of a fixture file."""
    ins = {k: tensors.pop(k) for k in inputs}
    outs = {k: tensors.pop(k) for k in sorted(tensors) if k == "output" or k.startswith("output.")}
    return ins, outs, tensors


def _atol(ref: torch.Tensor) -> float:
    """The sidecar's atol, widened to 2e-5 of the output's range.

    Instance norm after the bias-dominated convs of an N(0, 0.02) init subtracts a channel mean
    much larger than the channel's spread, which turns fp32 summation-order noise (~1e-7, it
    differs between CPUs) into ~3e-6 absolute on outputs of range ~1. Run in float64, these nets
    show the stored fp32 reference itself 2-7e-6 away from the exact result, as far as our fp32
    run; an architecture mistake moves outputs by ~their std (>= 0.04 here). Batch-norm-free
    first layers and the encoder (mean-pooled) stay within the sidecar's 1e-6.
    """
    return max(ATOL, 2e-5 * ref.abs().max().item())


@pytest.mark.parametrize("stem", sorted(FIXTURES))
def test_reference_parity(stem):
    meta, tensors = load_fixture(stem)
    make, constructor, inputs = FIXTURES[stem]
    assert constructor in meta["constructor"]
    ins, outs, weights = _split(tensors, inputs)
    net = make()
    # same keys in the same order (the module tree the official init walks)
    assert list(net.state_dict()) == [k["name"] for k in meta["state_dict_keys"]]
    assert set(net.state_dict()) == set(weights)
    net.load_state_dict(weights, strict=True)
    net.eval()
    with torch.no_grad():
        y = net(*(ins[k] for k in inputs))
    if isinstance(y, torch.Tensor):
        got = {"output": y}
    else:  # multi-scale D: output.{scale}.{layer}
        got = {f"output.{s}.{j}": t for s, scale in enumerate(y) for j, t in enumerate(scale)}
    assert sorted(got) == sorted(outs)
    for name, ref in outs.items():
        assert list(got[name].shape) == list(ref.shape), name
        torch.testing.assert_close(got[name], ref, rtol=RTOL, atol=_atol(ref), msg=name)


@pytest.mark.parametrize("stem", sorted(FIXTURES))
def test_seeded_init_reproduces_reference_weights(stem):
    """Sidecar: manual_seed(0) before define_G/define_D, which applies weights_init (conv weights
    N(0, 0.02), biases keep PyTorch's default). Equal bits = same modules, same creation order."""
    meta, tensors = load_fixture(stem)
    assert "manual_seed(0)" in meta["init"]
    make, _, inputs = FIXTURES[stem]
    _, _, weights = _split(tensors, inputs)
    torch.manual_seed(0)
    net = init_weights(make(), "normal", 0.02, zero_bias=False)
    for name, value in net.state_dict().items():
        assert torch.equal(value, weights[name]), name


# ---------------------------------------------------------------- global generator


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("padding_type", ["reflect", "zero"])
def test_global_shapes_and_biases(norm, padding_type):
    net = GlobalGenerator(5, 2, ngf=2, n_downsampling=2, n_blocks=2, norm=norm, padding_type=padding_type)
    assert net.size_multiple == 4
    keys = net.state_dict()
    first_conv = "conv_block.1" if padding_type == "reflect" else "conv_block.0"
    # pix2pixHD: every conv has a bias, whatever the norm
    assert f"model.10.{first_conv}.bias" in keys and "model.1.bias" in keys and "model.4.bias" in keys
    assert ("model.2.weight" in keys) == (norm == "batch")
    net.eval()
    y = net(torch.rand(2, 5, 12, 8) * 2 - 1)
    assert y.shape == (2, 2, 12, 8) and y.abs().max() < 1
    with pytest.raises(PixtransError, match="divisible by 4"):
        net(torch.zeros(1, 5, 10, 8))


def test_bad_settings_raise_one_line_errors():
    with pytest.raises(PixtransError, match="global n_blocks must be >= 0"):
        GlobalGenerator(3, 3, n_blocks=-1)
    with pytest.raises(PixtransError, match="unknown norm 'group'"):
        GlobalGenerator(3, 3, norm="group")
    with pytest.raises(PixtransError, match="padding_type 'circular'"):
        LocalEnhancer(3, 3, padding_type="circular")
    with pytest.raises(PixtransError, match="n_local_enhancers must be >= 1"):
        LocalEnhancer(3, 3, n_local_enhancers=0)
    with pytest.raises(PixtransError, match="num_D must be >= 1"):
        MultiscaleDiscriminator(3, num_D=0)


def test_registered_and_buildable_from_specs():
    assert {"global", "local", "encoder"} <= set(GENERATORS.names())
    assert "multiscale" in DISCRIMINATORS.names()
    assert spec_defaults(GENERATORS, "global")["n_downsampling"] == 4
    assert spec_defaults(GENERATORS, "local")["ngf"] == 32
    assert spec_defaults(GENERATORS, "encoder")["ngf"] == 16
    assert spec_defaults(DISCRIMINATORS, "multiscale")["get_interm_feat"] is True
    g = build_generator({"name": "local", "ngf": 2, "n_downsample_global": 1, "n_blocks_global": 1}, 3, 3)
    assert isinstance(g, LocalEnhancer) and g.size_multiple == 4
    d = build_discriminator({"name": "multiscale", "ndf": 2, "num_D": 2}, 6)
    assert isinstance(d, MultiscaleDiscriminator) and d.num_D == 2 and d.n_layers == 3
    with pytest.raises(PixtransError, match="model.D.get_interm_feat must be bool"):
        build_discriminator({"name": "multiscale", "get_interm_feat": 1}, 6)


# ---------------------------------------------------------------- local enhancer


def _tiny_local(n_local: int = 1, **kw) -> LocalEnhancer:
    cfg = dict(ngf=2, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=n_local, n_blocks_local=1)
    return LocalEnhancer(4, 3, **{**cfg, **kw})


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_shapes_and_keys(n_local):
    net = _tiny_local(n_local).eval()
    assert net.size_multiple == 2 ** (2 + n_local)
    keys = net.state_dict()
    # G1 keeps its keys up to its last upsampling; the 7x7 output conv lives in the finest enhancer
    assert "model.1.weight" in keys and "model.10.conv_block.5.weight" in keys
    assert keys["model.1.weight"].shape[0] == 2 * 2**n_local  # ngf_global
    for k in range(1, n_local + 1):
        ch = 2 * 2 ** (n_local - k)
        assert keys[f"model{k}_1.1.weight"].shape == (ch, 4, 7, 7)
        assert keys[f"model{k}_1.4.weight"].shape == (2 * ch, ch, 3, 3)
        assert keys[f"model{k}_2.1.weight"].shape == (2 * ch, ch, 3, 3)  # ConvTranspose [in, out]
    assert keys[f"model{n_local}_2.5.weight"].shape == (3, 2, 7, 7)
    assert ("model1_2.5.weight" in keys) == (n_local == 1)
    s = net.size_multiple
    y = net(torch.rand(2, 4, 2 * s, 2 * s) * 2 - 1)  # G1's reflect pads need >= 2 px at its bottom
    assert y.shape == (2, 3, 2 * s, 2 * s)
    with pytest.raises(PixtransError, match=f"divisible by {s}"):
        net(torch.zeros(1, 4, s // 2, s))


def test_local_enhancer_loads_a_trained_global_generator():
    local = _tiny_local(1)
    glob = GlobalGenerator(4, 3, ngf=4, n_downsampling=2, n_blocks=1)  # ngf_global = 2 * 2**1
    with torch.no_grad():
        for p in glob.parameters():
            p.normal_()
    local.load_global_state(glob.state_dict())
    theirs = glob.state_dict()
    for k, v in local.model.state_dict().items():
        assert torch.equal(v, theirs[f"model.{k}"]), k
    # everything of G1 but its output conv (model.18 here)
    n_global = sum(p.numel() for p in glob.parameters()) - sum(p.numel() for p in glob.model[18].parameters())
    assert sum(p.numel() for p in local.global_parameters()) == n_global
    assert len(list(local.global_parameters())) == len(list(glob.parameters())) - 2

    with pytest.raises(PixtransError, match=r"wrong shape model\.1\.bias \(2,\) != \(4,\)"):
        local.load_global_state(GlobalGenerator(4, 3, ngf=2, n_downsampling=2, n_blocks=1).state_dict())
    with pytest.raises(PixtransError, match="missing model.11"):
        local.load_global_state(GlobalGenerator(4, 3, ngf=4, n_downsampling=2, n_blocks=2).state_dict())
    with pytest.raises(PixtransError, match=r"unexpected model\.10\.conv_block\.2\.bias"):
        local.load_global_state(
            GlobalGenerator(4, 3, ngf=4, n_downsampling=2, n_blocks=1, norm="batch").state_dict()
        )


# ---------------------------------------------------------------- multi-scale discriminator


def test_multiscale_without_interm_feat_keys_and_same_arithmetic():
    torch.manual_seed(0)
    with_feat = MultiscaleDiscriminator(5, ndf=2, n_layers=2, norm="batch", num_D=2, get_interm_feat=True)
    flat = MultiscaleDiscriminator(5, ndf=2, n_layers=2, norm="batch", num_D=2, get_interm_feat=False)
    keys = list(flat.state_dict())
    # official names: one Sequential per scale, `layer{i}`; convs at 0, 2, 5, 8 (n_layers=2)
    assert [k for k in keys if k.endswith(".weight")] == [
        f"layer{i}.{m}.weight" for i in range(2) for m in (0, 2, 3, 5, 6, 8)
    ]
    # scale{i}_layer{j}.{m} -> layer{i}.{offset_j + m}: [conv, lrelu], [conv, bn, lrelu] x 2, [conv]
    offsets = (0, 2, 5, 8)
    mapped = {}
    for k, v in with_feat.state_dict().items():
        i, j, m, name = re.fullmatch(r"scale(\d+)_layer(\d+)\.(\d+)\.(.+)", k).groups()
        mapped[f"layer{i}.{offsets[int(j)] + int(m)}.{name}"] = v
    flat.load_state_dict(mapped, strict=True)
    with_feat.eval()
    flat.eval()
    x = torch.rand(2, 5, 16, 24)
    a, b = with_feat(x), flat(x)
    assert [len(s) for s in a] == [4, 4] and [len(s) for s in b] == [1, 1]
    assert a[0][-1].shape == (2, 1, 7, 9) and a[1][-1].shape == (2, 1, 5, 6)  # padding 2 grows maps
    for s in range(2):
        torch.testing.assert_close(a[s][-1], b[s][0], rtol=0, atol=0)
    assert len(predictions(a)) == 2 and torch.isfinite(LSGANLoss().g_loss(a))


def test_multiscale_width_cap_and_sigmoid():
    with torch.device("meta"):
        wide = MultiscaleDiscriminator(3, ndf=300, n_layers=2, num_D=1)
    # widths min(2 * previous, 512): 300, 512, 512 (not the CycleGAN 8 * ndf rule)
    assert [wide.state_dict()[f"scale0_layer{j}.0.weight"].shape[0] for j in range(4)] == [300, 512, 512, 1]
    for interm in (True, False):
        d = MultiscaleDiscriminator(3, ndf=2, n_layers=1, use_sigmoid=True, num_D=2, get_interm_feat=interm)
        out = d(torch.randn(1, 3, 8, 8) * 10)
        assert all(0 <= s[-1].min() and s[-1].max() <= 1 for s in out)
        assert len(out[0]) == (3 if interm else 1)


# ---------------------------------------------------------------- encoder / instance pooling


def _naive_instance_mean(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    out = features.clone()
    for b in range(features.shape[0]):
        for i in inst[b].unique():
            mask = inst[b, 0] == i
            out[b][:, mask] = features[b][:, mask].mean(dim=1, keepdim=True)
    return out


def _instance_maps() -> torch.Tensor:
    """3 maps of 8x16 with ids shared across images (7 and 2) and ids present in one only."""
    inst = torch.zeros(3, 1, 8, 16, dtype=torch.int32)
    inst[0, 0, :, :8], inst[0, 0, :, 8:] = 7, 2
    inst[1, 0, :4], inst[1, 0, 4:] = 2, 31000
    inst[2, 0] = 7
    inst[2, 0, 2:5, 3:9] = 1
    return inst


def test_instance_mean_is_per_image_and_matches_a_naive_loop():
    torch.manual_seed(0)
    feats = torch.randn(3, 4, 8, 16)
    inst = _instance_maps()
    pooled = instance_mean(feats, inst)
    torch.testing.assert_close(pooled, _naive_instance_mean(feats, inst), rtol=1e-6, atol=1e-7)
    for b in range(3):  # each image alone gives the same result
        torch.testing.assert_close(
            pooled[b : b + 1], instance_mean(feats[b : b + 1], inst[b : b + 1]), rtol=0, atol=0
        )
    # id 7 in image 0 and image 2 are different instances
    assert not torch.allclose(pooled[0, :, 0, 0], pooled[2, :, 0, 0])
    # ids spread too wide for the presence table take torch.unique: same groups
    torch.testing.assert_close(instance_mean(feats, inst.long() * 2**40 - 5), pooled, rtol=0, atol=0)
    # float maps (as image loaders give them) are the same ids
    torch.testing.assert_close(instance_mean(feats, inst.float()), pooled, rtol=0, atol=0)
    # gradient: d(sum of pooled)/d(feature) = 1 for every pixel (each mean is shared by its pixels)
    x = feats.clone().requires_grad_(True)
    instance_mean(x, inst).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    with pytest.raises(PixtransError, match="does not match the features"):
        instance_mean(feats, inst[:2])
    with pytest.raises(PixtransError, match=r"\[B, 1, H, W\]"):
        instance_mean(feats, inst[:, 0])


def test_encoder_batch_equals_each_image_alone():
    torch.manual_seed(0)
    enc = Encoder(3, 3, ngf=2, n_downsampling=2).eval()
    assert enc.size_multiple == 4
    images = torch.rand(3, 3, 8, 16) * 2 - 1
    inst = _instance_maps()
    with torch.no_grad():
        batch = enc(images, inst)
        raw = enc.model(images)
    torch.testing.assert_close(batch, _naive_instance_mean(raw, inst), rtol=1e-6, atol=1e-7)
    for b in range(3):
        with torch.no_grad():
            alone = enc(images[b : b + 1], inst[b : b + 1])
        torch.testing.assert_close(batch[b : b + 1], alone, rtol=1e-6, atol=1e-7)
    enc.train()  # trains through G's losses: gradients reach its weights
    enc(images, inst).square().sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


# ---------------------------------------------------------------- VGG19 perceptual loss


@pytest.fixture(scope="module")
def random_vgg_loss() -> VGGLoss:
    torch.manual_seed(0)
    return VGGLoss(weights="random")


def test_vgg_loss_zero_for_same_images_and_grads_reach_x_only(random_vgg_loss):
    loss_fn = random_vgg_loss
    torch.manual_seed(1)
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loss_fn(y, y.clone()).item() == 0.0
    x = (y + 0.1 * torch.randn_like(y)).requires_grad_(True)
    y = y.clone().requires_grad_(True)
    loss = loss_fn(x, y)
    assert loss.item() > 0
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss_fn.parameters())
    loss_fn.train()
    assert not loss_fn.vgg.training  # a fixed feature extractor stays in eval mode
    feats = loss_fn.vgg(x.detach())
    assert [tuple(f.shape[1:]) for f in feats] == [
        (64, 16, 16),
        (128, 8, 8),
        (256, 4, 4),
        (512, 2, 2),
        (512, 1, 1),
    ]
    with pytest.raises(PixtransError, match="lambda_vgg=0"):
        loss_fn(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))


def test_vgg_normalize_input_maps_to_imagenet_statistics(random_vgg_loss):
    vgg = random_vgg_loss.vgg
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    try:
        vgg.normalize_input = True
        got = vgg(x)[0]
    finally:
        vgg.normalize_input = False
    torch.testing.assert_close(got, vgg(((x + 1) / 2 - mean) / std)[0])


def test_vgg_auto_without_a_file_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXTRANS_VGG19", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PixtransError) as e:
        load_vgg19_weights("auto")
    msg = str(e.value)
    assert "\n" not in msg
    for part in (
        str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"),
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "loss.vgg_weights=PATH",
        "loss.lambda_vgg=0",
    ):
        assert part in msg
    monkeypatch.setenv("PIXTRANS_VGG19", str(tmp_path / "nowhere.pth"))
    with pytest.raises(PixtransError, match=r"nowhere\.pth \(\$PIXTRANS_VGG19"):
        VGGLoss(weights="auto")
    with pytest.raises(PixtransError, match=r"loss\.vgg_weights.*missing\.pth' does not exist"):
        load_vgg19_weights(str(tmp_path / "missing.pth"))


def _small_vgg19_file(path, features_only: bool = False) -> dict[str, torch.Tensor]:
    """A torchvision-format vgg19 state dict whose tensors are all views of one 9 MB storage
    (torch.save writes a shared storage once), instead of the real 548 MB file."""
    torch.manual_seed(2)
    storage = torch.randn(512 * 512 * 9)
    with torch.device("meta"):  # shapes only
        shapes = {k: v.shape for k, v in VGG19Features(weights="random").state_dict().items()}
    state = {}
    for k, shape in shapes.items():
        index = k.split(".", 2)[2]  # slices.{s}.{index}.{weight|bias}
        state[f"features.{index}"] = storage[: math.prod(shape)].view(shape)
    state["features.30.weight"] = storage[:10].view(10, 1)  # later layers and the classifier: ignored
    state["classifier.0.weight"] = storage[:6].view(2, 3)
    if features_only:
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    torch.save(state, path)
    return {k.removeprefix("features."): v for k, v in state.items()}


@pytest.mark.parametrize("features_only", [False, True])
def test_vgg_loads_a_torchvision_format_file(tmp_path, monkeypatch, features_only):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    saved = _small_vgg19_file(path, features_only)
    assert path.stat().st_size < 12e6
    monkeypatch.setenv("PIXTRANS_VGG19", str(path))
    vgg = VGG19Features(weights="auto")
    for k, v in vgg.state_dict().items():
        index = k.split(".", 2)[2]
        assert torch.equal(v, saved[index]), k
    assert load_vgg19_weights(str(path)).keys() == {k.split(".", 2)[2] for k in vgg.state_dict()}


def test_vgg_bad_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PixtransError, match=r"cannot read VGG19 weights '.*junk\.pth'"):
        load_vgg19_weights(str(junk))
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, other)
    with pytest.raises(PixtransError, match=r"other\.pth' is not a torchvision VGG19 state dict"):
        VGGLoss(weights=str(other))


# ---------------------------------------------------------------- feature matching


def test_feature_matching_known_value():
    # num_D = 2 scales, n_layers = 1: each scale is [feature 0, feature 1, prediction]
    def scale(a, b, pred):
        return [torch.full((1, 2, 2, 2), a), torch.full((1, 1, 3, 3), b), torch.full((1, 1, 2, 2), pred)]

    fake = [scale(1.0, 2.0, 100.0), scale(0.5, -0.25, -7.0)]
    real = [scale(0.0, 0.0, 0.0), scale(0.0, 0.0, 5.0)]
    for t in real[0]:
        t.requires_grad_(True)
    # (4 / (1 + 1)) * (1 / 2) * 10 = 10 per L1 term; predictions are not matched
    loss = feature_matching_loss(fake, real, lambda_feat=10.0)
    assert loss.item() == pytest.approx(10 * (1.0 + 2.0 + 0.5 + 0.25))
    fake_leaf = torch.full((1, 2, 2, 2), 1.0, requires_grad=True)
    fake[0][0] = fake_leaf
    feature_matching_loss(fake, real).backward()
    assert fake_leaf.grad is not None and all(t.grad is None for t in real[0])

    with pytest.raises(PixtransError, match="get_interm_feat=true"):
        feature_matching_loss([[torch.zeros(1)]], [[torch.zeros(1)]])
    with pytest.raises(PixtransError, match="same scales"):
        feature_matching_loss(fake, real[:1])


def test_feature_matching_on_discriminator_outputs():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(4, ndf=2, n_layers=2, num_D=2)
    x = torch.rand(1, 4, 16, 16)
    same = feature_matching_loss(d(x), d(x))
    assert same.item() == 0.0
    assert feature_matching_loss(d(x + 0.5), d(x)).item() > 0
