"""keras_gen: train, evaluate, explore and serve generative image models with Keras 3.

From Python (README, "From Python"):

    import keras_gen
    model, run_dir = keras_gen.train(model="wgan", dataset="fashion_mnist", epochs=1)
    keras_gen.load(keras_gen.export(run_dir)).sample(16)

Public surface: train, evaluate, explore, export, load, load_dataset (keras_gen.api); the model
classes VAE, GAN, WGAN and build_model (the registry behind --model); TrainConfig.
"""

import os

# oneDNN is off by default on AMD CPUs; turning it on made tf.function training steps 2.1-2.5x
# faster on our reference machine (../shared/STACK_NOTES.md). It only takes effect if set before
# TensorFlow is first imported, and a user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ INFO lines (CPU feature notices) say nothing a user can act on; warnings stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

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
