"""keras_gen: train, evaluate, explore and serve generative image models with Keras 3.

From Python (README, "From Python"):

    import keras_gen
    model, run_dir = keras_gen.train(model="wgan", dataset="fashion_mnist", epochs=1)
    keras_gen.load(keras_gen.export(run_dir)).sample(16)

Public surface (`__all__`): train, evaluate, explore, export, load, load_dataset (keras_gen.api); the
model classes VAE, GAN, WGAN and build_model (the registry behind --model); TrainConfig.
"""

# First: it sets the environment TensorFlow reads when it loads (oneDNN), then imports it.
from keras_gen import _startup  # noqa: F401  isort: skip

from keras_gen.api import evaluate, explore, export, load, load_dataset, train
from keras_gen.models import build as build_model
from keras_gen.models.gan import GAN
from keras_gen.models.vae import VAE
from keras_gen.models.wgan import WGAN
from keras_gen.runs.train_config import TrainConfig

__version__ = "0.1.0"
__all__ = [
    "GAN", "VAE", "WGAN", "TrainConfig", "build_model", "evaluate", "explore", "export", "load", "load_dataset",
    "train",
]  # fmt: skip
