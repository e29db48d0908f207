"""--mixed_precision: 16-bit compute inside the networks, float32 weights, outputs, losses and exports."""

import csv
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_train_config as tiny_config
from conftest import write_npz
from keras_gen import api
from keras_gen import errors
from keras_gen import models
from keras_gen.runs import reopen
from keras_gen.models import precision
from keras_gen.training import trainer

# A generator and critic (with the penalty's second derivatives), an LSTM encoder and conv decoder.
MODELS = [("wgan", {"gradient_penalty_weight": 10.0, "weight_clip": 0.0}), ("lstm_vae", {})]


@pytest.fixture
def npz_path(tmp_path):
    return write_npz(tmp_path, (40, 16, 16, 1))


def network_layers(model):
    return [layer for name in model.networks for layer in getattr(model, name).layers if layer.weights]


def network_outputs(model, batch=4):
    """Every tensor the losses read: generator and critic outputs, or posterior and decoder outputs."""
    images = tf.random.uniform((batch, 16, 16, 1))
    latents = tf.random.normal((batch, model.latent_dim))
    if "critic" in model.networks:
        return [model.generator(latents, training=True), model.critic(images, training=True)]
    return [*model.encoder(images, training=True), model.decoder(latents, training=True)]


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("name, extra", MODELS)
def test_mixed_bfloat16_computes_in_bfloat16_and_hands_the_losses_float32(npz_path, tmp_path, name, extra):
    config = tiny_config(npz_path, tmp_path / "run", model=name, mixed_precision="mixed_bfloat16", epochs=1, **extra)
    model, _ = trainer.train(config)
    computes = [layer.compute_dtype for layer in network_layers(model)]
    assert computes.count("bfloat16") >= len(computes) // 2, computes
    assert {weight.dtype for weight in model.weights} == {"float32"}
    assert all(output.dtype == tf.float32 for output in network_outputs(model))
    (row,) = read_metrics(tmp_path / "run")
    assert all(math.isfinite(float(value)) for value in row.values()), row
    # The policy applied to the model built for training only, not to whatever is built next.
    assert keras.config.dtype_policy().name == "float32"
    assert models.build(name, (16, 16, 1), latent_dim=2, base_filters=4).layers[-1].compute_dtype == "float32"


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_a_tiny_vae_overfits_a_batch_under_every_policy(policy):
    keras.utils.set_random_seed(0)
    with precision.policy_scope(policy):
        model = models.build("vae", (16, 16, 1), latent_dim=2, base_filters=4, likelihood="bernoulli", seed=0)
    model.compile(**precision.training_optimizers(model.default_optimizers(3e-3), policy))
    batch = (np.random.default_rng(0).random((8, 16, 16, 1)) > 0.5).astype(np.float32)
    first = model.test_on_batch(batch, return_dict=True)["loss"]
    for _ in range(120):
        model.train_on_batch(batch)
    last = model.test_on_batch(batch, return_dict=True)["loss"]
    # About 177 nats at the start; memorising 8 random binary images removes at least a quarter,
    # in 16 bits too (float16 only if the loss scale keeps small gradients from vanishing).
    assert last < 0.75 * first, (first, last)


def test_float16_optimizers_scale_the_loss_and_an_overflow_lowers_the_scale_and_changes_nothing():
    with precision.policy_scope("mixed_float16"):
        model = models.build("gan", (16, 16, 1), latent_dim=2, base_filters=4, seed=0)
    optimizers = precision.training_optimizers(model.default_optimizers(2e-4), "mixed_float16")
    assert all(isinstance(optimizer, keras.optimizers.LossScaleOptimizer) for optimizer in optimizers.values())
    model.compile(**optimizers)
    # Under "skip" too the overflow must reach the LossScaleOptimizer: it is how it lowers its scale.
    model.nan_policy = "skip"
    model.generator_optimizer.dynamic_scale.assign(1e30)  # Any float16 gradient of loss * 1e30 overflows.
    model.critic_optimizer.dynamic_scale.assign(1.0)  # None of loss * 1 does.
    before = [weight.numpy() for weight in model.generator.trainable_weights]
    logs = model.train_on_batch(np.zeros((4, 16, 16, 1), np.float32), return_dict=True)
    assert model.generator_optimizer.dynamic_scale.numpy() == pytest.approx(5e29, rel=1e-6)
    for weight, old in zip(model.generator.trainable_weights, before):
        np.testing.assert_array_equal(weight.numpy(), old)
    assert logs["skipped_updates"] == 1.0
    assert math.isfinite(logs["generator_loss"])  # The loss itself is unscaled.


def test_a_float16_run_resumes_exports_float32_and_refuses_another_precision(npz_path, tmp_path):
    run_dir = tmp_path / "run"
    export_dir = str(tmp_path / "export")
    api.train(
        tiny_config(npz_path, run_dir, model="gan", mixed_precision="mixed_float16", epochs=1), export_dir=export_dir
    )
    with pytest.raises(errors.UserError, match="--mixed_precision=float32 differs from the run being resumed"):
        trainer.train(tiny_config(npz_path, run_dir, resume=True, epochs=2), ["resume", "epochs", "mixed_precision"])
    model, _ = api.train(
        tiny_config(npz_path, run_dir), resume=True, epochs=2, mixed_precision="mixed_float16", export_dir=export_dir
    )
    assert len(read_metrics(run_dir)) == 2
    # Evaluation and export rebuild the networks in float32 around the run's float32 weights.
    loaded = reopen.load_run(str(run_dir))
    assert {layer.compute_dtype for layer in network_layers(loaded.model)} == {"float32"}
    for ours, trained in zip(loaded.model.generator.weights, model.generator.weights):
        np.testing.assert_array_equal(ours.numpy(), trained.numpy())
    exported = api.load(export_dir)
    images = exported.sample(3, seed=1)
    assert images.dtype == np.uint8 and images.shape == (3, 16, 16, 1) and images.std() > 0


def test_an_unknown_policy_is_a_one_line_error(npz_path, tmp_path, main_in_process):
    status, lines = main_in_process(
        "--dataset=custom", f"--data_dir={npz_path}", f"--out_dir={tmp_path / 'run'}", "--mixed_precision=float8"
    )
    assert status == 2 and len(lines) == 1, lines
    assert "--mixed_precision=float8" in lines[0] and "mixed_bfloat16" in lines[0], lines[0]
    with pytest.raises(errors.UserError, match="--mixed_precision=float8; expected one of float32"):
        trainer.train(tiny_config(npz_path, tmp_path / "run", mixed_precision="float8"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("policy, expected", [("mixed_float16", "meant for GPUs"), ("float32", None)])
def test_a_policy_slower_than_float32_on_this_machine_is_named_before_training(policy, expected, monkeypatch):
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])  # No GPU, as here.
    warning = precision.speed_warning(policy)
    assert warning is None if expected is None else expected in warning
