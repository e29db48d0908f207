"""The signatures of an exported model: what TF Serving and `keras_gen.load` call.

Plain TensorFlow over the trained networks, so the SavedModel runs without keras_gen. Images go in
and come out as float32 in [0, 1], (batch, size, size, channels), or as PNG/JPEG bytes; the image
size and channels are those of the run.

Every input and every output has the batch dimension first, and each row's result depends on that
row alone, so TF Serving's batching (`--enable_batching`) can merge requests and split the answers.

VAEs (encoder and decoder):
    encode(images) -> mean, log_variance                 posterior q(z|x), each (batch, z)
    encode_bytes(images_bytes) -> mean, log_variance
    decode(latents) -> images, images_png_bytes          pixel means E[x|z]
    reconstruct(images) -> reconstructions, images_png_bytes   E[x | z = posterior mean] (serving_default)
    reconstruct_bytes(images_bytes) -> images_png_bytes
    log_likelihood(images, seeds) -> elbo, iwae          bounds on log p(x), nats per image, from the
                                                         export's fixed number of posterior draws
    sample(seeds) -> images, images_uint8, images_png_bytes, latents
GAN/WGAN (generator and critic):
    generate(latents) -> images, images_png_bytes
    critic(images) -> scores                             the critic's output, one per image
    critic_bytes(images_bytes) -> scores
    sample(seeds) -> images, images_uint8, images_png_bytes, latents   (serving_default)
A class-conditional model (num_classes > 0) takes `labels` after the other inputs of every signature,
int64 (batch,), one class index per row: sample(seeds, labels), generate(latents, labels),
encode(images, labels), log_likelihood(images, seeds, labels), ...; the VAE's bounds are then on
log p(x|y).

`seeds` is one int64 per image: `sample` draws row i's latent with stateless ops from seeds[i]
alone, so a seed gives the same image in any batch and any process (a SavedModel keeps no random
state between calls). PNG outputs end in `_bytes`, the suffix by which TF Serving's REST API returns
a string tensor as {"b64": ...}; `images_bytes` inputs take {"b64": ...} in a REST request.

Bounds: a request of more than MAX_IMAGES_PER_REQUEST rows, or a log_likelihood request of more than
MAX_POSTERIOR_SAMPLES_PER_REQUEST decoded images (rows x the export's samples per image), is refused
by the graph with INVALID_ARGUMENT naming the bound, before any network runs. So are labels outside
0 to num_classes - 1 and labels of another length than the rows they go with: on a GPU an embedding
lookup of a bad index silently returns zeros instead of failing.
"""

import tensorflow as tf

from keras_gen.data import image_files
from keras_gen import losses
from keras_gen.models import adversarial
from keras_gen.models import base
from keras_gen.models import vae

# The signature TF Serving calls when a request names none.
DEFAULT = {"vae": "reconstruct", "adversarial": "sample"}
# Rows of one request, after TF Serving's batching merged it: 1024 64x64 RGB images are 50 MB of
# float32 output, and the networks' activations a few hundred MB more.
MAX_IMAGES_PER_REQUEST = 1024
# Decoded images of one log_likelihood request (rows x posterior samples per row): its time.
MAX_POSTERIOR_SAMPLES_PER_REQUEST = 65_536
# Its memory: the posterior samples are decoded this many images at a time.
DECODES_PER_PASS = 1024
# Posterior samples per image of log_likelihood, unless the export says otherwise.
DEFAULT_LOG_LIKELIHOOD_SAMPLES = 64
# The PNG output of every signature that produces images.
PNG_OUTPUT = "images_png_bytes"
BYTES_INPUT = "images_bytes"
LABELS_INPUT = "labels"


