"""What every keras_gen model offers the trainer, the callbacks and the studies."""

import math

import keras
import numpy as np
import tensorflow as tf

# Seeds of `sample(count, seed)` are below this, so that row seeds seed * 2**32 + i fit in an int64.
MAX_SEED = 2**31


class GenerativeModel(keras.Model):
    """A Keras model with a latent prior N(0, I) that can turn latents into viewable images.

    Subclasses set `value_range` ("unit" or "symmetric": the pixel range they train on), override
    `train_step`/`test_step`, `decode_to_images` and `default_optimizers`.

    Args:
        latent_dim: dimension of z.
        seed: seed of the model's own noise (reparameterisation, latents). Its state is checkpointed
            (runs.checkpoints), so a resumed run draws the same noise.

    Noise is drawn with `normal_noise`/`uniform_noise`, which give every tf.distribute replica its
    own rows of one draw for the global batch: replicas get different latents, and a step on N
    replicas draws exactly what it draws on one device.
    """

    value_range = "unit"
    # Classes of a class-conditional model (labels are a second input); 0: unconditional.
    num_classes = 0
    # Constructor arguments that are Keras models; get_config/from_config (de)serialize them.
    networks = ()
    # Real batches one train_step consumes, as one batch of batches_per_step x batch images, batch
    # first (see adversarial.AdversarialModel); None: one batch.
    batches_per_step = None
    default_learning_rate = 1e-3
    # What a training step does with a non-finite loss or gradient (the trainer sets the run's):
    # "stop" applies it as usual (the trainer stops the run at that step, before anything is
    # saved); "skip" leaves weights and optimizer untouched and counts the update in
    # `skipped_updates`, which every model logs (0 under "stop").
    nan_policy = "stop"

    def __init__(self, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.seed = seed
        self.noise = keras.random.SeedGenerator(seed, name="noise")
        self.skipped_updates = keras.metrics.Sum(name="skipped_updates")

    def minimize(self, optimizer, tape, loss, variables):
        """One update of `variables` down the gradient of `loss`, which `tape` recorded; see apply_update.

        Under float16 mixed precision the gradient is that of the scaled loss, which the
        LossScaleOptimizer unscales (training.precision); otherwise `scale_loss` returns the loss.
        """
        with tape:
            scaled_loss = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, variables)
        return self.apply_update(optimizer, loss, gradients, variables)

    def apply_update(self, optimizer, loss, gradients, variables):
        """optimizer.apply(gradients); under nan_policy "skip", only if the loss and gradients are finite.

        Returns a boolean scalar tensor: whether the update was applied. On several replicas the
        decision is taken once for all (the gradients are summed across them), in cross-replica
        context, as Keras' LossScaleOptimizer does: a branch that calls merge_call cannot sit in a
        replica's cond.
        """
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # It skips an update whose scaled gradients overflow and lowers the scale: that is how it
            # finds the scale, so it must see them (a skip here would keep the scale too high forever).
            # The loss is unscaled: a non-finite one still reaches the logs and the "stop" policy.
            finite = optimizer.check_finite(gradients)
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                # It decides from the first replica's gradients alone, taking them for all-reduced, which
                # they are not yet: another replica's overflow would reach the weights through the sum.
                # Any replica's overflow makes every replica's gradients non-finite.
                finite = _on_every_replica(context, finite)
                gradients = [
                    None if gradient is None else tf.where(finite, gradient, tf.constant(math.nan, gradient.dtype))
                    for gradient in gradients
                ]
            optimizer.apply(gradients, variables)
            return finite
        if self.nan_policy != "skip":
            optimizer.apply(gradients, variables)
            return tf.constant(True)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(value)) for value in (loss, *gradients)])
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return tf.cond(finite, lambda: _applied(optimizer, gradients, variables), lambda: tf.constant(False))
        finite = _on_every_replica(context, finite)

        def decide(distribution, finite, gradients):
            finite = distribution.experimental_local_results(finite)[0]

            def apply():
                distribution.extended.call_for_each_replica(optimizer.apply, args=(gradients, variables))
                return tf.constant(True)

            return tf.cond(finite, apply, lambda: tf.constant(False))

        return context.merge_call(decide, args=(finite, gradients))

    def count_skipped(self, skipped):
        """Adds `skipped` updates of this step to `skipped_updates`.

        The metric's sum is summed over replicas too, and every replica sees every skipped update:
        each adds its share, so the count is of updates whatever the replica count.
        """
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        self.skipped_updates.update_state(tf.cast(skipped, tf.float32) / replicas)

    @staticmethod
    def applied_values(values, applied):
        """(values, sample weights) for a metric: a skipped step counts with weight 0.

        A skipped step's values are zeroed too (0 x NaN would still be NaN); an applied step's are
        kept as they are, so a non-finite loss reaches the logs and the "stop" policy sees it.
        """
        values = tf.convert_to_tensor(values)
        applied = tf.broadcast_to(tf.convert_to_tensor(applied), tf.shape(values))
        return tf.where(applied, values, tf.zeros_like(values)), tf.cast(applied, values.dtype)

    def normal_noise(self, shape):
        """N(0, 1) noise of `shape` (batch first) for this replica's share of the global batch."""
        return self.replica_noise(lambda full: keras.random.normal(full, seed=self.noise), shape)

    def uniform_noise(self, shape):
        """U(0, 1) noise of `shape` (batch first) for this replica's share of the global batch."""
        return self.replica_noise(lambda full: keras.random.uniform(full, seed=self.noise), shape)

    @staticmethod
    def replica_noise(draw, shape):
        """This replica's rows of `draw` for the global batch.

        Every replica advances the same seed state and draws the whole global batch's noise, then
        keeps its own rows (replica r of N: rows r*b to (r+1)*b - 1, the examples tf.distribute gives
        it). A SeedGenerator alone gives every replica the same numbers, so a 2-replica batch of fakes
        would hold each fake twice; folding the replica id into the seed would make the run depend on
        the replica count. Drawing N times the noise needed costs little next to the networks.

        Args:
            draw: callable full shape -> tensor, drawing from the model's seed state.
            shape: this replica's shape, batch first; the batch may be a scalar tensor.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:  # One device, or cross-replica context.
            return draw(shape)
        local = shape[0]
        values = draw((local * context.num_replicas_in_sync,) + tuple(shape[1:]))
        start = context.replica_id_in_sync_group * local
        return values[start : start + local]

    def step_logs(self, trackers):
        """What train_step/test_step return: each tracker's result, by name.

        Keras 3's fit and evaluate reduce these with `strategy.reduce("MEAN", value, axis=0)` across
        several workers, which fails on scalars ("Invalid reduction dimension 0 for input with 0
        dimensions", tensorflow#72388). Given a length-1 axis there, they reduce to the same scalars.
        """
        logs = {tracker.name: tracker.result() for tracker in trackers}
        extended = self.distribute_strategy.extended
        if getattr(extended, "_in_multi_worker_mode", lambda: False)():  # Keras's own test for that path.
            logs = {name: tf.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def pixel_noise(self, dataset_binarizes):
        """How 8-bit pixels become inputs (one of data.pipeline.PIXEL_NOISES)."""
        return "binarize" if dataset_binarizes else None

    def default_optimizers(self, learning_rate):
        """{compile() argument name: optimizer} for a fresh run."""
        raise NotImplementedError

    def optimizers(self):
        """{name: optimizer} as compiled; what the checkpoint stores beside the weights."""
        raise NotImplementedError

    def build_optimizers(self):
        """Creates every optimizer's slot variables, so a checkpoint can restore them before training."""
        raise NotImplementedError

    def decode_to_images(self, latents):
        """Images in [0, 1], (batch, size, size, channels), for latents (batch, latent_dim)."""
        raise NotImplementedError

    def refresh_sampling_statistics(self):
        """Brings whatever sampling reads but training does not keep up to date in line with the weights.

        Called when the weights are about to be sampled from: at an epoch's end and after a restore.
        Nothing to do unless a model keeps such state (a GAN's weight average: its batch norm statistics).
        """

    def sample(self, count=16, seed=0, labels=None):
        """`count` images from the prior as uint8 (count, size, size, channels).

        The same images as the exported model's `sample` signature gives for `row_seeds(count, seed)`
        (and `keras_gen.load(...).sample(count, seed)`): the same seed, the same images, anywhere.
        A class-conditional model draws row i as class `labels[i]` (a class index per row, or one
        for all); without labels it cycles through the classes.
        """
        latents = row_latents(row_seeds(count, seed), self.latent_dim)
        if labels is None:
            return to_uint8(self.decode_to_images(latents)).numpy()
        return to_uint8(self.decode_to_images(latents, class_labels(labels, count, self.num_classes))).numpy()

    @staticmethod
    def images_of(data):
        """The images of a batch, whether it comes as images, (images, labels) or train_on_batch's tuple."""
        return keras.utils.unpack_x_y_sample_weight(data)[0]

    def labels_of(self, data):
        """The labels of a batch for a conditional model (None for an unconditional one)."""
        if not self.num_classes:
            return None
        labels = keras.utils.unpack_x_y_sample_weight(data)[1]
        if labels is None:
            raise ValueError("a conditional model trains on (images, labels) batches; these have no labels")
        return tf.cast(tf.reshape(labels, (-1,)), tf.int32)

    def conditioned(self, values, labels=None):
        """A network's inputs: `values` alone, or for a conditional model [values, labels], the labels
        cycling through the classes (row i: class i mod num_classes) when none are given."""
        if not self.num_classes:
            if labels is not None:
                raise ValueError("labels given to an unconditional model; train it with --conditional")
            return values
        values = tf.convert_to_tensor(values)  # Keras refuses a mix of arrays and tensors.
        if labels is None:
            labels = cycled_labels(tf.shape(values)[0], self.num_classes)
        return [values, tf.cast(labels, tf.int32)]

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "seed": self.seed})
        config.update({name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self.networks})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.networks:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def _on_every_replica(context, condition):
    """Whether a boolean scalar holds on every replica (ReduceOp has no MIN: count where it fails)."""
    failures = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(condition), tf.float32))
    return failures < 0.5


