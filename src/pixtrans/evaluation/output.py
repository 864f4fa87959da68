"""What an evaluation gives back: its result dict as strict JSON (`write_json`) and as the CLI's
table (`format_result`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixtrans.fsutil import atomic_write_text


def json_ready(obj: Any) -> Any:
    """Non-finite floats (an identical pair's PSNR) become null: strict JSON has no inf."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def write_json(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """`result` as strict JSON at `path` (written atomically, parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(json_ready(dict(result)), indent=1, allow_nan=False) + "\n")
    return path


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and abs(v) < 0.01:
        return f"{v:.3e}"
    return f"{v:.4f}"


def format_result(result: Mapping[str, Any]) -> str:
    """The CLI's table: metric, value, which way is better, what it was computed on."""
    rows = [("metric", "value", "better", "on")]
    for name, value in result["metrics"].items():
        d = result["details"][name]
        if d["kind"] == "paired":
            on = f"{d['n']} pairs"
        else:
            on = f"{d['n_real']} real / {d['n_fake']} fake"
            if d.get("subsets", 1) > 1:
                on += f", {d['subsets']} subsets of {d['subset_size']} (std {_fmt(d['std'])})"
        rows.append((name, _fmt(value), "higher" if d["higher_is_better"] else "lower", on))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in rows]
    fcn = result.get("fcn")
    if fcn:
        lines.append(
            f"FCN-score ({fcn['n_classes']} classes; segmenter {fcn['segmenter']}, "
            f"{fcn['segmenter_steps']} steps):"
        )
        for row in ("generated", "real"):
            r = fcn[row]
            lines.append(
                f"  {row:9s} per-pixel acc {r['pixel_acc']:.3f}  per-class acc {r['class_acc']:.3f}  "
                f"class IoU {r['class_iou']:.3f}"
            )
    for name, why in result.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    inc = result.get("inception")
    if inc:
        hit = "cached" if inc["real_cache"].get("hit") else "computed"
        lines.append(f"inception: {inc['weights']}; real-set features {hit}")
    secs = result["seconds"]
    if isinstance(secs, Mapping):  # evaluate_model's {"translate", "metrics", "total"}
        lines.append(
            f"wall time {secs['total']:.1f} s "
            f"(translate {secs['translate']:.1f} s, metrics {secs['metrics']:.1f} s)"
        )
    else:
        lines.append(f"wall time {secs:.1f} s")
    return "\n".join(lines)
