"""Wasserstein GAN with weight clipping (Arjovsky et al., 2017) or gradient penalty (Gulrajani et al., 2017)."""

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.training import optimizers


@keras.saving.register_keras_serializable(package="keras_gen")
class WGAN(adversarial.AdversarialModel):
    """WGAN: the critic maximises E f(x) - E f(G(z)) under a Lipschitz constraint.

    The constraint is either weight clipping to [-weight_clip, weight_clip] after every critic update
    (the paper's RMSprop 5e-5) or the gradient penalty gradient_penalty_weight * (||grad f(x_hat)|| - 1)^2
    on random interpolates (Adam 1e-4, betas (0.5, 0.9)). Per step it logs the Wasserstein estimate
    E f(x) - E f(G(z)) and the penalty beside the losses.

    Args:
        weight_clip: c for clipping, or 0 to disable it.
        gradient_penalty_weight: lambda for the penalty (10 in the paper), or 0 to disable it.
        critic_steps: critic updates per generator update (5 in both papers).
    """

    metric_names = adversarial.AdversarialModel.metric_names + ("wasserstein", "gradient_penalty")
    # Algorithm 1 of both papers samples a fresh batch of z for the generator update.
    reuse_fakes = False

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

    def default_optimizers(self, learning_rate):
        if self.gradient_penalty_weight > 0:
            optimizer, options = optimizers.Adam, {"beta_1": 0.5, "beta_2": 0.9}
        else:
            optimizer, options = optimizers.RMSprop, {"rho": 0.99}  # PyTorch's alpha = 0.99.
        return {
            "generator_optimizer": optimizer(learning_rate, **options),
            "critic_optimizer": optimizer(learning_rate, **options),
        }

    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, extra):
        per_example = losses.wasserstein_critic_loss(real_scores, fake_scores)
        extra["wasserstein"] = -per_example
        penalty = tf.zeros_like(per_example)
        if self.gradient_penalty_weight > 0:
            weights = self.uniform_noise((tf.shape(real_images)[0],))
            penalty = losses.gradient_penalty(
                lambda images: self.critic(images, training=True), real_images, fake_images, weights
            )
        extra["gradient_penalty"] = penalty
        return per_example + self.gradient_penalty_weight * penalty

    def generator_loss(self, fake_scores):
        return losses.wasserstein_generator_loss(fake_scores)

    def after_critic_update(self):
        if self.weight_clip > 0:
            for variable in self.critic.trainable_variables:
                variable.assign(tf.clip_by_value(variable, -self.weight_clip, self.weight_clip))

    def get_config(self):
        config = super().get_config()
        config.update({"weight_clip": self.weight_clip, "gradient_penalty_weight": self.gradient_penalty_weight})
        return config
