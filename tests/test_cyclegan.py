"""CycleGAN: ResNet generator parity, image pool, unpaired data, training, resume, export, convert."""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pixtrans import PixtransError
from pixtrans.artifacts.checkpoints import find_latest
from pixtrans.config import load_config
from pixtrans.convert import convert_official, detect_kind, infer_resnet_spec
from pixtrans.data import UnpairedDataset
from pixtrans.inference import Translator, pad_to_multiple
from pixtrans.methods.image_pool import ImagePool
from pixtrans.nets import build_generator, conv, init_weights
from pixtrans.nets.resnet import ResnetGenerator
from pixtrans.training.loop import fit

SHARED = Path(os.environ.get("PIXTRANS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
RESNET9 = SHARED / "fixtures" / "reference" / "junyanz_resnet9blocks_ngf8_instance.safetensors"
needs_fixture = pytest.mark.skipif(
    not RESNET9.is_file(), reason=f"reference fixtures not found under {SHARED}"
)

# The sidecar asks for rtol 1e-4, atol 1e-6. Through 9 instance-normalised blocks fp32 rounding
# reaches ~2e-6 on this network: on our CPU the reference output differs from a float64 run of
# the same weights by 2.0e-6 (ours in fp32 by 2.2e-6), so near-zero outputs (6 of 196,608) miss
# atol 1e-6 whatever the implementation; a conv kernel that rounds like the reference machine's
# would meet it. atol 1e-5 stays far below any architectural slip (see the padding check).
RTOL, ATOL = 1e-4, 1e-5
FAST_ATOL = 1e-4  # nets/conv.py's NNPACK path in inference: same function, other rounding

TINY_G = "{name: resnet, ngf: 4, n_blocks: 2, norm: instance}"
TINY_D = "{name: patchgan, ndf: 4, n_layers: 2, norm: instance}"


# ---------------------------------------------------------------- ResNet generator


@needs_fixture
def test_resnet9_reproduces_reference_and_seeded_init():
    meta = json.loads(RESNET9.with_suffix(".json").read_text())
    assert "n_blocks=9" in meta["constructor"] and "ngf=8" in meta["constructor"]
    tensors = load_file(RESNET9)
    x, y_ref = tensors.pop("input"), tensors.pop("output")
    # seeded build + official init draws the identical parameters, in the identical key order
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=9, norm="instance"), "normal", 0.02)
    assert list(net.state_dict()) == [k["name"] for k in meta["state_dict_keys"]]
    for name, p in net.state_dict().items():
        assert torch.equal(p, tensors[name]), name
    net.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        with conv.exact_convs():  # the official arithmetic: oneDNN's direct convolutions
            y = net.eval()(x)
        torch.testing.assert_close(y, y_ref, rtol=RTOL, atol=ATOL)
        # the default CPU inference path (Winograd in the 64x64 blocks) rounds ~1e-5 apart
        torch.testing.assert_close(net(x), y_ref, rtol=RTOL, atol=FAST_ATOL)
        # the tolerance does tell architectures apart: replicate padding in the blocks fails it
        other = ResnetGenerator(3, 3, ngf=8, n_blocks=9, padding_type="replicate").eval()
        other.load_state_dict(tensors)
        assert (other(x) - y_ref).abs().max() > 100 * ATOL


def test_resnet_layouts_and_sizes():
    keys = list(ResnetGenerator(3, 2, ngf=4, n_blocks=6).state_dict())
    assert keys[:2] == ["model.1.weight", "model.1.bias"] and "model.15.conv_block.5.weight" in keys
    assert keys[-2:] == ["model.23.weight", "model.23.bias"]  # 17 + n_blocks
    drop = ResnetGenerator(3, 3, ngf=4, n_blocks=1, dropout=True, norm="batch").state_dict()
    assert "model.10.conv_block.6.weight" in drop and "model.1.bias" not in drop
    zero = ResnetGenerator(3, 3, ngf=4, n_blocks=1, padding_type="zero", norm="none").state_dict()
    assert "model.10.conv_block.3.weight" in zero and "model.2.weight" not in zero
    net = build_generator({"name": "resnet", "ngf": 4, "n_blocks": 2}, 1, 3).eval()
    assert net.size_multiple == 4
    with torch.no_grad():
        assert net(torch.rand(2, 1, 12, 20)).shape == (2, 3, 12, 20)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.rand(1, 1, 10, 12))
    with pytest.raises(PixtransError, match="padding_type"):
        ResnetGenerator(3, 3, padding_type="circular")


