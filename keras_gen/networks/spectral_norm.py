"""Spectrally normalized convolution and dense layers (Miyato et al., 2018): W / sigma(W) in the forward pass.

sigma(W), the largest singular value of the kernel seen as a (fan_in, filters) matrix, is estimated by
power iteration with a persistent vector u: one iteration per training call, u kept between calls
(the paper's Algorithm 1). The gradient flows through sigma (u and v are constants of it), so the
layer is the paper's reparameterization W_SN = W / sigma(W).

Not `keras.layers.SpectralNormalization`: in training mode that wrapper *assigns* W / sigma into the
wrapped kernel on every call (keras/src/layers/normalization/spectral_normalization.py), so the
gradient is taken with respect to an already normalized kernel and never sees sigma, a critic
called twice per update (real, fake) renormalizes twice, and a gradient penalty's inner tape
differentiates through an assignment. Here the kernel variable is only ever changed by the
optimizer.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


class _SpectralNorm:
    """The shared part: the u vector, its power iteration and the normalized kernel."""

    def build(self, input_shape):
        super().build(input_shape)  # The wrapped layer's kernel and bias first.
        filters = self.kernel.shape[-1]
        self.vector_u = self.add_weight(
            shape=(1, filters),
            initializer=keras.initializers.RandomNormal(),
            trainable=False,
            name="vector_u",
            # Every replica computes the same update from the same weights: the first one's is kept.
            aggregation="only_first_replica",
        )

    def normalized_kernel(self, training):
        """W / sigma(W); in training, one power iteration first, whose u is stored for the next call."""
        matrix = ops.reshape(self.kernel, (-1, self.kernel.shape[-1]))  # (fan_in, filters)
        u = ops.convert_to_tensor(self.vector_u)
        if training:
            v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))  # (1, fan_in)
            u = _l2_normalize(ops.matmul(v, matrix))  # (1, filters)
            self.vector_u.assign(u)
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(matrix))))
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return self.kernel / sigma


def _l2_normalize(vector, epsilon=1e-12):
    return vector / ops.sqrt(ops.sum(ops.square(vector)) + epsilon)


@keras.saving.register_keras_serializable(package="keras_gen")
class SNConv2D(_SpectralNorm, keras.layers.Conv2D):
    """keras.layers.Conv2D whose kernel is divided by its spectral norm."""

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, ops.cast(self.normalized_kernel(training), inputs.dtype))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_gen")
class SNDense(_SpectralNorm, keras.layers.Dense):
    """keras.layers.Dense whose kernel is divided by its spectral norm."""

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, ops.cast(self.normalized_kernel(training), inputs.dtype))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_gen")
class SNEmbedding(_SpectralNorm, keras.layers.Embedding):
    """keras.layers.Embedding whose table (num_classes, dim) is divided by its spectral norm: a projection
    critic's class embedding, normalized as SNGAN's is, so the label cannot undo the critic's bound."""

    @property
    def kernel(self):
        return self.embeddings

    def call(self, inputs, training=False):
        table = self.normalized_kernel(training)
        return ops.cast(ops.take(table, ops.cast(inputs, "int32"), axis=0), self.compute_dtype)

    def compute_output_spec(self, inputs, training=False):
        return super().compute_output_spec(inputs)


def spectral_norm_of(kernel):
    """The exact largest singular value of a kernel seen as (fan_in, filters), for tests and checks."""
    matrix = np.asarray(kernel).reshape(-1, np.asarray(kernel).shape[-1])
    return float(np.linalg.svd(matrix, compute_uv=False)[0])
