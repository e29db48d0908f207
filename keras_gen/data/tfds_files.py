"""Any TensorFlow Datasets image dataset (`--dataset=tfds:NAME`), read from tfds' own files.

tfds writes a prepared dataset as TFRecord shards of serialized examples; training streams them as
it streams a prepared dataset of keras_gen's own (data.stream): each worker its own shards, epoch
order fixed by (seed, epoch), resume by skipping. The image feature is the dataset's first Image
feature, the label its first ClassLabel (class names from it); images are brought to the model's
size in the graph as in memory (data.image_files).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen.data import image_files


def feature_keys(builder):
    """(image key, label key or None, class names or None) of a tfds builder's features."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    items = list(features.items()) if hasattr(features, "items") else []
    image_keys = [key for key, feature in items if isinstance(feature, tfds.features.Image)]
    if not image_keys:
        raise errors.UserError(
            f"tfds dataset {builder.name!r} has no image feature (features: {', '.join(key for key, _ in items)})"
        )
    labels = [(key, feature) for key, feature in items if isinstance(feature, tfds.features.ClassLabel)]
    if not labels:
        return image_keys[0], None, None
    key, feature = labels[0]
    return image_keys[0], key, tuple(feature.names)


def image_channels(builder, image_key):
    channels = builder.info.features[image_key].shape[-1]
    return 3 if channels in (None, 3, 4) else 1


@dataclasses.dataclass
class TfdsSplit:
    """One split of a prepared tfds dataset, streamed from its shards (attributes as shards.StreamedSplit's)."""

    directory: str
    split: str
    paths: tuple
    lengths: tuple
    image_shape: tuple
    class_names: tuple | None
    source: str
    features: object  # the builder's tfds.features.FeaturesDict
    image_key: str
    label_key: str | None
    streamed = True

    @property
    def shards(self):
        return tuple(image_files.Group(length) for length in self.lengths)

    @property
    def count(self):
        return sum(self.lengths)

    @property
    def has_labels(self):
        return self.label_key is not None

    @property
    def label_range(self):
        return (0, len(self.class_names) - 1) if self.class_names else None

    def read(self, max_images=None):
        """(uint8 images, int64 labels or None) of the split's first `max_images` images, in file order."""
        dataset = tf.data.Dataset.range(len(self.paths)).flat_map(self.records)
        if max_images is not None:
            dataset = dataset.take(max_images)
        images, labels = [], []
        for image_batch, label_batch, _ in dataset.batch(4096).as_numpy_iterator():
            images.append(image_batch)
            labels.append(label_batch)
        if not images:
            raise errors.UserError(f"the {self.split} split of {self.source} holds no images")
        return np.concatenate(images), (np.concatenate(labels) if self.has_labels else None)

    def head(self, count):
        """The first `count` images (uint8), in file order."""
        return self.read(count)[0]

    def records(self, number, skip_corrupt=False):
        """The tf.data.Dataset of shard `number` (a tensor): (uint8 image, label or -1, index in the split)."""
        starts = tf.constant(np.cumsum((0,) + self.lengths), tf.int64)

        def parse(position, record):
            example = self.features.deserialize_example(record)
            image = image_files.to_channels(tf.cast(example[self.image_key], tf.float32), self.image_shape[-1])
            image = tf.ensure_shape(image_files.fit_to_size(image, self.image_shape[0]), self.image_shape)
            label = example[self.label_key] if self.label_key else tf.constant(-1)
            return tf.cast(image, tf.uint8), tf.cast(label, tf.int64), starts[number] + position

        records = tf.data.TFRecordDataset(tf.gather(tf.constant(self.paths), number))
        if skip_corrupt:
            records = records.ignore_errors()
        decoded = records.enumerate().map(parse)
        return decoded.ignore_errors() if skip_corrupt else decoded


def open_split(builder, split, image_size):
    """The TfdsSplit `split` of a prepared tfds builder."""
    import tensorflow_datasets as tfds

    if builder.info.file_format != tfds.core.FileFormat.TFRECORD:
        raise errors.UserError(
            f"tfds dataset {builder.name!r} is stored as {builder.info.file_format.value}, which keras_gen cannot "
            f"stream; prepare it instead: python run.py --mode=prepare --dataset=tfds:{builder.name} --out_dir=DIR"
        )
    if split not in builder.info.splits:
        raise errors.UserError(
            f"tfds dataset {builder.name!r} has no {split!r} split; it has {sorted(builder.info.splits)}"
        )
    info = builder.info.splits[split]
    image_key, label_key, class_names = feature_keys(builder)
    return TfdsSplit(
        directory=builder.data_dir,
        split=split,
        paths=tuple(os.path.join(builder.data_dir, name) for name in info.filenames),
        lengths=tuple(int(length) for length in info.shard_lengths),
        image_shape=(image_size, image_size, image_channels(builder, image_key)),
        class_names=class_names,
        source=f"tfds:{builder.name} ({builder.data_dir}) [{split}]",
        features=builder.info.features,
        image_key=image_key,
        label_key=label_key,
    )
