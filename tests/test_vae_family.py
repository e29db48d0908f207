"""The VAE family beyond the conv VAE: MLP and LSTM encoders under the one VAE training step."""

import keras
import numpy as np
import pytest

from keras_gen import models
from keras_gen.models import vae as vae_module


def build(name, image_shape=(16, 16, 1), latent_dim=3, hidden_units=16, learning_rate=3e-3, **kwargs):
    sizes = {"base_filters": 4, "hidden_units": hidden_units}  # Tiny, for whichever of them the model has.
    sizes = {key: value for key, value in sizes.items() if key in models.hyperparameters(name)}
    model = models.build(name, image_shape, latent_dim=latent_dim, seed=0, **sizes, **kwargs)
    model.compile(**model.default_optimizers(learning_rate))
    return model


def binary_batch(shape=(16, 16, 1), count=8, seed=0):
    return (np.random.default_rng(seed).random((count,) + shape) > 0.5).astype(np.float32)


@pytest.mark.parametrize("name", ["vae", "mlp_vae", "lstm_vae"])
@pytest.mark.parametrize("image_shape", [(16, 16, 1), (32, 32, 3)])
def test_every_vae_shares_the_posterior_interface(name, image_shape):
    model = build(name, image_shape)
    assert isinstance(model, vae_module.VAE)
    mean, log_variance = model.encode(binary_batch(image_shape, count=2))
    assert mean.shape == log_variance.shape == (2, 3)
    assert model.decoder(mean).shape == (2,) + image_shape


def test_lstm_encoder_reads_rows_of_width_times_channels():
    model = build("lstm_vae", (32, 32, 3))
    lstm = model.encoder.get_layer("lstm")
    assert lstm.input.shape[1:] == (32, 96)  # 32 steps, each a row of 32 pixels x 3 channels
    assert lstm.units == 16
    # The decoder is the conv VAE's transposed-conv decoder.
    assert any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.decoder.layers)


def test_mlp_vae_is_fully_connected():
    model = build("mlp_vae")
    kinds = {type(layer).__name__ for layer in model.encoder.layers + model.decoder.layers}
    assert kinds <= {"InputLayer", "Flatten", "Dense", "Reshape"}, kinds


@pytest.mark.parametrize("name", ["mlp_vae", "lstm_vae"])
def test_loss_falls_when_a_tiny_model_overfits_a_batch(name):
    keras.utils.set_random_seed(0)
    model = build(name, hidden_units=32, learning_rate=1e-2)
    batch = binary_batch()
    first = model.train_on_batch(batch, return_dict=True)["loss"]
    for _ in range(100):
        last = model.train_on_batch(batch, return_dict=True)["loss"]
    # About 16 * 16 * ln 2 = 177 nats at the start; memorising 8 random images removes at least 30%.
    assert last < 0.7 * first, (first, last)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_lstm_vae_trains_with_and_without_xla(jit_compile):
    model = models.build("lstm_vae", (16, 16, 1), latent_dim=2, base_filters=4, hidden_units=8, seed=0)
    # Where the LSTM layer reports no XLA support (cuDNN), Keras warns and compiles without XLA.
    model.compile(jit_compile=jit_compile, **model.default_optimizers(1e-3))
    assert model.jit_compile == (jit_compile and model.encoder.get_layer("lstm").supports_jit)
    before = [variable.numpy().copy() for variable in model.encoder.trainable_variables]
    logs = model.train_on_batch(binary_batch(count=4), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert all(not np.array_equal(old, new.numpy()) for old, new in zip(before, model.encoder.trainable_variables))


@pytest.mark.parametrize(
    "weights, loss_is",
    [({"kl_weight": 0.0}, "reconstruction"), ({"reconstruction_weight": 0.0}, "kl")],
)
def test_ablations_train_on_one_term_only(weights, loss_is):
    model = build("mlp_vae", latent_dim=2, **weights)
    logs = model.test_on_batch(binary_batch(), return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs[loss_is], rtol=1e-5)
    # neg_elbo still reports both terms: the ablation changes what is optimised, not what is measured.
    np.testing.assert_allclose(logs["neg_elbo"], logs["reconstruction"] + logs["kl"], rtol=1e-5)


def test_without_reconstruction_the_posterior_collapses_to_the_prior():
    keras.utils.set_random_seed(0)
    model = build("mlp_vae", latent_dim=2, reconstruction_weight=0.0)
    batch = binary_batch()
    for _ in range(200):
        logs = model.train_on_batch(batch, return_dict=True)
    assert logs["kl"] < 0.05, logs


def test_mlp_and_lstm_configs_round_trip():
    for name in ("mlp_vae", "lstm_vae"):
        model = build(name)
        clone = vae_module.VAE.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        images = binary_batch(count=2)
        np.testing.assert_allclose(clone.encode(images)[0], model.encode(images)[0], rtol=1e-5, atol=1e-6)
