"""Run-folder reports: stats reading, sample grids, loss plots and index.html."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans.training.report import plot_losses, read_stats, save_sample_grid, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_stats(path, records, tail: str = ""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def _record(step, **kw):
    rec = {
        "step": step,
        "epoch": step / 100,
        "images": step * 4,
        "time": step * 0.5,
        "lr": 2e-4,
        "images_per_s": 8.0,
        "G/gan": 1.0 + 0.001 * step,
        "G/l1": 10.0 - 0.01 * step,
        "D/real": 0.5,
        "D/fake": 0.4,
    }
    rec.update(kw)
    return rec


# ----------------------------------------------------------------------------------------------
# read_stats


def test_read_stats_dedupes_and_skips_bad_lines(tmp_path):
    path = tmp_path / "stats.jsonl"
    lines = [
        json.dumps(_record(20)),
        "",
        "not json",
        json.dumps([1, 2]),
        json.dumps({"no_step": 1}),
        json.dumps(_record(40, **{"G/l1": 1.0})),
        json.dumps(_record(40, **{"G/l1": 2.0})),  # same step again: the later line wins
        json.dumps({"step": 40, "val/psnr": 21.5}),  # a metric line for the same step is merged
        '{"step": 60, "G/l1": 0.',  # truncated by kill -9
    ]
    path.write_text("\n".join(lines))
    recs = read_stats(path)
    assert [r["step"] for r in recs] == [20, 40]
    assert recs[1]["G/l1"] == 2.0 and recs[1]["val/psnr"] == 21.5 and recs[1]["D/real"] == 0.5


def test_read_stats_resume_supersedes_later_steps(tmp_path):
    # session 1 logged up to 80, was killed mid-line; session 2 resumed from the step-40 checkpoint
    # and its first line was appended to the truncated one.
    path = tmp_path / "stats.jsonl"
    text = "".join(json.dumps(_record(s, **{"G/l1": 1.0})) + "\n" for s in (20, 40, 60, 80))
    text += '{"step": 100, "G/' + json.dumps(_record(60, **{"G/l1": 2.0})) + "\n"
    text += json.dumps(_record(80, **{"G/l1": 3.0})) + "\n"
    path.write_text(text)
    recs = read_stats(path)
    assert [r["step"] for r in recs] == [20, 40, 60, 80]
    assert [r["G/l1"] for r in recs] == [1.0, 1.0, 2.0, 3.0]


def test_read_stats_missing_file(tmp_path):
    assert read_stats(tmp_path / "nope.jsonl") == []


# ----------------------------------------------------------------------------------------------
# save_sample_grid


def _solid(rgb, b=2, h=8, w=8):
    t = torch.empty(b, 3, h, w)
    for c, v in enumerate(rgb):
        t[:, c] = v
    return t


def _cells(img: np.ndarray, widths, height, rows, pad=2):
    """Centre pixel of every cell, from the layout (header height = whatever is above the grid)."""
    grid_h = rows * height + pad * (rows + 1)
    header = img.shape[0] - grid_h
    out = []
    for r in range(rows):
        y = header + pad + r * (height + pad) + height // 2
        x0, row = pad, []
        for w in widths:
            row.append(img[y, x0 + w // 2])
            x0 += w + pad
        out.append(row)
    return out


def test_grid_layout_and_colours(tmp_path):
    red, green, blue = _solid((1, -1, -1)), _solid((-1, 1, -1)), _solid((-1, -1, 1))
    path = save_sample_grid({"input": red, "output": green, "target": blue}, tmp_path / "g.png")
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[1] == 3 * 8 + 4 * 2  # three 8-px columns, four separators
    assert img.shape[0] > 2 * 8 + 3 * 2  # plus a header row
    for row in _cells(img, [8, 8, 8], 8, rows=2):
        assert row[0].tolist() == [255, 0, 0]
        assert row[1].tolist() == [0, 255, 0]
        assert row[2].tolist() == [0, 0, 255]
    header = img[: img.shape[0] - (2 * 8 + 3 * 2)]
    assert (header < 128).any()  # column names were drawn


def test_grid_mixed_channels_sizes_and_max_rows(tmp_path):
    b = 5
    gray = torch.full((b, 1, 16, 16), 1.0)  # white
    rgba = torch.cat([_solid((-1, -1, 1), b, 8, 16), torch.full((b, 1, 8, 16), 1.0)], 1)  # opaque blue, 8x16
    many = torch.cat([_solid((1, -1, -1), b, 16, 16), torch.zeros(b, 3, 16, 16)], 1)  # 6 ch: first 3 = red
    two = torch.full((b, 2, 16, 16), -1.0)  # channel 0 as gray: black
    labels = torch.ones(b, 1, 4, 4, dtype=torch.long)  # label id 1 -> palette colour
    cols = {"gray": gray, "rgba": rgba, "six": many, "two": two, "labels": labels}
    path = save_sample_grid(cols, tmp_path / "m.png", max_rows=3)
    img = np.asarray(Image.open(path).convert("RGB"))
    widths = [16, 32, 16, 16, 16]  # all resized to height 16, keeping aspect ratio
    assert img.shape[1] == sum(widths) + 6 * 2
    for row in _cells(img, widths, 16, rows=3):
        assert row[0].tolist() == [255, 255, 255]
        assert row[1].tolist() == [0, 0, 255]
        assert row[2].tolist() == [255, 0, 0]
        assert row[3].tolist() == [0, 0, 0]
        assert row[4].tolist() == [128, 0, 0]


def test_grid_transparent_rgba_shows_checkerboard(tmp_path):
    rgba = torch.cat([_solid((1, -1, -1), 1, 16, 16), torch.full((1, 1, 16, 16), -1.0)], 1)
    path = save_sample_grid({"x": rgba}, tmp_path / "c.png")
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    cell = img[-18:-2, 2:18]
    assert (cell[..., 0] == cell[..., 1]).all()  # gray board, no red
    assert len(np.unique(cell[..., 0])) == 2


# ----------------------------------------------------------------------------------------------
# plot_losses


def test_plot_losses_writes_png(tmp_path):
    stats = tmp_path / "stats.jsonl"
    recs = [_record(s, **({"val/psnr": 20.0 + s / 100} if s % 100 == 0 else {})) for s in range(0, 1000, 20)]
    _write_stats(stats, recs, tail='{"step": 1000, "G')
    out = plot_losses(stats, tmp_path / "plots" / "losses.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert Image.open(out).size[0] > 500
    assert not list((tmp_path / "plots").glob(".*tmp"))  # no temporary files left behind


def test_plot_losses_nothing_to_plot(tmp_path):
    assert plot_losses(tmp_path / "missing.jsonl", tmp_path / "l.png") is None
    assert not (tmp_path / "l.png").exists()


def test_plot_does_not_touch_pyplot_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    plot_losses([_record(0), _record(20)], tmp_path / "l.png")
    assert matplotlib.get_backend() == before


# ----------------------------------------------------------------------------------------------
# write_report


def test_report_full_run(tmp_path):
    run = tmp_path / "my_run"
    (run / "samples").mkdir(parents=True)
    _write_stats(
        run / "stats.jsonl",
        [_record(20), _record(40, **{"G/l1": 9.999}), _record(40, **{"G/l1": 0.123456789})],
        tail='{"step": 60, "G/l1": 5',
    )
    (run / "config.yaml").write_text("method: pix2pix\ndata:\n  root: '<script>alert(1)</script>'\n")
    for step in (400, 1200, 800):
        save_sample_grid({"input": _solid((1, -1, -1), 1)}, run / "samples" / f"step_{step:09d}.png")

    index = write_report(run, running=True)
    page = index.read_text()
    assert index == run / "index.html"
    assert "my_run" in page and "pix2pix" in page
    assert 'http-equiv="refresh"' in page
    # latest values (the duplicated step 40: the last line wins; the truncated line is ignored)
    assert "0.123457" in page and "9.999" not in page
    assert ">step</td>" in page and ">40</td>" in page
    assert "D/fake" in page and "0.4" in page
    # loss plot written and shown
    assert (run / "losses.png").read_bytes().startswith(PNG_MAGIC)
    assert "src='losses.png?v=" in page
    # samples newest first, with their steps
    positions = [page.index(f"samples/step_{s:09d}.png") for s in (1200, 800, 400)]
    assert positions == sorted(positions)
    assert "step 1,200" in page
    # escaping
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_not_running_has_no_refresh(tmp_path):
    _write_stats(tmp_path / "stats.jsonl", [_record(20)])
    page = write_report(tmp_path, title="A <b>title</b>", running=False).read_text()
    assert "refresh" not in page
    assert "A &lt;b&gt;title&lt;/b&gt;" in page


@pytest.mark.parametrize("stats", [None, ""])
def test_report_empty_run(tmp_path, stats):
    if stats is not None:
        (tmp_path / "stats.jsonl").write_text(stats)
    page = write_report(tmp_path, running=True).read_text()
    assert "No statistics logged yet" in page
    assert "No sample grids yet" in page
    assert "No config.yaml found" in page
    assert not (tmp_path / "losses.png").exists()


def test_report_many_samples_links_older(tmp_path):
    (tmp_path / "samples").mkdir()
    src = tmp_path / "one.png"
    Image.new("RGB", (4, 4)).save(src)
    for step in range(1, 6):
        (tmp_path / "samples" / f"step_{step:09d}.png").write_bytes(src.read_bytes())
    page = write_report(tmp_path, max_samples=2).read_text()
    assert page.count("<img src='samples/") == 2
    assert "3 older samples" in page
    assert "href='samples/step_000000001.png'" in page
