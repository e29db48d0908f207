"""Every flagfile in flags/ names real flags with valid values and builds its model."""

import glob
import os

import numpy as np
import pytest

from keras_gen import cli, models

PRESETS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)), "flags", "*.cfg")))


def read_preset(path):
    values = {}
    with open(path) as stream:
        for line in stream:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, value = line.removeprefix("--").partition("=")
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
    hyperparameters = {key: value for key, value in values.items() if key not in ("model", "z_dim", "base_filters")}
    model = models.build(
        values["model"], (size, size, channels), latent_dim=values.get("z_dim", 20), base_filters=2, **hyperparameters
    )
    images = model.decode_to_images(np.zeros((1, model.latent_dim), np.float32))
    assert images.shape == (1, size, size, channels)
