"""Prepared datasets: sharded TFRecord files of PNG-encoded images and labels, with a small index.

`python run.py --mode=prepare` writes them (data.prepare); training reads them without ever holding
the training split in memory (data.stream). A prepared directory holds

    keras_gen_dataset.json          the index: image shape, classes, and per split its shards
    train-00000-of-00016.tfrecord   records of one split, in a fixed shuffled order
    ...
    test-00000-of-00002.tfrecord

Every record is a tf.train.Example with `image` (PNG bytes of the image at the prepared size),
`index` (the image's position in its source split, so a prepared record can be traced to its file)
and, when the source has labels, `label`. The index gives each shard's file name, record count,
size in bytes and SHA-256, so a truncated or altered shard is found by name (`verify`).
"""

import dataclasses
import json
import os

import numpy as np

from keras_gen import errors
from keras_gen import io_utils

INDEX = "keras_gen_dataset.json"
FORMAT = "keras_gen.shards/1"
SPLITS = ("train", "test")


def is_prepared(path):
    return path is not None and os.path.isfile(os.path.join(path, INDEX))


@dataclasses.dataclass(frozen=True)
class Shard:
    file: str  # name inside the prepared directory
    count: int
    bytes: int
    sha256: str


@dataclasses.dataclass
class StreamedSplit:
    """One split of a prepared dataset, read from its shards as training needs it.

    It has what the trainer needs without the images: their number and shape, whether they carry
    labels, the class names, and the shard files (`paths`) that data.stream reads.
    """

    directory: str
    split: str
    shards: tuple
    image_shape: tuple
    has_labels: bool
    class_names: tuple | None
    label_range: tuple | None  # (lowest, highest) label in the split, or None
    source: str  # "<prepared directory> [<split>]", as datasets.LoadedSplit's

    streamed = True  # Read as training needs it (data.stream), not held in memory.
    prepared = True  # Its shards are --mode=prepare's (--num_shards), not an image folder's or tfds'.

    @property
    def count(self):
        return sum(shard.count for shard in self.shards)

    @property
    def paths(self):
        return [os.path.join(self.directory, shard.file) for shard in self.shards]

    def read(self, max_images=None):
        """(uint8 images, int64 labels or None) of the first `max_images` records in shard order."""
        return read_records(self.paths, self.image_shape, self.has_labels, max_images)

    def head(self, count):
        """The first `count` images (uint8), in shard order."""
        return self.read(count)[0]

    def records(self, number, skip_corrupt=False):
        """The tf.data.Dataset of shard `number` (a tensor): (uint8 image, label or -1, index).

        `skip_corrupt`: leave out records that cannot be read or decoded instead of raising.
        """
        import tensorflow as tf

        records = tf.data.TFRecordDataset(tf.gather(tf.constant(self.paths), number))
        parse = parse_fn(self.image_shape, self.has_labels)
        if not skip_corrupt:
            return records.map(parse)
        return records.ignore_errors().map(parse).ignore_errors()