def _applied(optimizer, gradients, variables):
    optimizer.apply(gradients, variables)
    return tf.constant(True)


def to_uint8(images):
    """[0, 1] floats -> uint8 pixel values, rounded (what `sample` and the exported signatures return)."""
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


def row_seeds(count, seed=0):
    """The per-image seeds of `count` samples drawn with `seed`: seed * 2**32 + (0, 1, ..., count - 1).

    Two seeds give disjoint rows, and a longer draw begins with a shorter one's images.
    """
    if not 0 <= int(seed) < MAX_SEED:
        raise ValueError(f"seed={seed}; expected an integer from 0 to {MAX_SEED - 1}")
    if not 0 <= int(count) < 2**32:
        raise ValueError(f"count={count}; expected a non-negative integer")
    return np.arange(int(count), dtype=np.int64) + np.int64(seed) * 2**32


def row_normals(seeds, shape, stream=0):
    """Standard normal draws (batch, *shape), row i from the stateless seed (seeds[i], stream) alone.

    A row's numbers do not depend on the other rows, so a batch of requests can be merged (TF
    Serving's batching) and a seed gives the same draw in any batch, process or machine.
    """
    stream = tf.constant(stream, tf.int64)
    return tf.map_fn(
        lambda seed: tf.random.stateless_normal(shape, seed=tf.stack([seed, stream])),
        tf.convert_to_tensor(seeds, tf.int64),
        fn_output_signature=tf.TensorSpec(tuple(shape), tf.float32),
    )


