"""A/B of one speed setting, in one process: two trainers of the same config, built from the same
seed and fed the same batch, differ only in the overrides given for B (and A), and their
`train_step` is timed call by call in alternation (A B, B A, ...) so machine noise falls on both.
Generator inference (eval, batch 1) is timed the same way. Prints B / A and writes JSON.

    python benchmarks/ab_trainer.py pix2pix/facades --b train.compile=on
    python benchmarks/ab_trainer.py pix2pix/facades --b conv.small_map_pixels=0      # GEMM path off
    python benchmarks/ab_trainer.py pix2pix/facades --b train.channels_last=on --steps 12

`conv.small_map_pixels=N` is not a config key: it sets nets/conv.py's SMALL_MAP_PIXELS around that
variant's calls (0 = every convolution through oneDNN); `conv.gemm_skipped_widths=4` (a comma
list, empty for none, `auto` for the CPU-dependent rule) sets GEMM_SKIPPED_WIDTHS likewise, and
`conv.winograd_min_channels=N` WINOGRAD_MIN_CHANNELS (a large N turns nets/winograd.py off).
A compiled variant's first call (the compile) is timed apart and reported as `first_call_s`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from pixtrans.bench.command import bench_dataset
from pixtrans.bench.timing import time_interleaved
from pixtrans.config import load_config
from pixtrans.nets import conv
from pixtrans.runtime import synchronize, tune_malloc
from pixtrans.training.loop import Trainer

# nets/conv.py settings a variant may change (not config keys): name -> parser of the value
PSEUDO = {
    "conv.small_map_pixels": ("SMALL_MAP_PIXELS", int),
    "conv.winograd_min_channels": ("WINOGRAD_MIN_CHANNELS", int),
    "conv.gemm_skipped_widths": (
        "GEMM_SKIPPED_WIDTHS",
        lambda v: None if v == "auto" else tuple(int(w) for w in v.split(",") if w),
    ),
}


def build(preset: str, common: list[str], extra: list[str]):
    """A trainer for preset + common + extra overrides, with its fixed batch and eval input."""
    settings = {}
    for o in extra:
        key, _, value = o.partition("=")
        if key in PSEUDO:
            name, parse = PSEUDO[key]
            settings[name] = parse(value)
    cfg = load_config(preset, [*common, *(o for o in extra if o.partition("=")[0] not in PSEUDO)])
    torch.manual_seed(cfg.seed)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = bench_dataset(cfg, max(2 * cfg.train.batch_size, 4))
        trainer = Trainer(cfg, run_dir=tmp, dataset=dataset)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(cfg.train.batch_size)])
    batch = trainer.to_device({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    net = trainer.method.nets[trainer.exported[0]]
    with torch.no_grad():
        x = trainer.method.translator_input({k: v[:1] for k, v in batch.items()})

    def with_settings(fn):
        def call():
            saved = {name: getattr(conv, name) for name in settings}
            for name, value in settings.items():
                setattr(conv, name, value)
            try:
                fn()
            finally:
                for name, value in saved.items():
                    setattr(conv, name, value)

        return call

    def step():
        trainer.train_step(batch)

    def infer():
        net.eval()
        with torch.no_grad():
            net(x)
        net.train()

    return trainer, with_settings(step), with_settings(infer)


def first_call(fn, device) -> float:
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="+", help="preset, then key=value overrides common to A and B")
    ap.add_argument("--a", nargs="*", default=[], help="overrides of variant A (default: none)")
    ap.add_argument("--b", nargs="+", required=True, help="overrides of variant B")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tune_malloc()
    preset, common = args.config[0], args.config[1:]
    ta, step_a, infer_a = build(preset, common, args.a)
    tb, step_b, infer_b = build(preset, common, args.b)
    dev = ta.device
    first = {"A": first_call(step_a, dev), "B": first_call(step_b, dev)}
    steps = time_interleaved({"A": step_a, "B": step_b}, args.warmup, args.steps, dev)
    infers = time_interleaved({"A": infer_a, "B": infer_b}, args.warmup, args.steps, dev)
    out = {
        "config": args.config,
        "A": args.a,
        "B": args.b,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "first_call_s": first,
        "train_step": {k: v.as_dict() for k, v in steps.items()},
        "inference": {k: v.as_dict() for k, v in infers.items()},
        "B_over_A": {
            "train_step": steps["B"].median / steps["A"].median,
            "inference": infers["B"].median / infers["A"].median,
        },
    }
    for kind, st in (("train step", steps), ("inference", infers)):
        a, b = st["A"], st["B"]
        print(
            f"{kind}: A {a.median:.4f} s (p10 {a.p10:.4f}) | B {b.median:.4f} s (p10 {b.p10:.4f}) "
            f"| B/A {b.median / a.median:.3f}"
        )
    print(f"first call (compiles when compiled): A {first['A']:.2f} s, B {first['B']:.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
