"""Static int8 quantization of an export's ONNX models (ONNX Runtime quantization), and what it costs.

    report = quantize_export(EXPORT)        # after export_onnx; `pixtrans export RUN --onnx --int8`

Per net: weights int8 per output channel, activations uint8 with ranges calibrated (MinMax) on
`calibration` training inputs of the run's own dataset, in the QDQ format (ONNX Runtime fuses
QuantizeLinear-Conv-DequantizeLinear into integer kernels where the CPU has them). Each
ConvTranspose is first rewritten as the Convs of its output phases + DepthToSpace, since the CPU
provider has no integer ConvTranspose, and the RGB output layer is widened (exact;
deploy/rewrite.py). The model is written as `<name>.int8.onnx` and recorded in config.json
(generators[name]["int8"]) with its report, measured at once:

  psnr_db      PSNR of the int8 output against the fp32 ONNX output (range 1), on held-out
               inputs: the test split (val, then other training images, when there is none)
  l1_fp32 / l1_int8   mean |output - target| in [0,1] on the test split, for paired data
  latency_ms   fp32 and int8 ONNX Runtime, median of a few runs at the calibration size

A net whose int8 output falls below MIN_PSNR_DB against fp32 gets a warning: offer it only where
the quality holds. fid=True (`--fid`) adds FID of fp32 and int8 outputs against the held-out
targets (the other domain for unpaired data), the project's FID protocol on those few images:
good for comparing the two, not with published figures (for those, score the whole test split:
`pixtrans evaluate EXPORT --backend onnxruntime-int8`).
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixtrans import PixtransError
from pixtrans.config import from_dict
from pixtrans.data.build import build_dataset
from pixtrans.data.labelmap import LabelInput
from pixtrans.deploy import require
from pixtrans.deploy.onnx_export import INPUT_NAME, record
from pixtrans.deploy.ort_backend import session_from_bytes
from pixtrans.deploy.rewrite import for_onnxruntime
from pixtrans.inference.loading import ModelSource, open_model
from pixtrans.metrics.paired import psnr
from pixtrans.registry import DATASETS

MIN_PSNR_DB = 30.0
HELD_OUT_SPLITS = ("test", "val")


# ----------------------------------------------------------------------------------------------
# What each net reads, from dataset samples


def _batch(sample: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: v[None] for k, v in sample.items() if isinstance(v, torch.Tensor)}


def net_inputs(source: ModelSource, name: str, batch: dict[str, torch.Tensor], encoder=None) -> np.ndarray:
    """The float32 array net `name` reads for a dataset batch (what the translators build)."""
    if source.method.translator == "labelmap":  # pix2pixHD: G reads the encoded label input
        if name == "E":
            return batch["real_b"].numpy()
        inputs = LabelInput.from_config(source.config)
        label = batch["label"] if inputs.label_nc > 0 else batch["real_a"]
        if inputs.label_nc > 0 and inputs.dontcare_label:
            label = torch.where(label == 255, inputs.label_nc, label)
        x = inputs.encode(label, batch.get("inst"))
        if inputs.feat_num:
            with torch.inference_mode():
                x = torch.cat([x, encoder(batch["real_b"], batch["inst"])], dim=1)
        return x.float().numpy()
    # image methods: the reverse generator (name *_ba, CycleGAN) reads the other side
    side = "real_b" if name.lower().endswith("_ba") else "real_a"
    return batch[side].float().numpy()


def _target(source: ModelSource, name: str, batch: dict[str, torch.Tensor]) -> np.ndarray | None:
    if source.method.translator == "labelmap":
        return None if name == "E" else batch.get("real_b", torch.empty(0)).numpy()
    side = "real_a" if name.lower().endswith("_ba") else "real_b"
    return batch[side].numpy() if side in batch else None


def _samples(cfg, split: str, run_dir: Path, count: int, start: int = 0) -> list[dict[str, torch.Tensor]]:
    cfg.data.flip, cfg.data.cache, cfg.data.max_images = False, "off", 0
    ds = build_dataset(cfg, split, run_dir=run_dir)
    n = len(ds)
    if n == 0:
        return []
    picks = sorted({(start + round(i * n / count)) % n for i in range(count)}) if count < n else range(n)
    return [_batch(ds[i]) for i in picks]


def calibration_and_held_out(source: ModelSource, count: int, data_root: str | None, run_dir: Path):
    """(calibration batches from the training split, (held-out batches, their split, paired))."""
    cfg = from_dict(source.config)
    if data_root is not None:
        cfg.data.root = str(data_root)
    try:
        calib = _samples(cfg, "train", run_dir, count)
    except PixtransError as e:
        raise PixtransError(
            f"--int8 calibrates on the run's training inputs, which cannot be read: {e}"
        ) from None
    if not calib:
        raise PixtransError("--int8: the training split is empty; nothing to calibrate on")
    for split in HELD_OUT_SPLITS:
        try:
            held = _samples(from_dict(cfg.to_dict()), split, run_dir, count)
        except PixtransError:
            continue
        if held:
            return calib, (held, split)
    other = _samples(from_dict(cfg.to_dict()), "train", run_dir, count, start=1)
    return calib, (other, "train (other images)")


# ----------------------------------------------------------------------------------------------


def quantize_file(
    fp32: Path, int8: Path, calibration: list[np.ndarray], rewrite: bool = True
) -> dict[str, int]:
    """Write the int8 model of `fp32` to `int8`; what deploy/rewrite.py changed (ConvTranspose
    layers, how many went sub-pixel, Conv layers widened). rewrite=False quantizes the graph as
    exported (ConvTranspose stays float): the A/B of benchmarks/deploy.py."""
    onnx, q = require("onnx"), require("onnxruntime.quantization")

    class Reader(q.CalibrationDataReader):
        """The calibration inputs, one batch at a time, as ONNX Runtime's calibrator asks."""

        def __init__(self):
            self._it = iter(calibration)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: np.ascontiguousarray(x, np.float32)}

    reader = Reader()
    # ONNX Runtime's CPU provider has no integer ConvTranspose: rewrite each one as the Convs of
    # its output phases (exact, deploy/rewrite.py) so the decoders quantize too, and widen the
    # 3-output layer, whose integer kernel is slow
    graph = onnx.load(str(fp32))
    before = [n.op_type for n in graph.graph.node]
    if rewrite:
        graph = for_onnxruntime(graph)
    after = [n.op_type for n in graph.graph.node]
    rewritten = int8.with_suffix(".rewritten.onnx")
    onnx.save(graph, str(rewritten))
    prepared = int8.with_suffix(".pre.onnx")
    # the quantizer logs a root-logger warning per InstanceNorm constant it leaves in float
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        # shape inference + graph cleanup, as ONNX Runtime advises before static quantization
        q.shape_inference.quant_pre_process(str(rewritten), str(prepared), skip_symbolic_shape=True)
        q.quantize_static(
            str(prepared),
            str(int8),
            reader,
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            # Conv only: a ConvTranspose the rewrite could not take has no integer kernel, so
            # quantizing it only wraps a float kernel in Q/DQ pairs (U-Net 89 -> 66 ms, AMX Xeon)
            op_types_to_quantize=["Conv"],
        )
    finally:
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
        rewritten.unlink(missing_ok=True)
    transposed = before.count("ConvTranspose")
    return {
        "conv_transpose": transposed,
        "subpixel": transposed - after.count("ConvTranspose"),
        "widened": after.count("Slice") - before.count("Slice"),
    }


