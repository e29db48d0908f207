"""The numbers a run directory holds: metrics.csv (one row per epoch) and metrics.json (--mode=eval)."""

import csv
import os

from keras_gen import io_utils
from keras_gen.runs import layout

# The groups of metrics.json, one per kind of evaluation.
EVALUATION_GROUPS = ("likelihood", "sample_quality")


def read_metrics_csv(path):
    """Rows of a metrics CSV as dicts of floats ("epoch" as int); [] when there is no file."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        rows = []
        for row in csv.DictReader(stream):
            parsed = {key: float(value) for key, value in row.items() if value not in ("", None)}
            parsed["epoch"] = int(parsed["epoch"])
            rows.append(parsed)
        return rows


def training_rows(run_dir):
    """metrics.csv of a run: one dict per epoch."""
    return read_metrics_csv(layout.path(run_dir, layout.METRICS))


def evaluation(run_dir):
    """The run's metrics.json record, or None before any --mode=eval."""
    path = layout.path(run_dir, layout.EVALUATION)
    return io_utils.read_json(path) if os.path.exists(path) else None
