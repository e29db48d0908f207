"""Likelihood bounds: the IWAE estimate against the ELBO, against k, and against a quadrature."""

import math
import os

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from keras_gen import models
from keras_gen.evaluation import likelihood
from keras_gen.models import vae as vae_module


def test_log_mean_exp_is_stable_and_exact():
    values = tf.constant([[1000.0, -1000.0], [1000.0, -1000.0 + math.log(3.0)]])
    np.testing.assert_allclose(likelihood.log_mean_exp(values, axis=0), [1000.0, -1000.0 + math.log(2.0)], rtol=1e-6)
    small = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_allclose(likelihood.log_mean_exp(tf.constant(small), 0), np.log(np.exp(small).mean(0)))


def tiny_mlp_vae(latent_dim=2, seed=0):
    model = models.build("mlp_vae", (16, 16, 1), latent_dim=latent_dim, hidden_units=32, seed=seed)
    model.compile(**model.default_optimizers(1e-2))
    return model


def binary_images(count, seed=0):
    return (np.random.default_rng(seed).random((count, 16, 16, 1)) > 0.5).astype(np.float32)


def test_with_one_sample_the_iwae_bound_is_the_elbo_in_expectation():
    model = tiny_mlp_vae()
    images = np.repeat(binary_images(1), 4000, axis=0)  # 4000 independent draws for one image
    neg_elbo, _, _, iwae = likelihood.per_image_bounds(model, images, 1, keras.random.SeedGenerator(1))
    # Per draw they differ by KL(q||p) - (log q - log p): zero mean, so the averages agree.
    difference = np.asarray(iwae) - np.asarray(neg_elbo)
    standard_error = difference.std() / math.sqrt(len(difference))
    assert abs(difference.mean()) < 4 * standard_error + 1e-4, (difference.mean(), standard_error)
    assert standard_error > 0  # The two estimators really were computed from random draws.


def test_bound_tightens_with_more_samples_on_a_trained_model():
    keras.utils.set_random_seed(0)
    model = tiny_mlp_vae()
    images = binary_images(16)
    for _ in range(150):
        model.train_on_batch(images)
    nll = {}
    for k in (1, 10, 100):
        result = likelihood.evaluate_vae(model, tf.data.Dataset.from_tensor_slices(images).batch(8), iw_samples=k)
        nll[k] = result["iwae_nll"]
        assert result["num_images"] == 16
        # Averaging log w over samples is the ELBO: the IWAE NLL can only lie below it (up to noise).
        assert result["iwae_nll"] <= result["neg_elbo"] + 0.5
    assert nll[1] > nll[10] + 0.3 > nll[100] + 0.6, nll


def one_latent_bernoulli_vae(posterior_mean, posterior_log_variance, kernel, bias):
    """A 16x16 Bernoulli VAE with z in R^1: logits = z * kernel + bias; q(z|x) fixed to the given Gaussian."""
    images = keras.Input((16, 16, 1))
    flat = keras.layers.Flatten()(images)
    mean = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")(flat)
    log_variance = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")(flat)
    encoder = keras.Model(images, [mean, log_variance])
    encoder.layers[-2].bias.assign([posterior_mean])
    encoder.layers[-1].bias.assign([posterior_log_variance])
    latents = keras.Input((1,))
    logits = keras.layers.Reshape((16, 16, 1))(keras.layers.Dense(256)(latents))
    decoder = keras.Model(latents, logits)
    decoder.layers[-2].kernel.assign(kernel[np.newaxis])
    decoder.layers[-2].bias.assign(bias)
    return vae_module.VAE(encoder, decoder, likelihood="bernoulli", seed=0)


def test_iwae_matches_the_marginal_likelihood_computed_by_quadrature():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0.0, 0.3, 256).astype(np.float32), rng.normal(0.0, 1.0, 256).astype(np.float32)
    image = (rng.random(256) < scipy.special.expit(0.7 * kernel + bias)).astype(np.float32)
    # log p(x) = log integral N(z; 0, 1) prod_d Bernoulli(x_d; sigmoid(z w_d + b_d)) dz on a fine grid.
    grid = np.linspace(-10.0, 10.0, 20001)
    logits = grid[:, np.newaxis] * kernel + bias
    log_joint = (image * logits - np.logaddexp(0.0, logits)).sum(axis=1) - 0.5 * grid**2 - 0.5 * math.log(2 * math.pi)
    true_nll = -(scipy.special.logsumexp(log_joint) + math.log(grid[1] - grid[0]))
    posterior = np.exp(log_joint - log_joint.max())
    posterior /= posterior.sum()
    mean = float((posterior * grid).sum())
    variance = float((posterior * (grid - mean) ** 2).sum())
    images = np.repeat(image.reshape(1, 16, 16, 1), 4, axis=0)

    # A proposal twice too wide and off by one posterior standard deviation: the ELBO is visibly
    # loose, the IWAE bound with k = 5000 within 0.05 nats of the truth.
    model = one_latent_bernoulli_vae(mean + math.sqrt(variance), math.log(2 * variance), kernel, bias)
    neg_elbo, _, _, iwae = likelihood.per_image_bounds(model, images, 5000, keras.random.SeedGenerator(0))
    assert np.all(np.asarray(neg_elbo) > true_nll + 0.2), (neg_elbo, true_nll)
    np.testing.assert_allclose(iwae, true_nll, atol=0.05)

    # With q the (near-Gaussian) true posterior, the bound is tight already at k = 100.
    model = one_latent_bernoulli_vae(mean, math.log(variance), kernel, bias)
    _, _, _, iwae = likelihood.per_image_bounds(model, images, 100, keras.random.SeedGenerator(0))
    np.testing.assert_allclose(iwae, true_nll, atol=0.02)


