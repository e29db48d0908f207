"""Optimizers that update through TensorFlow's fused kernels: Keras' own, one op per variable."""

import keras
import tensorflow as tf


def _resource_handle(variable):
    """The resource handle of a plain (one-device) TensorFlow variable behind `variable`, else None."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    if isinstance(variable, tf.distribute.DistributedValues):
        return None
    handle = getattr(variable, "handle", None)
    return handle if isinstance(handle, tf.Tensor) else None


def _slots(optimizer, variable, *names):
    """The optimizer's slot variables `names` (Keras' private lists, e.g. "_momentums") for `variable`.

    None when this Keras keeps them elsewhere (tests/test_keras_internals.py names what moved): the
    update then falls back to Keras' own, slower but correct.
    """
    index_of = getattr(optimizer, "_get_variable_index", None)
    lists = [getattr(optimizer, name, None) for name in names]
    if index_of is None or any(slot_list is None for slot_list in lists):
        return None
    index = index_of(variable)
    return [slot_list[index] for slot_list in lists]


def _kernel_applies(gradient, variable, handles):
    """Whether a fused kernel can update `variable`: a dense float32 gradient, plain variables and slots."""
    return (
        not isinstance(gradient, tf.IndexedSlices)
        and variable.dtype == tf.float32
        and all(handle is not None for handle in handles)
    )


@keras.saving.register_keras_serializable(package="keras_gen")
class Adam(keras.optimizers.Adam):
    """keras.optimizers.Adam, each variable updated by TensorFlow's ResourceApplyAdam kernel.

    Keras 3 writes the update as about ten element-wise ops per variable, each a pass over memory;
    the fused kernel makes one, the same formula (Kingma and Ba's, with the bias correction folded
    into the step size, exactly as Keras computes it). The DCGAN's 4.1 M parameters update in
    about a third of the time; a GAN step is 2-4% faster here (BENCHMARKS.md). Variables, slots,
    configuration and checkpoints are Keras' own. Where the kernel does not apply (AMSGrad, sparse
    or non-float32 gradients, variables mirrored across replicas, which Keras updates replica by
    replica) the update is Keras' own.
    """

    def update_step(self, gradient, variable, learning_rate):
        slots = _slots(self, variable, "_momentums", "_velocities")
        if self.amsgrad or slots is None:
            return super().update_step(gradient, variable, learning_rate)
        handles = [_resource_handle(v) for v in (variable, *slots)]
        if not _kernel_applies(gradient, variable, handles):
            return super().update_step(gradient, variable, learning_rate)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=handles[0],
            m=handles[1],
            v=handles[2],
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
        )


class _Untracked:
    """Holds variables out of sight of checkpoint tracking (an attribute list would be saved)."""

    def __init__(self, variables):
        self.variables = variables


@keras.saving.register_keras_serializable(package="keras_gen")
class RMSprop(keras.optimizers.RMSprop):
    """keras.optimizers.RMSprop, each variable updated by TensorFlow's ResourceApplyRMSProp kernel.

    The same formula as Keras' (v = rho v + (1 - rho) g^2, step = lr g / sqrt(v + epsilon), with
    momentum if asked), in one pass over memory instead of about seven element-wise ops. The clipped
    WGAN's critic updates five times per step: that step is 2% faster here (BENCHMARKS.md).
    Variables, slots, configuration and checkpoints are Keras' own. Centered RMSprop, sparse or
    non-float32 gradients and variables mirrored across replicas take Keras' own update.
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # The kernel always keeps a momentum accumulator (mom = momentum * mom + step; var -= mom).
        # Without momentum Keras has none, so each variable gets a scratch buffer (none for centered
        # RMSprop, which takes Keras' update): multiplied by 0 and
        # overwritten at every update (the step is finite for a finite gradient, at most
        # lr / sqrt(1 - rho)), it is not optimizer state and is not checkpointed.
        scratch = []
        if not (self.momentum or self.centered) and all(_resource_handle(v) is not None for v in variables):
            scratch = [tf.Variable(tf.zeros(variable.shape, variable.dtype), trainable=False) for variable in variables]
        self._scratch = _Untracked(scratch)

    def update_step(self, gradient, variable, learning_rate):
        slots = _slots(self, variable, "_velocities", *(("_momentums",) if self.momentum else ()))
        if self.centered or slots is None:
            return super().update_step(gradient, variable, learning_rate)
        if self.momentum:
            momentum = _resource_handle(slots[1])
        else:
            index = self._get_variable_index(variable)
            momentum = self._scratch.variables[index].handle if self._scratch.variables else None
        handles = [_resource_handle(variable), _resource_handle(slots[0]), momentum]
        if not _kernel_applies(gradient, variable, handles):
            return super().update_step(gradient, variable, learning_rate)
        tf.raw_ops.ResourceApplyRMSProp(
            var=handles[0],
            ms=handles[1],
            mom=handles[2],
            lr=tf.cast(learning_rate, tf.float32),
            rho=tf.constant(self.rho, tf.float32),
            momentum=tf.constant(self.momentum, tf.float32),
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
        )
