"""Convolutional encoder and transposed-convolutional decoder whose depth follows the image size.

The report this project grew from (../shared/seeds/004) names its models "MODEL x 2^y": a 2^y-pixel
image passes through y - 1 stride-2 stages down to a 2x2 map. Filters double at every stage from
`base_filters` (32 in the report), and batch norm uses PyTorch's defaults (momentum 0.1 there is
0.9 here, epsilon 1e-5) to match the original training dynamics.
"""

import keras

from keras_gen import errors
from keras_gen.networks import conditioning
from keras_gen.networks import initializers
from keras_gen.networks import normalization
from keras_gen.networks import posterior

IMAGE_SIZES = (16, 32, 64)
# Where a 3x3 stride-2 convolution of an even-sized map pads. "pytorch": a row and a column before
# the map (PyTorch's padding=1; output i reads inputs 2i-1..2i+1, and the transposed convolution's
# input i writes outputs 2i-1..2i+1). "same": Keras' "same", after the map (inputs 2i..2i+2). Both
# keep the sizes and the weights; at issue 12's budget the VAE trains to a better test ELBO with
# PyTorch's (BENCHMARKS.md, "The conv VAE beside the PyTorch peer"). Runs saved before the choice
# existed used "same" (runs.train_config reads them so).
PADDINGS = ("pytorch", "same")
# What follows the conv encoder's dense layer. "none": the posterior's heads read it directly, as in
# the PyTorch peer; "leaky_relu" (0.2): what keras_gen had before, and runs saved then keep. With
# the activation the VAE used less of its code (KL 14.3 against 15.8 nats) and its test ELBO was
# 0.5 nats worse at issue 12's budget (BENCHMARKS.md, "The conv VAE beside the PyTorch peer").
DENSE_ACTIVATIONS = ("none", "leaky_relu")


def depth_for_image_size(image_size):
    """Number of stride-2 stages between an image and a 2x2 feature map: 3, 4, 5 for 16, 32, 64."""
    if image_size not in IMAGE_SIZES:
        raise errors.UserError(f"image size {image_size}; expected one of {', '.join(map(str, IMAGE_SIZES))}")
    return image_size.bit_length() - 2


def batch_norm(**options):
    """PyTorch's batch-norm defaults; statistics over the global batch under tf.distribute.

    Keras computes batch statistics per replica unless `synchronized`: a 64-image batch on 8 GPUs
    would be normalised over 8 images at a time, and the same run would train differently on 1 and
    on N devices. Synchronized, one step means the same whatever the replica count.

    Convolutions feeding it have no bias: batch norm subtracts the mean, which cancels a bias exactly,
    so its true gradient is 0 and Adam would turn the gradient's round-off into full-size steps.
    On one replica it trains through TensorFlow's fused kernel (normalization.BatchNormalization).
    `options`: more of Keras' arguments, such as center=False, scale=False for conditional batch norm.
    """
    return normalization.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=True, **options)


def halve(features, filters, padding, **layer_arguments):
    """A 3x3 stride-2 convolution of `features` to half their height and width, padded as `padding`."""
    if padding == "same":
        return keras.layers.Conv2D(filters, 3, strides=2, padding="same", **layer_arguments)(features)
    features = keras.layers.ZeroPadding2D(((1, 0), (1, 0)))(features)
    return keras.layers.Conv2D(filters, 3, strides=2, padding="valid", **layer_arguments)(features)


def double(features, filters, padding, **layer_arguments):
    """A 3x3 stride-2 transposed convolution of `features` to twice their height and width."""
    if padding == "same":
        return keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", **layer_arguments)(features)
    # "valid" writes outputs 2i..2i+2 of a map one larger than twice the input; dropping the first row
    # and column is PyTorch's padding=1, output_padding=1.
    features = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid", **layer_arguments)(features)
    return keras.layers.Cropping2D(((1, 0), (1, 0)))(features)


