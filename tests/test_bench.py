import math

import pytest
import torch
import torch.nn as nn

from pixtrans import bench, runtime


def test_conv_flops_match_formula():
    conv = nn.Conv2d(3, 8, 4, stride=2, padding=1, bias=False)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        n = bench.count_flops(lambda: conv(x))
    # 2 * Cin * Cout * k * k * Hout * Wout
    assert n == 2 * 3 * 8 * 4 * 4 * 8 * 8
    assert n == bench.conv2d_flops(3, 8, 4, 8, 8)


def test_conv_backward_flops_are_counted():
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    fwd = 2 * 4 * 4 * 9 * 8 * 8
    n = bench.count_flops(lambda: conv(x).sum().backward())
    assert n == 3 * fwd  # forward + grad-input + grad-weight


def test_convshape_flops():
    s = bench.ConvShape(2, 16, 10, 10, 32, 3, 1, 1)
    assert s.out_hw() == (10, 10)
    assert s.flops() == 2 * 2 * 16 * 32 * 9 * 100


def test_throughput_positive_and_details():
    shapes = [bench.ConvShape(1, 8, 16, 16, 8, 3, 1, 1), bench.ConvShape(1, 8, 16, 16, 16, 4, 2, 1)]
    tp, details = bench.measure_conv_throughput("cpu", seconds=0.05, shapes=shapes, return_details=True)
    assert tp > 0 and math.isfinite(tp)
    assert len(details) == 4  # 2 shapes x 2 memory formats
    assert tp == max(d["flops_per_s"] for d in details)
    tp2 = bench.measure_conv_throughput(
        "cpu", seconds=0.01, shapes=shapes[:1], memory_formats=(torch.contiguous_format,)
    )
    assert tp2 > 0


def test_time_fn_stats_and_validation():
    calls = []
    st = bench.time_fn(lambda: calls.append(1), warmup=2, iters=5)
    assert st.n == 5 and len(calls) >= 7
    assert st.min <= st.p10 <= st.median <= st.p90 <= st.max
    assert "times" not in st.as_dict()
    with pytest.raises(ValueError):
        bench.time_fn(lambda: None, iters=0)


def test_quantile():
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert bench.quantile(xs, 0.5) == 3.0
    assert bench.quantile(xs, 0.0) == 1.0 and bench.quantile(xs, 1.0) == 5.0
    assert bench.quantile(xs, 0.1) == pytest.approx(1.4)


def test_ratio_arithmetic():
    st = bench.TimingStats(median=2.0, p10=1.5, p90=3.0, mean=2.0, min=1.0, max=4.0, n=3)
    r = bench.result_dict("train", st, flops=10**9, throughput=1e9, batch_size=4)
    assert r["floor_s"] == pytest.approx(1.0)
    assert r["ratio"] == pytest.approx(2.0)
    assert r["images_per_s"] == pytest.approx(2.0)
    assert r["gflop_per_step"] == pytest.approx(1.0)
    assert r["achieved_gflops"] == pytest.approx(0.5)
    r2 = bench.result_dict("train", st, flops=None, throughput=None, batch_size=1)
    assert r2["ratio"] is None and r2["floor_s"] is None


def test_bench_training_and_inference_tiny():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    x = torch.randn(2, 3, 8, 8)

    def step():
        opt.zero_grad(set_to_none=True)
        net(x).square().mean().backward()
        opt.step()

    tp = 1e9
    r = bench.bench_training(step, throughput=tp, batch_size=2, warmup=1, iters=3)
    fwd = 2 * 2 * 64 * (3 * 4 * 9 + 4 * 3 * 9)
    # backward: grad-weight of both convs + grad-input of the second only
    assert r["flops_per_step"] == fwd + fwd + 2 * 2 * 64 * 4 * 3 * 9
    assert r["ratio"] == pytest.approx(r["step_time_median_s"] / (r["flops_per_step"] / tp))
    ri = bench.bench_inference(net, x, throughput=tp, warmup=1, iters=3)
    assert ri["flops_per_step"] == fwd and ri["batch_size"] == 2
    text = bench.format_report([r, ri], title="tiny")
    assert "ratio" in text and "train" in text and "inference" in text
    assert bench.format_report(r).count("\n") >= 2


def test_tune_malloc_is_safe():
    assert runtime.tune_malloc() in (True, False)
    torch.randn(1 << 20).sum()


