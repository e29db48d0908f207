"""Fully connected encoder and decoder: the classic "vanilla" VAE (Kingma & Welling, 2014)."""

import math

import keras

from keras_gen.networks import posterior


def mlp_encoder(image_shape, latent_dim, hidden_units=400, name="encoder"):
    """Flattened pixels -> dense(hidden_units, ReLU) -> posterior mean and log-variance.

    Returns:
        A functional keras.Model mapping images to [mean, log_variance], each (batch, latent_dim).
    """
    images = keras.Input(image_shape, name="images")
    hidden = keras.layers.Flatten()(images)
    hidden = keras.layers.Dense(hidden_units, activation="relu")(hidden)
    return keras.Model(images, posterior.gaussian_head(hidden, latent_dim), name=name)


def mlp_decoder(image_shape, latent_dim, hidden_units=400, name="decoder"):
    """z -> dense(hidden_units, ReLU) -> one logit per pixel and channel, shaped like the images."""
    latents = keras.Input((latent_dim,), name="latents")
    hidden = keras.layers.Dense(hidden_units, activation="relu")(latents)
    logits = keras.layers.Dense(math.prod(image_shape), dtype="float32")(hidden)  # See training.precision.
    logits = keras.layers.Reshape(tuple(image_shape), name="logits", dtype="float32")(logits)
    return keras.Model(latents, logits, name=name)
