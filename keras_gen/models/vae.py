"""Variational autoencoder trained on the evidence lower bound (Kingma & Welling, 2014)."""

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import base
from keras_gen.models import optimizers
from keras_gen.networks import convolutional
from keras_gen.networks import dense
from keras_gen.networks import recurrent

# Hyperparameters of the VAE objective, which every VAE builder takes through its **objective.
OBJECTIVE = ("likelihood", "kl_weight", "reconstruction_weight", "seed")


@keras.saving.register_keras_serializable(package="keras_gen")
class VAE(base.GenerativeModel):
    """VAE with a Gaussian posterior q(z|x), prior N(0, I) and a TFP likelihood p(x|z).

    The loss is the per-image objective
        reconstruction_weight * E_q[-log p(x|z)] + kl_weight * KL(q(z|x) || p(z)),
    one sample of z per image (reparameterisation trick), averaged over the global batch. With both
    weights 1 it is the negative ELBO; `kl_weight` is the report's "KL factor" (beta in beta-VAE),
    and setting either weight to 0 gives the ablations of ../shared/seeds/001. Every metric is in
    nats per image.

    Args:
        encoder: keras.Model mapping images to [mean, log_variance], each (batch, latent_dim).
        decoder: keras.Model mapping z (batch, latent_dim) to pixel logits shaped like the images.
        likelihood: one of `losses.LIKELIHOODS`.
        kl_weight: weight of the KL term.
        reconstruction_weight: weight of the reconstruction term.
        num_classes: > 0 for a conditional VAE (Sohn et al., 2015): encoder and decoder take the label
            as a second input (networks.conditioning), the data come as (images, labels), and the
            objective is the negative ELBO of log p(x|y). 0: unconditional.
        seed: seed of the reparameterisation noise.

    Example:
        >>> encoder = networks.convolutional.conv_encoder((32, 32, 1), latent_dim=20)
        >>> decoder = networks.convolutional.deconv_decoder((32, 32, 1), latent_dim=20)
        >>> vae = VAE(encoder, decoder, likelihood="bernoulli")
        >>> vae.compile(**vae.default_optimizers(1e-3))
        >>> vae.fit(binarized_batches, epochs=5)
    """

    networks = ("encoder", "decoder")

    def __init__(
        self,
        encoder,
        decoder,
        likelihood="bernoulli",
        kl_weight=1.0,
        reconstruction_weight=1.0,
        num_classes=0,
        seed=None,
        **kwargs,
    ):
        latent_dim = kwargs.pop("latent_dim", decoder.inputs[0].shape[-1])
        super().__init__(latent_dim=latent_dim, seed=seed, **kwargs)
        if likelihood not in losses.LIKELIHOODS:
            raise ValueError(f"likelihood {likelihood!r}; expected one of {losses.LIKELIHOODS}")
        base.check_networks(num_classes, encoder, decoder)
        self.num_classes = int(num_classes)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.kl_weight = float(kl_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.image_shape = tuple(encoder.inputs[0].shape[1:])
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # Encoder and decoder are built functional models, so every weight already exists; marking
        # the VAE built lets save_weights and export work before the first call.
        self.built = True

    def pixel_noise(self, dataset_binarizes):
        """Bernoulli likelihoods need binary pixels; continuous ones dequantized pixels."""
        if dataset_binarizes or self.likelihood == "bernoulli":
            return "binarize"
        return "dequantize" if self.likelihood in losses.DEQUANTIZED_LIKELIHOODS else None

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of every epoch and evaluation.
        return [
            self.loss_tracker,
            self.neg_elbo_tracker,
            self.reconstruction_tracker,
            self.kl_tracker,
            self.skipped_updates,
        ]

    default_learning_rate = 1e-3

    def default_optimizers(self, learning_rate):
        return {"optimizer": optimizers.Adam(learning_rate)}

    def optimizers(self):
        return {"optimizer": self.optimizer}

    def build_optimizers(self):
        self.optimizer.build(self.trainable_variables)

    def encode(self, images, labels=None, training=False):
        """[mean, log_variance] of q(z|x) (of q(z|x, y) for a conditional model, the labels then required)."""
        if self.num_classes and labels is None:
            raise ValueError("a conditional VAE encodes an image with its label: pass labels")
        return self.encoder(self.conditioned(images, labels), training=training)

    def reparameterize(self, mean, log_variance):
        epsilon = self.normal_noise((tf.shape(mean)[0], self.latent_dim))
        return mean + tf.exp(0.5 * log_variance) * epsilon  # (batch, latent_dim)

    def decode_to_images(self, latents, labels=None):
        """Pixel means E[x|z] (E[x|z, y]; labels default to cycling through the classes) in [0, 1]."""
        return losses.likelihood_mean(self.likelihood, self.decoder(self.conditioned(latents, labels), training=False))

    def call(self, inputs, training=False):
        """Reconstructions E[x|z] in [0, 1] for one posterior sample z per image; inputs are images, or
        [images, labels] for a conditional model."""
        images, labels = inputs if self.num_classes else (inputs, None)
        mean, log_variance = self.encode(images, labels, training=training)
        logits = self.decoder(self.conditioned(self.reparameterize(mean, log_variance), labels), training=training)
        return losses.likelihood_mean(self.likelihood, logits)

    def per_example_terms(self, images, training, labels=None):
        """(reconstruction, kl) in nats, each (batch,), for one posterior sample per image."""
        mean, log_variance = self.encode(images, labels, training=training)
        latents = self.reparameterize(mean, log_variance)
        logits = self.decoder(self.conditioned(latents, labels), training=training)
        reconstruction = losses.negative_log_likelihood(self.likelihood, images, logits)
        return reconstruction, losses.gaussian_kl(mean, log_variance)

    def importance_samples(self, images, posterior, epsilon, labels=None):
        """`importance_terms` of this VAE's decoder and likelihood (and the images' labels, if conditional)."""
        return importance_terms(self.decoder, self.likelihood, images, posterior, epsilon, labels)

    def _update_metrics(self, loss, reconstruction, kl, applied=True):
        for tracker, values in (
            (self.loss_tracker, loss),
            (self.neg_elbo_tracker, reconstruction + kl),
            (self.reconstruction_tracker, reconstruction),
            (self.kl_tracker, kl),
        ):
            tracker.update_state(*self.applied_values(values, applied))
        self.count_skipped(1.0 - tf.cast(applied, tf.float32))
        return self.step_logs(self.metrics)

    def _objective(self, reconstruction, kl):
        return self.reconstruction_weight * reconstruction + self.kl_weight * kl  # (batch,)

    def train_step(self, data):
        images, labels = self.images_of(data), self.labels_of(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = self.per_example_terms(images, training=True, labels=labels)
            per_example_loss = self._objective(reconstruction, kl)
            loss = losses.average_over_global_batch(per_example_loss)
        applied = self.minimize(self.optimizer, tape, loss, self.trainable_variables)
        return self._update_metrics(per_example_loss, reconstruction, kl, applied)

    def test_step(self, data):
        images, labels = self.images_of(data), self.labels_of(data)
        reconstruction, kl = self.per_example_terms(images, training=False, labels=labels)
        return self._update_metrics(self._objective(reconstruction, kl), reconstruction, kl)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood,
                "kl_weight": self.kl_weight,
                "reconstruction_weight": self.reconstruction_weight,
                "num_classes": self.num_classes,
            }
        )
        return config