# ---------------------------------------------------------------- image pool


def _tagged(*values: float) -> torch.Tensor:
    # images whose value tags them, (N, 1, 2, 2)
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()


def _tags(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def test_image_pool_semantics():
    new = _tagged(7.0, 8.0)
    assert torch.equal(ImagePool(0).query(new), new) and len(ImagePool(0)) == 0
    torch.manual_seed(0)
    pool = ImagePool(3)
    # until full: store and return; a batch fills it image by image
    assert _tags(pool.query(_tagged(0.0, 1.0))) == [0.0, 1.0] and len(pool) == 2
    out = pool.query(_tagged(2.0, 3.0))  # 2 fills the last slot, 3 meets a full pool
    assert _tags(out)[0] == 2.0 and len(pool) == 3
    from_history = 0
    for step in range(4, 400):
        before = Counter(_tags(torch.cat(pool.images)))
        (got,) = _tags(pool.query(_tagged(float(step))))
        after = Counter(_tags(torch.cat(pool.images)))
        if got == step:  # the new image passed through, the pool is unchanged
            assert after == before
        else:  # a stored image came out and the new one took its place
            from_history += 1
            assert before[got] >= 1 and after == before - Counter([got]) + Counter([float(step)])
    assert 0.4 < from_history / 396 < 0.6  # probability 0.5
    # the draws come from torch's global RNG: reseeding repeats them
    assert _replay(ImagePool(2), seed=5) == _replay(ImagePool(2), seed=5)


def _replay(pool: ImagePool, seed: int, start: float = 0.0) -> list[float]:
    torch.manual_seed(seed)
    return [t for i in range(6) for t in _tags(pool.query(_tagged(start + i, start + i + 0.5)))]


def test_image_pool_state_round_trip():
    torch.manual_seed(1)
    pool = ImagePool(4)
    for i in range(5):
        pool.query(_tagged(float(2 * i), float(2 * i + 1)))
    state = pool.state_dict()
    assert state["size"] == 4 and all(
        t.device.type == "cpu" and t.shape == (1, 1, 2, 2) for t in state["images"]
    )
    restored = ImagePool(4)
    restored.load_state_dict(state)
    state["images"][0].fill_(-1.0)  # the loaded pool owns its tensors
    assert _replay(pool, seed=2, start=100.0) == _replay(restored, seed=2, start=100.0)
    assert all(torch.equal(x, y) for x, y in zip(pool.images, restored.images, strict=True))
    with pytest.raises(ValueError, match="pool size"):
        ImagePool(2).load_state_dict(restored.state_dict())


# ---------------------------------------------------------------- unpaired data


def _write(path: Path, w: int, h: int, value: int, channels: int = 3) -> None:
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    arr[0, 0] = value  # a tag to tell images apart
    Image.fromarray(arr[:, :, 0] if channels == 1 else arr).save(path)


def make_unpaired(root: Path, n_a: int = 3, n_b: int = 5, test: int = 2) -> Path:
    """root/{train,test}{A,B} with images of mixed sizes (A tags 10+i, B tags 100+i)."""
    for split, (na, nb) in (("train", (n_a, n_b)), ("test", (test, test))):
        for side, n, tag in (("A", na, 10), ("B", nb, 100)):
            folder = root / f"{split}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _write(folder / f"{side.lower()}{i}.png", 20 + 4 * (i % 2), 20 + 2 * (i % 3), tag + i)
    return root


@pytest.fixture(scope="module")
def unpaired_root(tmp_path_factory):
    return make_unpaired(tmp_path_factory.mktemp("unpaired"))


def _ds(root, **kw) -> UnpairedDataset:
    args = dict(root=root, split="train", load_size=20, crop_size=16, num_threads=1)
    args.update(kw)
    return UnpairedDataset(**args)


def test_unpaired_sizes_items_and_serial_pairing(unpaired_root):
    ds = _ds(unpaired_root)
    assert len(ds) == 5 and ds.sizes == (3, 5)
    item = ds[(4, 123)]
    assert set(item) == {"real_a", "real_b", "path_a", "path_b", "index"}
    assert item["real_a"].shape == item["real_b"].shape == (3, 16, 16) and item["index"] == 4
    assert Path(item["path_a"]).name == "a1.png"  # 4 % 3
    assert item["real_a"].min() >= -1 and item["real_a"].max() <= 1
    # plain index: the deterministic view, B = i % len B
    assert [Path(ds[i]["path_b"]).name for i in range(5)] == [f"b{i}.png" for i in range(5)]
    # serial: B = i % len B whatever the seed; random: drawn from the seed
    serial = _ds(unpaired_root, serial_batches=True)
    assert {Path(serial[(2, s)]["path_b"]).name for s in range(20)} == {"b2.png"}
    drawn = {Path(ds[(2, s)]["path_b"]).name for s in range(40)}
    assert len(drawn) >= 4
    # BtoA swaps the domains; channels follow the input/target side
    rev = _ds(unpaired_root, direction="BtoA", input_nc=1)
    assert rev.sizes == (5, 3) and Path(rev[0]["path_a"]).parent.name == "trainB"
    assert rev[(0, 1)]["real_a"].shape == (1, 16, 16)
    assert "UnpairedDataset(5 + 3 images" in repr(rev)


def test_unpaired_determinism_per_seed_and_cache(unpaired_root):
    ds, uncached = _ds(unpaired_root), _ds(unpaired_root, cache="off")
    assert ds._cache is not None and len(ds._cache) == 8 and uncached._cache is None
    for key in [(0, 7), (3, 99), (4, 2**40 + 1)]:
        a, b = ds[key], uncached[key]
        assert all(torch.equal(a[k], b[k]) for k in ("real_a", "real_b")) and a["path_b"] == b["path_b"]
    # different seeds give different crops/flips of the same A image
    views = {tuple(ds[(1, s)]["real_a"].flatten()[:40].tolist()) for s in range(8)}
    assert len(views) > 1


def test_unpaired_sides_crop_independently(tmp_path):
    # the same image in both domains: equal crops would give real_a == real_b for every seed
    for side in "AB":
        (tmp_path / f"train{side}").mkdir()
        _write(tmp_path / f"train{side}" / "x.png", 24, 24, 1)
    ds = _ds(tmp_path, flip=False)
    items = [ds[(0, s)] for s in range(8)]
    assert any(not torch.equal(it["real_a"], it["real_b"]) for it in items)
    assert torch.equal(ds[0]["real_a"], ds[0]["real_b"])  # centre crops in the deterministic view


def test_unpaired_errors_name_the_problem(tmp_path, unpaired_root):
    with pytest.raises(PixtransError, match="valA"):
        _ds(unpaired_root, split="val")
    one = tmp_path / "one"
    (one / "trainA").mkdir(parents=True)
    _write(one / "trainA" / "x.png", 20, 20, 1)
    with pytest.raises(PixtransError, match="trainB' is missing"):
        _ds(one)
    paired = tmp_path / "paired" / "train"
    paired.mkdir(parents=True)
    with pytest.raises(PixtransError, match="data.dataset=paired"):
        _ds(tmp_path / "paired")
    empty = make_unpaired(tmp_path / "empty", n_a=1, n_b=1)
    for f in (empty / "trainB").iterdir():
        f.unlink()
    with pytest.raises(PixtransError, match="no images in .*trainB"):
        _ds(empty)
    bad = make_unpaired(tmp_path / "bad", n_a=2, n_b=3)
    (bad / "trainB" / "b1.png").write_bytes(b"not an image")
    with pytest.raises(PixtransError, match=r"b1\.png.*1 of 3 images .*trainB"):
        _ds(bad)
    skipped = _ds(bad, bad_files="skip")
    assert skipped.sizes == (2, 2) and [Path(p).name for p in skipped.dropped] == ["b1.png"]
    with pytest.raises(PixtransError, match=r"a0\.png.*smaller than data.crop_size"):
        _ds(unpaired_root, preprocess="crop", crop_size=22)
    with pytest.raises(PixtransError, match="data.layout"):
        _ds(unpaired_root, layout="aligned")


# ---------------------------------------------------------------- the method


def _method(*overrides: str):
    from pixtrans.registry import METHODS

    cfg = load_config("cyclegan/summer2winter", [f"model.G={TINY_G}", f"model.D={TINY_D}", *overrides])
    torch.manual_seed(0)
    return METHODS.get("cyclegan").from_config(cfg, cfg.data.input_nc, cfg.data.output_nc)


def test_losses_follow_the_official_formulas():
    m = _method()
    assert m.phase_nets("G") == ["G_ab", "G_ba"] and m.phase_nets("D") == ["D_a", "D_b"]
    assert m.exported == ("G_ab", "G_ba") and m.D_b.model[0].in_channels == 3
    real_a, real_b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    ctx = m.prepare({"real_a": real_a, "real_b": real_b})
    g = m.losses(ctx, "G")
    assert list(g) == ["G/gan_ab", "G/gan_ba", "G/cycle_a", "G/cycle_b", "G/idt_a", "G/idt_b"]
    with torch.no_grad():
        l1 = torch.nn.functional.l1_loss
        mse = torch.nn.functional.mse_loss
        torch.testing.assert_close(g["G/idt_a"], l1(m.G_ab(real_b), real_b) * 10 * 0.5)
        torch.testing.assert_close(g["G/cycle_a"], l1(m.G_ba(m.G_ab(real_a)), real_a) * 10)
        pred = m.D_b(ctx["fake_b"])
        torch.testing.assert_close(g["G/gan_ab"], mse(pred, torch.ones_like(pred)))  # LSGAN
        d = m.losses(ctx, "D")  # the pools are empty, so D sees this step's fakes
        assert list(d) == ["D/b_real", "D/b_fake", "D/a_real", "D/a_fake"]
        pred = m.D_a(ctx["fake_a"])
        torch.testing.assert_close(d["D/a_fake"], 0.5 * mse(pred, torch.zeros_like(pred)))
    assert len(m.pool_a) == len(m.pool_b) == 2 and set(m.extra_state()) == {"pool_a", "pool_b"}


def test_identity_loss_needs_equal_channels():
    with pytest.warns(UserWarning, match="lambda_idt=0.5 ignored"):
        m = _method("data.output_nc=1")
    ctx = m.prepare({"real_a": torch.rand(1, 3, 16, 16), "real_b": torch.rand(1, 1, 16, 16)})
    assert m.D_a.model[0].in_channels == 3 and m.D_b.model[0].in_channels == 1
    assert list(m.losses(ctx, "G")) == ["G/gan_ab", "G/gan_ba", "G/cycle_a", "G/cycle_b"]
    with pytest.raises(PixtransError, match="loss.pool_size"):
        _method("loss.pool_size=-1")


# ---------------------------------------------------------------- training, resume, export


def tiny_cyclegan(run_dir: Path, data_root: Path, **extra) -> list[str]:
    base = {
        "run_dir": str(run_dir),
        "data.root": str(data_root),
        "data.load_size": 20,
        "data.crop_size": 16,
        "model.G": TINY_G,
        "model.D": TINY_D,
        "loss.pool_size": 3,  # full after two steps, so resumes must carry swaps
        "train.batch_size": 2,
        "train.epochs": 2,
        "train.epochs_decay": 2,
        "train.max_steps": 6,
        "train.log_every": 2,
        "train.sample_every": 4,
        "train.report_every": 6,
        "train.checkpoint_every": 4,
        "train.device": "cpu",
        "train.progress": "false",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, unpaired_root):
    run = tmp_path_factory.mktemp("cyclegan") / "full"
    trainer = fit(load_config("cyclegan/summer2winter", tiny_cyclegan(run, unpaired_root)))
    return run, trainer


LOSSES = {"G/gan_ab", "G/gan_ba", "G/cycle_a", "G/cycle_b", "G/idt_a", "G/idt_b"}
LOSSES |= {"D/b_real", "D/b_fake", "D/a_real", "D/a_fake"}


def test_tiny_training_logs_every_loss(full_run):
    run, trainer = full_run
    assert trainer.step == 6 and trainer.steps_per_epoch == 2  # len = max(3, 5) = 5 -> 2 batches of 2
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for rec in records:
        assert LOSSES <= set(rec) and all(np.isfinite(rec[k]) for k in LOSSES)
    assert (run / "samples" / "step_000000006.png").is_file()
    method = trainer.method
    assert method.phases == ("G", "D") and sorted(method.nets) == ["D_a", "D_b", "G_ab", "G_ba"]
    assert len(method.pool_a) == len(method.pool_b) == 3
    # identity loss is lambda_cycle * lambda_idt * L1
    assert method.lambda_cycle == 10.0 and method.lambda_idt == 0.5
    vis = method.visuals(
        {"real_a": torch.rand(2, 3, 16, 16) * 2 - 1, "real_b": torch.rand(2, 3, 16, 16) * 2 - 1}
    )
    assert list(vis) == ["real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b"]
    assert all(net.training for net in method.nets.values())  # modes restored after visuals


def test_interrupted_run_resumes_bitwise_with_pools(full_run, tmp_path, unpaired_root):
    run_full, _ = full_run
    part = tmp_path / "part"
    fit(load_config("cyclegan/summer2winter", tiny_cyclegan(part, unpaired_root, **{"train.max_steps": 3})))
    fit(load_config("cyclegan/summer2winter", tiny_cyclegan(part, unpaired_root)))
    a = find_latest(run_full / "checkpoints").state
    b = find_latest(part / "checkpoints").state
    assert a["step"] == b["step"] == 6
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.equal(v, b["nets"][net][k]), f"{net}.{k} differs"
    for phase in ("G", "D"):
        sa, sb = a["optimizers"][phase]["state"], b["optimizers"][phase]["state"]
        assert sa.keys() == sb.keys()
        for pid in sa:
            for k in sa[pid]:
                assert torch.equal(sa[pid][k], sb[pid][k]), f"optimizer {phase} {pid} {k} differs"
    for pool in ("pool_a", "pool_b"):
        pa, pb = a["method_state"][pool]["images"], b["method_state"][pool]["images"]
        assert len(pa) == len(pb) == 3 and all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))


