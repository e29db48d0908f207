"""Every flagfile in flags/ names real flags with valid values and builds its model."""

import glob
import os

import numpy as np
import pytest

from keras_gen import cli, models
from keras_gen.data import datasets
from keras_gen.runs import train_config

PRESETS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)), "flags", "*.cfg")))


def read_preset(path):
    values = {}
    with open(path) as stream:
        for line in stream:
            line = line.strip()
            if line and not line.startswith("#"):
                name, given, value = line.removeprefix("--").partition("=")
                value = value if given else "true"  # A boolean flag named alone, as absl reads it.
                assert name in cli.FLAGS, f"{path}: unknown flag --{name}"
                # The flag's own parser: enums reject unknown values, integers non-numbers.
                values[name] = cli.FLAGS[name].parser.parse(value)
    return values


def test_there_are_presets():
    assert PRESETS


@pytest.mark.parametrize("path", PRESETS, ids=os.path.basename)
def test_preset_parses_and_builds_its_model(path):
    values = read_preset(path)
    size = values.get("image_size", 32)
    channels = 3 if values.get("dataset") in ("svhn", "cifar10") else 1
    # Tiny filters: the preset's architecture (depth, latent size, losses) at a test's cost;
    # building also rejects image sizes the networks do not support.
    # Every preset flag is a TrainConfig field; the model takes its hyperparameters, as training does.
    config = train_config.TrainConfig(**values)
    config.likelihood = train_config.resolve_likelihood(config.likelihood, datasets.lookup(config.dataset))
    if config.conditional:  # The trainer takes the number of classes from the dataset.
        config.num_classes = len(datasets.lookup(config.dataset).class_names)
    hyperparameters = config.model_hyperparameters()
    if "base_filters" in models.hyperparameters(config.model):
        hyperparameters["base_filters"] = 2
    model = models.build(config.model, (size, size, channels), **hyperparameters)
    images = model.decode_to_images(np.zeros((1, model.latent_dim), np.float32))
    assert images.shape == (1, size, size, channels)
