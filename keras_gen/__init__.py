"""keras_gen: train, evaluate, explore and serve generative image models with Keras 3.

From Python (README, "From Python"):

    import keras_gen
    model, run_dir = keras_gen.train(model="wgan", dataset="fashion_mnist", epochs=1)
    keras_gen.load(keras_gen.export(run_dir)).sample(16)

Public surface: train, evaluate, explore, export, load, load_dataset (keras_gen.api); the model
classes VAE, GAN, WGAN and build_model (the registry behind --model); TrainConfig.
"""

import os
import sys

# TensorFlow's C++ start-up lines (oneDNN notices, "Could not find cuda drivers", an alarming
# "failed call to cuInit ... UNKNOWN ERROR" on every machine without a GPU) are printed while it is
# imported and finds its devices, before its logging reads TF_CPP_MIN_LOG_LEVEL: none concerns a
# user. They stay visible when the user set TF_CPP_MIN_LOG_LEVEL or asks for --verbosity.
_QUIET_START = "TF_CPP_MIN_LOG_LEVEL" not in os.environ and not any(
    argument == "-v" or argument.startswith(("--verbosity", "-v=")) for argument in sys.argv[1:]
)
# What keras_gen sets in the environment itself; a child process it starts (--mode=reproduce) must not
# take these for the user's own settings.
ENVIRONMENT_SET_HERE = tuple(
    name for name in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL") if name not in os.environ
)
# oneDNN is off by default on AMD CPUs; turning it on made tf.function training steps 2.1-2.5x
# faster on our reference machine (../shared/STACK_NOTES.md). It only takes effect if set before
# TensorFlow is first imported, and a user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ INFO lines say nothing a user can act on; warnings stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def _import_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with file descriptor 2 pointing to /dev/null."""
    import importlib

    if not _QUIET_START or "tensorflow" in sys.modules:
        importlib.import_module("tensorflow")
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 2)
            importlib.import_module("tensorflow").config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


_import_tensorflow_quietly()

__version__ = "0.1.0"

from keras_gen.api import evaluate, explore, export, load, load_dataset, train  # noqa: E402
from keras_gen.models import build as build_model  # noqa: E402
from keras_gen.models.gan import GAN  # noqa: E402
from keras_gen.models.vae import VAE  # noqa: E402
from keras_gen.models.wgan import WGAN  # noqa: E402
from keras_gen.training.trainer import TrainConfig  # noqa: E402

__all__ = [
    "GAN", "VAE", "WGAN", "TrainConfig", "build_model", "evaluate", "explore", "export", "load", "load_dataset",
    "train",
]  # fmt: skip