def cycled_labels(count, num_classes):
    """Labels 0, 1, ..., num_classes - 1, 0, 1, ... for `count` rows: every class equally often."""
    return tf.math.floormod(tf.range(count, dtype=tf.int32), num_classes)


def check_networks(num_classes, *networks):
    """A one-line error unless every network takes [data, labels] when num_classes > 0, one input otherwise."""
    for network in networks:
        if len(network.inputs) != (2 if num_classes else 1):
            raise ValueError(
                f"num_classes={num_classes} but the {network.name} takes {len(network.inputs)} input(s); "
                "expected [data, labels] for a conditional model, one input otherwise"
            )


def class_labels(labels, count, num_classes):
    """int32 (count,) class indices from one index or one per row; a one-line error for anything else."""
    if not num_classes:
        raise ValueError("labels given to an unconditional model; train it with --conditional to draw classes")
    labels = np.broadcast_to(np.asarray(labels), (count,)) if np.ndim(labels) == 0 else np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels {labels.tolist()}; expected one class index, or {count} of them")
    if labels.size and not (0 <= labels.min() and labels.max() < num_classes):
        raise ValueError(f"labels {labels.tolist()}; expected class indices from 0 to {num_classes - 1}")
    return labels.astype(np.int32)


def row_latents(seeds, latent_dim):
    """Latents (batch, latent_dim) from the prior N(0, I), one per seed: what `sample` decodes."""
    return row_normals(seeds, (latent_dim,), stream=0)
