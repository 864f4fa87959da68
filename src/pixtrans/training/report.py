"""Progress reports for a run folder: sample grids, loss curves and a static index.html.

The training loop writes `stats.jsonl` (one JSON object per logged step) and sample grids under
`samples/`; `write_report(run_dir)` turns them into `index.html` + `losses.png`, a page a person
opens in a browser (no server, no JavaScript, no external assets) to follow training.

Every file is written atomically (temporary file in the same folder, then `os.replace`), so a
browser refreshing the page, or a kill -9 mid-write, never sees a half-written file.

Heavy imports (torch, matplotlib) happen inside the functions that need them, so
`write_report` stays cheap to import from a command-line tool.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pixtrans.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    import torch

__all__ = ["read_stats", "save_sample_grid", "plot_losses", "write_report", "SAMPLE_NAME"]

# Sample grid file names written by the loop: samples/step_000001200.png
SAMPLE_NAME = re.compile(r"step_(\d+)", re.IGNORECASE)
_SAMPLE_EXTS = {".png", ".jpg", ".jpeg", ".webp"}

# Keys the loop writes without a namespace; everything else is "namespace/name".
_TOP_KEYS = ("step", "epoch", "images", "time", "lr", "images_per_s")
_FIRST_NAMESPACES = ("G", "D")  # shown first, then the others in order of first appearance


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # report files are rebuilt often and cheap to redo: atomic, but no folder fsync
    atomic_write_bytes(path, data, sync_dir=False)


# ----------------------------------------------------------------------------------------------
# stats.jsonl


def _parse_line(line: str) -> dict | None:
    """One stats line -> dict, or None. A line whose start was truncated by a kill -9 and then
    had the next session's line appended to it (`{"step": 12{"step": 10, ...}`) yields the
    appended object."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
        decoder = json.JSONDecoder()
        start = line.find("{", 1)
        while start != -1:
            try:
                cand, end = decoder.raw_decode(line, start)
            except ValueError:
                cand, end = None, -1
            if end == len(line):
                obj = cand
                break
            start = line.find("{", start + 1)
    return obj if isinstance(obj, dict) else None


