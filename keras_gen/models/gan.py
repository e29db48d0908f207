"""GAN with a sigmoid discriminator (Goodfellow et al., 2014; DCGAN architecture, Radford et al., 2016)."""

import keras

from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.training import optimizers


@keras.saving.register_keras_serializable(package="keras_gen")
class GAN(adversarial.AdversarialModel):
    """GAN trained with `gan_loss` ("non_saturating" or the report's "least_squares").

    The critic outputs a logit; the discriminator's probability is its sigmoid, applied inside the
    losses so they stay numerically stable. `critic_steps` is the report's K discriminator steps.

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
    # The generator update scores the fakes the discriminator was just trained on, as the DCGAN
    # reference implementations do (PyTorch's example, the report): one generator forward pass per
    # step instead of two. Measured 1.2x faster here (BENCHMARKS.md); the gradient is the same
    # in expectation, the fakes being an independent draw from G either way.
    reuse_fakes = True

    def default_optimizers(self, learning_rate):
        # Radford et al.: Adam with beta_1 = 0.5 for both networks.
        return {
            "generator_optimizer": optimizers.Adam(learning_rate, beta_1=0.5),
            "critic_optimizer": optimizers.Adam(learning_rate, beta_1=0.5),
        }

    def critic_loss(self, real_images, fake_images, real_scores, fake_scores, extra):
        return losses.discriminator_loss(self.gan_loss, real_scores, fake_scores)

    def generator_loss(self, fake_scores):
        return losses.generator_loss(self.gan_loss, fake_scores)

    def get_config(self):
        config = super().get_config()
        config["gan_loss"] = self.gan_loss
        return config
