"""The Python API: what `import keras_gen` offers a notebook, each a thin door into the library.

    import keras_gen
    model, run_dir = keras_gen.train(model="vae", dataset="fashion_mnist", epochs=1)
    keras_gen.evaluate(run_dir, num_samples=500, iw_samples=100)      # -> the metrics.json record
    keras_gen.explore(run_dir, "interpolate")                           # -> path of the PNG
    version = keras_gen.export(run_dir)                                 # -> saved_models/<run>/<version>
    keras_gen.load(version).sample(16)                                  # -> uint8 (16, 32, 32, 1)

Each takes the same settings as the command line's flags, as keyword arguments (see README, Flags).
"""

import dataclasses

from keras_gen import errors
from keras_gen import runs
from keras_gen import studies
from keras_gen.data import datasets
from keras_gen.evaluation import evaluate as evaluation
from keras_gen.export import loading
from keras_gen.export import saved_model
from keras_gen.training import trainer


def train(config=None, **settings):
    """Trains a model and leaves a complete run directory; returns (trained model, run directory).

    Args:
        config: a TrainConfig to start from (it is not modified), or None for the defaults.
        **settings: TrainConfig fields, e.g. model="wgan", dataset="svhn", epochs=5, out_dir="runs/x".
            With resume=True, the fields given here override the run's saved ones (as flags do).
    """
    base = config or trainer.TrainConfig()
    known = {field.name for field in dataclasses.fields(trainer.TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise errors.UserError(f"unknown training settings {unknown}; expected some of {sorted(known)}")
    return trainer.train(dataclasses.replace(base, **settings), given_fields=tuple(settings))


def evaluate(run_dir, **options):
    """`--mode=eval` of a run: the record written to run_dir/metrics.json (see evaluation.evaluate.evaluate_run)."""
    return evaluation.evaluate_run(run_dir, **options)


def explore(run_dir, study="traverse", **options):
    """`--mode=explore` of a run: writes run_dir/explore/<study>.png and returns its path.

    Options: dims (traverse), seed, num_images (scatter), out_dir; see studies.run_study.
    """
    path, _ = studies.run_study(runs.load_run(run_dir), study, **options)
    return path


def export(run_dir, export_dir=None):
    """Exports the run's newest checkpoint as the next SavedModel version; returns its path."""
    return saved_model.export_run(run_dir, export_dir)


def load(path):
    """An exported model (a version directory, or a model folder: its newest version), see loading.ExportedModel."""
    return loading.load(path)


def load_dataset(name, image_size=32, data_dir=None):
    """{"train", "test"}: uint8 images (n, size, size, channels) and labels, found as the CLI finds them."""
    return datasets.load(name, image_size, data_dir=data_dir)
