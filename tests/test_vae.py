"""The convolutional VAE: shapes, one train step, test step, overfitting, config round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import models
from keras_gen.models import vae as vae_module


def tiny_vae(image_size=16, channels=1, likelihood="bernoulli", **kwargs):
    model = models.build(
        "vae", (image_size, image_size, channels), latent_dim=2, base_filters=4, likelihood=likelihood, seed=0, **kwargs
    )
    model.compile(**model.default_optimizers(3e-3))
    return model


def binary_batch(size=16, channels=1, count=4, seed=0):
    return (np.random.default_rng(seed).random((count, size, size, channels)) > 0.5).astype(np.float32)


@pytest.mark.parametrize("image_size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(image_size, channels):
    model = tiny_vae(image_size, channels)
    images = binary_batch(image_size, channels, count=2)
    mean, log_variance = model.encode(images)
    assert mean.shape == (2, 2) and log_variance.shape == (2, 2)
    assert model.decoder(mean).shape == (2, image_size, image_size, channels)
    reconstructions = model(images).numpy()
    assert reconstructions.shape == images.shape
    assert reconstructions.min() >= 0.0 and reconstructions.max() <= 1.0


def test_depth_follows_image_size():
    # 16 -> 3 stride-2 stages, 32 -> 4, 64 -> 5: a 2x2 map before the dense layer every time.
    for image_size, stages in ((16, 3), (32, 4), (64, 5)):
        encoder = tiny_vae(image_size).encoder
        convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == stages
        assert convs[-1].output.shape[1:3] == (2, 2)


def test_unsupported_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="image size 28; expected one of 16, 32, 64"):
        tiny_vae(28)


def test_one_train_step_changes_every_trainable_weight_and_counts_one_iteration():
    model = tiny_vae()
    before = [variable.numpy().copy() for variable in model.trainable_variables]
    logs = model.train_on_batch(binary_batch(), return_dict=True)
    assert set(logs) == {"loss", "neg_elbo", "reconstruction", "kl", "skipped_updates"} and logs["skipped_updates"] == 0
    assert int(model.optimizer.iterations.numpy()) == 1
    for old, variable in zip(before, model.trainable_variables):
        assert not np.array_equal(old, variable.numpy()), variable.path


def test_test_step_changes_nothing():
    model = tiny_vae()
    model.train_on_batch(binary_batch())
    before = [variable.numpy().copy() for variable in model.weights]
    logs = model.test_on_batch(binary_batch(seed=1), return_dict=True)
    assert np.isfinite(logs["neg_elbo"])
    # The noise generator's state advances (a fresh z); no weight, statistic or slot may change.
    for old, variable in zip(before, model.weights):
        if "seed_generator" not in variable.path:
            np.testing.assert_array_equal(old, variable.numpy(), err_msg=variable.path)
    assert int(model.optimizer.iterations.numpy()) == 1


def test_metrics_are_nats_per_image_and_neg_elbo_is_their_sum():
    model = tiny_vae()
    logs = model.test_on_batch(binary_batch(), return_dict=True)
    np.testing.assert_allclose(logs["neg_elbo"], logs["reconstruction"] + logs["kl"], rtol=1e-5)
    # An untrained decoder is near p = 0.5 per pixel: about 16 * 16 * ln 2 = 177 nats per image.
    assert 120 < logs["reconstruction"] < 260


def test_kl_weight_scales_only_the_kl_term_of_the_loss():
    model = tiny_vae(kl_weight=0.0)
    logs = model.test_on_batch(binary_batch(), return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["reconstruction"], rtol=1e-5)
    assert logs["kl"] > 0


def test_tiny_vae_overfits_a_fixed_batch():
    keras.utils.set_random_seed(0)
    model = tiny_vae()
    batch = binary_batch(count=8)
    first = model.train_on_batch(batch, return_dict=True)["loss"]
    for _ in range(150):
        last = model.train_on_batch(batch, return_dict=True)["loss"]
    # The starting loss is about 177 nats; memorising 8 random binary images must remove at least 30%.
    assert last < 0.7 * first, (first, last)


def test_continuous_bernoulli_vae_trains_on_unit_interval_data():
    model = tiny_vae(likelihood="continuous_bernoulli")
    images = np.random.default_rng(0).random((4, 16, 16, 1)).astype(np.float32)
    logs = model.train_on_batch(images, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert model.pixel_noise(dataset_binarizes=False) == "dequantize"
    assert model.pixel_noise(dataset_binarizes=True) == "binarize"


def test_config_round_trip_gives_the_same_outputs():
    model = tiny_vae(kl_weight=0.5)
    clone = vae_module.VAE.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.kl_weight == 0.5 and clone.likelihood == "bernoulli" and clone.latent_dim == 2
    latents = tf.constant([[0.3, -1.2]])
    np.testing.assert_allclose(clone.decode_to_images(latents), model.decode_to_images(latents), rtol=1e-6)


def test_saved_weights_reload_to_the_same_outputs(tmp_path):
    model = tiny_vae()
    model.train_on_batch(binary_batch())
    path = str(tmp_path / "vae.weights.h5")
    model.save_weights(path)
    other = tiny_vae()
    other.load_weights(path)
    images = binary_batch(count=2)
    np.testing.assert_allclose(other.encode(images)[0], model.encode(images)[0], rtol=1e-6)
