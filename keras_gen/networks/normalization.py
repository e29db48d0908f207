"""Batch normalization that trains through TensorFlow's fused kernel where it can."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_gen")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization, trained with TensorFlow's fused kernel on one replica.

    Keras 3 computes batch statistics and the normalization as separate TensorFlow ops, so a
    training step passes over each activation several times, forward and backward. The fused
    kernel (FusedBatchNormV3 and its gradient, run by oneDNN on x86) does each direction in one
    op: forward+backward of a (64, 16, 16, 128) activation took 4.9 ms instead of 9.0 on this
    project's CPU (BENCHMARKS.md). Variables, configuration, inference and the moving averages are
    Keras' own, so checkpoints and saved models are unchanged.

    On several replicas the statistics must be all-reduced first (`synchronized=True`), which the
    fused kernel cannot do: the layer then takes Keras' own path. The two paths compute the same
    function, to round-off (tested).
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        # Without its own scale or shift (conditional batch norm applies a class's after it) the
        # kernel gets the identity's.
        gamma = self.gamma if self.scale else tf.ones((channels,), inputs.dtype)
        beta = self.beta if self.center else tf.zeros((channels,), inputs.dtype)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, is_training=True, data_format="NHWC"
        )
        # The kernel returns the Bessel-corrected variance; Keras' moving variance uses the biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs

    def _fusable(self, inputs, mask):
        context = tf.distribute.get_replica_context()
        return (
            mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3, [3], [-1])
            and inputs.dtype == tf.float32
            and (context is None or context.num_replicas_in_sync == 1)
        )
