"""Callbacks that leave a run's record on disk: metrics, curves, sample grids, checkpoints.

Every file is rewritten atomically, and the checkpoint is the last thing written for an epoch: a run
killed at any moment resumes from a checkpoint whose epoch's records are all on disk, and records of
epochs after the checkpoint are dropped and redone.
"""

import csv
import io
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen import io_utils
from keras_gen import plotting
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.training import faults


class MetricsLog(keras.callbacks.Callback):
    """Writes `metrics.csv` (one row per epoch) and a PNG of the curves after every epoch.

    Args:
        csv_path: the CSV; rows of earlier epochs are kept when a run resumes.
        plot_path: the PNG of training and test curves.
        initial_epoch: epochs already done (rows after it are dropped: they are being redone).
        images_per_step: real images one step consumes, for the throughput column.
        title: the figure's title.
    """

    def __init__(self, csv_path, plot_path, initial_epoch=0, images_per_step=None, title=None):
        super().__init__()
        self.csv_path = csv_path
        self.plot_path = plot_path
        self.images_per_step = images_per_step
        self.title = title
        self.rows = [row for row in records.read_metrics_csv(csv_path) if row["epoch"] <= initial_epoch]
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1  # A resumed epoch runs fewer steps than a full one.

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        row = {"epoch": epoch + 1}
        # A test step updates nothing: its skipped_updates is always 0 and would only add a column.
        row.update({key: float(value) for key, value in sorted((logs or {}).items()) if key != "val_skipped_updates"})
        row["epoch_seconds"] = seconds
        if self.images_per_step:
            row["images_per_second"] = self._steps * self.images_per_step / seconds
        self.rows.append(row)
        self._write_csv()
        # A panel of zeros says nothing (skipped_updates of a healthy run, a clipped WGAN's gradient
        # penalty); such a metric stays in the CSV and gets its panel once it moves.
        hidden = {"epoch_seconds", "images_per_second", "quality_seconds", "kid_std"} | {
            key for key in row if key != "epoch" and not any(other.get(key) for other in self.rows)
        }
        curves = [{key: value for key, value in row.items() if key not in hidden} for row in self.rows]
        plotting.plot_training_curves(curves, self.plot_path, title=self.title)

    def _write_csv(self):
        columns = ["epoch"] + sorted({key for row in self.rows for key in row} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        io_utils.write_text(self.csv_path, buffer.getvalue())


class SamplingStatistics(keras.callbacks.Callback):
    """At every epoch's end, before anything samples or saves: `model.refresh_sampling_statistics()`.

    So the quality measurement, the grids and the epoch's checkpoint (hence exports) all see a weight
    average with its own batch norm statistics (models.ema).
    """

    def on_epoch_end(self, epoch, logs=None):
        self.model.refresh_sampling_statistics()


class SkippedRecords(keras.callbacks.Callback):
    """Adds `corrupt_records_skipped` to every epoch's logs: the records of a prepared dataset found
    unreadable and left out (data.stream, --corrupt_data=skip), in the shards this worker reads.
    Put it before the callbacks that read the logs."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["corrupt_records_skipped"] = int(self.counter.numpy().sum())


class SampleGrid(keras.callbacks.Callback):
    """Decodes the same latents after every epoch: `samples/epoch_0001.png` and a TensorBoard image.

    Args:
        latents: numpy array (grid_size, latent_dim), fixed for the whole run so grids compare.
        run_dir: the run directory; the PNGs go to its samples/.
        log_dir: TensorBoard directory for the "samples" image summary.
        title: prefix of each figure's title.
    """

    def __init__(self, latents, run_dir, log_dir, title):
        super().__init__()
        self.latents = latents
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.title = title
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        images = np.asarray(self.model.decode_to_images(self.latents))
        path = layout.sample_grid(self.run_dir, epoch + 1)
        grid = plotting.save_image_grid(images, path, title=f"{self.title}: samples after epoch {epoch + 1}")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.image("samples", grid[np.newaxis], step=epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None  # A resumed run trains in two fits: the second opens a new writer.


class Checkpointer(keras.callbacks.Callback):
    """Saves the run: at every epoch's end, within epochs, and when a stop signal arrives.

    An epoch whose logs carry a FID lower than any before (training.quality) also has its
    checkpoint kept as the run's best (runs.checkpoints.keep_best).

    Within an epoch it saves every `every_steps` steps, or, without them, whenever `every_seconds`
    have passed since the last save; each checkpoint records the position in the data stream, so a
    resumed run continues from that step. It never writes non-finite weights, and with
    nan_policy "stop" it stops training at the first step whose metrics are not finite, leaving
    the last good checkpoint the newest.

    Keras' BackupAndRestore skips optimizers kept as model attributes (a GAN's two), so the
    checkpoint names every optimizer itself (see `runs.checkpoints`).

    Args:
        checkpoint: a checkpoints.Checkpoint.
        start: (epoch, step) the run starts from; the metrics' saved running state is put back at
            the start of a resumed partial epoch (Keras resets it at every epoch's start).
        every_steps, every_seconds: mid-epoch saving, by steps when given, else by time (0: never).
        stop_signals: a faults.StopSignals, or None.
        nan_policy: "stop" or "skip" (the model then skips such updates itself).
        out_dir: the run directory named in messages.
        restored: the path of the checkpoint the run resumed from, if any.
        steps_per_epoch: an epoch's last step is left to the epoch's end (validation and records
            first), so a checkpoint is either inside an epoch or at its end.
        mixed_precision: the run's training.precision policy (the warning about skipped updates
            names loss scaling as their cause under float16).
        measurement: what the run's FIDs are measured with (SampleQuality.identity), kept in the
            best checkpoint's record, or None.
    """

    def __init__(self, checkpoint, start=(0, 0), every_steps=None, every_seconds=600.0, stop_signals=None,
                 nan_policy="stop", out_dir="", restored=None, steps_per_epoch=None,
                 mixed_precision="float32", measurement=None):  # fmt: skip
        super().__init__()
        self.checkpoint = checkpoint
        self.start = start
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.stop_signals = stop_signals
        self.nan_policy = nan_policy
        self.mixed_precision = mixed_precision
        self.out_dir = out_dir
        self.steps_per_epoch = steps_per_epoch
        self.epoch, self.step = start
        # The newest checkpoint: (path, where it is).
        self.saved = (restored, describe_position(*start)) if restored else None
        self._metric_state = None
        if start[1] > 0:  # The metrics' running sums restored with the checkpoint, before Keras resets them.
            self._metric_state = [variable.numpy() for variable in checkpoint.metric_variables]
        self._last_save = time.monotonic()
        self.measurement = measurement
        self.best_fid = checkpoints.best_to_beat(
            checkpoint.run_dir, restored, start, records.training_rows(checkpoint.run_dir), measurement
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.step = self.start[1] if epoch == self.start[0] else 0
        if self._metric_state is not None and epoch == self.start[0]:
            if self.model.distribute_strategy.num_replicas_in_sync == 1:  # Replica-local sums cannot be re-split.
                for variable, value in zip(self.checkpoint.metric_variables, self._metric_state):
                    variable.assign(value)
            self._metric_state = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.nan_policy == "stop":
            self._stop_if_not_finite(logs or {})
        if self.step == self.steps_per_epoch:
            return  # on_epoch_end saves (and stops, if asked) after the epoch's records.
        if self.stop_signals is not None and self.stop_signals.received:
            self._save(self.epoch, self.step)
            raise faults.TrainingStopped(self.stop_signals.received)
        due = (
            self.step % self.every_steps == 0
            if self.every_steps
            else bool(self.every_seconds) and time.monotonic() - self._last_save >= self.every_seconds
        )
        if due:
            self._save(self.epoch, self.step)

    def on_epoch_end(self, epoch, logs=None):
        skipped = int(float((logs or {}).get("skipped_updates", 0)))
        if skipped:
            reason = (
                "whose loss-scaled gradients overflowed (--mixed_precision=mixed_float16 lowers the scale "
                "after each; a few at the start are how it finds it)"
                if self.mixed_precision == "mixed_float16"
                else "with a non-finite loss or gradient (--nan_policy=skip)"
            )
            print(
                # On a line of its own: the progress bar leaves its line open.
                f"{chr(10) if (self.params or {}).get('verbose') else ''}"
                f"warning: epoch {epoch + 1} skipped {skipped} update(s) {reason}; "
                "metrics.csv counts them in skipped_updates",
                file=sys.stderr,
            )
        path = self._save(epoch + 1, 0)
        fid = (logs or {}).get("fid")
        if fid is not None and math.isfinite(fid) and fid < self.best_fid:
            measured = {name: float(logs[name]) for name in checkpoints.BEST_METRICS if name in logs}
            checkpoints.keep_best(self.checkpoint.run_dir, path, {"epoch": epoch + 1, **measured}, self.measurement)
            self.best_fid = fid
        if self.stop_signals is not None and self.stop_signals.received:
            raise faults.TrainingStopped(self.stop_signals.received)

    def _stop_if_not_finite(self, logs):
        for name, value in logs.items():
            value = float(value)
            if not math.isfinite(value):
                last = (
                    f"the newest checkpoint, {os.path.basename(self.saved[0])} ({self.saved[1]}), "
                    "is the last good state"
                    if self.saved
                    else "no checkpoint was written"
                )
                raise errors.TrainingError(
                    f"training stopped at epoch {self.epoch + 1}, step {self.step}: {name} is {value}; {last}. "
                    f"Lower --learning_rate, or pass --nan_policy=skip to skip such updates, then --resume "
                    f"--out_dir={self.out_dir}"
                )

    def _save(self, epoch, step):
        finite = all(bool(tf.reduce_all(tf.math.is_finite(weight))) for weight in self.model.weights)
        if not finite:
            raise errors.TrainingError(
                f"the weights at epoch {self.epoch + 1}, step {self.step} are not finite and were not saved; "
                f"the newest checkpoint in {self.out_dir} is the last good state"
            )
        path = self.checkpoint.save(epoch, step)
        self.saved = (path, describe_position(epoch, step))
        self._last_save = time.monotonic()
        return path


class Progress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, with epochs numbered out of the run's, not out of one fit's.

    A run resumed in the middle of an epoch trains in two fits (trainer.train): Keras would call the
    first "Epoch 2/2", or say nothing when that fit is one epoch, and the user would not see how far
    the run is. Given to fit, it replaces the bar Keras would add.
    """

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.run_epochs


def describe_position(epoch, step):
    """(epochs finished, steps of the next epoch done) in words."""
    return f"end of epoch {epoch}" if step == 0 else f"epoch {epoch + 1}, step {step}"