def read_index(directory):
    """The prepared directory's index, checked; raises UserError naming what is wrong."""
    path = os.path.join(directory, INDEX)
    try:
        with open(path, encoding="utf-8") as handle:
            index = json.load(handle)
    except (OSError, ValueError) as error:
        raise errors.UserError(f"cannot read the prepared dataset's index {path}: {error}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise errors.UserError(f"{path} has format {found!r}; expected {FORMAT!r} (written by --mode=prepare)")
    return index


def open_split(directory, split):
    """The StreamedSplit `split` of the prepared directory; each shard must exist with its recorded size."""
    index = read_index(directory)
    if split not in index["splits"]:
        raise errors.UserError(
            f"the prepared dataset {directory} has no {split!r} split; it has {sorted(index['splits'])}"
        )
    entry = index["splits"][split]
    shards = tuple(Shard(**shard) for shard in entry["shards"])
    for shard in shards:
        path = os.path.join(directory, shard.file)
        if not os.path.isfile(path):
            raise errors.UserError(f"shard {path} listed in {INDEX} is missing; prepare the dataset again")
        size = os.path.getsize(path)
        if size != shard.bytes:
            raise errors.UserError(
                f"shard {path} holds {size} bytes; {INDEX} records {shard.bytes} (truncated or replaced?): "
                "prepare the dataset again"
            )
    label_range = entry.get("label_range")
    return StreamedSplit(
        directory=directory,
        split=split,
        shards=shards,
        image_shape=tuple(index["image_shape"]),
        has_labels=bool(entry["has_labels"]),
        class_names=tuple(index["class_names"]) if index.get("class_names") else None,
        label_range=tuple(label_range) if label_range else None,
        source=f"{os.path.abspath(directory)} [{split}]",
    )


def verify(directory):
    """Names of the shards whose SHA-256 differs from the index's (empty when all are intact)."""
    index = read_index(directory)
    damaged = []
    for entry in index["splits"].values():
        for shard in entry["shards"]:
            path = os.path.join(directory, shard["file"])
            if not os.path.isfile(path) or io_utils.sha256_of(path) != shard["sha256"]:
                damaged.append(shard["file"])
    return damaged


def shard_names(split, num_shards):
    return [f"{split}-{number:05d}-of-{num_shards:05d}.tfrecord" for number in range(num_shards)]


def parse_fn(image_shape, has_labels):
    """A function from one serialized record to (uint8 image, int64 label or -1, int64 index).

    Decoding fails (InvalidArgumentError) on a record whose image is not a PNG of `image_shape`.
    """
    import tensorflow as tf

    features = {"image": tf.io.FixedLenFeature([], tf.string), "index": tf.io.FixedLenFeature([], tf.int64)}
    if has_labels:
        features["label"] = tf.io.FixedLenFeature([], tf.int64)

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.io.decode_png(example["image"], channels=image_shape[-1])
        image = tf.ensure_shape(image, image_shape)
        label = example["label"] if has_labels else tf.constant(-1, tf.int64)
        return image, label, example["index"]

    return parse


def read_records(paths, image_shape, has_labels, max_images=None):
    """(uint8 images, int64 labels or None) of the records of `paths`, in order."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(paths).map(parse_fn(image_shape, has_labels), num_parallel_calls=tf.data.AUTOTUNE)
    if max_images is not None:
        dataset = dataset.take(max_images)
    images, labels = [], []
    try:
        for image_batch, label_batch, _ in dataset.batch(4096).as_numpy_iterator():
            images.append(image_batch)
            labels.append(label_batch)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise errors.UserError(
            f"corrupt record in {os.path.dirname(paths[0])}: {' '.join(error.message.split())[:200]}; "
            f"shards that differ from the index: {', '.join(verify(os.path.dirname(paths[0]))) or 'none'}"
        ) from None
    if not images:
        return np.zeros((0, *image_shape), np.uint8), (np.zeros((0,), np.int64) if has_labels else None)
    return np.concatenate(images), (np.concatenate(labels) if has_labels else None)


class Writer:
    """Writes the records of one split into `num_shards` shards, record r into shard r mod num_shards.

    Records go to the shards in turn, so each shard holds an equal share (to within one) of the
    split in the order given: a prepared order that is already shuffled stays shuffled in every shard.
    """

    def __init__(self, directory, split, num_shards, has_labels):
        import tensorflow as tf

        self.directory, self.split, self.has_labels = directory, split, has_labels
        self.names = shard_names(split, num_shards)
        # Written under temporary names and renamed by `close`: an interrupted prepare leaves no shard
        # that looks complete.
        self._writers = [tf.io.TFRecordWriter(self._temporary(name)) for name in self.names]
        self._counts = [0] * num_shards
        self._labels = []
        self._written = 0
        self._encode = tf.io.encode_png

    def _temporary(self, name):
        return os.path.join(self.directory, f".{name}.partial")

    def add(self, image, label, index):
        import tensorflow as tf

        features = {
            "image": _bytes_feature(self._encode(image).numpy()),
            "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
        }
        if self.has_labels:
            features["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
            self._labels.append(int(label))
        shard = self._written % len(self._writers)
        self._writers[shard].write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
        self._counts[shard] += 1
        self._written += 1

    def close(self):
        """Closes the shards; returns the split's index entry."""
        shards = []
        for name, writer, count in zip(self.names, self._writers, self._counts):
            writer.close()
            os.replace(self._temporary(name), os.path.join(self.directory, name))
            path = os.path.join(self.directory, name)
            shards.append(dataclasses.asdict(Shard(name, count, os.path.getsize(path), io_utils.sha256_of(path))))
        label_range = [min(self._labels), max(self._labels)] if self._labels else None
        return {"count": self._written, "has_labels": self.has_labels, "label_range": label_range, "shards": shards}


def _bytes_feature(value):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_index(directory, image_shape, class_names, splits, source):
    index = {
        "format": FORMAT,
        "image_shape": [int(size) for size in image_shape],
        "class_names": list(class_names) if class_names else None,
        "source": source,
        "splits": splits,
    }
    io_utils.write_json(os.path.join(directory, INDEX), index)
