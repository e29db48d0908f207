"""tf.data input pipelines over images already decoded and sized in memory.

Decoding, cropping and resizing happen once (`datasets.load`); the uint8 array they produce is the
cache. Per batch, the pipeline only gathers, converts to floats and adds pixel noise, in parallel with
training through prefetching.

Training streams are made per epoch from (seed, epoch) with stateless random ops: epoch e has the
same order and the same pixel noise whether the run went straight through or resumed at e, so a
resumed run reaches the same end state.
"""

import numpy as np
import tensorflow as tf

from keras_gen import errors

VALUE_RANGES = ("unit", "symmetric")
# How 8-bit pixels become model inputs:
# - None: intensity / 255.
# - "binarize": each pixel drawn as Bernoulli(intensity / 255), for Bernoulli likelihoods.
# - "dequantize": (intensity + u) / 256 with u ~ U(0, 1) (Theis et al., 2016), for continuous
#   likelihoods. A density on exact 8-bit values can grow without bound (the ELBO would run to minus
#   infinity on black backgrounds); on dequantized pixels it cannot, and it bounds the probability
#   of the 8-bit image (see losses.negative_log_likelihood).
PIXEL_NOISES = (None, "binarize", "dequantize")
# Stream identifiers folded into the seeds, so shuffling and pixel noise draw independent numbers.
_SHUFFLE_STREAM, _NOISE_STREAM, _TEST_STREAM = 1, 2, 3


def to_model_range(images, value_range, pixel_noise, seed=None):
    """Converts uint8 images to floats in the model's range.

    Args:
        images: uint8 tensor (..., height, width, channels).
        value_range: "unit" for [0, 1] (likelihood models), "symmetric" for [-1, 1] (tanh generators).
        pixel_noise: one of PIXEL_NOISES.
        seed: int32 tensor of shape (2,) for the stateless draw of the noise.
    """
    if value_range not in VALUE_RANGES:
        raise ValueError(f"value_range {value_range!r}; expected one of {VALUE_RANGES}")
    if pixel_noise not in PIXEL_NOISES:
        raise ValueError(f"pixel_noise {pixel_noise!r}; expected one of {PIXEL_NOISES}")
    images = tf.cast(images, tf.float32)
    if pixel_noise == "dequantize":
        images = (images + tf.random.stateless_uniform(tf.shape(images), seed=seed)) / 256.0
    else:
        images = images / 255.0
    if pixel_noise == "binarize":
        uniform = tf.random.stateless_uniform(tf.shape(images), seed=seed)
        images = tf.cast(uniform < images, tf.float32)
    if value_range == "symmetric":
        images = images * 2.0 - 1.0
    return images


def _seed(*parts):
    return tf.cast(tf.stack(parts), tf.int32)


def steps_per_epoch(num_images, batch_size, max_steps=None, batches_per_step=None):
    """Training steps in one pass over the data, capped by `max_steps`."""
    steps = num_images // (batch_size * (batches_per_step or 1))
    if steps == 0:
        needed = batch_size * (batches_per_step or 1)
        raise errors.UserError(
            f"--batch_size={batch_size} with {batches_per_step or 1} batch(es) per step needs at least {needed} "
            f"training images; found {num_images}"
        )
    return min(steps, max_steps) if max_steps else steps


def train_dataset(
    images, batch_size, value_range, pixel_noise, seed, initial_epoch, epochs, steps, batches_per_step=None,
    initial_step=0, labels=None,
):  # fmt: skip
    """Batches for epochs [initial_epoch, epochs), `steps` steps each; the first epoch from `initial_step`.

    With `labels` (int, one per image) every element is (images, labels), the labels in the images'
    order: what a class-conditional model trains on.

    With `batches_per_step` = n, every element holds n fresh batches as one batch of n x batch_size
    images, batch first: image i * n + s belongs to batch s (what a WGAN step with n critic updates
    consumes, see models.adversarial). Batch s is the s-th run of batch_size images of the epoch's
    shuffled order. A tf.distribute strategy splits each element on its first axis, so every replica
    gets an equal share of every one of the n batches. The result is meant for
    `model.fit(..., steps_per_epoch=steps, initial_epoch=initial_epoch)`, which keeps one iterator
    across epochs when steps_per_epoch is given. A run resumed in the middle of an epoch skips the
    steps it already did; the others keep their images and pixel noise, as in a straight run.
    """
    images = tf.convert_to_tensor(images)
    labels = None if labels is None else tf.constant(_checked_labels(labels, len(images)))
    num_images = int(images.shape[0])
    seed = tf.constant(seed, tf.int64) % (2**31 - 1)
    per_step = batches_per_step or 1

    def interleave(batch_indices):
        # (n, batch) consecutive batches -> (batch, n) -> flat: batch first.
        return tf.reshape(tf.transpose(tf.reshape(batch_indices, (per_step, batch_size))), (-1,))

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_images), seed=_seed(seed, epoch * 8 + _SHUFFLE_STREAM)
        )
        indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size * per_step, drop_remainder=True)
        if per_step > 1:
            indices = indices.map(interleave)
        skipped = tf.where(
            tf.equal(epoch, initial_epoch), tf.constant(initial_step, tf.int64), tf.constant(0, tf.int64)
        )
        return (
            indices.take(steps)
            .enumerate()
            .skip(skipped)
            .map(
                lambda step, batch_indices: _with_labels(
                    to_model_range(
                        tf.gather(images, batch_indices),
                        value_range,
                        pixel_noise,
                        seed=_seed(seed + _NOISE_STREAM, epoch * 1_000_003 + step),
                    ),
                    labels,
                    batch_indices,
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        )

    epochs_dataset = tf.data.Dataset.range(initial_epoch, epochs)
    return _shard_by_data(epochs_dataset.flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE))


def _with_labels(batch, labels, indices):
    return batch if labels is None else (batch, tf.gather(labels, indices))


def _checked_labels(labels, num_images):
    """The labels as int32, one per image."""
    labels = np.asarray(labels)
    if labels.shape != (num_images,):
        raise ValueError(f"labels of shape {labels.shape} for {num_images} images; expected one per image")
    return labels.astype(np.int32)


def _shard_by_data(dataset):
    """Multi-worker sharding by element: the data come from memory, not files, so sharding by file
    (tf.data's default) cannot apply; each worker builds the same stream and keeps its share of
    every global batch. Harmless on one device."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def eval_dataset(images, batch_size, value_range, pixel_noise, seed=0, max_steps=None, labels=None):
    """Batches of the whole split in order; pixel noise, if any, is fixed by `seed`.

    The last batch may be partial so every image counts; `max_steps` caps the number of batches.
    With `labels`, elements are (images, labels).
    """
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(images)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((images, _checked_labels(labels, len(images))))
    dataset = dataset.batch(batch_size)
    if max_steps:
        dataset = dataset.take(max_steps)

    def convert(step, batch):
        pixels = batch if labels is None else batch[0]
        pixels = to_model_range(pixels, value_range, pixel_noise, seed=_seed(seed + _TEST_STREAM, step))
        return pixels if labels is None else (pixels, batch[1])

    dataset = dataset.enumerate().map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    return _shard_by_data(dataset.cache().prefetch(tf.data.AUTOTUNE))
