"""Training convolutions (forward + the gradients training needs), layer by layer on the shapes
of our nets and losses, in one run: oneDNN's direct convolution, NNPACK's training path (forward
and input gradient; weight gradient direct, nets/conv.py) and our Winograd F(4x4, 3x3) /
F(3x3, 4x4) (nets/winograd.py). Calls rotate, medians are reported, with the largest difference
of output and gradients from the direct form (relative to each one's largest value).

    python benchmarks/winograd.py --json benchmarks/results/winograd.json
    # an fp32-only CPU's kernels on an AVX-512 machine: cap every library, as `pixtrans bench` records
    export ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2
    python benchmarks/winograd.py --json benchmarks/results/winograd_avx2_capped.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from pixtrans.nets import conv
from pixtrans.nets.winograd import winograd_conv2d
from pixtrans.runtime import isa_limits, tune_malloc

# (what, in channels, out channels, kernel, padding, input height, input width, weight trained?)
LAYERS = [
    ("ResNet-9 block, CycleGAN 256 (reflection-padded input)", 256, 256, 3, 0, 66, 66, True),
    ("pix2pixHD global block, 256x512 crop", 1024, 1024, 3, 0, 18, 34, True),
    ("pix2pixHD global block, 512x1024", 1024, 1024, 3, 0, 34, 66, True),
    ("PatchGAN 4x4 stride 1, pix2pix/CycleGAN 256", 256, 512, 4, 1, 32, 32, True),
    ("PatchGAN 4x4 stride 1, pix2pixHD 256x512 scale 1", 256, 512, 4, 2, 32, 64, True),
    ("PatchGAN 4x4 stride 1, pix2pixHD 256x512 scale 2", 256, 512, 4, 2, 16, 32, True),
    ("VGG19 conv1_2, 256x512 (frozen)", 64, 64, 3, 1, 256, 512, False),
    ("VGG19 conv2_2, 256x512 (frozen)", 128, 128, 3, 1, 128, 256, False),
    ("VGG19 conv3_x, 256x512 (frozen)", 256, 256, 3, 1, 64, 128, False),
    ("VGG19 conv4_x, 256x512 (frozen)", 512, 512, 3, 1, 32, 64, False),
    ("VGG19 conv5_1, 256x512 (frozen)", 512, 512, 3, 1, 16, 32, False),
    ("small map: 512 ch at 8x8", 512, 512, 3, 1, 8, 8, True),
]


def rotate(fns: dict, reps: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(what, cin, cout, k, pad, h, w, trained, reps) -> dict:
    torch.manual_seed(0)
    x = torch.randn(1, cin, h, w)
    weight = torch.randn(cout, cin, k, k) * (2.0 / (cin * k * k)) ** 0.5
    bias = torch.randn(cout) * 0.1
    grad = torch.randn(1, cout, h + 2 * pad - k + 1, w + 2 * pad - k + 1)

    def path(forward):
        def call():
            xr = x.clone().requires_grad_(True)
            wr, br = weight.clone().requires_grad_(trained), bias.clone().requires_grad_(trained)
            y = forward(xr, wr, br)
            y.backward(grad)
            return [y, xr.grad] + ([wr.grad, br.grad] if trained else [])

        return call

    fns = {
        "direct": path(lambda a, b, c: F.conv2d(a, b, c, padding=pad)),
        "winograd": path(lambda a, b, c: winograd_conv2d(a, b, c, (pad, pad))),
    }
    if conv.nnpack_available():
        fns["nnpack"] = path(lambda a, b, c: conv._NnpackConvFunction.apply(a, b, c, [pad, pad]))
    ref = fns["direct"]()
    diffs = {}
    for name in fns:
        if name != "direct":
            out = fns[name]()
            diffs[name] = max(
                ((p - q).abs().max() / p.abs().max()).item() for p, q in zip(ref, out, strict=True)
            )
    medians = rotate(fns, reps)
    flops = 2 * cin * cout * k * k * grad.shape[-2] * grad.shape[-1] * (3 if trained else 2)
    row = {
        "layer": what,
        "shape": [cin, cout, k, pad, h, w],
        "weight_trained": trained,
        "direct_gflops": flops / 1e9,
        "median_s": medians,
        "vs_direct": {n: medians[n] / medians["direct"] for n in medians if n != "direct"},
        "max_rel_diff": diffs,
    }
    ratios = "  ".join(f"{n} {r:.2f}x ({diffs[n]:.0e})" for n, r in row["vs_direct"].items())
    print(f"{what:55s} direct {medians['direct'] * 1e3:7.1f} ms  {ratios}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    tune_malloc()  # as the CLI does before training
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_limits": isa_limits(),
    }
    print(info)
    rows = [measure(*layer, reps=args.reps) for layer in LAYERS]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**info, "layers": rows}, f, indent=1)


if __name__ == "__main__":
    main()
