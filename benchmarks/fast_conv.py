"""NNPACK (Winograd F(6x6, 3x3) / FFT) against oneDNN's direct convolution, layer by layer, on the
shapes of our generators, in one run: inference (forward, no gradients) and training (forward +
input and weight gradients through nets/conv.py's training path). Calls alternate, medians are
reported, with the largest relative difference of the outputs (against their range).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/fast_conv.py --json benchmarks/results/fast_conv.json

(PASSIVE as `pixtrans translate` sets it: spinning OpenMP threads would take the cores from
NNPACK's own threads.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from pixtrans.nets import conv
from pixtrans.runtime import tune_malloc

# (what, in channels, out channels, kernel, output height, output width)
LAYERS = [
    ("ResNet-9 block (CycleGAN 256)", 256, 256, 3, 64, 64),
    ("pix2pixHD global block (512x1024)", 1024, 1024, 3, 32, 64),
    ("pix2pixHD global block (256x512 training crop)", 1024, 1024, 3, 16, 32),
    ("3x3 512 ch at 32x32 (below the threshold)", 512, 512, 3, 32, 32),
    ("local enhancer block (1024x2048)", 64, 64, 3, 512, 1024),
    ("pix2pixHD input 7x7 (512x1024)", 36, 64, 7, 512, 1024),
    ("pix2pixHD output 7x7 (512x1024)", 64, 3, 7, 512, 1024),
    ("ResNet-9 input 7x7 (3 channels, below the threshold)", 3, 64, 7, 256, 256),
    ("ResNet-9 output 7x7", 64, 3, 7, 256, 256),
]


def alternate(fns: dict, reps: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for rep in range(reps):
        for name in names[rep % 2 :] + names[: rep % 2]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(what: str, cin: int, cout: int, k: int, h: int, w: int, reps: int) -> dict:
    torch.manual_seed(0)
    layer = conv.FastConv2d(cin, cout, k, padding=k // 2)
    x = torch.randn(1, cin, h, w)
    padding = list(layer.padding)

    def infer(fast: bool):
        with torch.no_grad(), conv.exact_convs():
            if fast:  # NNPACK whatever the threshold says, to show where it pays
                return conv._nnpack_per_image(x, layer.weight, layer.bias, padding)
            return layer(x)

    def train(fast: bool):
        xx = x.clone().requires_grad_()
        if fast:
            y = conv._NnpackConvFunction.apply(xx, layer.weight, layer.bias, padding)
        else:
            with conv.exact_convs():
                y = layer(xx)
        y.backward(torch.ones_like(y))
        layer.zero_grad(set_to_none=True)

    direct, fast = infer(False), infer(True)
    with torch.no_grad():
        taken = conv._fast_algo_fits(layer, x)
    t_inf = alternate({"direct": lambda: infer(False), "fast": lambda: infer(True)}, reps)
    t_train = alternate({"direct": lambda: train(False), "fast": lambda: train(True)}, max(2, reps // 2))
    return {
        "layer": what,
        "shape": {"cin": cin, "cout": cout, "k": k, "h_out": h, "w_out": w},
        "takes_fast_path_in_inference": taken,
        "inference_ms": {name: 1e3 * v for name, v in t_inf.items()},
        "train_ms": {name: 1e3 * v for name, v in t_train.items()},
        "inference_fast_over_direct": t_inf["fast"] / t_inf["direct"],
        "train_fast_over_direct": t_train["fast"] / t_train["direct"],
        "max_rel_diff": float((fast - direct).abs().max() / direct.abs().max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tune_malloc()
    if not conv.nnpack_available():
        raise SystemExit("this torch has no NNPACK")
    rows = []
    for layer in LAYERS:
        row = measure(*layer, reps=args.reps)
        rows.append(row)
        print(
            f"{row['layer']}: inference {row['inference_fast_over_direct']:.2f}x, "
            f"train {row['train_fast_over_direct']:.2f}x (taken: {row['takes_fast_path_in_inference']}), "
            f"rel diff {row['max_rel_diff']:.1e}",
            flush=True,
        )
    if args.json:
        meta = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        }
        with open(args.json, "w") as f:
            json.dump({"machine": meta, "layers": rows}, f, indent=1)


if __name__ == "__main__":
    main()
