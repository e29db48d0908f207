"""Model registry: `--model` offers exactly the names registered here.

Each builder takes the image shape and the hyperparameters it understands as keyword arguments;
`build` passes it only those, so one set of flags can serve every model.
"""

import inspect

from keras_gen import registry
from keras_gen.models import vae
from keras_gen.networks import convolutional

MODELS = registry.Registry("model")


@MODELS.register("vae")
def build_vae(
    image_shape,
    latent_dim,
    base_filters=32,
    likelihood="bernoulli",
    kl_weight=1.0,
    reconstruction_weight=1.0,
    seed=None,
):
    """Convolutional VAE of the report (../shared/seeds/004), depth set by the image size."""
    return vae.VAE(
        convolutional.conv_encoder(image_shape, latent_dim, base_filters),
        convolutional.deconv_decoder(image_shape, latent_dim, base_filters),
        likelihood=likelihood,
        kl_weight=kl_weight,
        reconstruction_weight=reconstruction_weight,
        seed=seed,
    )


def build(name, image_shape, **hyperparameters):
    """Builds model `name` for images of `image_shape`, ignoring hyperparameters it does not take."""
    builder = MODELS.lookup(name)
    accepted = inspect.signature(builder).parameters
    return builder(image_shape, **{key: value for key, value in hyperparameters.items() if key in accepted})
