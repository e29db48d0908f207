"""Reopening a finished (or interrupted) run directory: its config and its newest weights."""

import json
import os

from keras_gen import errors
from keras_gen import models
from keras_gen.training import checkpointing
from keras_gen.training import trainer


def load_run(run_dir):
    """(model with the newest checkpoint's weights, TrainConfig, record of config.json) of `run_dir`."""
    path = os.path.join(run_dir or "", trainer.CONFIG_FILE)
    if not run_dir or not os.path.exists(path):
        raise errors.UserError(
            f"--out_dir {run_dir} holds no {trainer.CONFIG_FILE}; expected a keras_gen run directory"
        )
    with open(path, encoding="utf-8") as stream:
        record = json.load(stream)
    config = trainer.TrainConfig(**record["config"])
    model = models.build(config.model, tuple(record["image_shape"]), **config.model_hyperparameters())
    model.compile(**model.default_optimizers(config.learning_rate or model.default_learning_rate))
    checkpoint, manager, _ = checkpointing.make_checkpoint(model, run_dir)
    checkpointing.restore_latest(checkpoint, manager)
    return model, config, record
