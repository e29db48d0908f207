"""Model registry: `--model` offers exactly the names registered here.

Each builder takes the image shape and the hyperparameters it understands as keyword arguments;
`build` passes it only those, so one set of flags can serve every model.
"""

import inspect
import math

import keras
from keras.src.backend.common import global_state

from keras_gen import registry
from keras_gen.models import gan
from keras_gen.models import vae
from keras_gen.models import wgan
from keras_gen.networks import convolutional
from keras_gen.networks import dcgan
from keras_gen.networks import dense
from keras_gen.networks import recurrent

MODELS = registry.Registry("model")


# Hyperparameters of the VAE objective, shared by every VAE builder through its **objective.
VAE_OBJECTIVE = ("likelihood", "kl_weight", "reconstruction_weight", "seed")


@MODELS.register("vae")
def build_vae(image_shape, latent_dim, base_filters=32, decoder="compact", **objective):
    """Convolutional VAE of the report (../shared/seeds/004), depth set by the image size."""
    return vae.VAE(
        convolutional.conv_encoder(image_shape, latent_dim, base_filters),
        convolutional.deconv_decoder(image_shape, latent_dim, base_filters, stack=decoder),
        **objective,
    )


@MODELS.register("mlp_vae")
def build_mlp_vae(image_shape, latent_dim, hidden_units=400, **objective):
    """Fully connected VAE (the "vanilla" VAE of ../shared/seeds/001: one hidden layer of 400 each way)."""
    return vae.VAE(
        dense.mlp_encoder(image_shape, latent_dim, hidden_units),
        dense.mlp_decoder(image_shape, latent_dim, hidden_units),
        **objective,
    )


@MODELS.register("lstm_vae")
def build_lstm_vae(image_shape, latent_dim, hidden_units=256, base_filters=32, decoder="compact", **objective):
    """LSTM encoder over image rows (../shared/seeds/002) with the conv VAE's transposed-conv decoder."""
    return vae.VAE(
        recurrent.lstm_encoder(image_shape, latent_dim, hidden_units),
        convolutional.deconv_decoder(image_shape, latent_dim, base_filters, stack=decoder),
        **objective,
    )


@MODELS.register("gan")
def build_gan(image_shape, latent_dim, base_filters=64, gan_loss="non_saturating", d_steps=1, seed=None):
    """DCGAN-style GAN of the report; `d_steps` discriminator updates per generator update."""
    return gan.GAN(
        dcgan.generator(image_shape, latent_dim, base_filters),
        dcgan.critic(image_shape, base_filters),
        gan_loss=gan_loss,
        critic_steps=d_steps,
        seed=seed,
    )


@MODELS.register("wgan")
def build_wgan(
    image_shape, latent_dim, base_filters=64, critic_steps=5, weight_clip=0.01, gradient_penalty=0.0, seed=None
):
    """WGAN with weight clipping, or with a gradient penalty (then layer norm in the critic) when it is > 0."""
    penalised = gradient_penalty > 0
    return wgan.WGAN(
        dcgan.generator(image_shape, latent_dim, base_filters),
        dcgan.critic(image_shape, base_filters, normalization="layer" if penalised else "batch"),
        critic_steps=critic_steps,
        weight_clip=0.0 if penalised else weight_clip,
        gradient_penalty_weight=gradient_penalty,
        seed=seed,
    )


def build(name, image_shape, **hyperparameters):
    """Builds model `name` for images of `image_shape`.

    Hyperparameters the model does not take, and those set to None (the model's default), are
    dropped. A builder takes those in its signature, and VAE_OBJECTIVE's when it has **objective.
    """
    builder = MODELS.lookup(name)
    parameters = inspect.signature(builder).parameters
    accepted = set(parameters)
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        accepted.update(VAE_OBJECTIVE)
    return builder(
        image_shape,
        **{key: value for key, value in hyperparameters.items() if key in accepted and value is not None},
    )


def parameter_count(name, image_shape, **hyperparameters):
    """Weights `build` would create, counted without allocating them (a model too big for memory is
    refused before it exhausts the machine, not after)."""
    with keras.StatelessScope(initialize_variables=False):
        model = build(name, image_shape, **hyperparameters)
    # Keras keeps the deferred variables to initialize at the next scope's exit; these must never be.
    global_state.set_global_attribute("uninitialized_variables", [])
    return sum(math.prod(weight.shape) for weight in model.weights)
