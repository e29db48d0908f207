"""Critic-based estimates of the squared Hellinger and Wasserstein-1 distances between two samples.

The experiment of ../shared/seeds/000: p = (0, U[0, 1]) and q_theta = (theta, U[0, 1]), two
parallel segments. Their supports are disjoint unless theta = 0, so the squared Hellinger distance
jumps from 0 to its maximum while the Wasserstein distance grows smoothly as |theta|: the reason
WGANs get useful gradients where f-divergence GANs do not.

Normalisation: H^2(P, Q) = integral (sqrt(p) - sqrt(q))^2, which lies in [0, 2] (2 for disjoint
supports). It is the f-divergence of f(u) = (sqrt(u) - 1)^2, whose variational lower bound
(Nguyen et al., 2010; Nowozin et al., 2016, "f-GAN") is
    E_p[T(x)] - E_q[f*(T(x))],   f*(t) = t / (1 - t) for t < 1.
With the output activation T = 1 - exp(-v) for an unbounded critic output v, f*(T) = exp(v) - 1,
and the optimum is exp(-v) = sqrt(q / p).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_gen import losses
from keras_gen.runs import layout

KINDS = ("squared_hellinger", "wasserstein")


def squared_hellinger_bound(scores_p, scores_q):
    """E_p[1 - exp(-v)] - E_q[exp(v) - 1]: the f-GAN lower bound on H^2 from critic outputs v."""
    return tf.reduce_mean(1.0 - tf.exp(-scores_p)) - tf.reduce_mean(tf.exp(scores_q) - 1.0)


def wasserstein_estimate(scores_p, scores_q):
    """E_p[f] - E_q[f]: the Kantorovich-Rubinstein bound on W1 for a 1-Lipschitz critic f."""
    return tf.reduce_mean(scores_p) - tf.reduce_mean(scores_q)


def parallel_lines(theta, num_samples, rng):
    """Samples of (theta, U[0, 1]), shape (num_samples, 2)."""
    return np.stack([np.full(num_samples, theta), rng.uniform(size=num_samples)], axis=1).astype(np.float32)


def closed_form(kind, theta):
    """The exact distance between p = (0, U[0, 1]) and q = (theta, U[0, 1])."""
    if kind == "wasserstein":
        return abs(theta)
    if kind == "squared_hellinger":
        return 0.0 if theta == 0 else 2.0
    raise ValueError(f"kind {kind!r}; expected one of {KINDS}")


def make_critic(input_dim, hidden_units=64, seed=0):
    def initializer(layer):
        # One seed per layer: a seeded initializer draws the same numbers at every call, so layers
        # sharing one would start as copies of each other (the smaller a prefix of the larger).
        return keras.initializers.GlorotUniform(seed=seed * 3 + layer)

    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden_units, activation="relu", kernel_initializer=initializer(0)),
            keras.layers.Dense(hidden_units, activation="relu", kernel_initializer=initializer(1)),
            keras.layers.Dense(1, kernel_initializer=initializer(2)),
        ]
    )


def estimate(kind, sample_p, sample_q, steps=1000, batch_size=512, learning_rate=1e-3, gradient_penalty=10.0, seed=0):
    """Trains a critic on fresh batches from the two samplers and returns its estimate of the distance.

    Args:
        kind: "squared_hellinger" or "wasserstein" (the latter with a gradient penalty, Gulrajani et al.).
        sample_p, sample_q: callables (num_samples, numpy Generator) -> float32 array (num_samples, dim).
        steps: critic updates.
        gradient_penalty: lambda of the Wasserstein critic's penalty.

    Returns:
        The bound evaluated on 10 fresh batches, as a float.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")
    rng = np.random.default_rng(seed)
    dim = sample_p(1, rng).shape[1]
    critic = make_critic(dim, seed=seed)
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9)
    bound = squared_hellinger_bound if kind == "squared_hellinger" else wasserstein_estimate

    @tf.function
    def train_step(batch_p, batch_q, interpolation_weights):
        with tf.GradientTape() as tape:
            objective = bound(critic(batch_p, training=True), critic(batch_q, training=True))
            loss = -objective
            if kind == "wasserstein":
                # The penalty helper works on image-shaped tensors: view each point as a 1x1 "image".
                penalty = losses.gradient_penalty(
                    lambda points: critic(tf.reshape(points, [-1, dim])),
                    tf.reshape(batch_p, [-1, 1, 1, dim]),
                    tf.reshape(batch_q, [-1, 1, 1, dim]),
                    interpolation_weights,
                )
                loss += gradient_penalty * tf.reduce_mean(penalty)
        gradients = tape.gradient(loss, critic.trainable_variables)
        optimizer.apply(gradients, critic.trainable_variables)

    for _ in range(steps):
        train_step(
            sample_p(batch_size, rng), sample_q(batch_size, rng), rng.uniform(size=batch_size).astype(np.float32)
        )
    values = [float(bound(critic(sample_p(batch_size, rng)), critic(sample_q(batch_size, rng)))) for _ in range(10)]
    return float(np.mean(values))


def parallel_lines_study(out_dir, thetas=None, steps=1000, seed=0):
    """Both estimates for theta in [-1, 1] (step 0.1), with the closed forms: divergence.{png,json}."""
    from keras_gen import io_utils, plotting

    thetas = np.round(np.linspace(-1.0, 1.0, 21), 2) if thetas is None else np.asarray(thetas, np.float64)
    results = {"theta": [float(theta) for theta in thetas]}
    for kind in KINDS:
        results[kind] = [
            estimate(kind, lines_sampler(0.0), lines_sampler(theta), steps=steps, seed=seed) for theta in thetas
        ]
        results[f"{kind}_closed_form"] = [closed_form(kind, theta) for theta in thetas]
    io_utils.write_json(layout.path(out_dir, layout.DIVERGENCE), results)
    plotting.plot_divergence_study(results, layout.path(out_dir, layout.DIVERGENCE_PLOT))
    return results


def lines_sampler(theta):
    return lambda num_samples, rng: parallel_lines(theta, num_samples, rng)
