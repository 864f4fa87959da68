"""Deployment speed on this machine, in one run: torch fp32 (our eval path) vs ONNX Runtime fp32
vs ONNX Runtime int8 vs the official implementation's generator forward, for

    unet_256        pix2pix U-Net (ngf 64, BatchNorm, dropout)       256 x 256
    resnet_9blocks  CycleGAN ResNet (ngf 64, InstanceNorm, 9 blocks) 256 x 256
    global          pix2pixHD G1 (ngf 64, 4 downs, 9 blocks), 36-channel label input, 512 x 1024

each as a ratio to the FLOP floor that `pixtrans bench` uses (the net's forward FLOPs from
torch's flop counter / this machine's best sustained conv throughput, bench/floor.py), and the
official generator built from ../shared/reference/*/models/networks.py by path (their own
classes, our weights loaded into them so both compute the same function). Calls are timed
interleaved (one call of each path in turn, rotating the order), medians reported; then back to
back (a block of calls per path, as a deployed model runs), medians reported beside them.

int8: ONNX Runtime static quantization (deploy/quantize.py) calibrated on a few constructed
inputs; its PSNR against fp32 is measured on other inputs. The nets are randomly initialised
(no trained weights of these sizes are at hand), so that PSNR is indicative only.

Then a tiled translation's peak memory: 2048 x 2048 and 8192 x 8192 through a U-Net (unet_256
layout, ngf 16 so the 8192 run fits in minutes on two cores), tile 512, overlap 64, each in a fresh
subprocess, peak RSS from getrusage.

    nice python benchmarks/deploy.py --json benchmarks/results/deploy.json

Like `pixtrans translate`, it sets OMP_WAIT_POLICY=PASSIVE before torch loads (idle OpenMP threads
sleep, so NNPACK's threads get the cores); the official forward runs in the same process under it.
"ours_torch_exact" is our torch path with nets/conv.py's fast algorithms off (oneDNN's direct
convolution, as the official code); "ours_torch_bf16" is `translate --precision bf16` (bf16
autocast; fast where the CPU has AMX or AVX512-BF16), its PSNR against fp32 measured like int8's.
"ours_ort_fp32" / "ours_ort_int8" run the graph through deploy/rewrite.py (ConvTranspose as the
Convs of its output phases, the RGB layer widened), as `--backend onnxruntime[-int8]` does; the
"_transposed" columns are the A/B: the graph as exported, and int8 of it (ConvTranspose in float).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads libgomp, as the CLI does

import argparse
import importlib.util
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pixtrans.bench.floor import count_flops, measure_conv_throughput
from pixtrans.bench.official import JUNYANZ, NVIDIA, default_root
from pixtrans.deploy.onnx_export import INPUT_NAME, check_graph, to_onnx_bytes
from pixtrans.deploy.ort_backend import session_from_bytes
from pixtrans.deploy.quantize import quantize_file
from pixtrans.inference import Translator
from pixtrans.metrics.paired import psnr
from pixtrans.nets import build_generator
from pixtrans.nets.conv import exact_convs, fast_algorithms_enabled
from pixtrans.runtime import native_bf16

MODELS = {
    "unet_256": {
        "spec": {"name": "unet", "num_downs": 8, "ngf": 64, "norm": "batch", "dropout": True},
        "input_nc": 3,
        "size": (256, 256),
        "reps": 12,
    },
    "resnet_9blocks": {
        "spec": {"name": "resnet", "ngf": 64, "n_blocks": 9, "norm": "instance"},
        "input_nc": 3,
        "size": (256, 256),
        "reps": 8,
    },
    "global_512x1024": {
        "spec": {"name": "global", "ngf": 64, "n_downsampling": 4, "n_blocks": 9, "norm": "instance"},
        "input_nc": 36,  # 35 Cityscapes classes + instance edges
        "size": (512, 1024),
        "reps": 4,
    },
}


def _load_by_path(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_net(key: str, root: Path) -> torch.nn.Module:
    """The official generator class, from their networks.py, with their settings."""
    if key == "global_512x1024":
        nets = _load_by_path(root / NVIDIA / "models" / "networks.py", "nvidia_networks")
        return nets.GlobalGenerator(36, 3, 64, 4, 9, nets.get_norm_layer("instance"))
    nets = _load_by_path(root / JUNYANZ / "models" / "networks.py", "junyanz_networks")
    if key == "unet_256":
        return nets.define_G(3, 3, 64, "unet_256", norm="batch", use_dropout=True)
    return nets.define_G(3, 3, 64, "resnet_9blocks", norm="instance", use_dropout=False)


def inputs(key: str, n: int, seed: int) -> list[np.ndarray]:
    """Constructed inputs: smooth waves + noise for images, blocky one-hot maps for labels."""
    cfg = MODELS[key]
    h, w = cfg["size"]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if cfg["input_nc"] == 36:
            blocks = rng.integers(0, 35, (h // 32, w // 32))
            label = np.kron(blocks, np.ones((32, 32), dtype=np.int64))
            x = np.zeros((1, 36, h, w), np.float32)
            x[0, label, np.arange(h)[:, None], np.arange(w)[None, :]] = 1.0
            edges = np.zeros((h, w), np.float32)
            edges[:, 1:] += label[:, 1:] != label[:, :-1]
            edges[1:, :] += label[1:, :] != label[:-1, :]
            x[0, 35] = (edges > 0).astype(np.float32)
        else:
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            f = rng.uniform(3, 12, 3)
            x = np.stack([np.sin(xx / f[0] + yy / f[1]), np.cos(yy / f[2] - xx / f[0]), (xx - yy) / (h + w)])
            x = np.clip(x * 0.8 + rng.normal(0, 0.1, x.shape), -1, 1).astype(np.float32)[None]
        out.append(x)
    return out


def bench_model(key: str, root: Path, floor_flops_per_s: float, workdir: Path) -> dict:
    cfg = MODELS[key]
    torch.manual_seed(0)
    ours = build_generator(cfg["spec"], cfg["input_nc"], 3).eval()
    translator = Translator(ours, input_nc=cfg["input_nc"], output_nc=3)
    translator_bf16 = Translator(ours, input_nc=cfg["input_nc"], output_nc=3, precision="bf16")
    theirs = official_net(key, root).eval()
    loaded = True
    try:
        theirs.load_state_dict(ours.state_dict())  # same weights: the same function
    except RuntimeError:
        loaded = False
    x_np = inputs(key, 1, seed=1)[0]
    x = torch.from_numpy(x_np)

    data = to_onnx_bytes(ours, cfg["input_nc"])
    check_graph(data, key)
    fp32 = workdir / f"{key}.onnx"
    fp32.write_bytes(data)
    int8 = workdir / f"{key}.int8.onnx"
    t0 = time.perf_counter()
    quantize_file(fp32, int8, inputs(key, 3, seed=2))
    quantize_s = time.perf_counter() - t0
    s32, s8 = session_from_bytes(fp32), session_from_bytes(int8)
    # the A/B of the sub-pixel rewrite: the graph as exported, int8 with float ConvTranspose
    int8_transposed = workdir / f"{key}.int8_transposed.onnx"
    quantize_file(fp32, int8_transposed, inputs(key, 3, seed=2), rewrite=False)
    s32_transposed = session_from_bytes(fp32, rewrite=False)
    s8_transposed = session_from_bytes(int8_transposed, rewrite=False)

    with torch.inference_mode():
        flops = count_flops(lambda: ours(x))
        want = translator.translate_tensor(x, mode="eval").numpy()
        official_out = theirs(x).numpy()
    got32 = s32.run(None, {INPUT_NAME: x_np})[0]
    held = inputs(key, 2, seed=3)

    def mean_psnr(reference, tested) -> float:
        """PSNR of `tested` against `reference` (each [-1,1] numpy -> [-1,1] numpy) over `held`."""
        return float(
            np.mean([psnr((reference(h) + 1) / 2, np.clip((tested(h) + 1) / 2, 0, 1)) for h in held])
        )

    psnr_int8 = mean_psnr(
        lambda h: s32.run(None, {INPUT_NAME: h})[0], lambda h: s8.run(None, {INPUT_NAME: h})[0]
    )
    psnr_int8_transposed = mean_psnr(
        lambda h: s32.run(None, {INPUT_NAME: h})[0], lambda h: s8_transposed.run(None, {INPUT_NAME: h})[0]
    )
    psnr_bf16 = mean_psnr(
        lambda h: translator.translate_tensor(torch.from_numpy(h), mode="eval").numpy(),
        lambda h: translator_bf16.translate_tensor(torch.from_numpy(h), mode="eval").numpy(),
    )

    def official_call():
        with torch.no_grad():
            theirs(x)

    def torch_call():
        translator.translate_tensor(x, mode="eval")

    def torch_bf16_call():
        translator_bf16.translate_tensor(x, mode="eval")

    def torch_exact_call():
        with exact_convs():
            translator.translate_tensor(x, mode="eval")

    paths = {
        "official_torch": official_call,
        "ours_torch_fp32": torch_call,
        "ours_torch_exact": torch_exact_call,
        "ours_torch_bf16": torch_bf16_call,
        "ours_ort_fp32": lambda: s32.run(None, {INPUT_NAME: x_np}),
        "ours_ort_int8": lambda: s8.run(None, {INPUT_NAME: x_np}),
        "ours_ort_fp32_transposed": lambda: s32_transposed.run(None, {INPUT_NAME: x_np}),
        "ours_ort_int8_transposed": lambda: s8_transposed.run(None, {INPUT_NAME: x_np}),
    }
    for fn in paths.values():  # warm-up: allocators, oneDNN primitive caches, ORT arenas
        fn()
    times: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for rep in range(cfg["reps"]):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - t)
    # the same paths run back to back, as a deployed model runs: a block of calls per path (its
    # first call dropped), blocks in rotating order. Interleaving puts every call after another
    # path's, whose threads (NNPACK's and ONNX Runtime's spin) and cache traffic it then meets
    block_times: dict[str, list[float]] = {k: [] for k in paths}
    for rnd in range(2):
        for name in names[rnd:] + names[:rnd]:
            for i in range(1 + max(2, cfg["reps"] // 2)):
                t = time.perf_counter()
                paths[name]()
                if i:
                    block_times[name].append(time.perf_counter() - t)
    block = {k: statistics.median(v) for k, v in block_times.items()}
    floor_s = flops / floor_flops_per_s
    med = {k: statistics.median(v) for k, v in times.items()}
    official = med["official_torch"]
    quality_holds = psnr_int8 >= 30.0
    bf16_holds = psnr_bf16 >= 30.0  # the same bar as int8's
    faithful = ["ours_torch_fp32", "ours_ort_fp32"] + (["ours_ort_int8"] if quality_holds else [])
    faithful += ["ours_torch_bf16"] if bf16_holds else []
    fastest = min(faithful, key=med.get)
    return {
        "input": [1, cfg["input_nc"], *cfg["size"]],
        "spec": cfg["spec"],
        "gflop": flops / 1e9,
        "floor_ms": 1000 * floor_s,
        "median_ms": {k: 1000 * v for k, v in med.items()},
        "back_to_back_median_ms": {k: 1000 * v for k, v in block.items()},
        "back_to_back_vs_official": {k: v / block["official_torch"] for k, v in block.items()},
        "all_ms": {k: [round(1000 * t, 2) for t in v] for k, v in times.items()},
        "ratio_to_floor": {k: v / floor_s for k, v in med.items()},
        "vs_official": {k: v / official for k, v in med.items()},
        "int8_speedup_vs_ort_fp32": med["ours_ort_fp32"] / med["ours_ort_int8"],
        "int8_speedup_vs_torch_fp32": med["ours_torch_fp32"] / med["ours_ort_int8"],
        "int8_speedup_vs_best_fp32": min(med["ours_torch_fp32"], med["ours_ort_fp32"]) / med["ours_ort_int8"],
        "back_to_back_int8_speedup_vs_torch_fp32": block["ours_torch_fp32"] / block["ours_ort_int8"],
        "back_to_back_int8_speedup_vs_best_fp32": min(block["ours_torch_fp32"], block["ours_ort_fp32"])
        / block["ours_ort_int8"],
        "int8_psnr_db_vs_fp32": psnr_int8,
        "int8_transposed_psnr_db_vs_fp32": psnr_int8_transposed,
        "int8_quality_holds": quality_holds,
        "bf16_psnr_db_vs_fp32": psnr_bf16,
        "bf16_quality_holds": bf16_holds,
        "fastest_faithful": fastest,
        "fastest_faithful_vs_official": med[fastest] / official,
        "goal_half_official_met": med[fastest] / official <= 0.5,
        "goal_int8_2x_met": quality_holds and med["ours_torch_fp32"] / med["ours_ort_int8"] >= 2.0,
        "ort_vs_torch_max_abs_diff": float(np.abs(got32 - want).max()),
        "official_vs_ours_max_abs_diff": float(np.abs(official_out - want).max()) if loaded else None,
        "official_weights_loaded": loaded,
        "quantize_seconds": quantize_s,
    }


TILE_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from pixtrans.inference import Translator
from pixtrans.nets import build_generator
side = int(sys.argv[1])
torch.manual_seed(0)
net = build_generator({"name": "unet", "num_downs": 8, "ngf": 16, "norm": "batch"}, 3, 3)
t = Translator(net, input_nc=3, output_nc=3)
rng = np.random.default_rng(0)
img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = t.translate_tiled(img, tile=512, overlap=64)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"side": side, "seconds": seconds, "peak_rss_mb": peak / 1024,
                  "rss_before_translation_mb": before / 1024, "image_bytes_mb": 2 * img.nbytes / 2**20,
                  "out_shape": list(out.shape)}))
"""


