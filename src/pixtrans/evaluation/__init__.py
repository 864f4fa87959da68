"""`pixtrans evaluate`: score folders of images, or a trained model on a split of its dataset.

folders.py    evaluate_folders(real, fake, metrics): two folders; listing, pairing and reading the
              files; metric selection (select_metrics, parse_metric_list, metric_table)
model.py      evaluate_model(path, split): translate a split of the model's dataset, then score it
translate.py  the OUT folder evaluate_model writes (fakes, targets written only when changed)
fcn.py        the pix2pix FCN-score protocol rows (the segmenter is pixtrans/metrics/fcn.py)
output.py     the result as strict JSON (write_json) and as the CLI's table (format_result)

Metrics left unspecified mean every metric whose weights are available here (paired ones only
where the names pair up); one asked for explicitly that cannot run is an error. See
docs/evaluation.md for the protocol of each metric.
"""

from pixtrans.evaluation.fcn import fcn_rows
from pixtrans.evaluation.folders import (
    ORDER,
    evaluate_folders,
    list_images,
    metric_table,
    pair_files,
    parse_metric_list,
    read_pair,
    select_metrics,
)
from pixtrans.evaluation.model import evaluate_model, load_translator
from pixtrans.evaluation.output import format_result, json_ready, write_json
from pixtrans.evaluation.translate import MARKER, run_folder, write_if_changed

__all__ = [
    "MARKER",
    "ORDER",
    "evaluate_folders",
    "evaluate_model",
    "fcn_rows",
    "format_result",
    "json_ready",
    "list_images",
    "load_translator",
    "metric_table",
    "pair_files",
    "parse_metric_list",
    "read_pair",
    "run_folder",
    "select_metrics",
    "write_if_changed",
    "write_json",
]
