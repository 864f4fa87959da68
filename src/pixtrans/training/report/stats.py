"""Reading `stats.jsonl`: one record per step (later lines merge in, a resumed session
supersedes the steps it rewinds), and the order keys are shown in (top-level, then G, D, ...)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

# Keys the loop writes without a namespace; everything else is "namespace/name".
_TOP_KEYS = ("step", "epoch", "images", "time", "lr", "images_per_s")
_FIRST_NAMESPACES = ("G", "D")  # shown first, then the others in order of first appearance


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


def is_number(v: Any) -> bool:
    """An int or float logged value (bools are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ordered_keys(records: list[dict]) -> list[str]:
    """Every key in the records: top-level keys first, then namespaced keys grouped by namespace
    (G, D first, then in order of first appearance)."""
    seen: dict[str, None] = {}
    for rec in records:
        for k in rec:
            seen.setdefault(k, None)
    top = [k for k in _TOP_KEYS if k in seen] + [k for k in seen if "/" not in k and k not in _TOP_KEYS]
    namespaced = [k for k in seen if "/" in k]
    order = namespace_order(namespaced)
    namespaced.sort(key=lambda k: order.index(k.split("/", 1)[0]))  # stable: keeps appearance order
    return top + namespaced


def namespace_order(keys: list[str]) -> list[str]:
    """The namespaces of "namespace/name" keys: G, D first, then in order of first appearance."""
    spaces: dict[str, None] = {}
    for k in keys:
        spaces.setdefault(k.split("/", 1)[0], None)
    return [s for s in _FIRST_NAMESPACES if s in spaces] + [s for s in spaces if s not in _FIRST_NAMESPACES]
