"""Checkpoints that restore everything a run needs to continue exactly where it stopped."""

import os

import tensorflow as tf

from keras_gen import errors

CHECKPOINT_DIR = "checkpoints"


def make_checkpoint(model, run_dir, max_to_keep=3):
    """(checkpoint, manager, epoch variable) for a compiled model.

    The checkpoint holds the model's weights, its noise generator's state, every optimizer with its
    slots and iteration count, and the number of finished epochs.
    """
    model.build_optimizers()
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    # Keras tracks a SeedGenerator outside model.weights and tf.train.Checkpoint does not find it:
    # without naming its state here, a resumed run would draw different noise than a straight one.
    checkpoint = tf.train.Checkpoint(model=model, epoch=epoch, noise_state=model.noise.state, **model.optimizers())
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep)
    return checkpoint, manager, epoch


def latest(run_dir):
    """Path prefix of the newest checkpoint of `run_dir`, or None."""
    return tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))


def has_checkpoint(run_dir):
    return latest(run_dir) is not None


def restore(checkpoint, path):
    """Restores the checkpoint at `path` (a prefix); every saved value must find its variable.

    Checkpoints hold one value per variable whatever the strategy that wrote them, so a run trained
    on several replicas or workers restores on any number of them, one device included.
    """
    if path is None:
        raise errors.UserError("no checkpoint to resume from")
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        message = " ".join(str(error).split())[:300]
        raise errors.UserError(
            f"checkpoint {path} does not fit this model ({message}); resume with the flags the run was started with"
        ) from None
    return path
