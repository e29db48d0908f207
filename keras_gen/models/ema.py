"""An exponential moving average of a network's weights (Yazici et al., ICLR 2019).

After update t of the network, every weight it trains moves the average towards it:

    average <- d_t * average + (1 - d_t) * weight,    d_t = min(decay, (1 + t) / (10 + t))

The warm-up d_t (tf.train.ExponentialMovingAverage's `num_updates` rule) keeps the first averages
from being dominated by the random initialisation: d_1 = 0.18, d_10 = 0.55, d_100 = 0.93, and
`decay` itself once (1 + t) / (10 + t) reaches it, at t = (10 decay - 1) / (1 - decay): after 8,991
updates for 0.999 (at 2,000 updates the average still forgets with d = 0.9955).

Batch norm's moving statistics are not averaged: an average of the statistics the trained weights
saw is not the statistics of the averaged weights (on the CIFAR-10 subset, where the default GAN
moves between modes, its average scored FID 16.4 with averaged statistics and 11.0 with its own,
from the same training run; BENCHMARKS.md). They are "standing statistics" (BigGAN, Brock et al.,
2019): `standing_statistics` measures them on the average itself whenever its weights are about
to be used.
"""

import keras
import numpy as np
import tensorflow as tf

# Latents that standing statistics are measured on, at every epoch's end: the FID of the CIFAR-10
# subset's GANs moved by at most 0.34 between 256, 512 and 2,048 of them (less than the FID's own
# spread over draws of its samples), and 2,048 cost 3-4 times as long as 512 (10 s against 3 s
# for a 32x32 generator on 2 busy cores).
STANDING_LATENTS = 512
STANDING_BATCH = 256
STANDING_SEED = 20190213  # Fixed, so the same average gets the same statistics in every process.


def decay_at(decay, updates):
    """d_t: the decay applied at update `updates` (t >= 1)."""
    updates = tf.cast(updates, tf.float32)
    return tf.minimum(tf.cast(decay, tf.float32), (1.0 + updates) / (10.0 + updates))


def average_copy(network):
    """A new network of `network`'s architecture holding a copy of its weights: the average's start."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    copy.trainable = False
    return copy


def update(average, network, decay, updates):
    """One step of the average towards `network` after its update number `updates` (see the module doc).

    Only the weights `network` trains are averaged; the rest (batch norm's statistics) are left to
    `standing_statistics`.
    """
    rate = 1.0 - decay_at(decay, updates)
    for averaged, weight in zip(average.weights, network.weights):
        if weight.trainable:
            averaged.assign_sub(tf.cast(rate, averaged.dtype) * (averaged - tf.cast(weight, averaged.dtype)))


def standing_statistics(
    network, latent_dim, num_classes=0, count=STANDING_LATENTS, batch_size=STANDING_BATCH, seed=STANDING_SEED
):
    """Sets the moving mean and variance of every batch norm of `network` (a functional model of
    latents, or of [latents, labels] with `num_classes`) to the mean and variance of that layer's
    inputs over `count` prior latents (their labels cycling through the classes).

    Layer by layer in the network's order, each measured with the layers before it already set and
    the network in inference mode: the statistics are those the network meets when it samples.
    """
    norms = [layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    latents = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
    labels = np.arange(count, dtype=np.int32) % max(num_classes, 1)
    for norm in norms:
        probe = keras.Model(network.input, norm.input)
        total = total_squares = 0.0
        values = 0
        for start in range(0, count, batch_size):
            rows = slice(start, start + batch_size)
            given = [latents[rows], labels[rows]] if num_classes else latents[rows]
            inputs = np.asarray(probe(given, training=False), np.float64)
            inputs = inputs.reshape(-1, inputs.shape[-1])  # Channels last: statistics per channel.
            total = total + inputs.sum(axis=0)
            total_squares = total_squares + np.square(inputs).sum(axis=0)
            values += len(inputs)
        mean = total / values
        variance = np.maximum(total_squares / values - np.square(mean), 0.0)  # Biased, as Keras' moving variance.
        norm.moving_mean.assign(mean.astype(norm.moving_mean.dtype))
        norm.moving_variance.assign(variance.astype(norm.moving_variance.dtype))
