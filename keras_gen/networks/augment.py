"""Differentiable augmentation, DiffAugment (Zhao et al., NeurIPS 2020), for images in [-1, 1].

The critic sees real and generated images through the same random transformations, in its own
update and in the generator's, so it cannot memorise a small training set, and the generator's
gradient passes through them (every operation here is differentiable in the images).

The three families of the paper, each drawn independently per image:
- "color": brightness + (u - 0.5), then saturation (x - mean over channels) * 2u + mean, then
  contrast (x - mean over the image) * (u + 0.5) + mean, with a fresh u ~ U(0, 1) for each.
- "translation": a shift by whole pixels, uniform in [-size/8, size/8] on each axis (rounded),
  the uncovered border filled with 0 (grey in [-1, 1]).
- "cutout": a square of half the image side set to 0, its centre uniform over the image (it may
  hang over the edge).

As in the paper, colour changes are not clipped: clipping would stop the gradient of saturated
pixels. Translation and cutout only move or zero values, so they stay in the input's range.

Every function takes `uniform`, a callable shape -> U(0, 1) draws with the batch first, so a model
draws them from its own seeded, replica-aware noise (models.base) and a test from a fixed seed.
"""

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text):
    """ "color,translation" -> ("color", "translation"); "" or None -> (); unknown names are a ValueError."""
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"diffaugment={text}: no augmentation {','.join(unknown)}; expected a comma-separated subset of "
            f"{','.join(POLICIES)}"
        )
    # The paper's order, whatever order they were given in, and each once.
    return tuple(name for name in POLICIES if name in names)


def augment(images, policy, uniform):
    """`images` (batch, size, size, channels) through each transformation of `policy`, in the paper's order."""
    for name in policy:
        images = {"color": color, "translation": translation, "cutout": cutout}[name](images, uniform)
    return images


def color(images, uniform):
    batch = tf.shape(images)[0]
    images = images + (uniform((batch, 1, 1, 1)) - 0.5)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean) * (uniform((batch, 1, 1, 1)) * 2.0) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * (uniform((batch, 1, 1, 1)) + 0.5) + mean


def _uniform_integers(uniform, batch, low, high):
    """Integers uniform in [low, high], (batch,), from U(0, 1) draws."""
    draws = uniform((batch,))
    return low + tf.minimum(tf.cast(tf.floor(draws * tf.cast(high - low + 1, draws.dtype)), tf.int32), high - low)


def translation(images, uniform, ratio=TRANSLATION_RATIO):
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    shift_y, shift_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    offsets_y = _uniform_integers(uniform, batch, -shift_y, shift_y)
    offsets_x = _uniform_integers(uniform, batch, -shift_x, shift_x)
    images = _shift_axis(images, offsets_y, axis=1)
    return _shift_axis(images, offsets_x, axis=2)


def _shift_axis(images, offsets, axis):
    """out[b, ..., i, ...] = images[b, ..., i - offsets[b], ...] along `axis` (1 or 2), 0 where that falls outside."""
    size = images.shape[axis]
    source = tf.range(size)[tf.newaxis, :] - offsets[:, tf.newaxis]  # (batch, size)
    inside = (source >= 0) & (source < size)
    gathered = tf.gather(images, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    mask_shape = [-1, 1, 1, 1]
    mask_shape[axis] = size
    return gathered * tf.reshape(tf.cast(inside, images.dtype), mask_shape)


def cutout(images, uniform, ratio=CUTOUT_RATIO):
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    cut_y, cut_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = _uniform_integers(uniform, batch, 0, height - 1)
    centre_x = _uniform_integers(uniform, batch, 0, width - 1)

    def covered(centre, cut, size):  # (batch, size): positions inside [centre - cut // 2, centre - cut // 2 + cut)
        start = centre[:, tf.newaxis] - cut // 2
        positions = tf.range(size)[tf.newaxis, :]
        return (positions >= start) & (positions < start + cut)

    hole = covered(centre_y, cut_y, height)[:, :, tf.newaxis] & covered(centre_x, cut_x, width)[:, tf.newaxis, :]
    return images * tf.cast(~hole, images.dtype)[..., tf.newaxis]
