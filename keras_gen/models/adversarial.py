"""What GAN and WGAN share: a generator, a critic, two optimizers and the alternating train step."""

import contextlib

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import base


class AdversarialModel(base.GenerativeModel):
    """Generator G(z) against a critic f(x), trained by alternating updates (Goodfellow et al., 2014).

    One `train_step` is `critic_steps` critic updates, each on a fresh real batch, then one generator
    update. A step therefore takes `critic_steps` batches of real images as one batch, batch first:
    image i * critic_steps + s belongs to critic update s. Any tf.distribute strategy splits that
    batch on its first axis into equal shares that are still whole sets of updates, and plain Keras
    works too: `wgan.fit(images, batch_size=5 * 64)` makes 5 critic updates on 64 images each (a
    final partial batch is cut to a multiple of `critic_steps`). The generator update needs no real
    images, so no extra batch is drawn for it; it either reuses the last critic update's fakes or
    generates fresh ones (`reuse_fakes`). Subclasses define the two per-example losses.

    Args:
        generator: keras.Model z (batch, latent_dim) -> images in [-1, 1].
        critic: keras.Model images -> scores (batch, 1).
        critic_steps: critic (discriminator) updates per generator update.
        seed: seed of the latents drawn during training.
    """

    value_range = "symmetric"
    networks = ("generator", "critic")

    def __init__(self, generator, critic, critic_steps=1, seed=None, **kwargs):
        latent_dim = kwargs.pop("latent_dim", generator.input_shape[-1])
        super().__init__(latent_dim=latent_dim, seed=seed, **kwargs)
        if critic_steps < 1:
            raise ValueError(f"critic_steps {critic_steps}; expected at least 1")
        self.generator = generator
        self.critic = critic
        self.critic_steps = int(critic_steps)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self.built = True  # Both networks are built functional models.

    metric_names = ("critic_loss", "generator_loss", "real_score", "fake_score")
    # Whether the generator update reuses the fakes of the last critic update (one generator
    # forward pass fewer per step) or generates fresh ones; set by each algorithm.
    reuse_fakes = False

    @property
    def batches_per_step(self):
        return self.critic_steps

    @property
    def metrics(self):
        return [*self.trackers.values(), self.skipped_updates]

    def compile(self, generator_optimizer, critic_optimizer, **kwargs):
        # Keras' own `optimizer` goes unused here. Under mixed_float16 Keras would wrap it for loss
        # scaling, and a checkpoint would then not fit the float32 rebuild that evaluation restores it
        # into; the two optimizers that train come loss-scaled from training.precision.
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

    def decode_to_images(self, latents):
        return (self.generator(latents, training=False) + 1.0) / 2.0

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    # The two losses, per example; `extra` collects metrics to log (Wasserstein estimate, penalty).
    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, extra):
        raise NotImplementedError

    def generator_loss(self, fake_scores):
        raise NotImplementedError

    def after_critic_update(self):
        """Hook for a constraint on the critic (weight clipping)."""

    def sample_latents(self, batch_size):
        """Latents from the prior for this replica's `batch_size` examples, (batch_size, latent_dim)."""
        return self.normal_noise((batch_size, self.latent_dim))

    def critic_batches(self, images):
        """(batch, critic_steps, size, size, channels): the real batch of each critic update, batch first."""
        usable = tf.shape(images)[0] // self.critic_steps * self.critic_steps
        return tf.reshape(images[:usable], (-1, self.critic_steps) + tuple(images.shape[1:]))

    def generate(self, batch_size, tape=None):
        """Fakes G(z) for fresh latents, (batch_size, size, size, channels) in [-1, 1].

        Their generation is recorded on `tape` when given, for the generator's gradient; otherwise
        nothing is recorded (a critic update needs the fakes, not how they were made).
        """
        with tape if tape is not None else contextlib.nullcontext():
            return self.generator(self.sample_latents(batch_size), training=True)

    def critic_step(self, real_images, fake_images):
        extra = {}
        with tf.GradientTape() as tape:
            real_scores = self.critic(real_images, training=True)
            fake_scores = self.critic(fake_images, training=True)
            per_example = self.critic_loss(real_images, fake_images, real_scores, fake_scores, extra)
            loss = losses.average_over_global_batch(per_example)
        applied = self.minimize(self.critic_optimizer, tape, loss, self.critic.trainable_variables)
        self.after_critic_update()
        return per_example, real_scores, fake_scores, extra, applied

    def generator_step(self, generator_tape, fake_images):
        """One generator update from fakes whose generation `generator_tape` recorded."""
        with generator_tape:
            per_example = self.generator_loss(self.critic(fake_images, training=True))
            loss = losses.average_over_global_batch(per_example)
        applied = self.minimize(self.generator_optimizer, generator_tape, loss, self.generator.trainable_variables)
        return per_example, applied

    def train_step(self, data):
        real_batches = self.critic_batches(self.images_of(data))  # (batch, critic_steps, size, size, channels)
        batch_size = tf.shape(real_batches)[0]
        skipped = tf.constant(0.0)
        for step in range(self.critic_steps):
            last = step == self.critic_steps - 1
            generator_tape = tf.GradientTape() if last and self.reuse_fakes else None
            fake_images = self.generate(batch_size, generator_tape)
            critic_loss, real_scores, fake_scores, extra, applied = self.critic_step(real_batches[:, step], fake_images)
            skipped += 1.0 - tf.cast(applied, tf.float32)
        if not self.reuse_fakes:
            generator_tape = tf.GradientTape()
            fake_images = self.generate(batch_size, generator_tape)
        generator_loss, generator_applied = self.generator_step(generator_tape, fake_images)
        skipped += 1.0 - tf.cast(generator_applied, tf.float32)
        # The step's metrics count only if its last critic update and its generator update were applied.
        return self._update_metrics(
            critic_loss, generator_loss, real_scores, fake_scores, extra, applied & generator_applied, skipped
        )

    def test_step(self, data):
        real_images = self.images_of(data)
        fake_images = self.generator(self.sample_latents(tf.shape(real_images)[0]), training=False)
        real_scores = self.critic(real_images, training=False)
        fake_scores = self.critic(fake_images, training=False)
        extra = {}
        critic_loss = self.critic_loss(real_images, fake_images, real_scores, fake_scores, extra)
        generator_loss = self.generator_loss(fake_scores)
        return self._update_metrics(critic_loss, generator_loss, real_scores, fake_scores, extra)

    def _update_metrics(self, critic_loss, generator_loss, real_scores, fake_scores, extra, applied=True, skipped=0.0):
        values = {
            "critic_loss": critic_loss,
            "generator_loss": generator_loss,
            "real_score": real_scores,
            "fake_score": fake_scores,
            **extra,
        }
        for name, tracker in self.trackers.items():
            tracker.update_state(*self.applied_values(values[name], applied))
        self.count_skipped(skipped)
        return self.step_logs(self.metrics)

    def get_config(self):
        config = super().get_config()
        config["critic_steps"] = self.critic_steps
        return config
