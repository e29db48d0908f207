"""Wasserstein GAN with weight clipping (Arjovsky et al., 2017) or gradient penalty (Gulrajani et al., 2017)."""

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.models import optimizers
from keras_gen.networks import dcgan


@keras.saving.register_keras_serializable(package="keras_gen")
class WGAN(adversarial.AdversarialModel):
    """WGAN: the critic maximises E f(x) - E f(G(z)) under a Lipschitz constraint.

    The constraint is either weight clipping to [-weight_clip, weight_clip] after every critic update
    (the paper's RMSprop 5e-5) or the gradient penalty (`gradient_penalty`), weighted by
    `gradient_penalty_weight` (Adam 1e-4, betas (0.5, 0.9)). Per step it logs the Wasserstein estimate
    E f(x) - E f(G(z)) and the penalty beside the losses.

    Args:
        weight_clip: c for clipping, or 0 to disable it.
        gradient_penalty_weight: lambda for the penalty (10 in the paper), or 0 to disable it.
        critic_steps: n_critic, critic updates per generator update (5 in both papers).
    """

    metric_names = adversarial.AdversarialModel.metric_names + ("wasserstein", "gradient_penalty")

    def __init__(
        self, generator, critic, critic_steps=5, weight_clip=0.01, gradient_penalty_weight=0.0, seed=None, **kwargs
    ):
        if (weight_clip > 0) == (gradient_penalty_weight > 0):
            raise ValueError(
                f"weight_clip={weight_clip}, gradient_penalty_weight={gradient_penalty_weight}; "
                "expected exactly one of them to be positive"
            )
        super().__init__(generator, critic, critic_steps=critic_steps, seed=seed, **kwargs)
        self.weight_clip = float(weight_clip)
        self.gradient_penalty_weight = float(gradient_penalty_weight)

    @property
    def default_learning_rate(self):
        return 1e-4 if self.gradient_penalty_weight > 0 else 5e-5

    def default_optimizers(self, learning_rate, critic_learning_rate=None):
        if self.gradient_penalty_weight > 0:
            optimizer, options = optimizers.Adam, {"beta_1": 0.5, "beta_2": 0.9}
        else:
            optimizer, options = optimizers.RMSprop, {"rho": 0.99}  # PyTorch's alpha = 0.99.
        return {
            "generator_optimizer": optimizer(learning_rate, **options),
            "critic_optimizer": optimizer(critic_learning_rate or learning_rate, **options),
        }

    def train_step(self, data):
        """Algorithm 1 of Arjovsky et al. (2017), or of Gulrajani et al. (2017) with the gradient penalty."""
        real_batches, label_batches = self.step_batches(data)  # (batch, n_critic, size, size, channels), (batch, n)
        batch_size = tf.shape(real_batches)[0]
        skipped = tf.constant(0.0)
        for step in range(self.critic_steps):  # for t = 1, ..., n_critic:
            # Sample a real batch and z ~ p(z); descend -(E f(x) - E f(G(z))) [+ lambda * penalty].
            labels = None if label_batches is None else label_batches[:, step]
            critic, applied = self.critic_step(real_batches[:, step], self.generate(batch_size, labels=labels), labels)
            if self.weight_clip > 0:
                self.clip_critic_weights()  # w <- clip(w, -c, c)
            skipped += adversarial.not_applied(applied)
        # Sample a fresh z ~ p(z) (for the last real batch's labels); descend -E f(G(z)).
        generator_tape = tf.GradientTape()
        fake_images = self.generate(batch_size, generator_tape, labels)
        generator_loss, generator_applied = self.generator_step(generator_tape, fake_images, labels)
        skipped += adversarial.not_applied(generator_applied)
        # The step's metrics count only if its last critic update and its generator update were applied.
        return self.record_step(critic, generator_loss, applied & generator_applied, skipped)

    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, labels=None):
        wasserstein_loss = losses.wasserstein_critic_loss(real_scores, fake_scores)  # -(f(x) - f(G(z)))
        if self.gradient_penalty_weight > 0:
            penalty = self.gradient_penalty(real_images, fake_images, labels)
        else:
            penalty = tf.zeros_like(wasserstein_loss)
        extra = {"wasserstein": -wasserstein_loss, "gradient_penalty": penalty}
        return wasserstein_loss + self.gradient_penalty_weight * penalty, extra

    def generator_loss(self, fake_scores):
        return losses.wasserstein_generator_loss(fake_scores)

    def gradient_penalty(self, real_images, fake_images, labels=None):
        """(||grad f(x_hat)|| - 1)^2 per example at x_hat = e x + (1 - e) G(z), e ~ U(0, 1) (WGAN-GP).

        In a conditional model a real image and its fake share a label, and so does their interpolate:
        the penalty is of the critic of that class, the gradient taken with respect to the image alone.
        """
        interpolation_weights = self.uniform_noise((tf.shape(real_images)[0],))
        return losses.gradient_penalty(
            lambda images: self.critic(self.critic_inputs(images, labels), training=True),
            real_images,
            fake_images,
            interpolation_weights,
        )

    def clip_critic_weights(self):
        """Clips every critic weight to [-c, c], the original WGAN's Lipschitz constraint."""
        for variable in self.critic.trainable_variables:
            variable.assign(tf.clip_by_value(variable, -self.weight_clip, self.weight_clip))

    def get_config(self):
        config = super().get_config()
        config.update({"weight_clip": self.weight_clip, "gradient_penalty_weight": self.gradient_penalty_weight})
        return config


def build(
    image_shape, latent_dim, base_filters=64, critic_steps=5, weight_clip=0.01, gradient_penalty_weight=0.0,
    spectral_norm=False, ema_decay=0.0, diffaugment=(), num_classes=0, class_conditioning="embedding", seed=None,
):  # fmt: skip
    """The WGAN of the presets: clipping, or with a gradient penalty (> 0) the penalty instead.

    A penalised critic normalizes with layer norm instead of batch norm: the penalty is a per-example
    gradient, which batch norm makes depend on the rest of the batch (Gulrajani et al., 2017, §4).
    `spectral_norm` (with the penalty: Kurach et al., 2019 found the two complementary) normalizes
    every critic layer spectrally and drops the normalization layers.
    """
    penalised = gradient_penalty_weight > 0
    normalization = "none" if spectral_norm else "layer" if penalised else "batch"
    return WGAN(
        dcgan.generator(image_shape, latent_dim, base_filters, num_classes, class_conditioning),
        dcgan.critic(
            image_shape, base_filters, normalization=normalization, spectral_norm=spectral_norm, num_classes=num_classes
        ),
        critic_steps=critic_steps,
        weight_clip=0.0 if penalised else weight_clip,
        gradient_penalty_weight=gradient_penalty_weight,
        ema_decay=ema_decay,
        diffaugment=diffaugment,
        num_classes=num_classes,
        seed=seed,
    )
