"""Losses and likelihoods as pure functions returning one value per example.

Reduction over the batch happens in one place, `average_over_global_batch`, so a loss means the same
on one device and under `tf.distribute` (Keras 3 loss objects rescale by the replica count; these
functions do not, and must not be mixed with them).
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# Decoder likelihoods p(x|z) over pixels in [0, 1]:
# - "bernoulli": for binary pixels (binarized MNIST); a proper probability mass function there.
# - "continuous_bernoulli": for grey or colour intensities in [0, 1]. Plain Bernoulli on such data is
#   not a normalised density, so its "nats" bound nothing; the continuous Bernoulli
#   (Loaiza-Ganem & Cunningham, 2019) is the Bernoulli's normalised counterpart on [0, 1]. It is fit
#   to uniformly dequantized pixels (pipeline.PIXEL_NOISES), and its negative log-density gets
#   D * ln(256) added: then -log p is a bound on -log P(8-bit image) (Theis et al., 2016), in the
#   same units as the Bernoulli's, and can never go below 0 on average.
LIKELIHOODS = ("bernoulli", "continuous_bernoulli")
DEQUANTIZED_LIKELIHOODS = ("continuous_bernoulli",)
_LOG_256 = math.log(256.0)


def average_over_global_batch(per_example_loss):
    """Sum over this replica's examples divided by the global batch size (correct under tf.distribute)."""
    return tf.nn.compute_average_loss(per_example_loss)


def gaussian_kl(mean, log_variance):
    """KL(N(mean, diag(exp(log_variance))) || N(0, I)) in nats, summed over latent dimensions.

    Closed form: 0.5 * sum(exp(log_variance) + mean^2 - 1 - log_variance). Shape (batch,).
    """
    return 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=-1)


def decoder_distribution(likelihood, logits):
    """p(x|z) as a TFP distribution over whole images (event shape = image shape)."""
    if likelihood == "bernoulli":
        pixels = tfd.Bernoulli(logits=logits, dtype=tf.float32)
    elif likelihood == "continuous_bernoulli":
        pixels = tfd.ContinuousBernoulli(logits=logits)
    else:
        raise ValueError(f"likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
    return tfd.Independent(pixels, reinterpreted_batch_ndims=3)


def negative_log_likelihood(likelihood, images, logits):
    """-log P(images | logits) in nats per image, summed over pixels and channels. Shape (batch,).

    For dequantized likelihoods, the density of the dequantized pixels converted to the probability
    of the 8-bit image: -log p(x) + D * ln(256), D = pixels x channels (the bins are 1/256 wide).
    """
    nll = -decoder_distribution(likelihood, logits).log_prob(images)
    if likelihood in DEQUANTIZED_LIKELIHOODS:
        num_values = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), nll.dtype)
        nll += num_values * _LOG_256
    return nll


def likelihood_mean(likelihood, logits):
    """E[x|z]: the image a decoder output stands for, in [0, 1]."""
    return decoder_distribution(likelihood, logits).mean()
