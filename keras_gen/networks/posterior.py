"""The output every VAE encoder shares, so encoders are interchangeable under one training step."""

import keras


def gaussian_head(features, latent_dim):
    """Dense layers from encoder features to the diagonal Gaussian posterior q(z|x).

    Returns:
        [mean, log_variance], each a (batch, latent_dim) tensor: the interface `models.vae.VAE`
        expects of any encoder.
    """
    # float32 under a mixed-precision policy too (training.precision): the KL and the sampling read these.
    mean = keras.layers.Dense(latent_dim, name="mean", dtype="float32")(features)
    log_variance = keras.layers.Dense(latent_dim, name="log_variance", dtype="float32")(features)
    return [mean, log_variance]
