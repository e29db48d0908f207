"""DCGAN-style generator and discriminator/critic whose depth follows the image size.

As in the report (../shared/seeds/004): the generator lifts z to a 4x4 map with a 4x4 transposed
convolution, doubles the resolution per stage (transposed conv 4x4 stride 2, batch norm, ReLU) and
ends in tanh; the critic halves it per stage (conv 4x4 stride 2, LeakyReLU 0.2, batch norm on every
stage but the first) down to 4x4 and ends in one dense output. A 32x32 image gives filters
512-256-128 in the generator and 64-128-256 in the critic (base 64).
"""

import keras
import tensorflow as tf

from keras_gen import errors
from keras_gen.networks import convolutional
from keras_gen.networks import matmul_conv
from keras_gen.networks import spectral_norm as sn

NORMALIZATIONS = ("batch", "layer", "none")
# The layer of a conditional generator that embeds the labels beside z ("embedding" conditioning).
CLASS_EMBEDDING = "class_embedding"
# How a conditional generator takes its label: an embedding joined to z, or conditional batch norm.
CLASS_CONDITIONINGS = ("embedding", "batch_norm")


def stages_for_image_size(image_size):
    """Stride-2 stages between 4x4 and the image: 2, 3, 4 for 16, 32, 64."""
    return convolutional.depth_for_image_size(image_size) - 1


def _normalization(kind):
    if kind == "batch":
        return convolutional.batch_norm()
    if kind == "layer":
        return keras.layers.LayerNormalization(epsilon=1e-5)
    if kind == "none":
        return None
    raise ValueError(f"normalization {kind!r}; expected one of {NORMALIZATIONS}")


@keras.saving.register_keras_serializable(package="keras_gen")
class LatentProjection(keras.layers.Conv2DTranspose):
    """The generator's first layer, a k x k transposed convolution of z seen as a 1 x 1 image, computed
    as the matrix product it is: (batch, latent_dim) x (latent_dim, k * k * filters).

    TensorFlow runs a transposed convolution as Conv2DBackpropInput, which handles a 1 x 1 input
    badly: 10 ms forward and backward for a batch of 64, z 100 -> 4 x 4 x 512 (0.1 GFLOP), against
    well under 1 ms as a matmul (BENCHMARKS.md). The kernel, its initialisation, configuration and
    checkpoints stay those of Conv2DTranspose (tested equal to it).
    """

    def call(self, inputs):
        if tuple(inputs.shape[1:3]) != (1, 1) or self.strides != (1, 1) or self.padding != "valid":
            return super().call(inputs)
        height, width, filters, latent_dim = self.kernel.shape
        # The kernel is already the (height * width * filters, latent_dim) matrix in memory: no transpose.
        weights = tf.reshape(self.kernel, (height * width * filters, latent_dim))
        outputs = tf.matmul(tf.reshape(inputs, (-1, latent_dim)), weights, transpose_b=True)
        return matmul_conv.finish(self, tf.reshape(outputs, (-1, height, width, filters)))


def generator(
    image_shape, latent_dim, base_filters=64, num_classes=0, class_conditioning="embedding", name="generator"
):
    """z (batch, latent_dim) -> images in [-1, 1] (batch, size, size, channels).

    With `num_classes` the generator is class-conditional: it takes [latents, labels], labels int
    (batch,). `class_conditioning` says how the label enters:
        "embedding": z is joined to a learned embedding of the label (of z's size), as keras-io's
            conditional GAN and Mirza & Osindero (2014) do; `class_embedding` names that layer,
            whose rows the class interpolation study walks between.
        "batch_norm": conditional batch norm (de Vries et al., 2017; SNGAN, BigGAN): every batch
            norm has a scale and shift per class instead of one, so the label acts at every stage.
    """
    errors.check_choice("class_conditioning", class_conditioning, CLASS_CONDITIONINGS)
    if class_conditioning != "embedding" and not num_classes:  # The default is what an unconditional net has.
        raise errors.UserError(f"--class_conditioning={class_conditioning} says how a label enters; add --conditional")
    stages = stages_for_image_size(image_shape[0])
    latents = keras.Input((latent_dim,), name="latents")
    inputs, code, labels = latents, latents, None
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs = [latents, labels]
        if class_conditioning == "embedding":
            embedded = keras.layers.Embedding(num_classes, latent_dim, name=CLASS_EMBEDDING)(labels)
            code = keras.layers.Concatenate()([latents, embedded])
            labels = None  # Nothing further down sees the label.

    def normalize(features):
        if labels is None:
            return convolutional.batch_norm()(features)
        return _class_batch_norm(features, labels, num_classes)

    features = keras.layers.Reshape((1, 1, code.shape[-1]))(code)
    features = LatentProjection(base_filters * 2**stages, 4, strides=1, padding="valid", use_bias=False)(features)
    features = keras.layers.ReLU()(normalize(features))  # (batch, 4, 4, base * 2^stages)
    for stage in reversed(range(1, stages)):
        features = matmul_conv.DoublingConv2DTranspose(base_filters * 2**stage, use_bias=False)(features)
        features = keras.layers.ReLU()(normalize(features))
    # float32 under a mixed-precision policy too (training.precision): the losses read these.
    images = matmul_conv.DoublingConv2DTranspose(image_shape[-1], activation="tanh", dtype="float32")(features)
    return keras.Model(inputs, images, name=name)