def test_export_holds_both_generators(full_run):
    run, trainer = full_run
    info = json.loads((run / "export" / "config.json").read_text())
    assert info["method"] == "cyclegan" and sorted(info["generators"]) == ["G_ab", "G_ba"]
    assert (
        info["generators"]["G_ba"]["direction"] == "BtoA" and info["generators"]["G_ab"]["size_multiple"] == 4
    )
    back = Translator.from_pretrained(run, generator="G_ba")
    x = torch.rand(1, 3, 18, 22) * 2 - 1  # padded to multiples of 4 and cropped back
    y = back(x, mode="eval")
    assert y.shape == (1, 3, 18, 22) and back.direction == "BtoA"
    with torch.no_grad():
        G_ba = copy.deepcopy(trainer.method.G_ba).eval()
        xp, (top, left) = pad_to_multiple(x, 4)
        expected = G_ba(xp)[..., top : top + 18, left : left + 22]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(PixtransError, match="G_ab, G_ba"):
        Translator.from_pretrained(run)


# ---------------------------------------------------------------- converter


def _official_pair(tmp_path: Path, *, input_nc=3, output_nc=1, legacy=True, **spec):
    """What the official CycleGAN saves: latest_net_G_A.pth / latest_net_G_B.pth state dicts."""
    spec = {"name": "resnet", "ngf": 4, "n_blocks": 2, **spec}
    torch.manual_seed(0)
    nets = [
        build_generator(spec, input_nc, output_nc).eval(),
        build_generator(spec, output_nc, input_nc).eval(),
    ]
    paths = []
    for net, role in zip(nets, "AB", strict=True):
        state = dict(net.state_dict())
        if legacy and spec.get("norm", "instance") == "instance":  # PyTorch < 0.4 instance norm keys
            state["model.2.running_mean"] = torch.zeros(spec["ngf"])
            state["model.2.running_var"] = torch.ones(spec["ngf"])
        path = tmp_path / f"latest_net_G_{role}.pth"
        torch.save(state, path)
        paths.append(path)
    return paths, nets


