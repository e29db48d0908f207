"""What GAN and WGAN share: a generator, a critic, two optimizers and the alternating train step."""

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import base


class AdversarialModel(base.GenerativeModel):
    """Generator G(z) against a critic f(x), trained by alternating updates (Goodfellow et al., 2014).

    One `train_step` is `critic_steps` critic updates, each on a fresh real batch, then one generator
    update. The input pipeline therefore feeds `critic_steps` real batches per step, stacked as
    (critic_steps, batch, size, size, channels) (see `batches_per_step`); the generator update needs
    no real images, so no extra batch is drawn for it. Subclasses define the two per-example losses.

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

    @property
    def batches_per_step(self):
        return self.critic_steps

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, generator_optimizer, critic_optimizer, **kwargs):
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer
        self.critic_optimizer = critic_optimizer

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

    def critic_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        latents = keras.random.normal((batch_size, self.latent_dim), seed=self.noise)
        fake_images = self.generator(latents, training=True)
        extra = {}
        with tf.GradientTape() as tape:
            real_scores = self.critic(real_images, training=True)
            fake_scores = self.critic(fake_images, training=True)
            per_example = self.critic_loss(real_images, fake_images, real_scores, fake_scores, extra)
            loss = losses.average_over_global_batch(per_example)
        gradients = tape.gradient(loss, self.critic.trainable_variables)
        self.critic_optimizer.apply(gradients, self.critic.trainable_variables)
        self.after_critic_update()
        return per_example, real_scores, fake_scores, extra

    def generator_step(self, batch_size):
        latents = keras.random.normal((batch_size, self.latent_dim), seed=self.noise)
        with tf.GradientTape() as tape:
            fake_scores = self.critic(self.generator(latents, training=True), training=True)
            per_example = self.generator_loss(fake_scores)
            loss = losses.average_over_global_batch(per_example)
        gradients = tape.gradient(loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(gradients, self.generator.trainable_variables)
        return per_example

    def train_step(self, data):
        real_batches = self.images_of(data)  # (critic_steps, batch, size, size, channels)
        for step in range(self.critic_steps):
            critic_loss, real_scores, fake_scores, extra = self.critic_step(real_batches[step])
        generator_loss = self.generator_step(tf.shape(real_batches)[1])
        return self._update_metrics(critic_loss, generator_loss, real_scores, fake_scores, extra)

    def test_step(self, data):
        real_images = self.images_of(data)
        latents = keras.random.normal((tf.shape(real_images)[0], self.latent_dim), seed=self.noise)
        fake_images = self.generator(latents, training=False)
        real_scores = self.critic(real_images, training=False)
        fake_scores = self.critic(fake_images, training=False)
        extra = {}
        critic_loss = self.critic_loss(real_images, fake_images, real_scores, fake_scores, extra)
        generator_loss = self.generator_loss(fake_scores)
        return self._update_metrics(critic_loss, generator_loss, real_scores, fake_scores, extra)

    def _update_metrics(self, critic_loss, generator_loss, real_scores, fake_scores, extra):
        values = {
            "critic_loss": critic_loss,
            "generator_loss": generator_loss,
            "real_score": real_scores,
            "fake_score": fake_scores,
            **extra,
        }
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        config = super().get_config()
        config["critic_steps"] = self.critic_steps
        return config
