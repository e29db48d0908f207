"""The DCGAN generator's doubling step: TensorFlow's transposed convolution against matmul_conv's product.

Forward and forward+backward of a batch of `--batch_size` for every doubling shape of the generators
at 16-64 pixels, medians of 20 calls; the generator takes the matrix product where it wins (training
on CPUs only).
"""

import tensorflow as tf

from benchmarks import results
from benchmarks import timing
from keras_gen.networks import matmul_conv

# (input channels, output channels, input size) of every doubling step of the generators at 16-64 pixels.
DOUBLING_SHAPES = [(512, 256, 4), (256, 128, 8), (128, 64, 16), (64, 32, 32), (128, 1, 16), (128, 3, 16), (64, 3, 32)]


def _timings(convolve, inputs, kernel):
    kernel = tf.Variable(kernel)

    @tf.function
    def forward_backward(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(convolve(inputs, kernel)))
        return tape.gradient(loss, [inputs, kernel])

    forward = tf.function(lambda inputs: convolve(inputs, kernel))
    return [
        timing.median_milliseconds(lambda: [t.numpy() for t in tf.nest.flatten(f(inputs))])
        for f in (forward, forward_backward)
    ]


def _conv2d_transpose(inputs, kernel):
    shape = (inputs.shape[0], 2 * inputs.shape[1], 2 * inputs.shape[2], kernel.shape[2])
    return tf.nn.conv2d_transpose(inputs, kernel, shape, 2, padding="SAME")


def run(settings):
    records, rows = [], []
    for in_channels, out_channels, size in DOUBLING_SHAPES:
        inputs = tf.random.normal((settings.batch_size, size, size, in_channels))
        kernel = tf.random.normal((4, 4, out_channels, in_channels)) * 0.02
        convolution = _timings(_conv2d_transpose, inputs, kernel)
        product = _timings(matmul_conv.conv_transpose_4x4_stride_2, inputs, kernel)
        records.append({"in": in_channels, "out": out_channels, "size": size, "convolution_ms": convolution,
                        "product_ms": product})  # fmt: skip
        timings = f"{convolution[0]:.1f} / {convolution[1]:.1f}", f"{product[0]:.1f} / {product[1]:.1f}"
        rows.append([f"{in_channels} → {out_channels}", f"{size}×{size}", *timings])
        print(rows[-1], flush=True)
    columns = ["in → out channels", "input size", "convolution ms (fwd / fwd+bwd)", "matrix product ms (fwd / fwd+bwd)"]
    return results.make("layers", columns, rows, records, title="the generator's doubling step")