def test_convert_official_cyclegan_pair_and_single(tmp_path):
    (g_a, g_b), (net_a, net_b) = _official_pair(tmp_path)
    assert detect_kind(torch.load(g_a, weights_only=True)).name == "cyclegan_resnet"
    out = convert_official([g_b, g_a], tmp_path / "export")  # names say which is which
    info = json.loads((out / "config.json").read_text())
    assert info["method"] == "cyclegan" and sorted(info["generators"]) == ["G_ab", "G_ba"]
    ab, ba = info["generators"]["G_ab"], info["generators"]["G_ba"]
    assert ab["spec"]["n_blocks"] == 2 and ab["spec"]["norm"] == "instance" and ab["spec"]["ngf"] == 4
    assert (ab["input_nc"], ab["output_nc"], ba["input_nc"], ba["output_nc"]) == (3, 1, 1, 3)
    assert info["source"]["file"] == {"G_ab": "latest_net_G_A.pth", "G_ba": "latest_net_G_B.pth"}
    x3, x1 = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            Translator.from_pretrained(out, generator="G_ab")(x3, mode="eval"), net_a(x3)
        )
        torch.testing.assert_close(
            Translator.from_pretrained(out, generator="G_ba")(x1, mode="eval"), net_b(x1)
        )
    single = convert_official(g_b, tmp_path / "single", direction="BtoA")
    info = json.loads((single / "config.json").read_text())
    assert list(info["generators"]) == ["G"] and info["generators"]["G"]["input_nc"] == 1
    with torch.no_grad():
        torch.testing.assert_close(Translator.from_pretrained(single)(x1, mode="eval"), net_b(x1))
    # inconsistent pairs are refused with the file names
    (tmp_path / "other").mkdir()
    (other_a, _), _ = _official_pair(tmp_path / "other", input_nc=3, output_nc=3)
    with pytest.raises(PixtransError, match="G_B must invert G_A"):
        convert_official([other_a, g_b], tmp_path / "e1")
    with pytest.raises(PixtransError, match="both G_A"):
        convert_official([g_a, other_a], tmp_path / "e2")


