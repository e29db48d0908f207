import math

import numpy as np
import tensorflow as tf

from keras_gen import losses


def test_kl_of_standard_normal_to_itself_is_zero():
    kl = losses.gaussian_kl(tf.zeros((3, 5)), tf.zeros((3, 5)))
    np.testing.assert_allclose(kl.numpy(), np.zeros(3), atol=1e-7)


def test_kl_matches_closed_form():
    mean = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
    log_variance = np.array([[0.0, math.log(4.0)], [-1.0, 1.0]], np.float32)
    # KL(N(m, s^2) || N(0, 1)) = 0.5 * (s^2 + m^2 - 1 - ln s^2), summed over dimensions.
    expected = 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1.0 - log_variance, axis=-1)
    # First row by hand: 0.5 * (0.25) + 0.5 * (4 + 1 - 1 - ln 4) = 0.125 + 1.30685...
    np.testing.assert_allclose(expected[0], 0.125 + 0.5 * (4.0 - math.log(4.0)), rtol=1e-6)
    np.testing.assert_allclose(losses.gaussian_kl(mean, log_variance).numpy(), expected, rtol=1e-6)


def test_bernoulli_nll_at_half_is_d_ln2():
    images = tf.constant(np.random.default_rng(0).integers(0, 2, (4, 8, 8, 3)), tf.float32)
    nll = losses.negative_log_likelihood("bernoulli", images, tf.zeros_like(images))
    np.testing.assert_allclose(nll.numpy(), np.full(4, 8 * 8 * 3 * math.log(2.0)), rtol=1e-6)


def test_bernoulli_nll_matches_binary_cross_entropy():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 2, (2, 4, 4, 1)).astype(np.float32)
    logits = rng.normal(size=images.shape).astype(np.float32)
    probabilities = 1 / (1 + np.exp(-logits))
    expected = -np.sum(images * np.log(probabilities) + (1 - images) * np.log(1 - probabilities), axis=(1, 2, 3))
    np.testing.assert_allclose(losses.negative_log_likelihood("bernoulli", images, logits).numpy(), expected, rtol=1e-5)


def test_continuous_bernoulli_at_zero_logits_is_uniform_so_nll_is_d_ln256():
    # lambda = 0.5 makes the continuous Bernoulli the uniform density (1) on [0, 1]: -log p = 0, and
    # the 8-bit conversion adds ln 256 per value.
    images = tf.random.uniform((3, 4, 4, 2))
    nll = losses.negative_log_likelihood("continuous_bernoulli", images, tf.zeros_like(images))
    np.testing.assert_allclose(nll.numpy(), np.full(3, 32 * math.log(256.0)), rtol=1e-5)


def test_average_over_global_batch_is_the_mean_without_a_strategy():
    values = tf.constant([1.0, 2.0, 6.0])
    assert float(losses.average_over_global_batch(values)) == 3.0


def test_unknown_likelihood_is_a_clear_error():
    try:
        losses.decoder_distribution("gaussian_mixture", tf.zeros((1, 2, 2, 1)))
    except ValueError as error:
        assert "gaussian_mixture" in str(error) and "bernoulli" in str(error)
    else:
        raise AssertionError("expected ValueError")
