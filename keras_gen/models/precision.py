"""Mixed precision for training: 16-bit compute, float32 weights, float32 network outputs.

Keras' dtype policies do the casting: under "mixed_bfloat16" or "mixed_float16" every layer keeps
float32 variables and computes in the 16-bit type, except the layers each network builds with
`dtype="float32"` (the image, score, logit and posterior layers), so losses, likelihoods and
divergences are always computed in float32. bfloat16 has float32's range and needs nothing more;
float16 underflows in the gradients unless the loss is scaled, so its optimizers are wrapped in
Keras' LossScaleOptimizer (dynamic scaling: an update whose scaled gradients overflow is skipped
and the scale halved) and every train step differentiates `optimizer.scale_loss(loss)`.

Only training uses the policy. A run's weights are float32 whatever it trained in, so evaluation,
the latent-space studies and SavedModel exports rebuild the networks in float32 and load them as
they are: a served model's outputs do not depend on the GPU it was trained on.

Where it pays: GPUs with tensor cores (float16 from Volta on, bfloat16 from Ampere on) and CPUs with
AMX. On CPUs without AMX TensorFlow's bfloat16 kernels are slower than float32 (BENCHMARKS.md), so
the default is "float32".
"""

import contextlib

import keras
import tensorflow as tf

from keras_gen import environment
from keras_gen import errors

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def check(policy):
    if policy not in POLICIES:
        raise errors.UserError(f"--mixed_precision={policy}; expected one of {', '.join(POLICIES)}")


@contextlib.contextmanager
def policy_scope(policy):
    """Layers created inside compute under `policy`; the global dtype policy is restored on exit.

    A layer keeps the policy it was created with, so a model built here trains in it while
    everything built later (an evaluation copy, an export) gets the default again.
    """
    check(policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def speed_warning(policy):
    """A warning for a policy that trains slower than float32 on this machine, or None.

    Measured on this project's CPUs (BENCHMARKS.md): TensorFlow has no fast float16 kernels for
    CPUs (the GAN trains at about 1 image/s instead of 290), and its bfloat16 kernels only pay
    with AMX (without it the GAN trains at 105 images/s).
    """
    if policy == "float32" or tf.config.list_logical_devices("GPU"):
        return None
    if policy == "mixed_float16":
        return (
            "warning: --mixed_precision=mixed_float16 without a GPU: TensorFlow's float16 CPU kernels are "
            "hundreds of times slower than float32; it is meant for GPUs"
        )
    if "amx_bf16" not in environment.cpu_model_and_flags()[1]:
        return (
            "warning: --mixed_precision=mixed_bfloat16 on a CPU without AMX trains 2-3x slower than float32 "
            "(TensorFlow's bfloat16 CPU kernels pay only with AMX)"
        )
    return None


def training_optimizers(optimizers, policy):
    """The {compile() argument: optimizer} to train with under `policy`: loss-scaled for float16."""
    check(policy)
    if policy != "mixed_float16":
        return optimizers
    return {
        name: optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        else keras.optimizers.LossScaleOptimizer(optimizer)
        for name, optimizer in optimizers.items()
    }