def conv_encoder(
    image_shape, latent_dim, base_filters=32, num_classes=0, padding="pytorch", dense_activation="none",
    name="encoder",
):  # fmt: skip
    """(conv 3x3 stride 2, batch norm, LeakyReLU 0.2) x depth -> dense -> posterior mean and log-variance.

    Args:
        image_shape: (size, size, channels) with size in IMAGE_SIZES.
        latent_dim: dimension of z.
        base_filters: filters of the first stage; doubled at every later one.
        num_classes: > 0 for q(z|x, y): the model takes [images, labels] (networks.conditioning).
        padding: one of PADDINGS.
        dense_activation: one of DENSE_ACTIVATIONS, after the dense layer.

    Returns:
        A functional keras.Model mapping images (batch, size, size, channels) to
        [mean, log_variance], each (batch, latent_dim).
    """
    depth = depth_for_image_size(image_shape[0])
    errors.check_choice("conv_padding", padding, PADDINGS)
    errors.check_choice("encoder_dense_activation", dense_activation, DENSE_ACTIVATIONS)
    images = keras.Input(image_shape, name="images")
    features = images
    for stage in range(depth):
        features = halve(features, base_filters * 2**stage, padding, use_bias=False, **initializers.conv(features, 3))
        features = batch_norm()(features)
        features = keras.layers.LeakyReLU(0.2)(features)
    features = keras.layers.Flatten()(features)  # (batch, 2 * 2 * base_filters * 2^(depth-1))
    # Hidden width as in the report: 128 at 16x16, 256 at 32x32 for 32 base filters.
    hidden = keras.layers.Dense(base_filters * image_shape[0] // 4, **initializers.dense(features))(features)
    if dense_activation == "leaky_relu":
        hidden = keras.layers.LeakyReLU(0.2)(hidden)
    labels = conditioning.labels_input(num_classes)
    hidden = conditioning.join(hidden, labels, num_classes)
    head = posterior.gaussian_head(hidden, latent_dim, lambda: initializers.dense(hidden))
    return keras.Model(conditioning.inputs(images, labels), head, name=name)


DECODER_STACKS = ("compact", "report")


def deconv_decoder(
    image_shape, latent_dim, base_filters=32, stack="compact", num_classes=0, padding="pytorch", name="decoder"
):
    """dense -> 2x2 map -> (transposed conv 3x3 stride 2, batch norm, ReLU) x depth -> conv to logits.

    Mirrors `conv_encoder`: filters halve at every stage down to `base_filters`. Two stacks:
    - "compact": ReLU after the dense projection; the last stage reaches the image size and a
      stride-1 3x3 convolution gives the logits.
    - "report": the report's printed stack (../shared/seeds/004, "final_layer"): no activation after
      the projection, one more stage (base_filters filters) to twice the image size, and a stride-2
      3x3 convolution back to it. About 30% more compute per image.

    With `num_classes` it is p(x|z, y): it takes [latents, labels] (networks.conditioning). Its
    stride-2 layers pad as `padding` (one of PADDINGS).

    Returns:
        A functional keras.Model mapping z (batch, latent_dim) to per-pixel logits
        (batch, size, size, channels); the likelihood turns them into a distribution.
    """
    errors.check_choice("decoder", stack, DECODER_STACKS)
    errors.check_choice("conv_padding", padding, PADDINGS)
    depth = depth_for_image_size(image_shape[0])
    top_filters = base_filters * 2**depth
    latents = keras.Input((latent_dim,), name="latents")
    labels = conditioning.labels_input(num_classes)
    code = conditioning.join(latents, labels, num_classes)
    features = keras.layers.Dense(2 * 2 * top_filters, **initializers.dense(code))(code)
    if stack == "compact":
        features = keras.layers.ReLU()(features)
    features = keras.layers.Reshape((2, 2, top_filters))(features)
    filters = [base_filters * 2**stage for stage in reversed(range(depth))]
    if stack == "report":
        filters.append(base_filters)
    for stage_filters in filters:
        features = double(
            features, stage_filters, padding, use_bias=False, **initializers.conv_transpose(stage_filters, 3)
        )
        features = batch_norm()(features)
        features = keras.layers.ReLU()(features)
    # float32 under a mixed-precision policy too (training.precision): the likelihood reads these.
    logits_layer = dict(name="logits", dtype="float32", **initializers.conv(features, 3))
    if stack == "report":
        logits = halve(features, image_shape[-1], padding, **logits_layer)
    else:
        logits = keras.layers.Conv2D(image_shape[-1], 3, padding="same", **logits_layer)(features)
    return keras.Model(conditioning.inputs(latents, labels), logits, name=name)