def test_chunking_does_not_change_the_estimate():
    model = tiny_mlp_vae()
    images = binary_images(3)
    one_chunk = likelihood.per_image_bounds(model, images, 50, keras.random.SeedGenerator(5))
    many_chunks = likelihood.per_image_bounds(model, images, 50, keras.random.SeedGenerator(5), max_decodes=21)
    # The same draws decoded 7 at a time: equal to round-off. A log-mean-exp per chunk, averaged,
    # would be the looser k = 7 bound, off by far more than 1e-4 nats.
    for one, many in zip(one_chunk, many_chunks):
        np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-4)
    epsilon = keras.random.normal((50, 3, model.latent_dim), seed=keras.random.SeedGenerator(5))
    log_likelihood, log_prior_ratio = model.importance_samples(images, model.encode(images), epsilon)
    weights = log_likelihood + log_prior_ratio
    per_chunk = -np.mean([likelihood.log_mean_exp(weights[start : start + 7]) for start in range(0, 49, 7)], axis=0)
    assert np.all(per_chunk - np.asarray(-likelihood.log_mean_exp(weights)) > 1e-2)


def test_chunks_hold_the_largest_activation_within_the_memory_budget():
    # The report decoder at 32x32 (z 100) passes each image through 65x65x32 floats: at the old fixed
    # 4,096 decodes per chunk that was 2.2 GB per activation and a 7 GB evaluation.
    model = models.build("vae", (32, 32, 1), latent_dim=100, decoder="report", seed=0)
    largest = 65 * 65 * 32 * 4
    chunk = likelihood.decodes_per_chunk(model.decoder)
    assert chunk * largest <= likelihood.DECODE_MEMORY_BYTES < (chunk + 1) * largest
    # A small decoder is capped; a budget below one image still decodes one at a time.
    small = tiny_mlp_vae()
    assert likelihood.decodes_per_chunk(small.decoder) == likelihood.MAX_DECODES
    assert likelihood.decodes_per_chunk(small.decoder, memory_bytes=1) == 1
    # 16x16x1 outputs and 32 hidden units: the 256 output floats are the largest activation.
    assert likelihood.decodes_per_chunk(small.decoder, memory_bytes=256 * 4 * 10) == 10


def test_zero_samples_is_an_error():
    with pytest.raises(ValueError, match="iw_samples=0"):
        likelihood.evaluate_vae(tiny_mlp_vae(), tf.data.Dataset.from_tensor_slices(binary_images(2)).batch(2), 0)


def test_evaluate_run_writes_metrics_json_and_refuses_runs_without_likelihoods(tmp_path):
    import json

    from conftest import tiny_train_config, write_npz
    from keras_gen import errors
    from keras_gen.evaluation import evaluate
    from keras_gen.training import trainer

    data_path = write_npz(tmp_path, (80, 16, 16, 1))  # 8 of them held out as the test split
    _, run_dir = trainer.train(tiny_train_config(data_path, tmp_path / "vae", model="mlp_vae", epochs=1))
    record = evaluate.evaluate_run(run_dir, num_samples=5, iw_samples=3, metrics=["likelihood"])
    with open(os.path.join(run_dir, "metrics.json")) as stream:
        assert json.load(stream) == record
    bounds = record["likelihood"]
    assert bounds["num_images"] == 5 and bounds["iw_samples"] == 3 and record["epochs"] == 1
    assert record["model"] == "mlp_vae" and bounds["units"] == "nats per image"
    np.testing.assert_allclose(bounds["neg_elbo"], bounds["reconstruction"] + bounds["kl"], rtol=1e-6)
    # Continuous Bernoulli on dequantized 16x16 pixels: a bound near 256 ln 256 = 1420 nats at the start.
    assert 0 < bounds["iwae_nll"] < 2 * 1420
    # A later evaluation of other metrics of the same checkpoint keeps this group.
    with open(os.path.join(run_dir, "metrics.json")) as stream:
        kept = evaluate._kept_groups(stream.name, record, recomputed=["sample_quality"])
    assert kept == {"likelihood": bounds}
    assert evaluate._kept_groups(stream.name, dict(record, epochs=2), recomputed=[]) == {}
    with pytest.raises(errors.UserError, match="--iw_samples=0"):
        evaluate.evaluate_run(run_dir, iw_samples=0)
    _, gan_dir = trainer.train(tiny_train_config(data_path, tmp_path / "gan", model="gan", epochs=1, steps_per_epoch=1))
    with pytest.raises(errors.UserError, match="holds a gan run"):
        evaluate.evaluate_run(gan_dir, metrics=["likelihood"])
