"""Test-set likelihood bounds of a VAE: the ELBO and the importance-weighted bound (IWAE).

For k samples z_i ~ q(z|x) with weights w_i = p(x, z_i) / q(z_i|x),
    log p(x) >= log (1/k) sum_i w_i     (Burda et al., 2016),
a bound that equals the ELBO in expectation at k = 1 and tightens as k grows. Reported as negative
log-likelihoods in nats per image: lower is better, and the IWAE value is the better estimate of
-log p(x). With a dequantized likelihood both bound -log P of the 8-bit image (see losses).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gen import losses


def log_mean_exp(values, axis=0):
    """log(mean(exp(values))) along `axis`, without overflow or underflow."""
    count = tf.cast(tf.shape(values)[axis], values.dtype)
    return tf.reduce_logsumexp(values, axis=axis) - tf.math.log(count)


# What one chunk of decodes may hold in the decoder's largest activation: a few of its size live at
# once, so evaluation peaks at a few times this. At a fixed 4,096 decodes per chunk the report
# decoder's 65x65x32 activations made 2.2 GB each and the evaluation 7 GB; chunks of about a
# thousand decode as fast on a CPU.
DECODE_MEMORY_BYTES = 512 * 2**20
MAX_DECODES = 4096  # The cap for small decoders, and the chunk where a decoder's shapes are unknown.


def decodes_per_chunk(decoder, memory_bytes=DECODE_MEMORY_BYTES):
    """How many images `decoder` decodes at once in evaluation: its largest activation over the chunk
    within `memory_bytes` (float32), at most MAX_DECODES."""
    largest = 0
    for layer in getattr(decoder, "layers", ()):
        try:
            outputs = tf.nest.flatten(layer.output)
        except (AttributeError, ValueError):  # A layer never called on symbolic inputs has no shapes.
            continue
        for output in outputs:
            dims = tuple(output.shape)[1:]
            if dims and all(dim is not None for dim in dims):
                largest = max(largest, math.prod(dims))
    if not largest:
        return MAX_DECODES
    return max(1, min(MAX_DECODES, memory_bytes // (4 * largest)))


def per_image_bounds(model, images, iw_samples, seed_generator, max_decodes=None, labels=None):
    """(neg_elbo, reconstruction, kl, iwae_nll) per image, each (batch,) in nats; for a conditional
    VAE, given the images' `labels`, bounds on log p(x|y).

    The ELBO terms average the same `iw_samples` draws the IWAE bound uses (KL in closed form). The
    draws are made once per batch, (iw_samples, batch, latent_dim), and only their decoding is split
    into chunks of at most `max_decodes` images (default: `decodes_per_chunk` of the decoder), so
    memory stays bounded for any k and the chunking cannot change the result.
    """
    batch = int(images.shape[0])
    max_decodes = max_decodes or decodes_per_chunk(model.decoder)
    chunk = max(1, min(iw_samples, max_decodes // max(batch, 1)))
    posterior = model.encode(images, labels)  # Once per batch; every chunk draws from the same q(z|x).
    epsilon = keras.random.normal((iw_samples, batch, model.latent_dim), seed=seed_generator)
    log_likelihoods, log_weights = [], []
    for start in range(0, iw_samples, chunk):
        log_likelihood, log_prior_ratio = _importance_chunk(
            model, images, posterior, epsilon[start : start + chunk], labels
        )
        log_likelihoods.append(log_likelihood)
        log_weights.append(log_likelihood + log_prior_ratio)
    # One log-mean-exp over all (k, batch) log-weights, not one per chunk.
    iwae_nll = -log_mean_exp(tf.concat(log_weights, axis=0), axis=0)
    reconstruction = -tf.reduce_mean(tf.concat(log_likelihoods, axis=0), axis=0)
    kl = losses.gaussian_kl(*posterior)
    return reconstruction + kl, reconstruction, kl, iwae_nll


@tf.function(reduce_retracing=True)
def _importance_chunk(model, images, posterior, epsilon, labels):
    return model.importance_samples(images, posterior, epsilon, labels)


def evaluate_vae(model, batches, iw_samples=1000, seed=0, num_images=None, verbose=0):
    """Test-set bounds of a VAE averaged over every image of `batches`.

    Args:
        model: a models.vae.VAE.
        batches: tf.data.Dataset of image batches in the model's input range (pixel noise applied);
            of (images, labels) batches for a conditional VAE, whose bounds are then on log p(x|y).
        iw_samples: k of the IWAE bound (>= 1).
        seed: seed of the posterior samples.
        num_images: how many images `batches` holds, for the progress bar's length.
        verbose: 1 shows a progress bar with the running IWAE estimate (this can take an hour).

    Returns:
        {"neg_elbo", "reconstruction", "kl", "iwae_nll"} means and "<name>_stderr" standard errors
        over images, in nats per image, and "num_images".
    """
    if iw_samples < 1:
        raise ValueError(f"iw_samples={iw_samples}; expected at least 1")
    seed_generator = keras.random.SeedGenerator(seed)
    names = ("neg_elbo", "reconstruction", "kl", "iwae_nll")
    values = {name: [] for name in names}
    # The bar shows the exact running mean, as a "stateful" metric: Keras' own averaging replaces the
    # average with the last batch's value on the final update, so the bar ended on a different number.
    progress = (
        keras.utils.Progbar(num_images, verbose=verbose, unit_name="image", stateful_metrics=["iwae_nll"])
        if verbose
        else None
    )
    for batch in batches:
        images, labels = model.images_of(batch), model.labels_of(batch)
        for name, value in zip(names, per_image_bounds(model, images, iw_samples, seed_generator, labels=labels)):
            values[name].append(np.asarray(value, np.float64))
        if progress:
            running = float(np.concatenate(values["iwae_nll"]).mean())
            progress.add(len(values["iwae_nll"][-1]), [("iwae_nll", running)])
    result = {"num_images": 0}
    for name in names:
        per_image = np.concatenate(values[name]) if values[name] else np.zeros(0)
        result["num_images"] = int(per_image.size)
        result[name] = float(per_image.mean()) if per_image.size else float("nan")
        spread = per_image.std(ddof=1) / math.sqrt(per_image.size) if per_image.size > 1 else 0.0
        result[f"{name}_stderr"] = float(spread)
    return result
