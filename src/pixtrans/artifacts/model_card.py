"""README.md model cards: every export says what it is, how it was made and how it scored.

The card is written from the export's config.json (method, nets, the training config, where it
came from), the command that made it when known, and the metrics `pixtrans evaluate` wrote for
the run (RUN/eval/*/metrics.json). Its YAML front matter follows the Hugging Face model-card
fields (library_name, license, tags, pipeline_tag), so a folder can be shared as it is.
`pixtrans evaluate` rewrites the card of the run's export when it scores it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pixtrans.artifacts.runs import RunFolder
from pixtrans.fsutil import atomic_write_text

CARD_NAME = "README.md"
MARK = "<!-- model card written by pixtrans; it is rewritten with the export -->"


def _evaluations(export_dir: Path) -> list[dict[str, Any]]:
    """The metrics.json files `pixtrans evaluate` wrote for the run this export belongs to."""
    run = RunFolder.of(export_dir)
    found = []
    for path in sorted((run.root / "eval").glob("*/metrics.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append(result)
    return found


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def render_card(export_dir: Path, info: dict[str, Any]) -> str:
    config = info.get("config") or {}
    data, train = config.get("data", {}), config.get("train", {})
    method = info.get("method") or config.get("method", "?")
    source = info.get("source") or {}
    name = RunFolder.of(export_dir).root.name or export_dir.name
    license_id = config.get("license") or "other"
    lines = [
        "---",
        "library_name: pixtrans",
        f"license: {license_id}",
        f"tags: [image-to-image, gan, {method}]",
        "pipeline_tag: image-to-image",
        "---",
        MARK,
        "",
        f"# {name}: {method} (pixtrans)",
        "",
        "| net | reads | writes | size multiple | spec |",
        "| --- | --- | --- | --- | --- |",
    ]
    for net, entry in info.get("generators", {}).items():
        spec = ", ".join(f"{k}={v}" for k, v in entry.get("spec", {}).items())
        lines.append(
            f"| {net} | {entry.get('input_nc')} channels | {entry.get('output_nc')} channels "
            f"({entry.get('direction', '')}) | {entry.get('size_multiple', 1)} | {spec} |"
        )
    root = data.get("root") or ""
    lines += [
        "",
        "## How it was made",
        "",
        f"- method: `{method}`; dataset: `{data.get('dataset', '?')}`"
        + (f" from `{Path(root).name}`" if root else "")
        + f", split `{data.get('train_split', 'train')}`, direction {data.get('direction', 'AtoB')}",
        f"- training steps: {_fmt(info.get('step'))}; batch {_fmt(train.get('batch_size'))}; "
        f"schedule {_fmt(train.get('epochs'))} + {_fmt(train.get('epochs_decay'))} epochs; "
        f"crops {_fmt(data.get('crop_size'))} px ({data.get('preprocess', '?')}); "
        f"precision {train.get('amp', '?')}",
    ]
    if source.get("command"):
        lines.append(f"- command: `{source['command']}`")
    if source.get("kind") and source.get("kind") not in ("pixtrans-train",):
        what = source.get("description") or source.get("kind")
        files = source.get("file")
        lines.append(f"- from: {what}" + (f" (`{files}`)" if files else ""))
    lines.append(f"- pixtrans {info.get('pixtrans_version', '?')}, written {info.get('created', '?')}")
    evaluations = _evaluations(export_dir)
    lines += ["", "## Metrics", ""]
    if evaluations:
        lines += ["| split | mode | images | metric | value |", "| --- | --- | --- | --- | --- |"]
        for result in evaluations:
            for metric, value in (result.get("metrics") or {}).items():
                split, mode, images = result.get("split", "?"), result.get("mode", "?"), result.get("images")
                lines.append(f"| {split} | {mode} | {_fmt(images)} | {metric} | {_fmt(value)} |")
        lines.append("")
        lines.append("(`pixtrans evaluate`; protocols in pixtrans' docs/evaluation.md)")
    else:
        lines.append("Not evaluated yet: `pixtrans evaluate RUN --split test` adds the scores here.")
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        "pip install pixtrans",
        "pixtrans translate THIS_FOLDER input.png output.png",
        "```",
        "",
        "```python",
        "from pixtrans.inference import Translator",
        "",
        'translator = Translator.from_pretrained("THIS_FOLDER")',
        'translator("input.png").save("output.png")',
        "```",
        "",
        "## License",
        "",
        (
            f"{license_id}. "
            if config.get("license")
            else "Not stated (set `license=...` when training or converting). "
        )
        + "The terms of the training data apply to what the model produces.",
        "",
    ]
    return "\n".join(lines)


def write_card(export_dir: str | os.PathLike, info: dict[str, Any]) -> Path | None:
    """Write README.md, unless the folder holds a README.md someone else wrote (kept as it is)."""
    path = Path(export_dir) / CARD_NAME
    if path.is_file():
        try:
            ours = MARK in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            ours = False
        if not ours:
            return None
    return atomic_write_text(path, render_card(Path(export_dir), info), sync_dir=False)
