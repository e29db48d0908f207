"""The in-training sample-quality measurement's share of training time, as run.py trains.

Trains `--model` on `--dataset` with run.py's flags (its defaults where not given: the measurement
after every epoch within `--quality_budget`) into `--out_dir`, once per value of `--quality_budgets`,
and reads each run's metrics.csv: the epochs measured, the seconds they took and their share of the
epochs' seconds. Rerun, the command reuses the runs it finished.
"""

import dataclasses
import os

from benchmarks import results
from benchmarks import trained
from keras_gen import cli
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.training import trainer


def run(settings):
    base, given = cli.train_config_from_flags()
    rows, measured = [], []
    for budget in (float(value) for value in settings.quality_budgets):
        run_dir = os.path.join(settings.out_dir, f"budget{budget:g}")
        config = dataclasses.replace(
            base, out_dir=run_dir, quality_budget=budget, verbose=2, resume=checkpoints.has_checkpoint(run_dir)
        )
        trainer.train(config, given_fields=[*given, "quality_budget", "resume"])
        epochs = records.read_metrics_csv(layout.path(run_dir, layout.METRICS))
        trained.check_finished(run_dir, len(epochs), config.epochs)  # Not a share of a run cut short.
        measured_epochs, quality_seconds, total_seconds = trained.quality_share(epochs)
        count = len(measured_epochs)
        record = {
            "quality_budget": budget, "epochs": len(epochs), "epochs_measured": count, "measured": measured_epochs,
            "quality_seconds": quality_seconds, "seconds": total_seconds,
            "share": quality_seconds / total_seconds if total_seconds else None,
            "seconds_per_measurement": quality_seconds / count if count else None,
        }  # fmt: skip
        measured.append(record)
        rows.append([
            f"{budget:g}" if budget else "0 (no limit)", f"{count} of {len(epochs)}",
            f"{record['seconds_per_measurement']:.1f}" if count else "–", f"{total_seconds / 60:.1f}",
            f"{record['share']:.1%}",
        ])  # fmt: skip
        print(rows[-1], flush=True)
    columns = ["--quality_budget", "epochs measured", "seconds per measurement", "minutes in all", "share measuring"]
    summary = {"model": base.model, "dataset": base.dataset, "quality_samples": base.quality_samples}
    return results.make("quality_cost", columns, rows, measured, summary, title="In-training quality: its share")
