"""Checkpoints that restore everything a run needs to continue exactly where it stopped.

A checkpoint holds the model's weights (a GAN's weight average too), its noise generator's state,
every optimizer with its slots and iteration count, the metrics' running sums of the epoch under
way, and the position in the data stream: finished epochs and steps done of the next one. A run
resumed from a checkpoint written in the middle of an epoch continues from that step and ends with
the weights an uninterrupted run would have (tested).
"""

import glob
import math
import os
import shutil
import sys

import tensorflow as tf

from keras_gen import errors
from keras_gen import io_utils
from keras_gen.runs import layout

RESUME_FROM = ("latest", "previous")
# Which checkpoint evaluation, studies and exports read: "best" by FID during training, the newest,
# or "auto": the best when the run kept one, else the newest.
CHOICES = ("auto", "best", "newest")
# The measurements best.json records beside the epoch.
BEST_METRICS = ("fid", "kid", "fid_raw")


class Checkpoint:
    """The tf.train.Checkpoint of a compiled model, its manager, and the position variables.

    Attributes:
        checkpoint, manager: tf.train objects (the manager keeps the newest `max_to_keep`).
        epoch: variable, epochs finished.
        step: variable, steps of the next epoch done (0 at an epoch's end).
        metric_variables: the metrics' state (running totals and counts of the epoch under way).
    """

    def __init__(self, model, run_dir, max_to_keep=3):
        model.build_optimizers()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        metric_state = {
            f"{metric.name}.{index}": variable
            for metric in model.metrics
            for index, variable in enumerate(metric.variables)
        }
        self.metric_variables = list(metric_state.values())
        # Keras tracks a SeedGenerator outside model.weights and tf.train.Checkpoint does not find it:
        # without naming its state here, a resumed run would draw different noise than a straight one.
        self.checkpoint = tf.train.Checkpoint(
            model=model,
            epoch=self.epoch,
            step_in_epoch=self.step,
            noise_state=model.noise.state,
            metric_state=metric_state,
            **model.optimizers(),
        )
        self.run_dir = run_dir
        directory = layout.path(run_dir, layout.CHECKPOINTS)
        try:
            self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)
        except (tf.errors.OpError, ValueError) as error:
            raise errors.TrainingError(
                f"the checkpoint index {os.path.join(directory, 'checkpoint')} is damaged ({_reason(error)}); "
                "remove it to resume from the newest complete checkpoint file, or start a new --out_dir"
            ) from None

    @staticmethod
    def position_of(path):
        """(epochs finished, steps of the next epoch done) recorded in the checkpoint at `path`."""
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        step_name = "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE"
        step = int(reader.get_tensor(step_name)) if step_name in names else 0
        return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")), step

    def save(self, epoch, step):
        """Writes a checkpoint at (epochs finished, steps of the next epoch done); returns its path."""
        self.epoch.assign(epoch)
        self.step.assign(step)
        return self.manager.save()

    def restore(self, path):
        """Verifies every file of the checkpoint at `path`, then restores it; returns (epoch, step)."""
        verify(path)
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise errors.UserError(
                f"checkpoint {path} does not fit this model ({_reason(error)}); "
                "resume with the flags the run was started with"
            ) from None
        return int(self.epoch.numpy()), int(self.step.numpy())


def keep_best(run_dir, path, record, measurement=None):
    """Copies the checkpoint at `path` as the run's best, described by `record` (epoch, fid, ...) and
    `measurement` (what the FID was measured with; see best_to_beat).

    The files are copied under a prefix other than the kept best's (an epoch redone after
    --resume=previous can be best twice) and best.json, naming it, is written last (atomically): a
    crash at any moment leaves the previous best or the new one, never a mix. Returns the copy's prefix.
    """
    directory = layout.path(run_dir, layout.CHECKPOINTS, layout.BEST)
    os.makedirs(directory, exist_ok=True)
    previous = best(run_dir)
    prefix = os.path.join(directory, f"best-epoch{record['epoch']:04d}")
    if previous is not None and previous[0] == prefix:
        prefix += "-again"
    for source in glob.glob(glob.escape(path) + ".*"):
        shutil.copyfile(source, prefix + source[len(path) :])
    if measurement:
        record = {**record, "measurement": measurement}
    io_utils.write_json(os.path.join(directory, layout.BEST_RECORD), {**record, "checkpoint": os.path.basename(prefix)})
    # The previous best, and the part-copies of one a crash interrupted, are no longer named.
    for name in os.listdir(directory):
        if name != layout.BEST_RECORD and not name.startswith(os.path.basename(prefix) + "."):
            os.remove(os.path.join(directory, name))
    return prefix