def bench_tiling(sides=(2048, 8192)) -> list[dict]:
    results = []
    for side in sides:
        proc = subprocess.run(
            [sys.executable, "-c", TILE_CHILD, str(side)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            results.append({"side": side, "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/deploy.json")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--floor-seconds", type=float, default=6.0)
    parser.add_argument("--no-tiling", action="store_true")
    parser.add_argument("--tiling-only", action="store_true")
    args = parser.parse_args()
    if args.tiling_only:  # (re)measure the tiling part into an existing result file
        out = Path(args.json)
        result = json.loads(out.read_text()) if out.is_file() else {}
        result["tiling"] = bench_tiling()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out}")
        return 0
    root = default_root()
    if root is None:
        print("official sources not found (../shared/reference)", file=sys.stderr)
        return 2
    floor = measure_conv_throughput(seconds=args.floor_seconds)
    print(f"conv floor: {floor / 1e9:.1f} GFLOP/s", flush=True)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "fast_conv_algorithms": fast_algorithms_enabled(),
        },
        "floor_gflop_per_s": floor / 1e9,
        "models": {},
    }
    import onnxruntime

    result["machine"]["onnxruntime"] = onnxruntime.__version__
    result["machine"]["native_bf16"] = native_bf16(torch.device("cpu"))[1]
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models.split(","):
            r = bench_model(key, root, floor, Path(tmp))
            result["models"][key] = r
            shown = (
                "median_ms",
                "back_to_back_median_ms",
                "ratio_to_floor",
                "vs_official",
                "int8_psnr_db_vs_fp32",
                "bf16_psnr_db_vs_fp32",
            )
            print(key, json.dumps({k: r[k] for k in shown}), flush=True)
    if not args.no_tiling:
        result["tiling"] = bench_tiling()
    elif Path(args.json).is_file():  # keep the tiling figures of an earlier run, labelled as such
        earlier = json.loads(Path(args.json).read_text()).get("tiling")
        if earlier:
            result["tiling"] = earlier
            result["tiling_from_an_earlier_run"] = True
    result["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
