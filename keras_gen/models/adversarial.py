"""What GAN and WGAN share: a generator, a critic, two optimizers and the alternating train step."""

import contextlib
import typing

import keras
import tensorflow as tf

from keras_gen import errors
from keras_gen import losses
from keras_gen.models import base
from keras_gen.models import ema
from keras_gen.networks import augment
from keras_gen.networks import dcgan


class AdversarialModel(base.GenerativeModel):
    """Generator G(z) against a critic f(x), trained by alternating updates (Goodfellow et al., 2014).

    What GAN and WGAN share: two networks and two optimizers, the real batches of one step, one critic
    update (`critic_step`), one generator update (`generator_step`), and the metrics. Each algorithm
    writes its own `train_step` from these, as its paper's algorithm box, and its two losses.

    One `train_step` is `critic_steps` critic updates, each on a fresh real batch, then one generator
    update. A step therefore takes `critic_steps` batches of real images as one batch, batch first:
    image i * critic_steps + s belongs to critic update s. Any tf.distribute strategy splits that
    batch on its first axis into equal shares that are still whole sets of updates, and plain Keras
    works too: `wgan.fit(images, batch_size=5 * 64)` makes 5 critic updates on 64 images each (a
    final partial batch is cut to a multiple of `critic_steps`).

    Two techniques for better samples per step, off by default, apply to every algorithm:
    - `ema_decay` > 0 keeps `ema_generator`, an exponential moving average of the generator's
      weights updated after every generator update (Yazici et al., 2019; models.ema). Samples,
      grids, evaluation, studies and exports then come from it; training and the validation
      losses use the raw generator.
    - `diffaugment` puts real and fake images through the same random differentiable augmentations
      before the critic, in the critic's updates and the generator's (networks.augment).

    With `num_classes` the model is class-conditional (Mirza & Osindero, 2014): both networks take
    the labels as a second input (networks.dcgan), the data come as (images, labels), and every fake
    of a step is generated for the labels of the real images it is compared with, so the classes
    are drawn as often as the data hold them. Sampling without labels cycles through the classes.

    Args:
        generator: keras.Model z (batch, latent_dim) -> images in [-1, 1].
        critic: keras.Model images -> scores (batch, 1).
        critic_steps: critic (discriminator) updates per generator update.
        ema_decay: decay of the generator's weight average (0: none).
        diffaugment: augmentations of networks.augment.POLICIES, a tuple or comma-separated.
        num_classes: classes of a conditional model, 0 for an unconditional one.
        seed: seed of the latents drawn during training.
    """

    value_range = "symmetric"
    networks = ("generator", "critic")

    def __init__(
        self, generator, critic, critic_steps=1, ema_decay=0.0, diffaugment=(), num_classes=0, seed=None, **kwargs
    ):
        latent_dim = kwargs.pop("latent_dim", generator.inputs[0].shape[-1])
        super().__init__(latent_dim=latent_dim, seed=seed, **kwargs)
        base.check_networks(num_classes, generator, critic)
        if critic_steps < 1:
            raise ValueError(f"critic_steps {critic_steps}; expected at least 1")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay {ema_decay}; expected 0 (off) or a decay in (0, 1)")
        self.generator = generator
        self.critic = critic
        self.critic_steps = int(critic_steps)
        self.num_classes = int(num_classes)
        self.ema_decay = float(ema_decay)
        self.diffaugment = augment.parse_policy(diffaugment if isinstance(diffaugment, str) else ",".join(diffaugment))
        self.ema_generator = ema.average_copy(generator) if self.ema_decay > 0 else None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self.built = True  # Both networks are built functional models.

    metric_names = ("critic_loss", "generator_loss", "real_score", "fake_score")

    @property
    def batches_per_step(self):
        return self.critic_steps

    @property
    def metrics(self):
        return [*self.trackers.values(), self.skipped_updates]

    def compile(self, generator_optimizer, critic_optimizer, **kwargs):
        # Keras' own `optimizer` goes unused here. Under mixed_float16 Keras would wrap it for loss
        # scaling, and a checkpoint would then not fit the float32 rebuild that evaluation restores it
        # into; the two optimizers that train come loss-scaled from models.precision.
        super().compile(**{"auto_scale_loss": False, **kwargs})
        self.generator_optimizer = generator_optimizer
        self.critic_optimizer = critic_optimizer
        # Keras builds the optimizer it compiles with, not optimizers held as attributes: built lazily
        # inside the first step, their variables break a tf.distribute step (an unfed placeholder).
        self.build_optimizers()

    def optimizers(self):
        return {"generator_optimizer": self.generator_optimizer, "critic_optimizer": self.critic_optimizer}

    def build_optimizers(self):
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.critic_optimizer.build(self.critic.trainable_variables)

    @property
    def sampling_generator(self):
        """The generator samples come from: the weight average when there is one, else the trained weights."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def decode_to_images(self, latents, labels=None):
        """Images in [0, 1] for latents; a conditional model draws row i as class labels[i] (default: i mod classes)."""
        return (self.sampling_generator(self.generator_inputs(latents, labels), training=False) + 1.0) / 2.0

    def refresh_sampling_statistics(self):
        """The weight average's batch norm statistics, measured on the average (models.ema)."""
        if self.ema_generator is not None:
            ema.standing_statistics(self.ema_generator, self.latent_dim, num_classes=self.num_classes)

    def decode_with_raw_weights(self, latents, labels=None):
        """Images in [0, 1] from the trained generator itself, whether or not samples come from an average."""
        return (self.generator(self.generator_inputs(latents, labels), training=False) + 1.0) / 2.0

    def call(self, inputs, training=False):
        """G(z), or for a conditional model G(z, y) of inputs [latents, labels] (or latents alone: cycled classes)."""
        if self.num_classes and isinstance(inputs, (list, tuple)):
            return self.generator(self.generator_inputs(*inputs), training=training)
        return self.generator(self.generator_inputs(inputs), training=training)

    def class_embeddings(self):
        """(num_classes, dim): the label embedding of the generator samples come from."""
        if dcgan.CLASS_EMBEDDING not in {layer.name for layer in self.sampling_generator.layers}:
            raise errors.UserError(
                "class interpolation walks between label embeddings joined to z; this generator takes its label "
                "through conditional batch norm (--class_conditioning=batch_norm)"
            )
        return self.sampling_generator.get_layer(dcgan.CLASS_EMBEDDING).embeddings.numpy()

    def decode_embedded(self, latents, embeddings):
        """Images in [0, 1] for latents with any label embeddings (batch, dim), such as points between two classes'."""
        generator = self.sampling_generator
        embedding = generator.get_layer(dcgan.CLASS_EMBEDDING)
        from_embeddings = keras.Model([generator.inputs[0], embedding.output], generator.output)
        inputs = [tf.convert_to_tensor(latents, tf.float32), tf.convert_to_tensor(embeddings, tf.float32)]
        return (from_embeddings(inputs, training=False) + 1.0) / 2.0

    def generator_inputs(self, latents, labels=None):
        """What the generator takes: the latents, with their labels if the model is conditional."""
        return self.conditioned(tf.cast(latents, tf.float32), labels)

    def critic_inputs(self, images, labels=None):
        """What the critic takes: the images, with their labels if the model is conditional."""
        if not self.num_classes:
            return images
        return [tf.convert_to_tensor(images), tf.cast(labels, tf.int32)]  # Keras refuses arrays mixed with tensors.

    # Each algorithm's two losses, per example.
    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, labels=None):
        """(per-example critic loss, {metric name: per-example value} to log beside it); `labels` of both
        batches, for a conditional model."""
        raise NotImplementedError

    def generator_loss(self, fake_scores):
        raise NotImplementedError

    def sample_latents(self, batch_size):
        """Latents from the prior for this replica's `batch_size` examples, (batch_size, latent_dim)."""
        return self.normal_noise((batch_size, self.latent_dim))

    def critic_batches(self, images):
        """(batch, critic_steps, ...): the real batch (or labels) of each critic update, batch first."""
        usable = tf.shape(images)[0] // self.critic_steps * self.critic_steps
        return tf.reshape(images[:usable], (-1, self.critic_steps) + tuple(images.shape[1:]))

    def step_batches(self, data):
        """(real batches (batch, k, ...), their labels (batch, k) or None): what a train step's k updates use."""
        labels = self.labels_of(data)
        return self.critic_batches(self.images_of(data)), None if labels is None else self.critic_batches(labels)

    def generate(self, batch_size, tape=None, labels=None):
        """Fakes G(z) for fresh latents (of `labels` for a conditional model), (batch_size, size, size,
        channels) in [-1, 1].

        Their generation is recorded on `tape` when given, for the generator's gradient; otherwise
        nothing is recorded (a critic update needs the fakes, not how they were made).
        """
        with tape if tape is not None else contextlib.nullcontext():
            return self.generator(self.generator_inputs(self.sample_latents(batch_size), labels), training=True)

    def critic_view(self, images):
        """What the critic is shown in training: the images through this step's DiffAugment draws, if any."""
        if not self.diffaugment:
            return images
        return augment.augment(images, self.diffaugment, self.uniform_noise)

    def critic_step(self, real_images, fake_images, labels=None):
        """One critic update on a real and a fake batch (both of `labels`, for a conditional model);
        returns (StepValues, whether it was applied)."""
        real_images, fake_images = self.critic_view(real_images), self.critic_view(fake_images)
        with tf.GradientTape() as tape:
            real_scores = self.critic(self.critic_inputs(real_images, labels), training=True)
            fake_scores = self.critic(self.critic_inputs(fake_images, labels), training=True)
            per_example, extra = self.critic_loss(real_images, fake_images, real_scores, fake_scores, labels)
            loss = losses.average_over_global_batch(per_example)
        applied = self.minimize(self.critic_optimizer, tape, loss, self.critic.trainable_variables)
        return StepValues(per_example, real_scores, fake_scores, extra), applied

    def generator_step(self, generator_tape, fake_images, labels=None):
        """One generator update from fakes (of `labels`) whose generation `generator_tape` recorded; (loss, applied)."""
        with generator_tape:
            scores = self.critic(self.critic_inputs(self.critic_view(fake_images), labels), training=True)
            per_example = self.generator_loss(scores)
            loss = losses.average_over_global_batch(per_example)
        applied = self.minimize(self.generator_optimizer, generator_tape, loss, self.generator.trainable_variables)
        if self.ema_generator is not None:
            ema.update(self.ema_generator, self.generator, self.ema_decay, self.generator_optimizer.iterations)
        return per_example, applied

    def test_step(self, data):
        real_images, labels = self.images_of(data), self.labels_of(data)
        latents = self.sample_latents(tf.shape(real_images)[0])
        fake_images = self.generator(self.generator_inputs(latents, labels), training=False)
        real_scores = self.critic(self.critic_inputs(real_images, labels), training=False)
        fake_scores = self.critic(self.critic_inputs(fake_images, labels), training=False)
        critic_loss, extra = self.critic_loss(real_images, fake_images, real_scores, fake_scores, labels)
        critic = StepValues(critic_loss, real_scores, fake_scores, extra)
        return self.record_step(critic, self.generator_loss(fake_scores))

    def record_step(self, critic, generator_loss, applied=True, skipped=0.0):
        """Updates the metrics with the last critic update's values and the generator's loss; the logs.

        `applied`: whether the step counts (its last critic update and its generator update were
        applied); `skipped`: updates of this step skipped under nan_policy "skip".
        """
        values = {
            "critic_loss": critic.loss,
            "generator_loss": generator_loss,
            "real_score": critic.real_scores,
            "fake_score": critic.fake_scores,
            **critic.extra,
        }
        for name, tracker in self.trackers.items():
            tracker.update_state(*self.applied_values(values[name], applied))
        self.count_skipped(skipped)
        return self.step_logs(self.metrics)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "critic_steps": self.critic_steps,
                "ema_decay": self.ema_decay,
                "diffaugment": list(self.diffaugment),
                "num_classes": self.num_classes,
            }
        )
        return config


class StepValues(typing.NamedTuple):
    """What one critic update computed, per example: its loss, the scores, and extra metrics."""

    loss: tf.Tensor
    real_scores: tf.Tensor
    fake_scores: tf.Tensor
    extra: dict


def not_applied(applied):
    """1.0 for an update that was skipped, else 0.0: summed into a step's skipped updates."""
    return 1.0 - tf.cast(applied, tf.float32)
