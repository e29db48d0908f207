"""Training batches streamed from a prepared dataset's shards (data.shards), never all in memory.

The in-memory path (data.pipeline) gathers batches from one uint8 array; this one reads records as
training consumes them: each input pipeline (one per worker) reads only its own shards, shard i
going to pipeline i mod the number of pipelines, so no image is read twice in an epoch across
workers and the data each worker reads shrinks as workers are added.

Epoch e's order is fixed by (seed, e, pipeline): the pipeline's shards in a seeded order, read
CYCLE_LENGTH at a time record by record, then every window of `window_size` consecutive images
permuted by a stateless draw from (seed, epoch, window). It is not a uniform permutation of the split
(an image stays in its window), but the shards are themselves random samples (data.prepare), so
every window mixes the classes as the split does. (tf.data's shuffle buffer would draw from a state
that a resumed run cannot put back at epoch e.)
A run resumed in the middle of an epoch rebuilds the epoch's stream and skips the images it had
consumed: its remaining batches and their pixel noise are those of the straight run.

Memory: CYCLE_LENGTH open shards, two windows of images (the one consumed, the next being read)
and a few batches in flight, whatever the size of the dataset.
"""

import tensorflow as tf

from keras_gen import errors
from keras_gen.data import pipeline

# A window holds at most SHUFFLE_WINDOW images and at most WINDOW_BYTES of them (two windows are in
# memory at a time): 10,000 images of 32x32, 5,461 of 64x64 colour.
SHUFFLE_WINDOW = 10_000
WINDOW_BYTES = 64 * 2**20
CYCLE_LENGTH = 4
CORRUPT_POLICIES = ("stop", "skip")
# Stream identifiers folded into the seeds, as in data.pipeline.
_FILE_ORDER_STREAM, _SHUFFLE_STREAM, _NOISE_STREAM = 11, 12, 13


def pipeline_shards(split, pipeline_id, num_pipelines):
    """Indices of the shards input pipeline `pipeline_id` of `num_pipelines` reads."""
    return list(range(pipeline_id, len(split.shards), num_pipelines))


def steps_per_epoch(split, batch_size, num_pipelines=1, max_steps=None, batches_per_step=None):
    """Steps in one pass over every pipeline's shards (the pipeline with the fewest images decides)."""
    if len(split.shards) < num_pipelines:
        # Only a prepared dataset's shard count is the user's; an image folder's groups and tfds' shards are not.
        prepared = getattr(split, "prepared", False)
        again = "prepare it again" if prepared else "prepare it (--mode=prepare)"
        raise errors.UserError(
            f"the train split of {split.directory} has {len(split.shards)} shard(s) for {num_pipelines} workers; "
            f"every worker needs shards of its own: {again} with --num_shards={num_pipelines} or more, or train "
            "on fewer workers"
        )
    per_pipeline = batch_size // num_pipelines * (batches_per_step or 1)
    fewest = min(
        sum(split.shards[i].count for i in pipeline_shards(split, pipeline_id, num_pipelines))
        for pipeline_id in range(num_pipelines)
    )
    steps = fewest // per_pipeline
    if steps == 0:
        raise errors.UserError(
            f"--batch_size={batch_size} with {batches_per_step or 1} batch(es) per step needs at least "
            f"{per_pipeline} training images per worker; {split.directory} gives a worker {fewest}"
        )
    return min(steps, max_steps) if max_steps else steps