def best_to_beat(run_dir, restored, start, rows, measurement=None):
    """The lowest FID a run's coming epochs must beat to be kept as best; the kept best made to agree first.

    A best of an epoch being redone (--resume=previous) does not count. The checkpoint resumed from,
    when it ended an epoch (`start` is (epoch, 0)) whose FID is in `rows` (metrics.csv's records of
    the epochs kept), becomes the best if it beats the kept one: a stop between saving it and copying
    it, or a rollback past the kept best, would otherwise leave the best behind the records.

    `measurement`: what the coming FIDs are measured with (SampleQuality.identity). A kept best
    measured otherwise (a resume with another --quality_samples or feature network) is on another
    scale: the next measured epoch replaces it, and one line says so.
    """
    kept = best(run_dir)
    if kept is not None and kept[1]["epoch"] > start[0]:
        kept = None
    if kept is not None and measurement is not None and kept[1].get("measurement", measurement) != measurement:
        print(
            f"note: the best checkpoint (epoch {kept[1]['epoch']}, FID {kept[1]['fid']:.4g}) was measured with "
            f"{kept[1]['measurement']}, FIDs now with {measurement}: the next measured epoch replaces it",
            file=sys.stderr,
        )
        return math.inf
    row = next((row for row in rows if row["epoch"] == start[0]), {}) if restored and start[1] == 0 else {}
    fid = row.get("fid")
    if fid is not None and math.isfinite(fid) and (kept is None or fid < kept[1]["fid"]):
        record = {"epoch": start[0], **{name: row[name] for name in BEST_METRICS if name in row}}
        keep_best(run_dir, restored, record, measurement)
        return fid
    return kept[1]["fid"] if kept is not None else math.inf


def best(run_dir):
    """(path prefix, record) of the run's best checkpoint, or None when it kept none."""
    record_path = layout.path(run_dir, layout.CHECKPOINTS, layout.BEST, layout.BEST_RECORD)
    if not os.path.exists(record_path):
        return None
    record = io_utils.read_json(record_path)
    return os.path.join(os.path.dirname(record_path), record["checkpoint"]), record


def for_reading(run_dir, which="auto"):
    """The checkpoint evaluation, studies and exports read (one of CHOICES); a UserError when there is none."""
    if which not in CHOICES:
        raise errors.UserError(f"--checkpoint={which}; expected one of {', '.join(CHOICES)}")
    kept = best(run_dir)
    if which == "best" and kept is None:
        raise errors.UserError(
            f"--checkpoint=best: {run_dir} kept no best checkpoint (it is chosen by FID during training, "
            "which needs --quality_every and the dataset's classifier); use --checkpoint=newest"
        )
    if which != "newest" and kept is not None:
        return kept[0]
    path = latest(run_dir)
    if path is None:
        raise errors.UserError(f"{run_dir} holds no checkpoint yet; train it first (a run saves one every epoch)")
    return path


def _reason(error):
    return " ".join(str(getattr(error, "message", error)).split())[:300]


def latest(run_dir):
    """Path prefix of the newest checkpoint of `run_dir`, or None."""
    return tf.train.latest_checkpoint(layout.path(run_dir, layout.CHECKPOINTS))


def has_checkpoint(run_dir):
    return latest(run_dir) is not None


def all_checkpoints(run_dir):
    """Path prefixes of the checkpoints of `run_dir`, oldest first."""
    state = tf.train.get_checkpoint_state(layout.path(run_dir, layout.CHECKPOINTS))
    return list(state.all_model_checkpoint_paths) if state else []


def verify(path):
    """Reads every tensor of the checkpoint at `path`; a TrainingError names the damaged file.

    A truncated or corrupted file otherwise surfaces as an IndexError or a DataLossError deep inside
    the restore, without saying which file is bad.
    """
    try:
        reader = tf.train.load_checkpoint(path)
    except Exception as error:  # The reader raises several unrelated types for damaged files.
        raise errors.TrainingError(f"checkpoint file {path}.index is damaged or missing ({_reason(error)})") from None
    data_files = sorted(
        os.path.join(os.path.dirname(path), name)
        for name in os.listdir(os.path.dirname(path))
        if name.startswith(os.path.basename(path) + ".data-")
    )
    for name in reader.get_variable_to_shape_map():
        try:
            reader.get_tensor(name)
        except Exception as error:
            damaged = ", ".join(data_files) or f"{path}.data-*"
            raise errors.TrainingError(f"checkpoint file {damaged} is damaged ({_reason(error)})") from None


def choose(run_dir, resume_from="latest"):
    """The checkpoint to resume from: the newest, or with "previous" the one before it.

    A damaged newest checkpoint is an error that names the file and the way out; the run never
    falls back to an older checkpoint unless asked to.
    """
    if resume_from not in RESUME_FROM:
        raise errors.UserError(f"--resume={resume_from}; expected true or one of {', '.join(RESUME_FROM)}")
    paths = all_checkpoints(run_dir)
    if not paths:
        raise errors.UserError(f"--resume needs --out_dir of a run with checkpoints; {run_dir} has none")
    if resume_from == "previous":
        if len(paths) < 2:
            raise errors.UserError(f"--resume=previous: {run_dir} holds only one checkpoint, {paths[-1]}")
        return paths[-2]
    try:
        verify(paths[-1])
    except errors.TrainingError as error:
        hint = (
            f"; resume from the previous checkpoint ({os.path.basename(paths[-2])}) with --resume=previous"
            if len(paths) > 1
            else "; no earlier checkpoint is left"
        )
        raise errors.TrainingError(f"{error}{hint}") from None
    return paths[-1]