@pytest.mark.parametrize(
    "spec",
    [
        {"norm": "batch", "dropout": True, "n_blocks": 6},
        {"norm": "none", "padding_type": "zero"},
        {"norm": "instance", "padding_type": "zero", "dropout": True},
    ],
)
def test_resnet_spec_inference(tmp_path, spec):
    (g_a, _), (net_a, _) = _official_pair(tmp_path, legacy=False, **spec)
    found = infer_resnet_spec(torch.load(g_a, weights_only=True))
    expected = {
        "name": "resnet",
        "ngf": 4,
        "n_blocks": 2,
        "dropout": False,
        "padding_type": "reflect",
        **spec,
    }
    assert {"name": "resnet", **found} == {**expected, "input_nc": 3, "output_nc": 1}


@needs_fixture
def test_convert_reference_resnet9(tmp_path):
    tensors = load_file(RESNET9)
    x, y_ref = tensors.pop("input"), tensors.pop("output")
    ckpt = tmp_path / "latest_net_G_A.pth"
    torch.save(tensors, ckpt)
    out = convert_official(ckpt, tmp_path / "export")
    g = json.loads((out / "config.json").read_text())["generators"]["G"]
    assert g["spec"] == {
        "name": "resnet",
        "ngf": 8,
        "n_blocks": 9,
        "norm": "instance",
        "dropout": False,
        "padding_type": "reflect",
    }
    translator = Translator.from_pretrained(out)
    with conv.exact_convs():
        torch.testing.assert_close(translator(x, mode="eval"), y_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(translator(x, mode="eval"), y_ref, rtol=RTOL, atol=FAST_ATOL)


def test_torchrun_two_processes_keep_their_own_pools_and_resume(tmp_path, unpaired_root):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        "OMP_NUM_THREADS": "1",
    }
    run = tmp_path / "ddp"

    def torchrun(steps):
        over = tiny_cyclegan(run, unpaired_root, **{"train.batch_size": 1, "train.max_steps": steps})
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "pixtrans.cli",
            "train",
            "cyclegan/summer2winter",
            *over,
        ]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res

    torchrun(2)
    state = find_latest(run / "checkpoints").state
    ranks = state["method_state_ranks"]
    assert len(ranks) == 2
    # each process filled its own pool from its own shard of the data
    imgs0, imgs1 = ranks[0]["pool_a"]["images"], ranks[1]["pool_a"]["images"]
    assert len(imgs0) == len(imgs1) == 2 and not torch.equal(imgs0[0], imgs1[0])
    res = torchrun(4)
    assert "from step_000000002.pt" in res.stdout
    state = find_latest(run / "checkpoints").state
    assert state["step"] == 4


def test_translate_both_directions_from_the_command_line(full_run, tmp_path):
    from PIL import Image

    from pixtrans.cli import main

    run, _ = full_run
    Image.new("RGB", (21, 13), (30, 160, 40)).save(tmp_path / "x.png")
    for direction in ("ab", "ba"):
        out = tmp_path / f"{direction}.png"
        assert main(["translate", str(run), str(tmp_path / "x.png"), str(out), "--direction", direction]) == 0
        assert Image.open(out).size == (21, 13)
    a, b = (np.asarray(Image.open(tmp_path / f"{d}.png")) for d in ("ab", "ba"))
    assert not np.array_equal(a, b)
