"""The run page: `index.html` in a run folder, self-contained (no server, no JavaScript, no
external assets), showing status, loss curves, latest values, sample grids and the config."""

from __future__ import annotations

import html
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from pixtrans.artifacts.runs import RunFolder
from pixtrans.training.report.files import write_atomic
from pixtrans.training.report.plots import plot_losses
from pixtrans.training.report.stats import is_number, ordered_keys, read_stats

# Sample grid file names written by the loop: samples/step_000001200.png
SAMPLE_NAME = re.compile(r"step_(\d+)", re.IGNORECASE)
_SAMPLE_EXTS = {".png", ".jpg", ".jpeg", ".webp"}


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if is_number(v):
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
    return [(k, *latest[k]) for k in ordered_keys(records)]


def _recent_rate(records: list[dict], window: int = 20) -> float | None:
    """Steps per second over the last records of the current session (time increasing)."""
    last = records[-1] if records else None
    if not last or not is_number(last.get("time")):
        return None
    first = last
    for rec in reversed(records[-window - 1 : -1]):
        t = rec.get("time")
        if not is_number(t) or t >= first["time"]:
            break  # a session boundary: time restarted
        first = rec
    dt, ds = last["time"] - first["time"], last["step"] - first["step"]
    return ds / dt if dt > 0 and ds > 0 else None


def _total_steps(cfg: dict, last: dict) -> int | None:
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    max_steps = train.get("max_steps")
    max_steps = int(max_steps) if is_number(max_steps) and max_steps > 0 else None
    epochs = [train.get("epochs"), train.get("epochs_decay")]
    by_epochs = None
    epoch, step = last.get("epoch"), last.get("step")
    if all(is_number(e) for e in epochs) and is_number(epoch) and epoch > 0 and step:
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
    run = RunFolder(run_dir)
    stats_path = run.stats
    records = read_stats(stats_path)
    last = records[-1] if records else {}

    config_text, cfg = None, {}
    try:
        config_text = run.config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    if config_text:
        try:
            loaded = yaml.safe_load(config_text)
            cfg = loaded if isinstance(loaded, dict) else {}
        except Exception:  # a broken config must not break the page; it is still shown verbatim
            cfg = {}
    method = cfg.get("method")

    plot_path, plot_error = run.losses_plot, None
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
        if is_number(last.get("epoch")):
            items.append(("epoch", f"{last['epoch']:.2f}"))
        if is_number(last.get("images")):
            items.append(("images seen", f"{int(last['images']):,}"))
        if is_number(last.get("images_per_s")):
            items.append(("images/s", f"{last['images_per_s']:.1f}"))
        if is_number(last.get("time")):
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
    samples = _list_samples(run.samples)
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

    index = run.report
    write_atomic(index, "\n".join(out).encode("utf-8"))
    return index