class _Served(tf.Module):
    """What every exported model offers: `sample` from the prior N(0, I) through `images_of`.

    The Keras networks are held out of the saved object graph (`_Networks`) and their variables are
    tracked as the tf.Variables the signatures read: a Keras 3 model saved as a tf.Module attribute
    stores each variable twice, and the SignatureDefs then read resources the SavedModel's restore op
    never creates, which fails in TF Serving's session (keras-team/keras#20096, tensorflow/serving#2250)
    while tf.saved_model.load still works. keras.export.ExportArchive tracks them the same way.
    """

    def __init__(self, networks, latent_dim, image_shape, name, num_classes=0):
        super().__init__(name=name)
        self._networks = _Networks(networks)
        self.network_variables = [
            _tf_variable(variable) for network in networks.values() for variable in network.variables
        ]
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        # Classes of a class-conditional model, whose every signature also takes `labels`; 0: unconditional.
        self.num_classes = int(num_classes)
        self.sample = self.signature_function(self._sample, tf.TensorSpec([None], tf.int64, name="seeds"))

    def images_spec(self):
        return tf.TensorSpec((None,) + self.image_shape, tf.float32, name="images")

    def bytes_spec(self):
        return tf.TensorSpec([None], tf.string, name=BYTES_INPUT)

    def latents_spec(self):
        return tf.TensorSpec((None, self.latent_dim), tf.float32, name="latents")

    def signature_function(self, method, *specs):
        """A tf.function of `method` on the inputs `specs`, then `labels` for a conditional model.

        The function takes exactly its inputs: the method's unused `labels=None` would otherwise appear
        in the signature.
        """
        if self.num_classes:
            specs += (tf.TensorSpec([None], tf.int64, name=LABELS_INPUT),)
        return tf.function(lambda *inputs: method(*inputs), input_signature=list(specs))

    def decode_bytes(self, images_bytes):
        """(batch,) PNG/JPEG/GIF/BMP -> (batch, size, size, channels) in [0, 1], as the data readers would."""
        return decode_images(bounded_rows(images_bytes), self.image_shape)

    def decoded_rows(self, images_bytes, labels):
        """(decode_bytes' images, labels as checked_labels gives them). The labels' checks come first: a
        bad request fails before its images are decoded."""
        images_bytes, labels = self.checked_labels(bounded_rows(images_bytes), labels)
        return self.decode_bytes(images_bytes), labels

    def _sample(self, seeds, labels=None):
        seeds, labels = self.checked_labels(bounded_rows(seeds), labels)
        latents = base.row_latents(seeds, self.latent_dim)  # (batch, latent_dim)
        images = self.images_of(latents, labels)
        pixels = base.to_uint8(images)
        return {"images": images, "images_uint8": pixels, PNG_OUTPUT: encode_png(images), "latents": latents}

    def checked_labels(self, rows, labels):
        """(rows, labels as int32), both waiting on the checks of the labels; (rows, None) if unconditional."""
        if labels is None:
            return rows, None
        return checked_labels(rows, labels, self.num_classes)

    def images_of(self, latents, labels=None):
        """Images in [0, 1] for latents (of `labels`, if conditional): the decoder's pixel means, or the generator's."""
        raise NotImplementedError

    def signature_names(self):
        raise NotImplementedError

    def signatures(self):
        """{signature name: concrete function}, "serving_default" included."""
        functions = {name: getattr(self, name).get_concrete_function() for name in self.signature_names()}
        functions["serving_default"] = functions[self.default_signature]
        return functions

    def card(self):
        """What the model card says of the signatures beyond their shapes."""
        return {
            "limits": {
                "images_per_request": MAX_IMAGES_PER_REQUEST,
                "posterior_samples_per_request": MAX_POSTERIOR_SAMPLES_PER_REQUEST,
            }
        }


