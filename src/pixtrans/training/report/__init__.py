"""Progress reports for a run folder: sample grids, loss curves and a static index.html.

The training loop writes `stats.jsonl` (one JSON object per logged step) and sample grids under
`samples/`; `write_report(run_dir)` turns them into `index.html` + `losses.png`, a page a person
opens in a browser (no server, no JavaScript, no external assets) to follow training.

Every file is written atomically (`files.write_atomic`), so a browser refreshing the page, or a
kill -9 mid-write, never sees a half-written file.

Modules: `stats` (reading stats.jsonl, key order), `grids` (sample grids), `plots` (loss curves;
matplotlib is imported only when plotting), `page` (index.html), `files` (atomic writes).
"""

from pixtrans.training.report.grids import save_sample_grid
from pixtrans.training.report.page import SAMPLE_NAME, write_report
from pixtrans.training.report.plots import plot_losses
from pixtrans.training.report.stats import read_stats

__all__ = ["read_stats", "save_sample_grid", "plot_losses", "write_report", "SAMPLE_NAME"]