def read_stats(stats_path: str | os.PathLike) -> list[dict]:
    """Read `stats.jsonl` into a list of records, one per step, in increasing step order.

    Later lines override earlier ones: a line for the same step as the previous record is merged
    into it (its keys win), and a line whose step goes backwards (a session resumed from an older
    checkpoint) drops the records it supersedes, i.e. every earlier record with a later step.
    Blank, unparsable (e.g. truncated by a kill -9) and step-less lines are skipped. A missing
    file reads as no records.
    """
    try:
        text = Path(stats_path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return []
    records: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        rec = _parse_line(line)
        if rec is None:
            continue
        step = rec.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
            continue
        rec["step"] = int(step)
        while records and records[-1]["step"] > rec["step"]:
            records.pop()
        if records and records[-1]["step"] == rec["step"]:
            records[-1].update(rec)
        else:
            records.append(rec)
    return records


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ordered_keys(records: list[dict]) -> list[str]:
    """Every key in the records: top-level keys first, then namespaced keys grouped by namespace
    (G, D first, then in order of first appearance)."""
    seen: dict[str, None] = {}
    for rec in records:
        for k in rec:
            seen.setdefault(k, None)
    top = [k for k in _TOP_KEYS if k in seen] + [k for k in seen if "/" not in k and k not in _TOP_KEYS]
    namespaced = [k for k in seen if "/" in k]
    order = _namespace_order(namespaced)
    namespaced.sort(key=lambda k: order.index(k.split("/", 1)[0]))  # stable: keeps appearance order
    return top + namespaced


def _namespace_order(keys: list[str]) -> list[str]:
    spaces: dict[str, None] = {}
    for k in keys:
        spaces.setdefault(k.split("/", 1)[0], None)
    return [s for s in _FIRST_NAMESPACES if s in spaces] + [s for s in spaces if s not in _FIRST_NAMESPACES]


# ----------------------------------------------------------------------------------------------
# Sample grids


def _label_palette(n: int = 256):
    """PASCAL-VOC style colour map (bit-interleaved), index 0 = black."""
    import torch

    ids = torch.arange(n)
    rgb = torch.zeros(n, 3, dtype=torch.int64)
    c = ids.clone()
    for shift in range(7, -1, -1):
        for ch in range(3):
            rgb[:, ch] |= ((c >> ch) & 1) << shift
        c = c >> 3
    return rgb.float() / 255.0


def _checkerboard(h: int, w: int, square: int = 8):
    import torch

    yy = torch.arange(h).view(h, 1) // square
    xx = torch.arange(w).view(1, w) // square
    return torch.where((yy + xx) % 2 == 0, 1.0, 0.8).expand(3, h, w)


def _to_display(x: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] (or [C,H,W], [H,W]) -> float [B,3,H,W] in [0,1] on the CPU.

    Floating tensors are images in [-1,1]: 1 channel -> gray, 3 -> RGB, 4 -> RGB composited on a
    checkerboard by its alpha, 2 -> channel 0 as gray, 5+ -> the first 3 channels. Integer
    tensors are label maps (channel 0) shown with a fixed colour palette.
    """
    import torch

    x = x.detach().cpu()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] == 0:
        raise ValueError(f"expected a [B,C,H,W] tensor, got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        if x.dtype == torch.bool:
            x = x.to(torch.int64)
        ids = x[:, 0].to(torch.int64).clamp(0, 255)
        return _label_palette()[ids].permute(0, 3, 1, 2).contiguous()
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=-1.0)
    x = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    c = x.shape[1]
    if c == 3:
        return x
    if c == 4:
        rgb, alpha = x[:, :3], x[:, 3:4]
        return rgb * alpha + _checkerboard(x.shape[2], x.shape[3]) * (1.0 - alpha)
    if c in (1, 2):
        return x[:, :1].expand(-1, 3, -1, -1)
    return x[:, :3]


def _resize_to_height(x: torch.Tensor, height: int) -> torch.Tensor:
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if h == height:
        return x
    width = max(1, round(w * height / h))
    if height > h:  # enlarge: keep pixels crisp (small outputs, label maps)
        return F.interpolate(x, size=(height, width), mode="nearest")
    return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _fit_text(draw, text: str, font, max_width: int) -> str:
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "..", font=font) > max_width:
        text = text[:-1]
    return text + ".." if text else ""


def save_sample_grid(
    columns: dict[str, torch.Tensor],
    path: str | os.PathLike,
    max_rows: int = 8,
    *,
    max_height: int = 512,
    pad: int = 2,
) -> Path:
    """Save a grid of samples: one row per sample, one column per entry of `columns`, in order.

    columns: name -> [B,C,H,W] tensor in [-1,1] (any device/dtype; see `_to_display` for how
        channel counts are shown; integer tensors are drawn as colour-coded label maps). Columns
        may differ in channels, size and batch (the smallest batch is used).
    max_rows: at most this many samples (rows).
    max_height: every column is resized to a common height, the tallest column's, capped here
        (widths keep their aspect ratio).
    pad: width of the white separators between cells.

    A header row carries the column names. Written atomically; the format follows the suffix.
    Returns the path.
    """
    import torch
    from PIL import Image, ImageDraw

    if not columns:
        raise ValueError("save_sample_grid needs at least one column")
    cols = {str(name): _to_display(t) for name, t in columns.items()}
    rows = min(max_rows, *(t.shape[0] for t in cols.values()))
    if rows < 1:
        raise ValueError("save_sample_grid: a column has no samples (or max_rows < 1)")
    height = min(max(t.shape[2] for t in cols.values()), max_height)
    cols = {name: _resize_to_height(t[:rows], height) for name, t in cols.items()}

    # Cells are pasted by hand rather than with torchvision's make_grid: columns differ in width.
    widths = [t.shape[3] for t in cols.values()]
    grid_w = sum(widths) + pad * (len(widths) + 1)
    grid_h = rows * height + pad * (rows + 1)
    canvas = torch.ones(3, grid_h, grid_w)
    x0 = pad
    for t, w in zip(cols.values(), widths, strict=True):
        for r in range(rows):
            y0 = pad + r * (height + pad)
            canvas[:, y0 : y0 + height, x0 : x0 + w] = t[r]
        x0 += w + pad
    pixels = (canvas * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    grid = Image.fromarray(pixels, mode="RGB")

    font = _font()
    left, top, right, bottom = font.getbbox("Ag")
    header_h = (bottom - min(top, 0)) + 6
    image = Image.new("RGB", (grid_w, header_h + grid_h), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    x0 = pad
    for name, w in zip(cols, widths, strict=True):
        text = _fit_text(draw, name, font, w)
        tw = draw.textlength(text, font=font)
        draw.text((x0 + (w - tw) / 2, 3), text, fill=(0, 0, 0), font=font)
        x0 += w + pad
    image.paste(grid, (0, header_h))

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    _atomic_write_bytes(path, buf.getvalue())
    return path


# ----------------------------------------------------------------------------------------------
# Loss curves


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for rec in records:
        v = rec.get(key)
        if _is_number(v) and math.isfinite(v):
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
    panel below. Uses a private Agg canvas, so the caller's pyplot backend is untouched. Written atomically.
    Returns the path, or None (nothing written) when there is nothing numeric to plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = stats if isinstance(stats, list) else read_stats(stats)
    keys = [k for k in _ordered_keys(records) if k == "lr" or "/" in k]
    keys = [k for k in keys if _series(records, k)[0]]
    lr_keys = [k for k in keys if k == "lr" or k.startswith("lr/")]
    loss_keys = [k for k in keys if k not in lr_keys]
    panels: list[tuple[str, list[str]]] = [
        (ns, [k for k in loss_keys if k.split("/", 1)[0] == ns]) for ns in _namespace_order(loss_keys)
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
    _atomic_write_bytes(png_path, buf.getvalue())
    return png_path


# ----------------------------------------------------------------------------------------------
# index.html


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if _is_number(v):
        return str(v)
    if isinstance(v, str):
        return v
    return json.dumps(v)


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return (f"{d}d " if d else "") + f"{h}:{m:02d}:{s:02d}"


def _list_samples(folder: Path) -> list[tuple[int | None, Path]]:
    """Sample images, newest first: by the step in the name, then by modification time."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        if p.suffix.lower() not in _SAMPLE_EXTS or p.name.startswith(".") or not p.is_file():
            continue
        m = SAMPLE_NAME.search(p.stem)
        step = int(m.group(1)) if m else None
        try:
            mtime = p.stat().st_mtime
        except OSError:
            continue
        found.append((step if step is not None else -1, mtime, p.name, step, p))
    found.sort(reverse=True)
    return [(step, p) for *_, step, p in found]


def _latest_values(records: list[dict]) -> list[tuple[str, Any, int]]:
    """(key, latest value, step it was logged at) for every key ever logged."""
    latest: dict[str, tuple[Any, int]] = {}
    for rec in records:
        for k, v in rec.items():
            latest[k] = (v, rec["step"])
    return [(k, *latest[k]) for k in _ordered_keys(records)]


def _recent_rate(records: list[dict], window: int = 20) -> float | None:
    """Steps per second over the last records of the current session (time increasing)."""
    last = records[-1] if records else None
    if not last or not _is_number(last.get("time")):
        return None
    first = last
    for rec in reversed(records[-window - 1 : -1]):
        t = rec.get("time")
        if not _is_number(t) or t >= first["time"]:
            break  # a session boundary: time restarted
        first = rec
    dt, ds = last["time"] - first["time"], last["step"] - first["step"]
    return ds / dt if dt > 0 and ds > 0 else None


def _total_steps(cfg: dict, last: dict) -> int | None:
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    max_steps = train.get("max_steps")
    max_steps = int(max_steps) if _is_number(max_steps) and max_steps > 0 else None
    epochs = [train.get("epochs"), train.get("epochs_decay")]
    by_epochs = None
    epoch, step = last.get("epoch"), last.get("step")
    if all(_is_number(e) for e in epochs) and _is_number(epoch) and epoch > 0 and step:
        by_epochs = round(sum(epochs) * step / epoch)
    cands = [s for s in (max_steps, by_epochs) if s]
    return min(cands) if cands else None


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
  color:#1d1d1f;background:#f6f7f9}
header{background:#20242c;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header .sub{color:#b9c0cc;font-size:13px;margin-top:2px}
main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:0 0 10px}
.status{display:flex;flex-wrap:wrap;gap:6px 22px}
.status b{font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.running{background:#d7f5dd;color:#116329}.stopped{background:#eceff3;color:#444}
.muted{color:#6a737d}
.warn{color:#b35900}
img{max-width:100%;height:auto;border:1px solid #e1e4e8}
table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 12px 2px 0;text-align:left;border-bottom:1px solid #f0f0f0}
td.num{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;text-align:right}
figure{margin:0 0 18px}
figcaption{font-weight:600;margin-bottom:4px}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:12px}
summary{cursor:pointer}
"""


def write_report(
    run_dir: str | os.PathLike,
    title: str | None = None,
    running: bool = False,
    *,
    plot: bool = True,
    max_samples: int = 50,
) -> Path:
    """Write `run_dir/index.html`: a self-contained page showing the run's progress.

    Shows the run name, method, a status line (step, epoch, images seen, images/s, elapsed time,
    last update), the loss curves (`losses.png`, re-plotted here when `plot`), the latest value
    of every logged key, the sample grids under `samples/` newest first (the newest
    `max_samples` inline, older ones as links) and `config.yaml`. While `running`, the page
    reloads itself every 30 s. Works on an empty run folder. Written atomically; returns the path.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = run_dir.resolve().name or str(run_dir)
    stats_path = run_dir / "stats.jsonl"
    records = read_stats(stats_path)
    last = records[-1] if records else {}

    config_text, cfg = None, {}
    try:
        config_text = (run_dir / "config.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    if config_text:
        try:
            import yaml

            loaded = yaml.safe_load(config_text)
            cfg = loaded if isinstance(loaded, dict) else {}
        except Exception:  # a broken config must not break the page; it is still shown verbatim
            cfg = {}
    method = cfg.get("method")

    plot_path, plot_error = run_dir / "losses.png", None
    if plot and records:
        try:
            plot_losses(records, plot_path)
        except Exception as e:  # reporting is best effort; say what went wrong on the page
            plot_error = f"{type(e).__name__}: {e}"

    now = time.time()
    out: list[str] = []
    w = out.append
    page_title = title if title is not None else name
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    if running:
        w('<meta http-equiv="refresh" content="30">')
    w(f"<title>{_esc(page_title)} - pixtrans</title><style>{_CSS}</style></head><body>")
    sub = [f"run <b>{_esc(name)}</b>"]
    if method:
        sub.append(f"method <b>{_esc(method)}</b>")
    sub.append(f"page written {_esc(datetime.fromtimestamp(now).strftime('%Y-%m-%d %H:%M:%S'))}")
    w(f"<header><h1>{_esc(page_title)}</h1><div class='sub'>{' &middot; '.join(sub)}</div></header><main>")

    # -- status
    w("<section><h2>Status</h2><div class='status'>")
    state = ("running", "running") if running else ("stopped", "not running")
    w(f"<span><span class='badge {state[0]}'>{state[1]}</span></span>")
    if records:
        items: list[tuple[str, str]] = [("step", f"{last['step']:,}")]
        total = _total_steps(cfg, last)
        if total:
            items[0] = ("step", f"{last['step']:,} / {total:,} ({100 * min(1.0, last['step'] / total):.1f}%)")
        if _is_number(last.get("epoch")):
            items.append(("epoch", f"{last['epoch']:.2f}"))
        if _is_number(last.get("images")):
            items.append(("images seen", f"{int(last['images']):,}"))
        if _is_number(last.get("images_per_s")):
            items.append(("images/s", f"{last['images_per_s']:.1f}"))
        if _is_number(last.get("time")):
            items.append(("elapsed", _duration(last["time"])))
        rate = _recent_rate(records)
        if running and total and rate and total > last["step"]:
            items.append(("ETA", _duration((total - last["step"]) / rate)))
        try:
            mtime = stats_path.stat().st_mtime
            ago = _duration(now - mtime)
            stamp = datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M:%S")
            items.append(("last update", f"{stamp} ({ago} ago)"))
        except OSError:
            pass
        for label, value in items:
            w(f"<span>{_esc(label)}: <b>{_esc(value)}</b></span>")
    else:
        w("<span class='muted'>No statistics logged yet (stats.jsonl is missing or empty).</span>")
    w("</div></section>")

    # -- losses
    w("<section><h2>Losses</h2>")
    if plot_error:
        w(f"<p class='warn'>Could not plot the losses: {_esc(plot_error)}</p>")
    if records and plot_path.is_file():
        v = plot_path.stat().st_mtime_ns  # defeats browser caching across refreshes
        w(f"<img src='{_esc(quote(plot_path.name))}?v={v}' alt='loss curves'>")
    elif not records:
        w("<p class='muted'>No losses yet.</p>")
    if records:
        w("<h2 style='margin-top:14px'>Latest values</h2><table>")
        w("<tr><th>key</th><th>value</th><th>at step</th></tr>")
        for key, value, step in _latest_values(records):
            cells = f"<td class='num'>{_esc(_fmt(value))}</td><td class='num'>{step}</td>"
            w(f"<tr><td>{_esc(key)}</td>{cells}</tr>")
        w("</table>")
    w("</section>")

    # -- samples
    samples = _list_samples(run_dir / "samples")
    w(f"<section><h2>Samples ({len(samples)})</h2>")
    if not samples:
        w("<p class='muted'>No sample grids yet.</p>")
    for step, p in samples[:max_samples]:
        caption = f"step {step:,}" if step is not None else p.name
        src = "samples/" + quote(p.name)
        w(f"<figure><figcaption>{_esc(caption)}</figcaption>")
        w(f"<img src='{_esc(src)}' alt='{_esc(caption)}' loading='lazy'></figure>")
    if len(samples) > max_samples:
        w(f"<details><summary>{len(samples) - max_samples} older samples</summary><ul>")
        for step, p in samples[max_samples:]:
            caption = f"step {step:,}" if step is not None else p.name
            w(f"<li><a href='{_esc('samples/' + quote(p.name))}'>{_esc(caption)}</a></li>")
        w("</ul></details>")
    w("</section>")

    # -- config
    w("<section><h2>Configuration</h2>")
    if config_text is None:
        w("<p class='muted'>No config.yaml found.</p>")
    else:
        w(f"<details><summary>config.yaml</summary><pre>{_esc(config_text)}</pre></details>")
    w("</section></main></body></html>\n")

    index = run_dir / "index.html"
    _atomic_write_bytes(index, "\n".join(out).encode("utf-8"))
    return index