def _latency_ms(session, x: np.ndarray, runs: int = 5) -> float:
    session.run(None, {INPUT_NAME: x})  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {INPUT_NAME: x})
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def _unit(y: np.ndarray) -> np.ndarray:
    return np.clip((y + 1.0) * 0.5, 0.0, 1.0)


def _fid(targets: list[np.ndarray], outs: list[np.ndarray], tmp: Path, tag: str) -> float | None:
    """FID (evaluation.folders, the project's protocol) of `outs` against `targets`, [1,3,H,W] in [-1,1]."""
    from pixtrans.data.io import write_image
    from pixtrans.evaluation.folders import evaluate_folders

    real, fake = tmp / f"{tag}_real", tmp / f"{tag}_fake"
    for i, (t, y) in enumerate(zip(targets, outs, strict=True)):
        write_image(torch.from_numpy(t[0]), real / f"{i:04d}.png")
        write_image(torch.from_numpy(y[0]), fake / f"{i:04d}.png")
    result = evaluate_folders(real, fake, "fid", progress=False, use_cache=False, kinds=("distribution",))
    return result["metrics"].get("fid")


def quantize_export(
    model: str | Path,
    *,
    calibration: int = 8,
    data_root: str | None = None,
    runs: int = 5,
    fid: bool = False,
) -> dict[str, dict[str, Any]]:
    """`<name>.int8.onnx` for each net with an ONNX model; returns {name: report} (module docstring)."""
    from pixtrans.artifacts.runs import RunFolder

    source = open_model(model)
    export_dir = Path(source.path)
    names = [n for n in source.names if source.io(n).get("onnx")]
    if source.kind != "export" or not names:
        raise PixtransError(
            f"'{model}' has no ONNX models to quantize; run `pixtrans export RUN --onnx` first"
        )
    if calibration < 1:
        raise PixtransError(f"--calibration must be >= 1, got {calibration}")
    calib, (held, held_split) = calibration_and_held_out(
        source, calibration, data_root, RunFolder.of(export_dir).root
    )
    encoder = source.load_net("E").eval() if "E" in source.names else None
    # L1 against targets only where the data pairs each input with its target
    paired = DATASETS.get(from_dict(source.config).data.dataset).paired
    reports, entries = {}, {}
    for name in names:
        entry = source.io(name)["onnx"]
        fp32 = export_dir / entry["file"]
        int8 = export_dir / f"{name}.int8.onnx"
        calib_x = [net_inputs(source, name, b, encoder) for b in calib]
        rewrites = quantize_file(fp32, int8, calib_x)
        s32, s8 = session_from_bytes(fp32), session_from_bytes(int8)
        psnrs, l1_32, l1_8 = [], [], []
        fid_sets: tuple[list, list, list] = ([], [], [])  # targets, fp32 outputs, int8 outputs
        for b in held:
            x = net_inputs(source, name, b, encoder)
            y32, y8 = s32.run(None, {INPUT_NAME: x})[0], s8.run(None, {INPUT_NAME: x})[0]
            # E's features are not an image: PSNR over its output range [-1,1] mapped to [0,1]
            psnrs.append(psnr(_unit(y32), _unit(y8)))
            other = _target(source, name, b)  # the other side: FID needs no pairing
            if fid and other is not None and other.shape[1] == 3 and y32.shape[1] == 3:
                for bucket, arr in zip(fid_sets, (other, y32, y8), strict=True):
                    bucket.append(arr)
            target = other if paired else None
            if target is not None and target.shape == y32.shape:
                l1_32.append(float(np.abs(_unit(y32) - _unit(target)).mean()))
                l1_8.append(float(np.abs(_unit(y8) - _unit(target)).mean()))
        x0 = net_inputs(source, name, calib[0], encoder)
        t32, t8 = _latency_ms(s32, x0, runs), _latency_ms(s8, x0, runs)
        fid_32 = fid_8 = None
        if fid_sets[0]:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                fid_32 = _fid(fid_sets[0], fid_sets[1], Path(tmp), "fp32")
                fid_8 = _fid(fid_sets[0], fid_sets[2], Path(tmp), "int8")
        report = {
            "file": int8.name,
            "calibration": {"split": "train", "images": len(calib), "method": "MinMax", "format": "QDQ"},
            "rewrites": rewrites,  # deploy/rewrite.py: ConvTranspose layers, how many sub-pixel, widened
            "held_out": {"split": held_split, "images": len(held)},
            "psnr_db": float(np.mean(psnrs)),
            "psnr_min_db": float(np.min(psnrs)),
            "l1_fp32": float(np.mean(l1_32)) if l1_32 else None,
            "l1_int8": float(np.mean(l1_8)) if l1_8 else None,
            # on the few held-out images only: compare the two, not with published FIDs
            "fid_fp32": fid_32,
            "fid_int8": fid_8,
            "latency_ms": {"fp32": t32, "int8": t8, "size": list(x0.shape), "runs": runs},
            "speedup": t32 / t8,
            "quality_holds": bool(np.mean(psnrs) >= MIN_PSNR_DB),
            "host_step": entry.get("host_step"),
        }
        if not report["quality_holds"]:
            warnings.warn(
                f"{name}: int8 output is {report['psnr_db']:.1f} dB PSNR from fp32 (< {MIN_PSNR_DB:.0f} dB): "
                "the quality does not hold; deploy the fp32 ONNX model (--backend onnxruntime)",
                stacklevel=2,
            )
        entries[name] = {k: v for k, v in report.items() if v is not None}
        reports[name] = report
    record(export_dir, "int8", entries)
    return reports


def format_report(reports: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, r in reports.items():
        lat = r["latency_ms"]
        l1 = (
            f", L1 vs target {r['l1_fp32']:.4f} (fp32) / {r['l1_int8']:.4f} (int8)"
            if r["l1_fp32"] is not None
            else ""
        )
        if r.get("fid_fp32") is not None:
            l1 += f", FID {r['fid_fp32']:.1f} (fp32) / {r['fid_int8']:.1f} (int8)"
        verdict = "quality holds" if r["quality_holds"] else f"BELOW {MIN_PSNR_DB:.0f} dB: use fp32"
        rw = r.get("rewrites") or {}
        if rw.get("subpixel"):
            verdict += f"; {rw['subpixel']} ConvTranspose quantized as sub-pixel Convs"
        lines.append(
            f"  {name}: {r['file']}: {r['psnr_db']:.1f} dB PSNR vs fp32 on {r['held_out']['images']} "
            f"{r['held_out']['split']} image(s){l1}; {lat['fp32']:.1f} ms fp32 -> {lat['int8']:.1f} ms int8 "
            f"({r['speedup']:.2f}x) at {'x'.join(map(str, lat['size']))}; {verdict}"
        )
    return "\n".join(lines)