class VAEServing(_Served):
    default_signature = DEFAULT["vae"]

    def __init__(self, model, log_likelihood_samples=DEFAULT_LOG_LIKELIHOOD_SAMPLES):
        if log_likelihood_samples < 1 or log_likelihood_samples > MAX_POSTERIOR_SAMPLES_PER_REQUEST:
            raise ValueError(
                f"log_likelihood_samples={log_likelihood_samples}; expected 1 to {MAX_POSTERIOR_SAMPLES_PER_REQUEST}"
            )
        super().__init__(
            {"encoder": model.encoder, "decoder": model.decoder},
            model.latent_dim,
            model.image_shape,
            name="keras_gen_vae",
            num_classes=model.num_classes,
        )
        self.likelihood = model.likelihood
        self.log_likelihood_samples = int(log_likelihood_samples)
        images, images_bytes, latents = self.images_spec(), self.bytes_spec(), self.latents_spec()
        self.encode = self.signature_function(self._encode, images)
        self.encode_bytes = self.signature_function(self._encode_bytes, images_bytes)
        self.decode = self.signature_function(self._decode, latents)
        self.reconstruct = self.signature_function(self._reconstruct, images)
        self.reconstruct_bytes = self.signature_function(self._reconstruct_bytes, images_bytes)
        self.log_likelihood = self.signature_function(
            self._log_likelihood, images, tf.TensorSpec([None], tf.int64, name="seeds")
        )

    def signature_names(self):
        return ("encode", "encode_bytes", "decode", "reconstruct", "reconstruct_bytes", "log_likelihood", "sample")

    def card(self):
        return {**super().card(), "log_likelihood_samples": self.log_likelihood_samples}

    def _encode(self, images, labels=None):
        return self._posterior(*self.checked_labels(bounded_rows(images), labels))

    def _encode_bytes(self, images_bytes, labels=None):
        return self._posterior(*self.decoded_rows(images_bytes, labels))

    def _posterior(self, images, labels):
        mean, log_variance = self._networks.encoder(network_inputs(images, labels), training=False)
        return {"mean": mean, "log_variance": log_variance}

    def images_of(self, latents, labels=None):
        logits = self._networks.decoder(network_inputs(latents, labels), training=False)
        return losses.likelihood_mean(self.likelihood, logits)

    def _decode(self, latents, labels=None):
        images = self.images_of(*self.checked_labels(bounded_rows(latents), labels))
        return {"images": images, PNG_OUTPUT: encode_png(images)}

    def _reconstructions(self, images, labels):
        mean, _ = self._networks.encoder(network_inputs(images, labels), training=False)
        return self.images_of(mean, labels)

    def _reconstruct(self, images, labels=None):
        reconstructions = self._reconstructions(*self.checked_labels(bounded_rows(images), labels))
        return {"reconstructions": reconstructions, PNG_OUTPUT: encode_png(reconstructions)}

    def _reconstruct_bytes(self, images_bytes, labels=None):
        return {PNG_OUTPUT: encode_png(self._reconstructions(*self.decoded_rows(images_bytes, labels)))}

    def _log_likelihood(self, images, seeds, labels=None):
        """ELBO and IWAE bound (Burda et al., 2016) on log p(x) (log p(x|y) given labels), from
        `log_likelihood_samples` draws z ~ q(z|x).

        Row i's draws come from seeds[i] alone. In nats per image, of the images as given: pass binary
        images to a Bernoulli model; a continuous-Bernoulli model reports log p + D ln 256 of
        dequantized pixels (see losses).
        """
        samples = self.log_likelihood_samples
        images, seeds = bounded_rows(images), bounded_rows(seeds)
        rows = tf.shape(images)[0]
        check = tf.debugging.assert_less_equal(
            rows * samples,
            MAX_POSTERIOR_SAMPLES_PER_REQUEST,
            message=(
                f"log_likelihood decodes {samples} posterior samples per image and at most "
                f"{MAX_POSTERIOR_SAMPLES_PER_REQUEST} per request: send at most "
                f"{MAX_POSTERIOR_SAMPLES_PER_REQUEST // samples} images"
            ),
        )
        check_seeds = tf.debugging.assert_equal(
            tf.shape(seeds)[0], rows, message="log_likelihood takes one seed per image"
        )
        with tf.control_dependencies([check, check_seeds]):
            images = tf.identity(images)
        images, labels = self.checked_labels(images, labels)
        posterior = self._networks.encoder(network_inputs(images, labels), training=False)
        epsilon = tf.transpose(base.row_normals(seeds, (samples, self.latent_dim), stream=1), [1, 0, 2])
        log_weights = _importance_log_weights(
            self._networks.decoder, self.likelihood, images, posterior, epsilon, labels
        )
        return {
            "elbo": tf.reduce_mean(log_weights, axis=0),
            "iwae": tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(float(samples)),
        }


class AdversarialServing(_Served):
    default_signature = DEFAULT["adversarial"]

    def __init__(self, model):
        super().__init__(
            # The generator samples come from: the weight average when the model keeps one.
            {"generator": model.sampling_generator, "critic": model.critic},
            model.latent_dim,
            model.generator.output_shape[1:],
            name="keras_gen_gan",
            num_classes=model.num_classes,
        )
        self.generate = self.signature_function(self._generate, self.latents_spec())
        self.critic = self.signature_function(self._critic, self.images_spec())
        self.critic_bytes = self.signature_function(self._critic_bytes, self.bytes_spec())

    def signature_names(self):
        return ("generate", "critic", "critic_bytes", "sample")

    def images_of(self, latents, labels=None):
        return (self._networks.generator(network_inputs(latents, labels), training=False) + 1.0) / 2.0

    def _generate(self, latents, labels=None):
        images = self.images_of(*self.checked_labels(bounded_rows(latents), labels))
        return {"images": images, PNG_OUTPUT: encode_png(images)}

    def _critic(self, images, labels=None):
        return self._scores(*self.checked_labels(bounded_rows(images), labels))

    def _critic_bytes(self, images_bytes, labels=None):
        return self._scores(*self.decoded_rows(images_bytes, labels))

    def _scores(self, images, labels):
        # The critic was trained on [-1, 1]; the signature takes images in [0, 1] like every other.
        images = images * 2.0 - 1.0
        scores = self._networks.critic(network_inputs(images, labels), training=False)
        return {"scores": tf.reshape(scores, [-1])}


