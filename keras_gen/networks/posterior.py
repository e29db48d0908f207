"""The output every VAE encoder shares, so encoders are interchangeable under one training step."""

import keras


def gaussian_head(features, latent_dim, initialization=None):
    """Dense layers from encoder features to the diagonal Gaussian posterior q(z|x).

    `initialization`: the two layers' initializer keyword arguments (networks.initializers), or Keras' defaults.

    Returns:
        [mean, log_variance], each a (batch, latent_dim) tensor: the interface `models.vae.VAE`
        expects of any encoder.
    """
    # float32 under a mixed-precision policy too (training.precision): the KL and the sampling read these.
    initialization = initialization or {}
    mean = keras.layers.Dense(latent_dim, name="mean", dtype="float32", **initialization)(features)
    log_variance = keras.layers.Dense(latent_dim, name="log_variance", dtype="float32", **initialization)(features)
    return [mean, log_variance]