def window_size(image_shape):
    """Images per shuffle window: SHUFFLE_WINDOW, fewer where they would take more than WINDOW_BYTES."""
    image_bytes = 1
    for size in image_shape:
        image_bytes *= int(size)
    return max(1, min(SHUFFLE_WINDOW, WINDOW_BYTES // image_bytes))


def skipped_records_counter(split):
    """Per shard of `split`, the records a stream found unreadable the last time it read the shard to
    its end (under --corrupt_data=skip); their sum is the count reported. Per shard, not a running
    sum, so rereading a shard (every epoch, or ahead of time into the next) does not count it twice."""
    return tf.Variable(tf.zeros([len(split.shards)], tf.int64), trainable=False, name="corrupt_records_skipped")


def train_dataset(split, batch_size, value_range, pixel_noise, seed, initial_epoch, epochs, steps, strategy, **options):
    """As data.pipeline.train_dataset, for `model.fit` under `strategy`, reading `split`'s shards.

    `options`: those of `train_dataset_fn`. Every worker reads its own shards (see the module's doc).
    """
    dataset_fn = train_dataset_fn(
        split, batch_size, value_range, pixel_noise, seed, initial_epoch, epochs, steps, **options
    )
    return strategy.distribute_datasets_from_function(dataset_fn)


def train_dataset_fn(
    split, batch_size, value_range, pixel_noise, seed, initial_epoch, epochs, steps, batches_per_step=None,
    initial_step=0, labels=False, corrupt="stop", skipped=None, with_index=False,
):  # fmt: skip
    """The function from a tf.distribute.InputContext to one input pipeline's dataset.

    Every element is one replica's batch (per-replica batch x batches_per_step images, batch first
    as in data.pipeline), with its labels when `labels`, and with the records' `index` last when
    `with_index` (what a test of the sharding records). Epochs [initial_epoch, epochs) of `steps`
    steps, the first from `initial_step`. `corrupt`: "stop" raises on a record that cannot be read
    or decoded; "skip" leaves it out and adds it to `skipped` (a counter variable).
    """
    if corrupt not in CORRUPT_POLICIES:
        raise ValueError(f"corrupt {corrupt!r}; expected one of {CORRUPT_POLICIES}")
    if labels and not split.has_labels:
        raise errors.UserError(f"the prepared {split.split} split in {split.directory} has no labels")
    per_step = batches_per_step or 1
    if corrupt == "skip" and skipped is None:
        skipped = skipped_records_counter(split)
    seed = int(seed) % (2**31 - 1)

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        local_replicas = max(1, context.num_replicas_in_sync // context.num_input_pipelines)
        pipeline_id = context.input_pipeline_id
        chosen = pipeline_shards(split, pipeline_id, context.num_input_pipelines)
        counts = tf.constant([split.shards[i].count for i in chosen], tf.int64)
        numbers = tf.constant(chosen, tf.int64)
        images_per_element = per_replica * per_step
        # Images this pipeline feeds per step: one element to each of its local replicas.
        images_per_step = images_per_element * local_replicas
        pipeline_seed = seed + 1_000_003 * pipeline_id

        def read_shard(count, number):
            if corrupt == "stop":
                return split.records(number)
            return _count_missing(split.records(number, skip_corrupt=True), count, skipped, number, split.image_shape)

        def epoch_elements(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.size(numbers)), seed=_seed(pipeline_seed, epoch * 16 + _FILE_ORDER_STREAM)
            )
            files = tf.data.Dataset.from_tensor_slices((tf.gather(counts, order), tf.gather(numbers, order)))
            records = files.interleave(
                read_shard, cycle_length=CYCLE_LENGTH, block_length=1, num_parallel_calls=CYCLE_LENGTH,
                deterministic=True,
            )  # fmt: skip
            images = (
                records.batch(window_size(split.image_shape))
                .enumerate()
                .map(
                    lambda window, values: _shuffled(
                        values, _seed(pipeline_seed + _SHUFFLE_STREAM, epoch * 1_000_003 + window)
                    )
                )
                .prefetch(1)  # The next window is read and decoded while this one is consumed.
                .unbatch()
            )
            if corrupt == "skip":
                # An epoch short of the records it skipped takes as many again from its start (read
                # anew, in the same order) rather than run into the next epoch's images.
                images = images.repeat(2)
            skipped_steps = tf.where(tf.equal(epoch, initial_epoch), tf.constant(initial_step, tf.int64), 0)
            elements = (
                images.take(steps * images_per_step)
                .skip(skipped_steps * images_per_step)
                .batch(images_per_element, drop_remainder=True)
            )
            first = skipped_steps * local_replicas
            return elements.enumerate(start=0).map(
                lambda number, batch: _element(
                    batch, number + first, epoch, pipeline_seed, per_step, value_range, pixel_noise, labels, with_index
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )

        epochs_dataset = tf.data.Dataset.range(initial_epoch, epochs)
        dataset = epochs_dataset.flat_map(epoch_elements).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        # Sharded by file above; tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return dataset_fn


def _seed(*parts):
    return tf.cast(tf.stack(parts), tf.int64)


def _element(batch, number, epoch, pipeline_seed, per_step, value_range, pixel_noise, labels, with_index):
    images, batch_labels, index = batch
    if per_step > 1:
        # n consecutive runs of images -> batch first: image i * n + s belongs to batch s (data.pipeline).
        images, batch_labels, index = (_batch_first(part, per_step) for part in (images, batch_labels, index))
    noise_seed = _seed(pipeline_seed + _NOISE_STREAM, epoch * 1_000_003 + number)
    images = pipeline.to_model_range(images, value_range, pixel_noise, seed=noise_seed)
    element = (images, tf.cast(batch_labels, tf.int32)) if labels else (images,)
    element += (index,) if with_index else ()
    return element[0] if len(element) == 1 else element


def _shuffled(values, seed):
    """The same permutation (stateless, from `seed`) applied to every part of a window of records."""
    order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(values[0])[0]), seed=seed)
    return tuple(tf.gather(part, order) for part in values)


def _batch_first(values, per_step):
    shape = tf.shape(values)
    grouped = tf.reshape(values, tf.concat([[per_step, shape[0] // per_step], shape[1:]], 0))
    perm = tf.concat([[1, 0], tf.range(2, tf.rank(grouped))], 0)
    return tf.reshape(tf.transpose(grouped, perm), shape)


def _count_missing(decoded, count, skipped, number, image_shape):
    """`decoded` unchanged, setting `skipped[number]` to how many of the shard's `count` records it lacks.

    A sentinel after the shard's last record carries the shortfall; it is counted and dropped.
    """
    flagged = decoded.map(lambda image, label, index: (image, label, index, False))
    sentinel = tf.data.Dataset.from_tensors(
        (tf.zeros(image_shape, tf.uint8), tf.constant(-1, tf.int64), tf.constant(-1, tf.int64), True)
    )

    def tally(produced, element):
        image, label, index, last = element
        missing = tf.where(last, count - produced, tf.constant(0, tf.int64))
        return produced + 1, (image, label, index, last, missing)

    def record(image, label, index, last, missing):
        counted = tf.cond(
            last,
            lambda: skipped.scatter_nd_update([[number]], [missing]).read_value()[0],
            lambda: tf.constant(0, tf.int64),
        )
        with tf.control_dependencies([counted]):
            return image, label, index, tf.identity(last)

    counted = flagged.concatenate(sentinel).scan(tf.constant(0, tf.int64), tally).map(record)
    return counted.filter(lambda image, label, index, last: tf.logical_not(last)).map(
        lambda image, label, index, last: (image, label, index)
    )
