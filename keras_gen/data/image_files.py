"""Image files decoded in the TensorFlow graph as data.readers decodes them in numpy.

Two users: a folder of images streamed while training (`FolderSplit`, read by data.stream) instead
of decoded whole into memory, and the serving signatures that take encoded images (serving.signatures).
Both must see an image as training from memory saw it: transparency composited over black, grey
repeated to RGB (or RGB to grey by luminance) to match the model's channels, a centre crop to a
square, then zero padding when at most size/8 short (MNIST's 28 -> 32), else an antialiased resize
(readers.decode_image, readers.fit_to_size).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf


def to_channels(image, channels):
    """A decoded image of 1 to 4 channels as `channels` (1 or 3), alpha over black, pixel values 0-255."""

    def grey(image):
        return image if channels == 1 else tf.tile(image, [1, 1, 3])

    def colour(image):
        return tf.image.rgb_to_grayscale(image) if channels == 1 else image

    branches = [
        lambda: grey(image[..., :1]),
        lambda: grey(tf.round(image[..., :1] * image[..., 1:2] / 255.0)),
        lambda: colour(image[..., :3]),
        lambda: colour(tf.round(image[..., :3] * image[..., 3:4] / 255.0)),
    ]
    if image.shape[-1] is not None:  # Known when the graph is built (a tfds feature): only its branch can be built.
        return tf.ensure_shape(branches[image.shape[-1] - 1](), [None, None, channels])
    result = tf.switch_case(tf.shape(image)[-1] - 1, branches)
    return tf.ensure_shape(result, [None, None, channels])


def fit_to_size(image, size):
    """data.readers.fit_to_size for one image (height, width, channels) of pixel values 0-255."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)

    def pad():
        before = (size - side) // 2
        return tf.pad(image, [[before, size - side - before], [before, size - side - before], [0, 0]])

    def resize(method):
        resized = tf.image.resize(image, (size, size), method=method, antialias=True)
        return tf.clip_by_value(tf.round(resized), 0.0, 255.0)

    image = tf.case(
        [
            (tf.equal(side, size), lambda: image),
            (tf.logical_and(side < size, size - side <= size // 8), pad),
            (side > size, lambda: resize("area")),
        ],
        default=lambda: resize("bilinear"),
    )
    return tf.ensure_shape(image, [size, size, None])


def decode(data, image_shape):
    """One encoded image (PNG, JPEG, GIF, BMP bytes) as float pixel values 0-255 of `image_shape`."""
    image = tf.io.decode_image(data, expand_animations=False)  # (height, width, 1 to 4) uint8
    return tf.ensure_shape(
        fit_to_size(to_channels(tf.cast(image, tf.float32), image_shape[-1]), image_shape[0]), image_shape
    )


@dataclasses.dataclass
class FolderSplit:
    """One split of an image folder, decoded file by file as training reads it (data.stream).

    The files are dealt round-robin, in a fixed shuffled order, into `len(shards)` groups that play
    the part of a prepared dataset's shards: worker w of W reads groups w, w + W, ... Attributes as
    data.shards.StreamedSplit's, so the trainer and data.stream read either alike.
    """

    directory: str
    split: str
    paths: tuple  # every file of the split, grouped: group g is paths[starts[g]:starts[g + 1]]
    labels: np.ndarray | None
    indices: np.ndarray  # each file's position in the split (readers.plan_image_folder's order)
    starts: tuple
    image_shape: tuple
    class_names: tuple | None
    source: str
    streamed = True

    @property
    def shards(self):
        return tuple(Group(end - start) for start, end in zip(self.starts, self.starts[1:]))

    @property
    def count(self):
        return len(self.paths)

    @property
    def has_labels(self):
        return self.labels is not None

    @property
    def label_range(self):
        return None if self.labels is None else (int(self.labels.min()), int(self.labels.max()))

    def head(self, count):
        """The first `count` images (uint8), in group order."""
        images = tf.data.Dataset.range(len(self.starts) - 1).flat_map(self.records).take(count)
        return (
            np.stack([image.numpy() for image, _, _ in images]) if count else np.zeros((0, *self.image_shape), np.uint8)
        )

    def records(self, number, skip_corrupt=False):
        """The tf.data.Dataset of group `number` (a tensor): (uint8 image, label or -1, index).

        `skip_corrupt`: leave out files that cannot be read or decoded instead of raising.
        """
        paths = tf.constant(self.paths)
        labels = tf.constant(self.labels if self.labels is not None else np.full(len(self.paths), -1), tf.int64)
        indices = tf.constant(self.indices, tf.int64)
        starts = tf.constant(self.starts, tf.int64)

        def read(position):
            image = decode(tf.io.read_file(paths[position]), self.image_shape)
            return tf.cast(image, tf.uint8), labels[position], indices[position]

        images = tf.data.Dataset.range(starts[number], starts[number + 1]).map(read)
        return images.ignore_errors() if skip_corrupt else images


@dataclasses.dataclass(frozen=True)
class Group:
    """A group of images streamed as one shard is: data.stream needs only its size."""

    count: int


def folder_split(directory, split, plan, image_size, channels, num_groups, seed=0):
    """The FolderSplit of `plan` (a readers.FolderSplit) at `image_size` with `channels` channels."""
    order = np.random.default_rng(seed).permutation(len(plan.paths))
    groups = [order[g::num_groups] for g in range(num_groups)]
    flat = np.concatenate(groups)
    starts = tuple(int(start) for start in np.cumsum([0] + [len(group) for group in groups]))
    return FolderSplit(
        directory=directory,
        split=split,
        paths=tuple(plan.paths[i] for i in flat),
        labels=None if plan.labels is None else plan.labels[flat],
        indices=flat.astype(np.int64),
        starts=starts,
        image_shape=(image_size, image_size, channels),
        class_names=plan.class_names,
        source=f"{os.path.abspath(directory)} [{split}]",
    )
