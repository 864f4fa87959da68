"""ONNX export and the onnxruntime backend: parity with torch eval for every generator family on
two sizes (one non-square), plain Conv/ConvTranspose graphs, paper mode refused, int8 with its
report, 16-bit in -> 16-bit out, and the error when the extra is not installed."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.config import Config
from pixtrans.deploy.onnx_export import FORBIDDEN_OPS, check_graph, export_onnx, op_types
from pixtrans.inference import Translator, export_generators
from pixtrans.nets import build_generator

# the [onnx] extra (CI installs it with [test]); only the missing-package test runs without it
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason='needs pip install "pixtrans[onnx]"',
)

UNET = {"name": "unet", "num_downs": 6, "ngf": 4, "norm": "batch", "dropout": True}
RESNET = {"name": "resnet", "ngf": 4, "n_blocks": 2, "norm": "instance"}
GLOBAL = {"name": "global", "ngf": 4, "n_downsampling": 2, "n_blocks": 1, "norm": "instance"}
LOCAL = {"name": "local", "ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1}
ENCODER = {"name": "encoder", "ngf": 4, "n_downsampling": 2, "norm": "instance"}


def _trained_looking(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _image_export(tmp_path, spec, input_nc=3, output_nc=3, method="pix2pix", names=("G",)):
    cfg = Config(method=method)
    cfg.model.G = dict(spec)
    cfg.data.input_nc, cfg.data.output_nc = input_nc, output_nc
    nets = {}
    for i, name in enumerate(names):
        torch.manual_seed(i)
        cin, cout = (output_nc, input_nc) if name.endswith("_ba") else (input_nc, output_nc)
        nets[name] = _trained_looking(build_generator(spec, cin, cout))
    out = export_generators(tmp_path / "export", cfg.to_dict(), nets, method)
    return out, nets


def _hd_export(tmp_path, g_spec, with_encoder=True):
    cfg = Config(method="pix2pixhd")
    cfg.data.label_nc, cfg.data.instance, cfg.data.output_nc = 5, True, 3
    cfg.model.G = dict(g_spec)
    cfg.model.E = dict(ENCODER) if with_encoder else {}
    cfg.model.feat_num = 3
    label_channels = 5 + 1 + (3 if with_encoder else 0)
    torch.manual_seed(0)
    nets = {"G": build_generator(g_spec, label_channels, 3).eval()}
    if with_encoder:
        nets["E"] = build_generator(ENCODER, 3, 3).eval()
    out = export_generators(tmp_path / "export", cfg.to_dict(), nets, "pix2pixhd")
    return out, nets


SIZES = [(64, 64), (70, 100)]  # one square, one non-square (and not a multiple: padded)


@needs_onnx
@pytest.mark.parametrize("spec", [UNET, RESNET], ids=["unet", "resnet"])
def test_image_generators_match_torch_eval_on_two_sizes(tmp_path, spec):
    out, _ = _image_export(tmp_path, spec)
    export_onnx(out)
    info = json.loads((out / "config.json").read_text())
    assert info["generators"]["G"]["onnx"]["file"] == "G.onnx"
    ops = op_types(out / "G.onnx")
    assert "Conv" in ops and "ConvTranspose" in ops and not ops & FORBIDDEN_OPS
    torch_t = Translator.from_pretrained(out)
    ort_t = Translator.from_pretrained(out, backend="onnxruntime")
    for h, w in SIZES:
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1
        want, got = torch_t(x, mode="eval"), ort_t(x, mode="eval")
        assert got.shape == want.shape == (2, 3, h, w)
        assert (got - want).abs().max().item() < 1e-4


@needs_onnx
def test_small_maps_would_take_the_gemm_path_without_the_switch():
    """The U-Net's inner levels run unfold + matmul on the CPU (nets/conv.py); the export must
    not see that path, and a graph holding it is refused."""
    from pixtrans.nets import conv

    x = torch.randn(1, 4, 8, 8)
    layer = conv.FastConv2d(4, 4, 3, padding=1)
    assert conv._small_cpu_map(x)
    with conv.plain_convs():
        assert not conv._small_cpu_map(x)
    assert conv._small_cpu_map(x)  # restored

    class MatMulNet(torch.nn.Module):
        def forward(self, x):
            return x @ x.transpose(-1, -2)

    buf = __import__("io").BytesIO()
    torch.onnx.export(MatMulNet(), (torch.randn(1, 1, 4, 4),), buf, dynamo=False)
    with pytest.raises(PixtransError, match="MatMul"):
        check_graph(buf.getvalue(), "test")
    assert torch.allclose(
        layer(x), torch.nn.functional.conv2d(x, layer.weight, layer.bias, padding=1), atol=1e-5
    )


@needs_onnx
def test_cyclegan_exports_both_directions(tmp_path):
    out, nets = _image_export(
        tmp_path, RESNET, input_nc=3, output_nc=1, method="cyclegan", names=("G_ab", "G_ba")
    )
    written = export_onnx(out)
    assert set(written) == {"G_ab", "G_ba"}
    for name, cin in (("G_ab", 3), ("G_ba", 1)):
        t = Translator.from_pretrained(out, generator=name, backend="onnxruntime")
        x = torch.rand(1, cin, 36, 52) * 2 - 1
        want = Translator.from_pretrained(out, generator=name)(x, mode="eval")
        assert (t(x, mode="eval") - want).abs().max().item() < 1e-4


@needs_onnx
@pytest.mark.parametrize("g_spec", [GLOBAL, LOCAL], ids=["global", "local"])
def test_pix2pixhd_label_translator_matches_torch_with_encoder(tmp_path, g_spec):
    out, nets = _hd_export(tmp_path, g_spec)
    export_onnx(out)
    info = json.loads((out / "config.json").read_text())
    assert info["generators"]["E"]["onnx"]["host_step"] == "instance_mean"
    for name in ("G", "E"):
        assert not op_types(out / f"{name}.onnx") & FORBIDDEN_OPS
    torch_t = Translator.from_pretrained(out)
    ort_t = Translator.from_pretrained(out, backend="onnxruntime")
    assert type(ort_t).__name__ == "LabelTranslator"
    gen = torch.Generator().manual_seed(3)
    for h, w in [(32, 32), (40, 72)]:
        label = torch.randint(0, 5, (1, 1, h, w), generator=gen)
        inst = label * 1000 + torch.randint(0, 2, (1, 1, h, w), generator=gen)
        photo = torch.rand(1, 3, h, w, generator=gen) * 2 - 1
        want = torch_t.translate_tensor(label, inst, image=photo)
        got = ort_t.translate_tensor(label, inst, image=photo)
        assert got.shape == want.shape == (1, 3, h, w)
        assert (got - want).abs().max().item() < 1e-4
        # the encoder alone: per-instance features, host-side average included
        m = ort_t.E.size_multiple
        ph, pw = -h % m, -w % m
        img = torch.nn.functional.pad(photo, (0, pw, 0, ph), mode="replicate")
        ids = torch.nn.functional.pad(inst, (0, pw, 0, ph), value=-1)
        with torch.inference_mode():
            e_want = nets["E"](img, ids)
        assert (ort_t.E(img, ids) - e_want).abs().max().item() < 1e-4


@needs_onnx
def test_paper_mode_is_its_own_graph_or_refused(tmp_path):
    """Eval graph only: paper mode is refused. With `--paper`: BatchNorm on each image's own
    statistics (InstanceNormalization with BatchNorm's affine) equals torch's paper mode, and
    Dropout draws new noise on every run."""
    plain = {**UNET, "dropout": False}
    out, _ = _image_export(tmp_path / "plain", plain)
    export_onnx(out)
    t = Translator.from_pretrained(out, backend="onnxruntime")
    with pytest.raises(PixtransError, match="no paper-mode graph"):
        t(torch.zeros(1, 3, 64, 64), mode="paper")
    export_onnx(out, mode="paper")
    ops = op_types(out / "G.paper.onnx")
    assert "InstanceNormalization" in ops and "BatchNormalization" not in ops
    t = Translator.from_pretrained(out, backend="onnxruntime")
    torch_t = Translator.from_pretrained(out)
    for h, w in SIZES:
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(w)) * 2 - 1
        assert (t(x, mode="paper") - torch_t(x, mode="paper")).abs().max().item() < 1e-4
        assert (t(x, mode="eval") - torch_t(x, mode="eval")).abs().max().item() < 1e-4

    out, _ = _image_export(tmp_path / "dropout", UNET)
    export_onnx(out)
    export_onnx(out, mode="paper")
    assert "Dropout" in op_types(out / "G.paper.onnx")
    t = Translator.from_pretrained(out, backend="onnxruntime")
    x = torch.rand(1, 3, 64, 128) * 2 - 1
    first, second = t(x, mode="paper"), t(x, mode="paper")
    assert (first - second).abs().max().item() > 1e-2  # fresh noise every run
    assert (t(x, mode="eval") - t(x, mode="eval")).abs().max().item() == 0.0


@needs_onnx
def test_backend_without_onnx_models_and_unknown_backend(tmp_path):
    out, _ = _image_export(tmp_path, UNET)
    with pytest.raises(PixtransError, match="--onnx"):
        Translator.from_pretrained(out, backend="onnxruntime")
    export_onnx(out)
    with pytest.raises(PixtransError, match="--int8"):
        Translator.from_pretrained(out, backend="onnxruntime-int8")
    with pytest.raises(PixtransError, match="unknown backend"):
        Translator.from_pretrained(out, backend="tensorrt")


def test_missing_packages_say_how_to_install(tmp_path, monkeypatch):
    out, _ = _image_export(tmp_path, UNET)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import fails as if not installed
    with pytest.raises(PixtransError, match=r'pip install "pixtrans\[onnx\]"'):
        export_onnx(out)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    info = json.loads((out / "config.json").read_text())  # as if `export --onnx` had run
    info["generators"]["G"]["onnx"] = {"file": "G.onnx"}
    (out / "config.json").write_text(json.dumps(info))
    (out / "G.onnx").write_bytes(b"")
    with pytest.raises(PixtransError, match=r'pip install "pixtrans\[onnx\]"'):
        Translator.from_pretrained(out, backend="onnxruntime")


# ----------------------------------------------------------------------------------------------
# The CLI: a trained run exported with --onnx --int8, translated with every backend


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synth_root):
    from conftest import tiny_overrides

    from pixtrans.config import load_config
    from pixtrans.training.loop import fit

    run = tmp_path_factory.mktemp("onnx_run") / "run"
    fit(load_config("pix2pix/demo", tiny_overrides(run, synth_root, **{"train.max_steps": 4})))
    return run


@needs_onnx
def test_cli_export_onnx_int8_and_translate_with_each_backend(tiny_run, synth_root, tmp_path, capsys):
    from pixtrans.cli import main
    from pixtrans.metrics import inception

    try:
        inception.find_inception_weights()
        fid = ["--fid"]
    except PixtransError:  # no Inception weights here: the rest of the report still runs
        fid = []
    assert main(["export", str(tiny_run), "--onnx", "--int8", "--calibration", "3", *fid]) == 0
    printed = capsys.readouterr().out
    assert "G.onnx" in printed and "dB PSNR vs fp32" in printed and "ms int8" in printed
    export = tiny_run / "export"
    entry = json.loads((export / "config.json").read_text())["generators"]["G"]
    report = entry["int8"]
    assert report["file"] == "G.int8.onnx" and (export / "G.int8.onnx").is_file()
    assert report["calibration"]["images"] == 3 and report["calibration"]["split"] == "train"
    assert np.isfinite(report["psnr_db"]) and report["latency_ms"]["int8"] > 0
    assert report["l1_fp32"] is not None  # paired data: L1 against the targets
    if fid:
        assert np.isfinite(report["fid_fp32"]) and np.isfinite(report["fid_int8"])
    assert "QuantizeLinear" in op_types(export / "G.int8.onnx")
    # every conv weight is int8, the U-Net's ConvTranspose layers included: each went sub-pixel
    # (Convs of its output phases + DepthToSpace), there being no integer ConvTranspose kernel
    import onnx

    graph = onnx.load(str(export / "G.int8.onnx")).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(made_by.get(n.input[1]) == "DequantizeLinear" for n in convs)
    assert not any(n.op_type == "ConvTranspose" for n in graph.node)
    ups = sum(n.op_type == "ConvTranspose" for n in onnx.load(str(export / "G.onnx")).graph.node)
    rewrites = report["rewrites"]
    assert ups > 0 and rewrites["conv_transpose"] == rewrites["subpixel"] == ups
    assert sum(n.op_type == "DepthToSpace" for n in graph.node) == ups
    # Convs with fewer than 16 outputs (this ngf-4 net's narrow layers and the RGB layer's four
    # phases) got zero filters up to 16, sliced back after
    widened = [n for n in convs if n.output[0].endswith("_wide")]
    weights = {t.name: t for t in graph.initializer}
    assert len(widened) == rewrites["widened"] >= 4
    assert sum(n.op_type == "Slice" for n in graph.node) == len(widened)
    for n in widened:
        w_q = made_by_node(graph, n.input[1]).input[0]  # DequantizeLinear(int8 weight)
        assert weights[w_q].dims[0] == 16

    src = next(p for p in sorted(synth_root.rglob("*.png")) if "val" in p.parts)
    outs = {}
    for backend in ("torch", "onnxruntime", "onnxruntime-int8"):
        dst = tmp_path / f"{backend}.png"
        assert (
            main(["translate", str(tiny_run), str(src), str(dst), "--backend", backend, "--mode", "eval"])
            == 0
        )
        outs[backend] = np.asarray(Image.open(dst), dtype=np.int16)
    assert np.abs(outs["torch"] - outs["onnxruntime"]).max() <= 1  # fp32: rounding at most
    assert outs["onnxruntime-int8"].shape == outs["torch"].shape
    # paper mode on the ONNX backend: refused, in one line
    assert main(["translate", str(tiny_run), str(src), str(tmp_path / "p.png"), "--backend", "onnxruntime",
                 "--mode", "paper"]) == 2  # fmt: skip
    assert "no paper-mode graph" in capsys.readouterr().err
    # bf16 autocast is a torch-backend setting: refused with the ONNX graph, in one line
    assert main(["translate", str(tiny_run), str(src), str(tmp_path / "q.png"), "--backend", "onnxruntime",
                 "--precision", "bf16"]) == 2  # fmt: skip
    assert "torch backend only" in capsys.readouterr().err and not (tmp_path / "q.png").exists()
    # auto means the best the backend has: its fp32 graph
    assert Translator.from_pretrained(tiny_run, backend="onnxruntime", precision="auto").amp_dtype is None

    # evaluate scores each backend by one protocol: fp32 ONNX equals torch, int8 is recorded as such
    scores = {}
    for backend in ("torch", "onnxruntime", "onnxruntime-int8"):
        out_json = tmp_path / f"eval_{backend}.json"
        args = ["--split", "val", "--metrics", "l1,psnr", "--backend", backend, "--json", str(out_json)]
        assert main(["evaluate", str(tiny_run), *args, "--out", str(tmp_path / f"eval_{backend}")]) == 0
        scores[backend] = json.loads(out_json.read_text())
        assert scores[backend]["backend"] == backend
    assert abs(scores["onnxruntime"]["metrics"]["l1"] - scores["torch"]["metrics"]["l1"]) < 1e-3
    assert np.isfinite(scores["onnxruntime-int8"]["metrics"]["psnr"])
    paper = ["--split", "val", "--backend", "onnxruntime", "--mode", "paper"]
    assert main(["evaluate", str(tiny_run), *paper]) == 2
    assert "add --mode eval" in capsys.readouterr().err


@needs_onnx
def test_int8_below_30_db_warns(tiny_run, monkeypatch):
    from pixtrans.deploy import quantize

    export_onnx(tiny_run / "export")
    monkeypatch.setattr(quantize, "MIN_PSNR_DB", 1e9)  # every int8 model "falls below" it
    with pytest.warns(UserWarning, match="quality does not hold"):
        reports = quantize.quantize_export(tiny_run / "export", calibration=2)
    assert reports["G"]["quality_holds"] is False


def test_int8_needs_onnx_first(tmp_path):
    from pixtrans.cli import main

    out, _ = _image_export(tmp_path, UNET)
    assert main(["export", str(out), "--int8"]) == 2


# ----------------------------------------------------------------------------------------------
# 16-bit in -> 16-bit out


def test_sixteen_bit_files_translate_to_sixteen_bit_files(tmp_path):
    import tifffile

    from pixtrans.cli import main

    grey_out, _ = _image_export(tmp_path / "grey", RESNET, input_nc=1, output_nc=1)
    colour_out, _ = _image_export(tmp_path / "colour", RESNET)
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, (24, 40), dtype=np.uint16)
    colour = rng.integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    tifffile.imwrite(tmp_path / "colour.tif", colour, photometric="rgb")

    args = ["translate", str(grey_out), str(tmp_path / "grey.png"), str(tmp_path / "g_out.png")]
    assert main([*args, "--mode", "eval"]) == 0
    g = Image.open(tmp_path / "g_out.png")
    assert g.mode.startswith("I;16")
    want = Translator.from_pretrained(grey_out)(grey, mode="eval")  # numpy uint16 in -> uint16 out
    assert want.dtype == np.uint16 and np.abs(np.asarray(g, np.int64) - want.astype(np.int64)).max() <= 1

    folder = tmp_path / "folder_in"
    folder.mkdir()
    tifffile.imwrite(folder / "c.tif", colour, photometric="rgb")
    Image.fromarray((colour >> 8).astype(np.uint8)).save(folder / "eight.png")
    assert main(["translate", str(colour_out), str(folder), str(tmp_path / "c_out"), "--mode", "eval"]) == 0
    written = tifffile.imread(tmp_path / "c_out" / "c.tif")  # 16-bit colour: TIFF (PNG writer has none)
    want = Translator.from_pretrained(colour_out)(colour, mode="eval")
    assert written.dtype == np.uint16 and np.abs(written.astype(np.int64) - want.astype(np.int64)).max() <= 1
    assert np.asarray(Image.open(tmp_path / "c_out" / "eight.png")).dtype == np.uint8  # 8-bit stays 8-bit


@needs_onnx
def test_pix2pixhd_run_exports_and_quantizes_g_and_e_on_its_label_maps(tmp_path):
    """The labelmap route: calibration inputs are encoded label maps (+ the encoder's features
    of the photo) from the run's dataset; E is calibrated on photos."""
    from test_pix2pixhd import SAMPLE, tiny_hd

    from pixtrans.cli import main
    from pixtrans.config import load_config
    from pixtrans.training.loop import fit

    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not found")
    run = tmp_path / "hd"
    fit(load_config("pix2pixhd/cityscapes_sample", tiny_hd(run, **{"train.max_steps": 2})))
    assert main(["export", str(run), "--onnx", "--int8", "--calibration", "2"]) == 0
    gens = json.loads((run / "export" / "config.json").read_text())["generators"]
    assert set(gens) == {"G", "E"}
    for name in ("G", "E"):
        assert gens[name]["onnx"]["max_abs_diff_vs_torch"] < 1e-4
        assert np.isfinite(gens[name]["int8"]["psnr_db"])
    assert gens["E"]["int8"]["host_step"] == "instance_mean"
    t = Translator.from_pretrained(run, backend="onnxruntime-int8")
    label = torch.randint(0, 35, (1, 1, 32, 64))
    y = t.translate_tensor(label, label * 1000, seed=0)
    assert y.shape == (1, 3, 32, 64) and torch.isfinite(y).all()


@needs_onnx
def test_cyclegan_run_quantizes_both_directions_without_paired_l1(tmp_path):
    """Unpaired data: each direction calibrates on its own domain; no L1 (no targets)."""
    from test_cyclegan import make_unpaired, tiny_cyclegan

    from pixtrans.cli import main
    from pixtrans.config import load_config
    from pixtrans.training.loop import fit

    root = make_unpaired(tmp_path / "data")
    run = tmp_path / "cg"
    fit(load_config("cyclegan/summer2winter", tiny_cyclegan(run, root, **{"train.max_steps": 2})))
    assert main(["export", str(run), "--onnx", "--int8", "--calibration", "2"]) == 0
    gens = json.loads((run / "export" / "config.json").read_text())["generators"]
    for name in ("G_ab", "G_ba"):
        assert gens[name]["int8"]["file"] == f"{name}.int8.onnx" and np.isfinite(
            gens[name]["int8"]["psnr_db"]
        )
        assert "l1_fp32" not in gens[name]["int8"]


# ----------------------------------------------------------------------------------------------
# The sub-pixel rewrite int8 relies on: exact for every ConvTranspose whose output is s x its input


def made_by_node(graph, tensor: str):
    return next(n for n in graph.node if tensor in n.output)


def _ort(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    from pixtrans.deploy.ort_backend import session_from_bytes

    return session_from_bytes(model_bytes, rewrite=False).run(None, {"input": x})[0]


@needs_onnx
@pytest.mark.parametrize(
    "k, s, p, op, bias, bn",
    [(4, 2, 1, 0, False, True), (3, 2, 1, 1, True, False), (3, 2, 1, 1, True, True),
     (5, 3, 1, 0, True, False), (2, 2, 0, 0, True, False), (6, 2, 2, 0, False, True)],
    ids=["unet_k4s2p1_bn", "resnet_k3s2p1op1", "k3s2p1op1_bn", "k5s3p1", "k2s2p0", "k6s2p2_bn"],
)  # fmt: skip
def test_subpixel_rewrite_equals_conv_transpose(k, s, p, op, bias, bn):
    import onnx

    from pixtrans.deploy.onnx_export import to_onnx_bytes
    from pixtrans.deploy.rewrite import conv_transpose_to_subpixel, fold_batchnorm

    torch.manual_seed(0)
    layers = [torch.nn.ConvTranspose2d(3, 5, k, s, p, output_padding=op, bias=bias)]
    if bn:
        layers.append(torch.nn.BatchNorm2d(5))
    net = _trained_looking(torch.nn.Sequential(*layers))
    for m in net.modules():  # BatchNorm affine parameters that are not the identity either
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5), torch.nn.init.uniform_(m.bias, -0.5, 0.5)
    data = to_onnx_bytes(net, 3)
    rewritten = conv_transpose_to_subpixel(fold_batchnorm(onnx.load_from_string(data)))
    onnx.checker.check_model(rewritten)
    kinds = [n.op_type for n in rewritten.graph.node]
    assert "ConvTranspose" not in kinds and "BatchNormalization" not in kinds
    assert kinds.count("Conv") == s * s and kinds.count("DepthToSpace") == 1
    # the phase kernels hold exactly the transposed kernel's taps: same FLOPs
    taps = sum(int(np.prod(t.dims[2:])) for t in rewritten.graph.initializer if len(t.dims) == 4)
    assert taps == k * k
    for h, w in [(7, 7), (6, 11)]:
        x = np.random.default_rng(h).standard_normal((2, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        got = _ort(rewritten.SerializeToString(), x)
        assert got.shape == want.shape == (2, 5, s * h, s * w)
        assert np.abs(got - want).max() < 1e-4


@needs_onnx
def test_subpixel_rewrite_leaves_inexact_and_grouped_layers_alone():
    import onnx

    from pixtrans.deploy.onnx_export import to_onnx_bytes
    from pixtrans.deploy.rewrite import conv_transpose_to_subpixel

    torch.manual_seed(0)
    # output 2n - 1 (not s x the input), a grouped layer, and a stride-1 layer stay ConvTranspose
    net = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(4, 4, 3, 2, 1),
        torch.nn.ConvTranspose2d(4, 4, 4, 2, 1, groups=2),
        torch.nn.ConvTranspose2d(4, 4, 3, 1, 1),
    ).eval()
    model = conv_transpose_to_subpixel(onnx.load_from_string(to_onnx_bytes(net, 4)))
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose"] * 3
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 6)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(_ort(model.SerializeToString(), x) - net(torch.from_numpy(x)).numpy()).max() < 1e-5


@needs_onnx
def test_narrow_convs_are_widened_with_zero_filters_and_sliced_back():
    import onnx

    from pixtrans.deploy.onnx_export import to_onnx_bytes
    from pixtrans.deploy.rewrite import MIN_OUT_CHANNELS, for_onnxruntime

    torch.manual_seed(0)
    net = torch.nn.Sequential(  # 3 -> 20 stays; 20 -> 3 (with and without bias) widens
        torch.nn.Conv2d(3, 20, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(20, 3, 7, padding=3),
        torch.nn.Conv2d(3, 3, 1, bias=False),
    ).eval()  # fmt: skip
    data = to_onnx_bytes(net, 3)
    model = for_onnxruntime(onnx.load_from_string(data))
    onnx.checker.check_model(model)
    kinds = [n.op_type for n in model.graph.node]
    assert kinds == ["Conv", "Relu", "Conv", "Slice", "Conv", "Slice"]
    out_channels = sorted(t.dims[0] for t in model.graph.initializer if len(t.dims) == 4)
    assert out_channels == [MIN_OUT_CHANNELS, MIN_OUT_CHANNELS, 20]
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 13)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = _ort(model.SerializeToString(), x)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