def test_bench_command_reports_ratio_for_a_config(tmp_path, capsys):
    import json

    from pixtrans.cli import main

    out = tmp_path / "bench.json"
    args = [
        "bench",
        "pix2pix/demo",
        "model.G.ngf=4",
        "model.D.ndf=4",
        "data.crop_size=64",
        "data.load_size=64",
        "train.amp=off",  # the fp32 floor below (auto takes bf16 where it is native)
        "--steps",
        "2",
        "--warmup",
        "1",
        "--floor-seconds",
        "0.3",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "train step" in text and "ratio" in text
    res = json.loads(out.read_text())
    train = res["train_step"]
    # the ratio is the median step time over the floor measured in the same run
    floor = train["flops_per_step"] / (res["machine"]["conv_throughput_gflops"] * 1e9)
    assert abs(train["ratio"] - train["step_time_median_s"] / floor) < 1e-6 * train["ratio"]
    # the JSON says which instruction sets the kernels could use
    assert res["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert res["machine"]["isa_limits"] == runtime.isa_limits()


def test_isa_limits_note_says_when_a_cap_covers_only_some_libraries(monkeypatch):
    for name in runtime.ISA_LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert runtime.isa_limits() == {} and runtime.isa_limits_note() is None
    # oneDNN capped alone: MKL's GEMMs would keep AVX-512, so the note warns
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    note = runtime.isa_limits_note()
    assert "in part" in note and "MKL_ENABLE_INSTRUCTIONS" in note and "ATEN_CPU_CAPABILITY" in note
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    note = runtime.isa_limits_note()
    assert "in part" not in note and "ONEDNN_MAX_CPU_ISA=AVX2" in note
    assert runtime.isa_limits() == {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
    }


def test_bench_measures_a_mixed_precision_step_against_its_own_floor(tmp_path, monkeypatch):
    """A bf16 step divided by the fp32 convolution rate would flatter it (AMX runs bf16 ~10x faster)."""
    import json

    from pixtrans.cli import main

    seen = []

    def spy(device="cpu", dtype=torch.float32, **kw):
        seen.append(dtype)
        # distinct fake rates so the test can tell which floor divides which time
        return {torch.float32: 1e11, torch.bfloat16: 8e11}[dtype]

    monkeypatch.setattr(bench.command, "measure_conv_throughput", spy)  # where run_bench reads it
    out = tmp_path / "bench.json"
    args = ["bench", "pix2pix/demo", "model.G.ngf=4", "model.D.ndf=4", "data.crop_size=64"]
    args += ["data.load_size=64", "train.amp=bf16", "--steps", "1", "--warmup", "0", "--json", str(out)]
    assert main(args) == 0
    assert seen == [torch.float32, torch.bfloat16]
    res = json.loads(out.read_text())
    train, infer = res["train_step"], res["inference_G"]
    assert train["precision"] == "bf16" and infer["precision"] == "fp32"
    assert train["throughput_gflops"] == 800 and infer["throughput_gflops"] == 100
    assert train["ratio_vs_fp32_floor"] == pytest.approx(train["ratio"] / 8)
    # inference in the training precision too (translate --precision), against its own floor
    infer_bf16 = res["inference_G_bf16"]
    assert infer_bf16["precision"] == "bf16" and infer_bf16["throughput_gflops"] == 800
    assert infer_bf16["flops_per_step"] == infer["flops_per_step"]


def test_time_interleaved_alternates_and_times_each():
    calls = []
    stats = bench.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, iters=4
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert stats["a"].n == stats["b"].n == 4 and stats["a"].median > 0


OFFICIAL = bench.official.default_root()


@pytest.mark.skipif(OFFICIAL is None, reason="the official sources (../shared/reference) are not here")
@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("pix2pix/facades", ["model.G.ngf=4", "model.D.ndf=4"]),
        (
            "cyclegan/summer2winter",
            ["model.G.ngf=4", "model.D.ndf=4", "model.G.n_blocks=6", "data.crop_size=64"],
        ),
        (
            "pix2pixhd/label2city_512p",
            [
                "model.G={name: global, ngf: 4, n_downsampling: 2, n_blocks: 1}",
                "model.D.ndf=4",
                "data.load_size=64",
                "data.crop_size=32",
                "loss.vgg_weights=random",
            ],
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")
def test_bench_against_the_official_code_times_both_interleaved(tmp_path, preset, overrides):
    from pixtrans.config import load_config

    cfg = load_config(preset, overrides)
    out = bench.run_bench(
        cfg, steps=2, warmup=1, floor_seconds=0.1, against="official", json_path=str(tmp_path / "b.json")
    )
    assert out["official"]["implementation"].split()[0] in ("junyanz", "NVIDIA")
    for kind in ("train", "inference"):
        assert out["ours_vs_official"][kind] > 0 and out["official"][kind]["iters"] == 2
    if cfg.train.amp_chosen == "bf16":  # a native-bf16 CPU: bf16 inference is compared too
        assert out["ours_vs_official"]["inference_bf16"] > 0
    # the same architecture and objective: the same FLOPs per step (convolutions and matmuls)
    ours, theirs = out["train_step"]["flops_per_step"], out["official"]["train"]["flops_per_step"]
    assert abs(ours - theirs) <= 0.02 * theirs, (ours, theirs)
