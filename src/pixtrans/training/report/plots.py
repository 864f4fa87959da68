"""Loss curves: one panel per namespace of `stats.jsonl` keys, raw values and their EMA, the
learning rate below. matplotlib is imported only when a plot is drawn: it is heavy, and nothing
else in pixtrans (inference included) needs it."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

from pixtrans import PixtransError
from pixtrans.training.report.files import write_atomic
from pixtrans.training.report.stats import is_number, namespace_order, ordered_keys, read_stats


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records where `key` holds a finite number."""
    steps, values = [], []
    for rec in records:
        v = rec.get(key)
        if is_number(v) and math.isfinite(v):
            steps.append(rec["step"])
            values.append(float(v))
    return steps, values


def _ema(values: list[float], weight: float) -> list[float]:
    """Debiased exponential moving average (as TensorBoard's smoothing)."""
    out, m = [], 0.0
    for n, v in enumerate(values, start=1):
        m = weight * m + (1.0 - weight) * v
        out.append(m / (1.0 - weight**n) if weight < 1.0 else v)
    return out


def plot_losses(
    stats: str | os.PathLike | list[dict], png_path: str | os.PathLike, smoothing: float = 0.9
) -> Path | None:
    """Plot `stats.jsonl` (a path, or records from `read_stats`) to a PNG.

    One panel per namespace ("G", "D", "val", ...), x = step, raw values faint and an EMA
    (weight `smoothing`) bold; series logged on fewer than half the lines (validation metrics)
    are drawn as joined points, unsmoothed; the learning rate (`lr` and `lr/*` keys) on a small
    panel below. Uses a private Agg canvas, so the caller's pyplot backend is untouched. Written
    atomically. Returns the path, or None (nothing written) when there is nothing numeric to plot.
    """
    try:  # heavy, and only training reports draw plots
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PixtransError(
            "loss plots need matplotlib: pip install 'pixtrans[train]' (or matplotlib)"
        ) from None

    records = stats if isinstance(stats, list) else read_stats(stats)
    keys = [k for k in ordered_keys(records) if k == "lr" or "/" in k]
    keys = [k for k in keys if _series(records, k)[0]]
    lr_keys = [k for k in keys if k == "lr" or k.startswith("lr/")]
    loss_keys = [k for k in keys if k not in lr_keys]
    panels: list[tuple[str, list[str]]] = [
        (ns, [k for k in loss_keys if k.split("/", 1)[0] == ns]) for ns in namespace_order(loss_keys)
    ]
    if lr_keys:
        panels.append(("lr", lr_keys))
    if not panels:
        return None

    ratios = [1.0 if name == "lr" else 2.2 for name, _ in panels]
    fig = Figure(figsize=(10, 0.8 + 1.1 * sum(ratios)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False, height_ratios=ratios)[:, 0]
    for ax, (name, panel_keys) in zip(axes, panels, strict=True):
        for i, key in enumerate(panel_keys):
            color = f"C{i % 10}"
            steps, values = _series(records, key)
            label = key if name == "lr" else key.split("/", 1)[1]
            if len(steps) < max(10, len(records) // 2):  # sparse (e.g. validation metrics): no EMA
                ax.plot(steps, values, "o-", color=color, linewidth=1.8, markersize=3, label=label)
                continue
            if name != "lr":
                ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
                values = _ema(values, smoothing)
            ax.plot(steps, values, color=color, linewidth=1.8, label=label)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncols=min(4, len(panel_keys)), framealpha=0.7)
        if name == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes[-1].set_xlabel("step")
    fig.suptitle(f"losses (bold: EMA {smoothing:g})", fontsize=10)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png_path = Path(png_path)
    write_atomic(png_path, buf.getvalue())
    return png_path
