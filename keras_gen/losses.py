"""Losses and likelihoods as pure functions returning one value per example.

Reduction over the batch happens in one place, `average_over_global_batch`, so a loss means the same
on one device and under `tf.distribute` (Keras 3 loss objects rescale by the replica count; these
functions do not, and must not be mixed with them).
"""

import math

import tensorflow as tf

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
    # Imported on first use: TFP takes a second to import, which every process that never builds a
    # likelihood (GANs, serving, the CLI's flag errors) would pay.
    from tensorflow_probability import distributions as tfd

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


# Adversarial losses: per-example values from the critic's unbounded scores ("logits").
GAN_LOSSES = ("non_saturating", "least_squares", "hinge")


def discriminator_loss(gan_loss, real_scores, fake_scores):
    """Per-example discriminator loss, (batch,).

    - "non_saturating": binary cross-entropy, -log D(x) - log(1 - D(G(z))) with D = sigmoid(score).
    - "least_squares": the report's MSE form, ((D(x) - 1)^2 + D(G(z))^2) / 2 on sigmoid outputs.
    - "hinge": max(0, 1 - f(x)) + max(0, 1 + f(G(z))) on the raw scores (Lim & Ye, 2017; Miyato et
      al., 2018): real scores above 1 and fake scores below -1 cost nothing.
    """
    real_scores, fake_scores = tf.reshape(real_scores, [-1]), tf.reshape(fake_scores, [-1])
    if gan_loss == "non_saturating":
        return tf.nn.softplus(-real_scores) + tf.nn.softplus(fake_scores)
    if gan_loss == "least_squares":
        return 0.5 * (tf.square(tf.sigmoid(real_scores) - 1.0) + tf.square(tf.sigmoid(fake_scores)))
    if gan_loss == "hinge":
        return tf.nn.relu(1.0 - real_scores) + tf.nn.relu(1.0 + fake_scores)
    raise ValueError(f"gan_loss {gan_loss!r}; expected one of {GAN_LOSSES}")


def generator_loss(gan_loss, fake_scores):
    """Per-example generator loss, (batch,): -log D(G(z)), (D(G(z)) - 1)^2, or -f(G(z)) for "hinge"."""
    fake_scores = tf.reshape(fake_scores, [-1])
    if gan_loss == "non_saturating":
        return tf.nn.softplus(-fake_scores)
    if gan_loss == "least_squares":
        return tf.square(tf.sigmoid(fake_scores) - 1.0)
    if gan_loss == "hinge":
        return -fake_scores
    raise ValueError(f"gan_loss {gan_loss!r}; expected one of {GAN_LOSSES}")


def wasserstein_critic_loss(real_scores, fake_scores):
    """f(G(z)) - f(x) per example: minimising it maximises the Wasserstein estimate E f(x) - E f(G(z))."""
    return tf.reshape(fake_scores, [-1]) - tf.reshape(real_scores, [-1])


def wasserstein_generator_loss(fake_scores):
    return -tf.reshape(fake_scores, [-1])


def gradient_penalty(critic, real_images, fake_images, interpolation_weights, epsilon=1e-12):
    """(||grad_x f(x_hat)||_2 - 1)^2 per example at x_hat = w x + (1 - w) G(z) (Gulrajani et al., 2017).

    Args:
        critic: callable images -> scores.
        interpolation_weights: (batch,) draws from U(0, 1).
        epsilon: inside the square root, so the norm's gradient is finite where the gradient is zero.
    """
    weights = tf.reshape(interpolation_weights, [-1, 1, 1, 1])
    interpolated = weights * real_images + (1.0 - weights) * fake_images
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        scores = critic(interpolated)
    gradients = tape.gradient(scores, interpolated)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]) + epsilon)
    return tf.square(norms - 1.0)
