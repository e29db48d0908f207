"""GAN with a sigmoid discriminator (Goodfellow et al., 2014; DCGAN architecture, Radford et al., 2016)."""

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.models import optimizers
from keras_gen.networks import dcgan


@keras.saving.register_keras_serializable(package="keras_gen")
class GAN(adversarial.AdversarialModel):
    """GAN trained with `gan_loss`: "non_saturating", the report's "least_squares", or "hinge".

    The critic outputs a logit; the discriminator's probability is its sigmoid, applied inside the
    losses so they stay numerically stable (the hinge loss reads the raw score). `critic_steps` is
    the report's K discriminator steps.

    Example:
        >>> gan = GAN(dcgan.generator((32, 32, 1), 100), dcgan.critic((32, 32, 1)), gan_loss="least_squares")
        >>> gan.compile(**gan.default_optimizers(2e-4))
    """

    def __init__(self, generator, critic, gan_loss="non_saturating", critic_steps=1, seed=None, **kwargs):
        if gan_loss not in losses.GAN_LOSSES:
            raise ValueError(f"gan_loss {gan_loss!r}; expected one of {losses.GAN_LOSSES}")
        super().__init__(generator, critic, critic_steps=critic_steps, seed=seed, **kwargs)
        self.gan_loss = gan_loss

    default_learning_rate = 2e-4

    def default_optimizers(self, learning_rate, critic_learning_rate=None):
        # Radford et al.: Adam with beta_1 = 0.5 for both networks; a critic rate of its own is
        # Heusel et al.'s two time-scale rule (TTUR).
        return {
            "generator_optimizer": optimizers.Adam(learning_rate, beta_1=0.5),
            "critic_optimizer": optimizers.Adam(critic_learning_rate or learning_rate, beta_1=0.5),
        }

    def train_step(self, data):
        """Algorithm 1 of Goodfellow et al. (2014): k discriminator updates, then one generator update.

        The generator update scores the fakes the last discriminator update was trained on, as the
        DCGAN reference implementations do (PyTorch's example, the report): one generator forward pass
        per step fewer, measured 1.2x faster here (BENCHMARKS.md), and the same gradient in
        expectation, the fakes being an independent draw from G either way.
        """
        real_batches, label_batches = self.step_batches(data)  # (batch, k, size, size, channels), (batch, k)
        batch_size = tf.shape(real_batches)[0]
        skipped = tf.constant(0.0)
        for step in range(self.critic_steps):  # for k steps:
            # Sample z ~ p(z) and a real batch; ascend log D(x) + log(1 - D(G(z))). The last update's
            # fakes are generated on the generator's tape, for the update that follows.
            labels = None if label_batches is None else label_batches[:, step]
            generator_tape = tf.GradientTape() if step == self.critic_steps - 1 else None
            fake_images = self.generate(batch_size, generator_tape, labels)
            critic, applied = self.critic_step(real_batches[:, step], fake_images, labels)
            skipped += adversarial.not_applied(applied)
        # Descend the generator's loss on those fakes.
        generator_loss, generator_applied = self.generator_step(generator_tape, fake_images, labels)
        skipped += adversarial.not_applied(generator_applied)
        # The step's metrics count only if its last discriminator update and its generator update were applied.
        return self.record_step(critic, generator_loss, applied & generator_applied, skipped)

    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, labels=None):
        return losses.discriminator_loss(self.gan_loss, real_scores, fake_scores), {}

    def generator_loss(self, fake_scores):
        return losses.generator_loss(self.gan_loss, fake_scores)

    def get_config(self):
        config = super().get_config()
        config["gan_loss"] = self.gan_loss
        return config


def build(
    image_shape, latent_dim, base_filters=64, gan_loss="non_saturating", critic_steps=1, spectral_norm=False,
    ema_decay=0.0, diffaugment=(), num_classes=0, class_conditioning="embedding", seed=None,
):  # fmt: skip
    """The report's DCGAN-style GAN for images of `image_shape`; `critic_steps` is its K.

    `spectral_norm` makes the discriminator SNGAN's: every layer spectrally normalized and no batch
    norm (which would rescale what the normalization bounds). `num_classes` > 0: class-conditional.
    """
    return GAN(
        dcgan.generator(image_shape, latent_dim, base_filters, num_classes, class_conditioning),
        dcgan.critic(
            image_shape,
            base_filters,
            normalization="none" if spectral_norm else "batch",
            spectral_norm=spectral_norm,
            num_classes=num_classes,
        ),  # fmt: skip
        gan_loss=gan_loss,
        critic_steps=critic_steps,
        ema_decay=ema_decay,
        diffaugment=diffaugment,
        num_classes=num_classes,
        seed=seed,
    )
