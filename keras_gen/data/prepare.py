"""`--mode=prepare`: any dataset keras_gen reads, written as sharded TFRecord files (data.shards).

Image folders are read one file at a time, so a folder larger than memory prepares in bounded
memory; the other formats (IDX, .npz, SVHN's .mat, tfds) come as whole arrays, read as training
reads them (data.datasets). Either way every split is written in a fixed shuffled order (PREPARE_SEED)
spread over the shards in turn, so every shard is a random sample of its split: training streams a
few shards at a time through a bounded shuffle buffer, which mixes classes only if the shards do.
"""

import math
import os
import sys
import time

import numpy as np

from keras_gen import errors
from keras_gen.data import datasets
from keras_gen.data import readers
from keras_gen.data import shards

PREPARE_SEED = 0
# Shards of about this many images (a 64x64 colour PNG is ~8 KB: ~160 MB shards), and at least
# MIN_TRAIN_SHARDS for training, so up to that many workers each read shards of their own.
IMAGES_PER_SHARD = 20_000
MIN_TRAIN_SHARDS = 16


def num_shards_for(split, count, requested=None):
    if requested:
        return min(requested, count)
    wanted = math.ceil(count / IMAGES_PER_SHARD)
    return min(count, max(wanted, MIN_TRAIN_SHARDS if split == "train" else 1))


def prepare(name, image_size, out_dir, data_dir=None, num_shards=None, progress=True):
    """Writes dataset `name` (from `data_dir`, or where datasets.load finds it) into `out_dir`.

    Returns the index written (shards.read_index's form).
    """
    if not out_dir:
        raise errors.UserError("--mode=prepare needs --out_dir, the folder to write the shards into")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise errors.UserError(f"--out_dir {out_dir} is a file; expected a directory")
    if shards.is_prepared(out_dir):
        raise errors.UserError(
            f"--out_dir {out_dir} already holds a prepared dataset; choose another folder or delete it first"
        )
    if data_dir is not None and shards.is_prepared(data_dir):
        raise errors.UserError(f"--data_dir {data_dir} is already a prepared dataset; train on it directly")
    if data_dir is not None and readers.detect_format(data_dir) == "images":
        plans = readers.plan_image_folder(data_dir)
        source = os.path.abspath(data_dir)
        writer = _folder_writer(plans, image_size, source)
        class_names = plans["train"].class_names or plans["test"].class_names
    else:
        loaded = datasets.load(name, image_size, data_dir=data_dir)
        source = loaded["train"].source.rsplit(" [", 1)[0]
        writer = _array_writer(loaded)
        class_names = loaded["train"].class_names
    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    entries, image_shape = {}, None
    for split, count, has_labels, records in writer:
        split_writer = shards.Writer(out_dir, split, num_shards_for(split, count, num_shards), has_labels)
        for written, (image, label, index) in enumerate(records, 1):
            if image_shape is None:
                image_shape = image.shape
            split_writer.add(image, label, index)
            if progress and written % 5000 == 0:
                print(f"{split}: {written}/{count} images ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        entries[split] = split_writer.close()
    shards.write_index(out_dir, image_shape, class_names, entries, source)
    return shards.read_index(out_dir)


def _order(count):
    return np.random.default_rng(PREPARE_SEED).permutation(count)


def _array_writer(loaded):
    """(split, count, has_labels, records) of each split held in memory; records are (image, label, index)."""
    for split in shards.SPLITS:
        part = loaded[split]
        order = _order(len(part.images))
        labels = part.labels
        records = ((part.images[i], None if labels is None else labels[i], i) for i in order)
        yield split, len(part.images), labels is not None, records


def _folder_writer(plans, image_size, source):
    """As `_array_writer`, decoding one image file at a time; one channel count for the whole folder."""
    channels = readers.choose_channels(plans, image_size)
    converted = {"grey to RGB": 0, "RGB to grey": 0, "transparency over black": 0}
    for split in shards.SPLITS:
        plan = plans[split]

        def records(plan=plan):
            for i in _order(len(plan.paths)):
                image, stored = readers.decode_image(plan.paths[i], image_size)
                converted["transparency over black"] += stored in (2, 4)
                if image.shape[-1] != channels:
                    # RGB found after the sample said grey is kept as the luma a grey model can learn from.
                    converted["grey to RGB" if channels == 3 else "RGB to grey"] += 1
                    image = readers.to_channels(image, channels)
                yield image, None if plan.labels is None else plan.labels[i], i

        yield split, len(plan.paths), plan.labels is not None, records()
    changes = [f"{count} {what}" for what, count in converted.items() if count]
    if changes:
        print(f"note: {source} mixes image kinds: converted {', '.join(changes)}", file=sys.stderr)
