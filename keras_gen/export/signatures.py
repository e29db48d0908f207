"""The signatures of an exported model: what TF Serving and `keras_gen.load` call.

Plain TensorFlow over the trained networks, so the SavedModel runs without keras_gen. Images go in
and come out as float32 in [0, 1], (batch, size, size, channels); the batch dimension is dynamic
everywhere, the image size and channels are those of the run.

VAEs (encoder and decoder):
    encode(images) -> mean, log_variance                      posterior q(z|x), each (batch, z)
    decode(latents) -> images                                 pixel means E[x|z]
    reconstruct(images) -> reconstructions                    E[x | z = posterior mean]  (serving_default)
    log_likelihood(images, num_samples, seed) -> elbo, iwae   bounds on log p(x) in nats per image
    sample(count, seed) -> images, images_uint8, latents
GAN/WGAN (generator and critic):
    generate(latents) -> images
    critic(images) -> scores                                  the critic's output, one per image
    sample(count, seed) -> images, images_uint8, latents      (serving_default)

`sample` draws its latents with stateless ops from `seed`: the same seed gives the same images in
any process (a SavedModel keeps no random state between calls).
"""

import tensorflow as tf

from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.models import vae

# The signature TF Serving calls when a request names none.
DEFAULT = {"vae": "reconstruct", "adversarial": "sample"}


class _Served(tf.Module):
    """What every exported model offers: `sample` from the prior N(0, I) through `images_of`."""

    def __init__(self, latent_dim, image_shape, name):
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.sample = tf.function(
            self._sample,
            input_signature=[tf.TensorSpec([], tf.int32, name="count"), tf.TensorSpec([], tf.int64, name="seed")],
        )

    def images_spec(self, name="images"):
        return tf.TensorSpec((None,) + self.image_shape, tf.float32, name=name)

    def latents_spec(self):
        return tf.TensorSpec((None, self.latent_dim), tf.float32, name="latents")

    def _sample(self, count, seed):
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
        latents = tf.random.stateless_normal(tf.stack([count, self.latent_dim]), seed=seed)  # (count, latent_dim)
        images = self.images_of(latents)
        return {"images": images, "images_uint8": to_uint8(images), "latents": latents}

    def images_of(self, latents):
        """Images in [0, 1] for latents: the decoder's pixel means, or the generator's output."""
        raise NotImplementedError

    def signature_names(self):
        raise NotImplementedError

    def signatures(self):
        """{signature name: concrete function}, "serving_default" included."""
        functions = {name: getattr(self, name).get_concrete_function() for name in self.signature_names()}
        functions["serving_default"] = functions[self.default_signature]
        return functions


class VAEServing(_Served):
    default_signature = DEFAULT["vae"]

    def __init__(self, model):
        super().__init__(model.latent_dim, model.image_shape, name="keras_gen_vae")
        self.encoder, self.decoder = model.encoder, model.decoder
        self.likelihood = model.likelihood
        self.encode = tf.function(self._encode, input_signature=[self.images_spec()])
        self.decode = tf.function(self._decode, input_signature=[self.latents_spec()])
        self.reconstruct = tf.function(self._reconstruct, input_signature=[self.images_spec()])
        self.log_likelihood = tf.function(
            self._log_likelihood,
            input_signature=[
                self.images_spec(),
                tf.TensorSpec([], tf.int32, name="num_samples"),
                tf.TensorSpec([], tf.int64, name="seed"),
            ],
        )

    def signature_names(self):
        return ("encode", "decode", "reconstruct", "log_likelihood", "sample")

    def _encode(self, images):
        mean, log_variance = self.encoder(images, training=False)
        return {"mean": mean, "log_variance": log_variance}

    def images_of(self, latents):
        return losses.likelihood_mean(self.likelihood, self.decoder(latents, training=False))

    def _decode(self, latents):
        return {"images": self.images_of(latents)}

    def _reconstruct(self, images):
        mean, _ = self.encoder(images, training=False)
        return {"reconstructions": self.images_of(mean)}

    def _log_likelihood(self, images, num_samples, seed):
        """ELBO and IWAE bound (Burda et al., 2016) on log p(x) from `num_samples` draws z ~ q(z|x).

        In nats per image, of the images as given: pass binary images to a Bernoulli model; a
        continuous-Bernoulli model reports log p + D ln 256 of dequantized pixels (see losses).
        """
        posterior = self.encoder(images, training=False)
        shape = tf.stack([num_samples, tf.shape(images)[0], self.latent_dim])
        epsilon = tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.constant(1, tf.int64)]))
        log_likelihood, log_prior_ratio = vae.importance_terms(
            self.decoder, self.likelihood, images, posterior, epsilon
        )
        log_weights = log_likelihood + log_prior_ratio  # (num_samples, batch)
        count = tf.cast(num_samples, log_weights.dtype)
        return {
            "elbo": tf.reduce_mean(log_weights, axis=0),
            "iwae": tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(count),
        }


class AdversarialServing(_Served):
    default_signature = DEFAULT["adversarial"]

    def __init__(self, model):
        super().__init__(model.latent_dim, model.generator.output_shape[1:], name="keras_gen_gan")
        self.generator, self.critic_network = model.generator, model.critic
        self.generate = tf.function(self._generate, input_signature=[self.latents_spec()])
        self.critic = tf.function(self._critic, input_signature=[self.images_spec()])

    def signature_names(self):
        return ("generate", "critic", "sample")

    def images_of(self, latents):
        return (self.generator(latents, training=False) + 1.0) / 2.0

    def _generate(self, latents):
        return {"images": self.images_of(latents)}

    def _critic(self, images):
        # The critic was trained on [-1, 1]; the signature takes images in [0, 1] like every other.
        return {"scores": tf.reshape(self.critic_network(images * 2.0 - 1.0, training=False), [-1])}


def to_uint8(images):
    """[0, 1] floats -> uint8 pixel values, rounded."""
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


def serving_module(model):
    """The tf.Module to save for a trained keras_gen model."""
    if isinstance(model, vae.VAE):
        return VAEServing(model)
    if isinstance(model, adversarial.AdversarialModel):
        return AdversarialServing(model)
    raise ValueError(f"cannot export a {type(model).__name__}; expected a VAE, GAN or WGAN")
