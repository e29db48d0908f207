"""The output every VAE encoder shares, so encoders are interchangeable under one training step."""

import keras


def gaussian_head(features, latent_dim, initialization=None):
    """Dense layers from encoder features to the diagonal Gaussian posterior q(z|x).

    `initialization`: a function of no arguments returning one layer's initializer keyword arguments
    (networks.initializers), called once per layer; None for Keras' defaults. Not the arguments
    themselves: a Keras 3 initializer without a seed fixes one when it is made, so two layers given
    the same instance start with the same weights. The conv VAE's two heads did from 2026-12-01 to
    2026-12-07: the log-variance started as a copy of the mean (BENCHMARKS.md, "The conv VAE beside
    the PyTorch peer").

    Returns:
        [mean, log_variance], each a (batch, latent_dim) tensor: the interface `models.vae.VAE`
        expects of any encoder.
    """

    def head(name):
        # float32 under a mixed-precision policy too (training.precision): the KL and the sampling read these.
        arguments = initialization() if initialization else {}
        return keras.layers.Dense(latent_dim, name=name, dtype="float32", **arguments)(features)

    return [head("mean"), head("log_variance")]
