"""What `import keras_gen` offers, and what it says when TensorFlow was imported before it."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_gen
from keras_gen import _startup, cli, errors, models
from keras_gen.runs import train_config

DOCUMENTED = {"GAN", "VAE", "WGAN", "TrainConfig", "build_model", "evaluate", "explore", "export", "load",
              "load_dataset", "train"}  # fmt: skip


def test_import_keras_gen_exposes_exactly_its_documented_api():
    public = {
        name for name in dir(keras_gen) if not name.startswith("_") and not inspect.ismodule(getattr(keras_gen, name))
    }
    assert public == DOCUMENTED == set(keras_gen.__all__)
    # The export function does not hide a subpackage of the same name (exports live in keras_gen.serving).
    assert callable(keras_gen.export) and not inspect.ismodule(keras_gen.export)


def test_a_live_model_samples_what_its_export_samples():
    model = keras_gen.build_model("gan", (16, 16, 1), latent_dim=3, base_filters=4, seed=0)
    images = model.sample(5, seed=2)
    assert images.dtype == np.uint8 and images.shape == (5, 16, 16, 1)
    np.testing.assert_array_equal(images[:3], model.sample(3, seed=2))  # A longer draw begins with a shorter one.
    assert not np.array_equal(images, model.sample(5, seed=3))
    with pytest.raises(ValueError, match="seed=-1; expected an integer from 0"):
        model.sample(2, seed=-1)


def test_build_model_refuses_a_hyperparameter_the_model_does_not_take():
    with pytest.raises(errors.UserError) as error:
        keras_gen.build_model("gan", (16, 16, 1), latent_dim=3, weight_clip=0.1)
    message = str(error.value)
    assert message == (
        "the gan model takes no hyperparameter weight_clip; it takes: base_filters, class_conditioning, "
        "critic_steps, diffaugment, ema_decay, gan_loss, latent_dim, num_classes, seed, spectral_norm"
    )
    # The GAN's K discriminator steps and the WGAN's critic steps are one concept with one name.
    assert keras_gen.build_model("gan", (16, 16, 1), latent_dim=3, base_filters=4, critic_steps=3).critic_steps == 3


def test_one_name_per_concept_across_flags_config_and_builders():
    fields = {field for field in train_config.TrainConfig.__dataclass_fields__}
    # Hyperparameters the data decide, under the flag that asks for them: the classes come from the dataset.
    from_the_data = {"num_classes": "conditional"}
    for name in models.MODELS.names():
        for hyperparameter in models.hyperparameters(name):
            flag = from_the_data.get(hyperparameter, hyperparameter)
            assert hyperparameter in fields and flag in cli.FLAGS and flag in fields, (name, hyperparameter)
    assert not {"z_dim", "d_steps", "gradient_penalty"} & fields


def test_the_flag_names_of_earlier_versions_still_parse_into_the_current_ones():
    cli.FLAGS.unparse_flags()
    try:
        cli.parse_flags(["run.py", "--z_dim=7", "--d_steps=3", "--gradient_penalty=10"])
        config, given = cli.train_config_from_flags()
    finally:
        cli.FLAGS.unparse_flags()
    assert (config.latent_dim, config.critic_steps, config.gradient_penalty_weight) == (7, 3, 10.0)
    assert {"latent_dim", "critic_steps", "gradient_penalty_weight"} <= set(given)
    # And a config.json written with those names reopens under the current ones.
    old = {"model": "gan", "z_dim": 5, "d_steps": 2, "critic_steps": 5, "gradient_penalty": 0.0, "export": True}
    expected = train_config.TrainConfig(
        model="gan", latent_dim=5, critic_steps=2, conv_padding="same", encoder_dense_activation="leaky_relu"
    )
    assert train_config.TrainConfig.from_saved(old) == expected


def python(code, **environment):
    """stderr lines of `code` in a fresh Python, with TF_ENABLE_ONEDNN_OPTS as given (unset by default)."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")
    }
    env.update(environment)
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished.stdout, [line for line in finished.stderr.splitlines() if line.startswith("keras_gen:")]


def test_importing_tensorflow_first_warns_once_where_it_leaves_onednn_off():
    # What TensorFlow itself reports when it loads without the variable: off on AMD CPUs, on on Intel.
    stdout, warnings = python("import tensorflow; import keras_gen; print(keras_gen._startup.onednn_enabled())")
    onednn_on = stdout.strip().splitlines()[-1] == "True"
    assert warnings == ([] if onednn_on else [_startup.ONEDNN_WARNING])
    # keras_gen first: oneDNN on, nothing said.
    stdout, warnings = python("import keras_gen; import tensorflow; print(keras_gen._startup.onednn_enabled())")
    assert warnings == [] and stdout.strip().splitlines()[-1] == "True"
    # The user's own choice, even to keep it off, is respected and not commented on.
    _, warnings = python("import tensorflow; import keras_gen", TF_ENABLE_ONEDNN_OPTS="0")
    assert warnings == []
