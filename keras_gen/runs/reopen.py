"""Reopening a finished (or interrupted) run directory: its config, its newest weights, its data."""

import typing

from keras_gen import models
from keras_gen.data import datasets
from keras_gen.data import pipeline
from keras_gen.models import precision
from keras_gen.runs import checkpoints
from keras_gen.runs import train_config


class LoadedRun(typing.NamedTuple):
    model: object  # models.base.GenerativeModel with the newest checkpoint's weights
    config: train_config.TrainConfig
    record: dict  # config.json as written by the trainer
    checkpoint: str  # path prefix of the checkpoint restored
    epochs: int  # epochs the restored weights have finished (a checkpoint within an epoch counts the ones before)
    directory: str  # the run directory it was loaded from


def load_run(run_dir, checkpoint="auto"):
    """Rebuilds the model of `run_dir` and restores a checkpoint of it; returns a LoadedRun.

    `checkpoint`: one of checkpoints.CHOICES; "auto" is the best by FID when the run kept one, else the newest.
    """
    record = train_config.read_record(run_dir)
    config = train_config.TrainConfig.from_saved(record["config"])
    model = models.build(config.model, tuple(record["image_shape"]), **config.model_hyperparameters())
    # Built in float32 whatever the run trained in (models.precision), around the same weights.
    compile_for_run(model, config)
    path = checkpoints.for_reading(run_dir, checkpoint)
    epochs, _ = checkpoints.Checkpoint(model, run_dir).restore(path)
    # A checkpoint written within an epoch holds a weight average whose statistics were not yet measured.
    model.refresh_sampling_statistics()
    return LoadedRun(model, config, record, path, epochs, run_dir)


def compile_for_run(model, config):
    """Compiles `model` with the optimizers of the run `config` describes, so its checkpoints fit.

    Training and every reopening of a run (evaluation, studies, export) compile through here: the
    optimizers a checkpoint holds (their kind, slots, a float16 run's loss scale) are decided once.
    """
    rates = {"learning_rate": config.learning_rate or model.default_learning_rate}
    if config.critic_learning_rate is not None:
        rates["critic_learning_rate"] = config.critic_learning_rate
    optimizers = model.default_optimizers(**rates)
    model.compile(**precision.training_optimizers(optimizers, config.mixed_precision))


def load_splits(run):
    """{"train", "test"} of the run's dataset at its image size: the test split in memory (a
    datasets.LoadedSplit), the train split streamed if the run streamed it (`head` reads its first images)."""
    config = run.config
    return datasets.load(
        config.dataset, config.image_size, data_dir=config.data_dir, stream_train="always" if config.stream else None
    )


def eval_split(run, max_images=None, splits=None):
    """(batches in the model's input range, LoadedSplit) of the run's test split, first `max_images` only.

    Pixel noise (binarization, dequantization) is drawn as in the run's own evaluation: fixed by its seed.
    A conditional model's batches are (images, labels).
    `splits`: the dataset if already loaded (`load_splits`).
    """
    config = run.config
    split = (splits or load_splits(run))["test"]
    if max_images is not None:
        split = datasets.LoadedSplit(
            split.images[:max_images],
            None if split.labels is None else split.labels[:max_images],
            split.source,
            split.class_names,
        )
    pixel_noise = run.model.pixel_noise(datasets.lookup(config.dataset).binarize)
    labels = split.labels if getattr(run.model, "num_classes", 0) else None
    batches = pipeline.eval_dataset(
        split.images, config.batch_size, run.model.value_range, pixel_noise, config.seed, labels=labels
    )
    return batches, split
