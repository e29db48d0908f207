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
from keras_gen.serving import signatures


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
    `call(signature, **inputs)` reaches every signature, the `*_bytes` ones included. Every method of a
    class-conditional export needs `labels`: one class index for every row, or one per row
    (`card["class_names"]` names them).

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
        function = self._signature(signature)
        specs = function.structured_input_signature[1]
        tensors = {name: tf.convert_to_tensor(value, dtype=specs[name].dtype) for name, value in inputs.items()}
        return {name: value.numpy() for name, value in function(**tensors).items()}

    def _signature(self, signature):
        if signature not in self.signatures:
            available = ", ".join(sorted(self.signatures))
            raise errors.UserError(f"{self.path} has no signature {signature!r}; it has: {available}")
        return self.signatures[signature]

    def _labels(self, signature, labels, rows):
        """{"labels": int64 (rows,)} for a signature that takes labels, else {}; a one-line error when the
        labels are missing, or given to an export that takes none."""
        conditional = signatures.LABELS_INPUT in self._signature(signature).structured_input_signature[1]
        if conditional and labels is None:
            names = self.card.get("class_names")
            listed = ", ".join(f"{index} {name}" for index, name in enumerate(names)) if names else "0, 1, ..."
            raise errors.UserError(
                f"{self.path} is class-conditional: {signature} needs labels, one class index or one per row: {listed}"
            )
        if not conditional and labels is not None:
            raise errors.UserError(f"{self.path} is not class-conditional: its {signature} takes no labels")
        if labels is None:
            return {}
        return {signatures.LABELS_INPUT: _row_labels(labels, rows, self.card.get("num_classes"))}

    def sample(self, count=16, seed=0, labels=None):
        """`count` images from the prior as uint8 (count, size, size, channels); the same seed, the same images.

        Image i is the `sample` signature's answer to the row seed seed * 2**32 + i (models.base.row_seeds),
        as the trained model's own `sample(count, seed, labels)`. A class-conditional export draws image i
        as class labels[i] (`labels`: one class index for all images, or one per image).
        """
        labels = self._labels("sample", labels, count)
        return self.call("sample", seeds=base.row_seeds(count, seed), **labels)["images_uint8"]

    def decode(self, latents, labels=None):
        """Pixel means in [0, 1] for latents (batch, latent_dim) (VAEs)."""
        return self.call("decode", latents=latents, **self._labels("decode", labels, len(latents)))["images"]

    def encode(self, images, labels=None):
        """(mean, log_variance) of q(z|x), each (batch, latent_dim) (VAEs)."""
        images = _unit_images(images)
        outputs = self.call("encode", images=images, **self._labels("encode", labels, len(images)))
        return outputs["mean"], outputs["log_variance"]

    def reconstruct(self, images, labels=None):
        """E[x | z = posterior mean] in [0, 1] (VAEs)."""
        images = _unit_images(images)
        outputs = self.call("reconstruct", images=images, **self._labels("reconstruct", labels, len(images)))
        return outputs["reconstructions"]

    def log_likelihood(self, images, seed=0, labels=None):
        """{"elbo", "iwae"}: bounds on log p(x) (log p(x|y) of a conditional export) in nats per image (VAEs).

        From the export's fixed number of posterior draws per image (`card["log_likelihood_samples"]`),
        image i's drawn with the row seed seed * 2**32 + i.
        """
        images = _unit_images(images)
        labels = self._labels("log_likelihood", labels, len(images))
        return self.call("log_likelihood", images=images, seeds=base.row_seeds(len(images), seed), **labels)

    def generate(self, latents, labels=None):
        """Images in [0, 1] for latents (batch, latent_dim) (GAN/WGAN), of `labels` if class-conditional."""
        return self.call("generate", latents=latents, **self._labels("generate", labels, len(latents)))["images"]

    def critic(self, images, labels=None):
        """The critic's score of each image, (batch,) (GAN/WGAN), as images of `labels` if class-conditional."""
        images = _unit_images(images)
        return self.call("critic", images=images, **self._labels("critic", labels, len(images)))["scores"]


def _unit_images(images):
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images


def _row_labels(labels, rows, num_classes):
    """int64 (rows,) class indices from one index or one per row, checked against the card's num_classes.

    Without a card the signature's own checks refuse bad labels.
    """
    if num_classes:
        return base.class_labels(labels, rows, num_classes).astype(np.int64)
    labels = np.asarray(labels, np.int64)
    return np.broadcast_to(labels, (rows,)) if labels.ndim == 0 else labels


def load(path):
    """Loads an exported keras_gen model: a version directory, or a model folder (its newest version)."""
    return ExportedModel(path)
