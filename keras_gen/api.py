"""The Python API: what `import keras_gen` offers a notebook, each a thin door into the library.

    import keras_gen
    model, run_dir = keras_gen.train(model="vae", dataset="fashion_mnist", epochs=1)
    keras_gen.evaluate(run_dir, num_samples=500, iw_samples=100)      # -> the metrics.json record
    keras_gen.explore(run_dir, "interpolate")                           # -> path of the PNG
    version = keras_gen.export(run_dir)                                  # -> saved_models/<run>/<version>
    keras_gen.load(version).sample(16)                                  # -> uint8 (16, 32, 32, 1)

Each takes the same settings as the command line's flags, as keyword arguments (see README, Flags).
"""

import dataclasses

from keras_gen import errors
from keras_gen import studies
from keras_gen.data import datasets
from keras_gen.evaluation import evaluate as evaluation
from keras_gen.runs import reopen
from keras_gen.runs import train_config
from keras_gen.serving import loading
from keras_gen.serving import saved_model
from keras_gen.serving import signatures
from keras_gen.training import trainer


def train(config=None, export=True, export_dir=None, export_iw_samples=signatures.DEFAULT_LOG_LIKELIHOOD_SAMPLES,
          **settings):  # fmt: skip
    """Trains a model and leaves a complete run directory; returns (trained model, run directory).

    A run that finishes is exported as the next SavedModel version, as `export(run_dir)` does: its
    best checkpoint by FID when it kept one, else its newest.

    Args:
        config: a TrainConfig to start from (it is not modified), or None for the defaults.
        export: export the run when it finishes (`--export`); export_dir, export_iw_samples: as export's.
        **settings: TrainConfig fields, e.g. model="wgan", dataset="svhn", epochs=5, out_dir="runs/x".
            With resume=True, the fields given here override the run's saved ones (as flags do).
    """
    base = config or train_config.TrainConfig()
    known = {field.name for field in dataclasses.fields(train_config.TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise errors.UserError(f"unknown training settings {unknown}; expected some of {sorted(known)}")
    return train_and_export(dataclasses.replace(base, **settings), tuple(settings), export, export_dir,
                            export_iw_samples)  # fmt: skip


def train_and_export(config, given_fields, export, export_dir, export_iw_samples):
    """`train` and `python run.py --mode=train`: trains, then exports a finished run from the chief only."""
    outcome = trainer.run(config, given_fields=given_fields)
    if export and outcome.finished and outcome.chief:
        saved_model.export_run(outcome.run_dir, export_dir, log_likelihood_samples=export_iw_samples)
    return outcome.model, outcome.run_dir


def evaluate(run_dir, **options):
    """`--mode=eval` of a run: the record written to run_dir/metrics.json (see evaluation.evaluate.evaluate_run)."""
    return evaluation.evaluate_run(run_dir, **options)


def explore(run_dir, study="traverse", checkpoint="auto", **options):
    """`--mode=explore` of a run: writes run_dir/explore/<study>.png and returns its path.

    checkpoint: "auto" (the best by FID when the run kept one, else the newest), "best" or "newest".
    Options: dims (traverse), seed, num_images (scatter), out_dir; see studies.run_study.
    """
    path, _ = studies.run_study(reopen.load_run(run_dir, checkpoint), study, **options)
    return path


def export(run_dir, export_dir=None, export_iw_samples=signatures.DEFAULT_LOG_LIKELIHOOD_SAMPLES, checkpoint="auto"):
    """Exports a checkpoint of the run as the next SavedModel version; returns its path.

    export_iw_samples: posterior samples per image of a VAE's `log_likelihood` signature.
    checkpoint: "auto" (the best by FID when the run kept one, else the newest), "best" or "newest".
    """
    return saved_model.export_run(run_dir, export_dir, log_likelihood_samples=export_iw_samples, checkpoint=checkpoint)


def load(path):
    """An exported model (a version directory, or a model folder: its newest version), see loading.ExportedModel."""
    return loading.load(path)


def load_dataset(name, image_size=32, data_dir=None):
    """{"train", "test"}: uint8 images (n, size, size, channels) and labels, found as the CLI finds them."""
    return datasets.load(name, image_size, data_dir=data_dir)