def importance_terms(decoder, likelihood, images, posterior, epsilon, labels=None):
    """Terms of the importance weights p(x, z) / q(z|x) for draws z = mean + sigma * epsilon ~ q(z|x).

    Args:
        decoder: keras.Model z -> pixel logits.
        likelihood: one of losses.LIKELIHOODS.
        images: the batch x, (batch, size, size, channels).
        posterior: (mean, log_variance) of q(z|x) for that batch, each (batch, latent_dim): encoded
            once by the caller however many chunks of samples it draws.
        epsilon: standard normal noise (num_samples, batch, latent_dim), drawn by the caller (a seed
            generator in evaluation, a stateless seed in an exported model).
        labels: the images' classes (batch,) for a conditional decoder p(x|z, y), else None.

    Returns:
        (log_likelihood, log_prior_ratio), each (num_samples, batch): log p(x|z) and
        log p(z) - log q(z|x). Their sum is the log importance weight; averaging it over samples
        gives the ELBO, log-mean-exp over samples the IWAE bound (Burda et al., 2016).
    """
    mean, log_variance = posterior
    num_samples, batch, latent_dim = tf.shape(epsilon)[0], tf.shape(epsilon)[1], epsilon.shape[-1]
    latents = mean + tf.exp(0.5 * log_variance) * epsilon  # (num_samples, batch, latent_dim)
    flat = tf.reshape(latents, [-1, latent_dim])
    if labels is not None:  # Sample s of image i has image i's label.
        flat = [flat, tf.tile(tf.cast(labels, tf.int32), [num_samples])]
    logits = decoder(flat, training=False)  # (num_samples * batch, ...)
    tiled = tf.reshape(tf.tile(images[tf.newaxis], [num_samples] + [1] * len(images.shape)), tf.shape(logits))
    log_likelihood = -losses.negative_log_likelihood(likelihood, tiled, logits)
    # log N(z; 0, I) - log N(z; mean, sigma^2): the 2*pi terms cancel, (z - mean) / sigma = epsilon.
    log_prior_ratio = 0.5 * tf.reduce_sum(tf.square(epsilon) - tf.square(latents) + log_variance, axis=-1)
    return tf.reshape(log_likelihood, [num_samples, batch]), log_prior_ratio


def build_conv(
    image_shape, latent_dim, base_filters=32, decoder="compact", num_classes=0, conv_padding="pytorch",
    encoder_dense_activation="none", **objective,
):  # fmt: skip
    """Convolutional VAE of the report (../shared/seeds/004), depth set by the image size."""
    return VAE(
        convolutional.conv_encoder(
            image_shape,
            latent_dim,
            base_filters,
            num_classes=num_classes,
            padding=conv_padding,
            dense_activation=encoder_dense_activation,
        ),
        convolutional.deconv_decoder(
            image_shape, latent_dim, base_filters, stack=decoder, num_classes=num_classes, padding=conv_padding
        ),
        num_classes=num_classes,
        **objective,
    )


def build_mlp(image_shape, latent_dim, hidden_units=400, num_classes=0, **objective):
    """Fully connected VAE (the "vanilla" VAE of ../shared/seeds/001: one hidden layer of 400 each way)."""
    return VAE(
        dense.mlp_encoder(image_shape, latent_dim, hidden_units, num_classes=num_classes),
        dense.mlp_decoder(image_shape, latent_dim, hidden_units, num_classes=num_classes),
        num_classes=num_classes,
        **objective,
    )


def build_lstm(
    image_shape, latent_dim, hidden_units=256, base_filters=32, decoder="compact", num_classes=0,
    conv_padding="pytorch", **objective,
):  # fmt: skip
    """LSTM encoder over image rows (../shared/seeds/002) with the conv VAE's transposed-conv decoder."""
    return VAE(
        recurrent.lstm_encoder(image_shape, latent_dim, hidden_units, num_classes=num_classes),
        convolutional.deconv_decoder(
            image_shape, latent_dim, base_filters, stack=decoder, num_classes=num_classes, padding=conv_padding
        ),
        num_classes=num_classes,
        **objective,
    )