class _Networks:
    """The Keras networks by name, as a plain object: tf.Module does not track what is inside."""

    def __init__(self, networks):
        self.__dict__.update(networks)


def _tf_variable(variable):
    """The tf.Variable inside a Keras 3 variable, which is what a traced function captures."""
    value = variable.value
    if not isinstance(value, tf.Variable):
        raise TypeError(
            f"the Keras variable {variable.path} holds a {type(value).__name__}, not a tf.Variable: this "
            "Keras version stores variables differently from the Keras 3 the export was written for"
        )
    return value


def _importance_log_weights(decoder, likelihood, images, posterior, epsilon, labels=None):
    """log p(x, z) / q(z|x) of every draw, (num_samples, batch), decoding DECODES_PER_PASS images at a time;
    p(x|z, y) of the images' `labels` for a conditional decoder."""
    num_samples, rows = tf.shape(epsilon)[0], tf.shape(epsilon)[1]
    chunk = tf.maximum(1, DECODES_PER_PASS // tf.maximum(rows, 1))

    def body(start, weights):
        stop = tf.minimum(start + chunk, num_samples)
        log_likelihood, log_prior_ratio = vae.importance_terms(
            decoder, likelihood, images, posterior, epsilon[start:stop], labels
        )
        return stop, weights.write(weights.size(), log_likelihood + log_prior_ratio)

    weights = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None])
    _, weights = tf.while_loop(lambda start, _: start < num_samples, body, (tf.constant(0), weights))
    return weights.concat()  # (num_samples, batch)


def network_inputs(values, labels):
    """What a network takes: `values`, or [values, labels] for a conditional model."""
    return values if labels is None else [values, labels]


def bounded_rows(tensor):
    """`tensor`, with a check that runs before anything that reads it: at most MAX_IMAGES_PER_REQUEST rows."""
    check = tf.debugging.assert_less_equal(
        tf.shape(tensor)[0],
        MAX_IMAGES_PER_REQUEST,
        message=f"at most {MAX_IMAGES_PER_REQUEST} images per request; split the request",
    )
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def checked_labels(rows, labels, num_classes):
    """(rows, labels as int32), with checks that run before anything reads either: one label per row of
    `rows`, each a class index from 0 to num_classes - 1.

    Checked in int64, before the cast, so that no label wraps around into range.
    """
    bound = f"labels must be class indices from 0 to {num_classes - 1}"
    checks = [
        tf.debugging.assert_equal(
            tf.shape(labels, out_type=tf.int64)[0],
            tf.shape(rows, out_type=tf.int64)[0],
            message="labels must hold one class index per row of the other input",
        ),
        tf.debugging.assert_non_negative(labels, message=bound),
        tf.debugging.assert_less(labels, tf.constant(num_classes, labels.dtype), message=bound),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(rows), tf.cast(labels, tf.int32)


def encode_png(images):
    """(batch,) PNG files of images in [0, 1], (batch, size, size, channels)."""
    return tf.map_fn(tf.io.encode_png, base.to_uint8(images), fn_output_signature=tf.TensorSpec([], tf.string))


def decode_images(images_bytes, image_shape):
    """Decodes (batch,) encoded images to (batch, *image_shape) floats in [0, 1], as the data readers do
    (data.image_files.decode)."""
    return tf.map_fn(
        lambda data: image_files.decode(data, image_shape) / 255.0,
        images_bytes,
        fn_output_signature=tf.TensorSpec(tuple(image_shape), tf.float32),
    )


def serving_module(model, log_likelihood_samples=DEFAULT_LOG_LIKELIHOOD_SAMPLES):
    """The tf.Module to save for a trained keras_gen model."""
    if isinstance(model, vae.VAE):
        return VAEServing(model, log_likelihood_samples)
    if isinstance(model, adversarial.AdversarialModel):
        return AdversarialServing(model)
    raise ValueError(f"cannot export a {type(model).__name__}; expected a VAE, GAN or WGAN")
