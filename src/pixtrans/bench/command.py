"""`pixtrans bench CONFIG`: the real `Trainer.train_step` of the real loop and the first exported
net's inference, timed against the floor measured a moment earlier at each one's precision
(`run_bench`), on random data shaped by the dataset class's declaration (`bench_dataset`)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pixtrans import PixtransError
from pixtrans.bench.floor import count_flops, measure_conv_throughput
from pixtrans.bench.official import official_baseline
from pixtrans.bench.results import bench_inference, bench_training, format_report, result_dict
from pixtrans.bench.timing import time_interleaved
from pixtrans.registry import DATASETS
from pixtrans.runtime import autocast_to, isa_limits, isa_limits_note, synchronize
from pixtrans.training.loop import Trainer

_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def bench_dataset(cfg, n: int):
    """Random in-memory data shaped like `cfg`'s training batches (the dataset class says how)."""
    return DATASETS.get(cfg.data.dataset).stand_in(cfg.data, n)


def run_bench(
    cfg,
    steps: int = 10,
    warmup: int = 3,
    json_path: str | None = None,
    floor_seconds: float = 6.0,
    against: str | None = None,
    against_root: str | None = None,
) -> dict[str, Any]:
    """Time `Trainer.train_step` and generator inference for `cfg`; print and return the figures
    (and write them to `json_path` as JSON when given). against="official": the official
    implementation's step and inference with the same settings and batch, timed interleaved with
    ours (bench/official.py), and ours / official reported."""
    if against not in (None, "official"):
        raise PixtransError(f"--against '{against}': the one baseline is 'official'")
    t, d = cfg.train, cfg.data
    with tempfile.TemporaryDirectory() as tmp:
        dataset = bench_dataset(cfg, max(2 * t.batch_size, 4))
        trainer = Trainer(cfg, run_dir=tmp, dataset=dataset)
    device = trainer.device
    # The floor is measured at the precision the step's convolutions run in: under train.amp
    # they run in bf16/fp16 (on AMX CPUs and tensor-core GPUs several times the fp32 rate), and
    # dividing a mixed-precision step by the fp32 rate would flatter it. Inference is fp32.
    fp32_throughput = measure_conv_throughput(device, seconds=floor_seconds)
    amp_dtype = trainer.amp_dtype
    throughput = fp32_throughput
    if amp_dtype is not None:
        throughput = measure_conv_throughput(device, dtype=amp_dtype, seconds=floor_seconds)
    train_precision = "fp32" if amp_dtype is None else _DTYPE_NAMES[amp_dtype]
    batch = torch.utils.data.default_collate([dataset[i] for i in range(t.batch_size)])
    batch = trainer.to_device({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    baseline = official_baseline(cfg, batch, against_root) if against else None

    def step():
        trainer.train_step(batch)

    compile_seconds = None
    if trainer.compiled:  # the first step compiles; reported apart from the step time
        t0 = time.perf_counter()
        step()
        synchronize(device)
        compile_seconds = time.perf_counter() - t0

    official: dict[str, Any] = {}
    if baseline is None:
        # bench_training counts the step's FLOPs by running it once (that step doubles as warm-up)
        train = bench_training(
            step,
            throughput=throughput,
            batch_size=t.batch_size,
            warmup=warmup,
            iters=steps,
            device=device,
            extra={"precision": train_precision},
        )
    else:
        # both counted once (a warm-up each), then timed call by call in alternation
        ours_flops, their_flops = count_flops(step), count_flops(baseline.step)
        timed = time_interleaved({"ours": step, "official": baseline.step}, warmup, steps, device)
        train = result_dict(
            "train", timed["ours"], ours_flops, throughput, t.batch_size, {"precision": train_precision}
        )
        official["train"] = result_dict(
            "train", timed["official"], their_flops, fp32_throughput, t.batch_size, {"precision": "fp32"}
        )
    if compile_seconds is not None:
        train["compile_first_step_s"] = round(compile_seconds, 3)
    if amp_dtype is not None:
        # for comparison with fp32 steps (ours or the official code's), never as the ratio
        fp32_floor = train["flops_per_step"] / fp32_throughput
        train["ratio_vs_fp32_floor"] = train["step_time_median_s"] / fp32_floor
    name = trainer.exported[0]
    net = trainer.method.nets[name].eval()
    with torch.no_grad():  # what the net reads (pix2pixHD: one-hot labels, edges, features)
        x = trainer.method.translator_input({k: v[:1] for k, v in batch.items()})
    # inference at fp32 (translate's default) and, where training runs reduced, at that precision
    # too (translate --precision), each against the floor at its own precision
    infer_amp = None
    if baseline is None:
        infer = bench_inference(net, x, throughput=fp32_throughput, warmup=warmup, iters=steps, device=device)
        if amp_dtype is not None:
            infer_amp = bench_inference(
                net, x, infer["flops_per_step"], throughput, warmup, steps, device, dtype=amp_dtype
            )
    else:

        def ours_infer(dtype=None):
            def call():
                with torch.no_grad(), autocast_to(device, dtype):
                    net(x)

            return call

        calls = {"ours": ours_infer(), "official": baseline.infer}
        if amp_dtype is not None:
            calls["ours_amp"] = ours_infer(amp_dtype)
        timed = time_interleaved(calls, warmup, steps, device)
        flops = count_flops(calls["ours"])
        infer = result_dict("inference", timed["ours"], flops, fp32_throughput, 1)
        if amp_dtype is not None:
            infer_amp = result_dict("inference", timed["ours_amp"], flops, throughput, 1)
        official["inference"] = result_dict(
            "inference", timed["official"], count_flops(baseline.infer), fp32_throughput, 1
        )
    infer["precision"] = "fp32"
    if infer_amp is not None:
        infer_amp["precision"] = train_precision
    results = {
        "machine": {
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "isa_limits": isa_limits(),
            "conv_throughput_gflops": fp32_throughput / 1e9,
            f"conv_throughput_gflops_{train_precision}": throughput / 1e9,
        },
        "config": {
            "method": cfg.method,
            "G": cfg.model.G,
            "D": cfg.model.D,
            "batch_size": t.batch_size,
            "crop_size": d.crop_size,
            "amp": str(trainer.amp_dtype),
        },
        "train_step": train,
        f"inference_{name}": infer,
    }
    rows = {"train step": train, f"inference ({name}, eval, batch 1)": infer}
    if infer_amp is not None:
        results[f"inference_{name}_{train_precision}"] = infer_amp
        rows[f"inference ({name}, eval, batch 1, {train_precision})"] = infer_amp
    if baseline is not None:
        results["official"] = {"implementation": baseline.name, "settings": baseline.settings, **official}
        ours_rows = [("train", train, "train"), ("inference", infer, "inference")]
        if infer_amp is not None:
            ours_rows.append((f"inference_{train_precision}", infer_amp, "inference"))
        results["ours_vs_official"] = {
            kind: round(ours["step_time_median_s"] / official[theirs]["step_time_median_s"], 4)
            for kind, ours, theirs in ours_rows
        }
        rows["train step (official)"] = official["train"]
        rows["inference (official)"] = official["inference"]
    print(format_report(rows, title=f"pixtrans bench: {cfg.method} on {device}"))
    results["choices"] = trainer.speed_choices()
    if (note := isa_limits_note()) is not None:
        results["choices"].append(note)
    print("\n".join(results["choices"]))
    if baseline is not None:
        vs = results["ours_vs_official"]
        print(
            f"against {baseline.name}, interleaved in this process: ours / official = "
            f"{vs['train']:.2f} (train step, ours in {train_precision}), {vs['inference']:.2f} (inference)"
            + (
                f", {vs[f'inference_{train_precision}']:.2f} (inference in {train_precision})"
                if infer_amp
                else ""
            )
        )
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1, default=str))
    return results
