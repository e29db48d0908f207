"""The DCGAN generator's doubling step (4x4 transposed convolution, stride 2, "same") as a matrix product.

A transposed convolution spreads every input pixel over a 4x4 patch of the output: one matrix
product (batch * h * w, in) x (in, 16 * out) computes every patch at once, and "col2im" adds the
patches where they overlap. TensorFlow runs the layer through oneDNN's strided convolution kernels,
which are slow where a map is small or the output has few channels. Forward / forward and backward
of a batch of 64 on this project's CPU (Intel Xeon, AVX-512; `BENCHMARKS.md` has the command):

    512 -> 256 channels, 4x4 -> 8x8      24 / 70 ms as a convolution, 18 / 56 ms as a matrix product
    128 -> 1 channel, 16x16 -> 32x32    4.4 / 6.7 ms                   1.3 / 3.2 ms
    256 -> 128 channels, 8x8 -> 16x16    15 / 46 ms                      16 / 59 ms

From 8x8 on with many channels the convolution wins (the patches outgrow the cache), so
`DoublingConv2DTranspose` takes this path only for maps of at most 4x4 or outputs of at most 4
channels, and only on CPUs. The backward pass is hand-written: the gradient of col2im is im2col
(one gather), and each remaining gradient is one matrix product with it.
"""

import keras
import numpy as np
import tensorflow as tf


def _patches_to_image(patches):
    # Output row o of input row h and kernel row k = 2q + r is o = 2h + k - 1 ("same" padding drops one
    # row on each side): on a grid of 2h + 2 rows, block h + q, row r. Each (qh, qw) group of columns
    # therefore lands at block offset (qh, qw) of an (h + 1) x (w + 1) grid of 2x2 blocks.
    height, width = patches.shape[1], patches.shape[2]
    taps = tf.reshape(patches, (-1, height, width, 2, 2, 2, patches.shape[-1] // 8))  # qh rh qw (rw, c)

    def group(qh, qw):
        return tf.reshape(taps[:, :, :, qh, :, qw, :], (-1, height, width, patches.shape[-1] // 4))

    blocks = (
        tf.pad(group(0, 0), [[0, 0], [0, 1], [0, 1], [0, 0]])
        + tf.pad(group(0, 1), [[0, 0], [0, 1], [1, 0], [0, 0]])
        + tf.pad(group(1, 0), [[0, 0], [1, 0], [0, 1], [0, 0]])
        + tf.pad(group(1, 1), [[0, 0], [1, 0], [1, 0], [0, 0]])
    )
    return tf.nn.depth_to_space(blocks, 2)[:, 1:-1, 1:-1, :]


# col2im is a dozen small ops that each pass over the patches: XLA fuses them into one loop (4.3 ->
# 1.1 ms for the 512 -> 256 layer), and being free of matrix products and convolutions it takes
# nothing away from oneDNN.
_patches_to_image_fused = tf.function(_patches_to_image, jit_compile=True)


def patches_to_image(patches, fused=True):
    """col2im: (batch, h, w, 16 * channels) patches -> (batch, 2h, 2w, channels), overlaps summed.

    Patch columns in a (4, 4, channels) kernel's order (kh, kw, c); kernel tap (kh, kw) of input
    pixel (i, j) lands on output pixel (2i + kh - 1, 2j + kw - 1).
    """
    return (_patches_to_image_fused if fused else _patches_to_image)(patches)


def image_to_patches(images):
    """im2col, the adjoint of `patches_to_image`: (batch, 2h, 2w, channels) -> (batch, h, w, 16 * channels).

    What tf.image.extract_patches gives for 4x4 patches at stride 2 of the image padded by one pixel
    (tested equal), as one gather of whole pixels from the padded image. For the 512 -> 256 layer's
    (64, 8, 8, 256) gradient: 1.4 ms, against 3.6 ms for the same as slices and concatenations fused
    by XLA (which runs them on one core) and 5.3 ms for extract_patches; the GAN step 1.4% faster.
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    padded_width = width + 2
    # Patch (i, j), tap (kh, kw) is padded pixel (2i + kh, 2j + kw); in (i, j, kh, kw) order.
    rows = 2 * np.arange(height // 2)[:, None, None, None] + np.arange(4)[None, None, :, None]
    columns = 2 * np.arange(width // 2)[None, :, None, None] + np.arange(4)[None, None, None, :]
    offsets = tf.constant((rows * padded_width + columns).reshape(-1), tf.int32)
    batch = tf.shape(images)[0]
    indices = tf.range(batch)[:, None] * ((height + 2) * padded_width) + offsets[None, :]
    pixels = tf.reshape(tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]]), (-1, channels))
    patches = tf.gather(pixels, tf.reshape(indices, (-1,)))
    return tf.reshape(patches, (-1, height // 2, width // 2, 16 * channels))


def conv_transpose_4x4_stride_2(inputs, kernel, fused=True):
    """tf.nn.conv2d_transpose(inputs, kernel, strides=2, padding="SAME") for a (4, 4, out, in) kernel.

    Same values and gradients (to round-off); (batch, h, w, in) -> (batch, 2h, 2w, out). The kernel
    enters as the (16 * out, in) matrix it already is in memory: no transpose either way.
    """
    channels, in_channels = kernel.shape[2], kernel.shape[3]

    @tf.custom_gradient
    def product(inputs, weights):
        shape = tf.shape(inputs)
        rows = tf.reshape(inputs, (-1, in_channels))
        patches = tf.matmul(rows, weights, transpose_b=True)
        patches = tf.reshape(patches, tf.concat([shape[:3], [16 * channels]], axis=0))

        def gradient(upstream):
            patch_gradients = tf.reshape(image_to_patches(upstream), (-1, 16 * channels))
            input_gradients = tf.reshape(tf.matmul(patch_gradients, weights), shape)
            return input_gradients, tf.matmul(patch_gradients, rows, transpose_a=True)

        return patches_to_image(patches, fused), gradient

    return product(inputs, tf.reshape(kernel, (16 * channels, in_channels)))


def finish(layer, outputs):
    """What a Conv2DTranspose adds after its convolution: the bias, then the activation."""
    if layer.use_bias:
        outputs = outputs + layer.bias
    return layer.activation(outputs) if layer.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_gen")
class DoublingConv2DTranspose(keras.layers.Conv2DTranspose):
    """Conv2DTranspose(filters, 4, strides=2, padding="same"), trained as a matrix product where that is faster.

    The fast path runs when training in float32 with no GPU visible, on a map of at most 4x4 or into
    at most 4 channels (the image), see the module's docstring; otherwise, and always at inference
    (so an exported SavedModel holds only standard ops), Keras' own convolution. Weights,
    configuration and checkpoints are Conv2DTranspose's (tested equal to it).
    """

    def __init__(self, filters, **kwargs):
        kwargs.update(kernel_size=4, strides=2, padding="same")
        super().__init__(filters, **kwargs)

    def call(self, inputs, training=None):
        if not (training and self._as_product(inputs)):
            return super().call(inputs)
        return finish(self, conv_transpose_4x4_stride_2(inputs, self.kernel))

    def _as_product(self, inputs):
        return (
            inputs.dtype == tf.float32
            and self.data_format == "channels_last"
            and self.output_padding is None
            and self.dilation_rate == (1, 1)
            and None not in inputs.shape[1:3]
            and (inputs.shape[1] * inputs.shape[2] <= 16 or self.filters <= 4)
            and not tf.config.list_logical_devices("GPU")
        )

    def get_config(self):
        config = super().get_config()
        for fixed in ("kernel_size", "strides", "padding"):
            config.pop(fixed)
        return config
