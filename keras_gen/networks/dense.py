"""Fully connected encoder and decoder: the classic "vanilla" VAE (Kingma & Welling, 2014)."""

import math

import keras

from keras_gen.networks import conditioning
from keras_gen.networks import posterior


def mlp_encoder(image_shape, latent_dim, hidden_units=400, num_classes=0, name="encoder"):
    """Flattened pixels -> dense(hidden_units, ReLU) -> posterior mean and log-variance.

    With `num_classes`, q(z|x, y) of [images, labels] (networks.conditioning).

    Returns:
        A functional keras.Model mapping images to [mean, log_variance], each (batch, latent_dim).
    """
    images = keras.Input(image_shape, name="images")
    hidden = keras.layers.Flatten()(images)
    hidden = keras.layers.Dense(hidden_units, activation="relu")(hidden)
    labels = conditioning.labels_input(num_classes)
    head = posterior.gaussian_head(conditioning.join(hidden, labels, num_classes), latent_dim)
    return keras.Model(conditioning.inputs(images, labels), head, name=name)


def mlp_decoder(image_shape, latent_dim, hidden_units=400, num_classes=0, name="decoder"):
    """z -> dense(hidden_units, ReLU) -> one logit per pixel and channel, shaped like the images.

    With `num_classes`, p(x|z, y) of [latents, labels] (networks.conditioning).
    """
    latents = keras.Input((latent_dim,), name="latents")
    labels = conditioning.labels_input(num_classes)
    hidden = keras.layers.Dense(hidden_units, activation="relu")(conditioning.join(latents, labels, num_classes))
    logits = keras.layers.Dense(math.prod(image_shape), dtype="float32")(hidden)  # See training.precision.
    logits = keras.layers.Reshape(tuple(image_shape), name="logits", dtype="float32")(logits)
    return keras.Model(conditioning.inputs(latents, labels), logits, name=name)
