"""Callbacks that leave a run's record on disk: metrics, curves, sample grids, checkpoints.

Every file is rewritten atomically, and the checkpoint is the last thing written for an epoch: a run
killed at any moment resumes from a checkpoint whose epoch's records are all on disk, and records of
epochs after the checkpoint are dropped and redone.
"""

import csv
import io
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gen import io_utils
from keras_gen import plotting


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


class MetricsLog(keras.callbacks.Callback):
    """Writes `metrics.csv` (one row per epoch) and a PNG of the curves after every epoch.

    Args:
        csv_path: the CSV; rows of earlier epochs are kept when a run resumes.
        plot_path: the PNG of training and test curves.
        initial_epoch: epochs already done (rows after it are dropped: they are being redone).
        images_per_epoch: for the throughput column.
        title: the figure's title.
    """

    def __init__(self, csv_path, plot_path, initial_epoch=0, images_per_epoch=None, title=None):
        super().__init__()
        self.csv_path = csv_path
        self.plot_path = plot_path
        self.images_per_epoch = images_per_epoch
        self.title = title
        self.rows = [row for row in read_metrics_csv(csv_path) if row["epoch"] <= initial_epoch]
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        row = {"epoch": epoch + 1}
        row.update({key: float(value) for key, value in sorted((logs or {}).items())})
        row["epoch_seconds"] = seconds
        if self.images_per_epoch:
            row["images_per_second"] = self.images_per_epoch / seconds
        self.rows.append(row)
        self._write_csv()
        curves = [
            {key: value for key, value in row.items() if key not in ("epoch_seconds", "images_per_second")}
            for row in self.rows
        ]
        plotting.plot_training_curves(curves, self.plot_path, title=self.title)

    def _write_csv(self):
        columns = ["epoch"] + sorted({key for row in self.rows for key in row} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        io_utils.write_text(self.csv_path, buffer.getvalue())


class SampleGrid(keras.callbacks.Callback):
    """Decodes the same latents after every epoch: `samples/epoch_0001.png` and a TensorBoard image.

    Args:
        latents: numpy array (grid_size, latent_dim), fixed for the whole run so grids compare.
        directory: where the PNGs go.
        log_dir: TensorBoard directory for the "samples" image summary.
        title: prefix of each figure's title.
    """

    def __init__(self, latents, directory, log_dir, title):
        super().__init__()
        self.latents = latents
        self.directory = directory
        self.log_dir = log_dir
        self.title = title
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        images = np.asarray(self.model.decode_to_images(self.latents))
        path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
        grid = plotting.save_image_grid(images, path, title=f"{self.title}: samples after epoch {epoch + 1}")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.image("samples", grid[np.newaxis], step=epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves model, optimizers and the epoch counter through a tf.train.CheckpointManager.

    Keras' BackupAndRestore skips optimizers kept as model attributes (a GAN's two), so the
    checkpoint names every optimizer itself (see `training.checkpointing`).
    """

    def __init__(self, manager, epoch_variable):
        super().__init__()
        self.manager = manager
        self.epoch_variable = epoch_variable

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_variable.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