def _class_batch_norm(features, labels, num_classes):
    """Batch norm whose scale and shift are rows of per-class tables (starting at 1 and 0, as an
    unconditional batch norm's): the statistics are shared, the affine map is the class's."""
    channels = features.shape[-1]
    normalized = convolutional.batch_norm(center=False, scale=False)(features)
    scale = keras.layers.Embedding(num_classes, channels, embeddings_initializer="ones")(labels)
    shift = keras.layers.Embedding(num_classes, channels, embeddings_initializer="zeros")(labels)
    per_pixel = keras.layers.Reshape((1, 1, channels))
    return keras.layers.Add()([keras.layers.Multiply()([normalized, per_pixel(scale)]), per_pixel(shift)])


def critic(image_shape, base_filters=64, normalization="batch", spectral_norm=False, num_classes=0, name="critic"):
    """images (batch, size, size, channels) -> one unbounded score per image (batch, 1).

    Args:
        normalization: "batch" as in the report; "layer" for the gradient penalty, which is defined
            per example and is invalidated by batch statistics (Gulrajani et al., 2017); or "none".
        spectral_norm: every convolution and the output layer divided by its spectral norm
            (Miyato et al., 2018), which bounds the critic's Lipschitz constant. Use it with
            normalization "none", as SNGAN does: a normalization layer rescales the features again.
        num_classes: a class-conditional critic of [images, labels] with a projection (Miyato &
            Koyama, 2018): score = w . phi(x) + b + embed(y) . phi(x), phi the flattened features. The
            label only tilts the score along the features: a conditional critic that can still
            compare every class on one scale, far better than concatenating the label to x.
    """
    conv = sn.SNConv2D if spectral_norm else keras.layers.Conv2D
    dense = sn.SNDense if spectral_norm else keras.layers.Dense
    stages = stages_for_image_size(image_shape[0])
    images = keras.Input(image_shape, name="images")
    features = conv(base_filters, 4, strides=2, padding="same")(images)
    features = keras.layers.LeakyReLU(0.2)(features)
    for stage in range(1, stages):
        # A bias before batch norm is cancelled by it (see convolutional.batch_norm); layer norm
        # here normalises each position over channels, which keeps a per-channel bias meaningful.
        features = conv(base_filters * 2**stage, 4, strides=2, padding="same", use_bias=normalization != "batch")(
            features
        )
        layer = _normalization(normalization)
        if layer is not None:
            features = layer(features)
        features = keras.layers.LeakyReLU(0.2)(features)
    features = keras.layers.Flatten()(features)
    scores = dense(1, name="score", dtype="float32")(features)
    if not num_classes:
        return keras.Model(images, scores, name=name)
    labels = keras.Input((), dtype="int32", name="labels")
    embedding = sn.SNEmbedding if spectral_norm else keras.layers.Embedding
    embedded = embedding(num_classes, features.shape[-1], name="class_projection")(labels)
    projection = keras.layers.Dot(axes=1, dtype="float32")([embedded, features])
    scores = keras.layers.Add(dtype="float32")([scores, projection])
    return keras.Model([images, labels], scores, name=name)
