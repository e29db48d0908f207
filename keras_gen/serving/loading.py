"""Load an exported model back in Python: `keras_gen.load("saved_models/wgan_svhn").sample(16)`.

Works from the SavedModel alone: no run directory, and none of keras_gen's model code runs (the
signatures are plain TensorFlow). This module only converts arguments and results.
"""

import os

import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen import io_utils
from keras_gen.models import base
from keras_gen.serving import saved_model


def resolve_version(path):
    """A version directory: `path` itself if it holds saved_model.pb, else its newest numbered version."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    found = saved_model.versions(path)
    if not found:
        raise errors.UserError(
            f"{path} holds no SavedModel: expected saved_model.pb in it, or numbered versions (1, 2, ...) "
            "as `python run.py --mode=export` writes them"
        )
    return os.path.join(path, str(found[-1]))


class ExportedModel:
    """A keras_gen SavedModel, called through its signatures.

    Images go in as float32 in [0, 1] or uint8 (converted), (batch, size, size, channels); results
    come back as numpy arrays. Methods exist for the signatures the model has: every model has
    `sample`; VAEs `encode`, `decode`, `reconstruct`, `log_likelihood`; GANs `generate`, `critic`.
    `call(signature, **inputs)` reaches every signature, the `*_bytes` ones included.

    Attributes:
        path: the version directory loaded.
        card: its model_card.json (model, dataset, flags, metrics, signatures), or {} without one.
        signatures: {name: concrete function} as TF Serving sees them.
    """

    def __init__(self, path):
        self.path = resolve_version(path)
        self.signatures = dict(tf.saved_model.load(self.path).signatures)
        card_path = os.path.join(self.path, saved_model.CARD_FILE)
        self.card = io_utils.read_json(card_path) if os.path.exists(card_path) else {}

    def __repr__(self):
        names = ", ".join(sorted(name for name in self.signatures if name != "serving_default"))
        return (
            f"ExportedModel({self.path!r}: {self.card.get('model', '?')} on {self.card.get('dataset', '?')}; {names})"
        )

    def call(self, signature, **inputs):
        """Runs `signature` on numpy-like inputs; returns {output name: numpy array}."""
        if signature not in self.signatures:
            available = ", ".join(sorted(self.signatures))
            raise errors.UserError(f"{self.path} has no signature {signature!r}; it has: {available}")
        function = self.signatures[signature]
        specs = function.structured_input_signature[1]
        tensors = {name: tf.convert_to_tensor(value, dtype=specs[name].dtype) for name, value in inputs.items()}
        return {name: value.numpy() for name, value in function(**tensors).items()}

    def sample(self, count=16, seed=0):
        """`count` images from the prior as uint8 (count, size, size, channels); the same seed, the same images.

        Image i is the `sample` signature's answer to the row seed seed * 2**32 + i (models.base.row_seeds),
        as the trained model's own `sample(count, seed)`.
        """
        return self.call("sample", seeds=base.row_seeds(count, seed))["images_uint8"]

    def decode(self, latents):
        """Pixel means in [0, 1] for latents (batch, latent_dim) (VAEs)."""
        return self.call("decode", latents=latents)["images"]

    def encode(self, images):
        """(mean, log_variance) of q(z|x), each (batch, latent_dim) (VAEs)."""
        outputs = self.call("encode", images=_unit_images(images))
        return outputs["mean"], outputs["log_variance"]

    def reconstruct(self, images):
        """E[x | z = posterior mean] in [0, 1] (VAEs)."""
        return self.call("reconstruct", images=_unit_images(images))["reconstructions"]

    def log_likelihood(self, images, seed=0):
        """{"elbo", "iwae"}: bounds on log p(x) in nats per image (VAEs).

        From the export's fixed number of posterior draws per image (`card["log_likelihood_samples"]`),
        image i's drawn with the row seed seed * 2**32 + i.
        """
        images = _unit_images(images)
        return self.call("log_likelihood", images=images, seeds=base.row_seeds(len(images), seed))

    def generate(self, latents):
        """Images in [0, 1] for latents (batch, latent_dim) (GAN/WGAN)."""
        return self.call("generate", latents=latents)["images"]

    def critic(self, images):
        """The critic's score of each image, (batch,) (GAN/WGAN)."""
        return self.call("critic", images=_unit_images(images))["scores"]


def _unit_images(images):
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images


def load(path):
    """Loads an exported keras_gen model: a version directory, or a model folder (its newest version)."""
    return ExportedModel(path)
