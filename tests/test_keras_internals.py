"""Every private Keras or TensorFlow API keras_gen relies on is still where it was.

A Keras or TensorFlow upgrade may move them without notice: each test fails naming the API and the
code that relies on it, so the upgrade is a known repair, not a mystery. The code itself degrades
gracefully where it can (the optimizers fall back to Keras' own update).
"""

import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from keras_gen.models import optimizers


def require(condition, api, user):
    if not condition:
        pytest.fail(
            f"{api} is gone or changed in Keras {keras.__version__} / TensorFlow {tf.__version__}; {user} relies on it"
        )


@pytest.mark.parametrize("optimizer_class, options, slots", [
    (keras.optimizers.Adam, {}, ("_momentums", "_velocities")),
    (keras.optimizers.RMSprop, {"momentum": 0.9}, ("_velocities", "_momentums")),
])  # fmt: skip
def test_optimizer_slot_lists_and_variable_index(optimizer_class, options, slots):
    variables = [keras.Variable(tf.zeros((3, 2))), keras.Variable(tf.zeros((4,)))]
    optimizer = optimizer_class(1e-3, **options)
    optimizer.build(variables)
    user = "keras_gen.models.optimizers (the fused Adam and RMSprop updates)"
    require(hasattr(optimizer, "_get_variable_index"), f"{optimizer_class.__name__}._get_variable_index", user)
    for name in slots:
        slot_list = getattr(optimizer, name, None)
        require(slot_list is not None and len(slot_list) == 2, f"{optimizer_class.__name__}.{name}", user)
        index = optimizer._get_variable_index(variables[1])
        require(
            tuple(slot_list[index].shape) == (4,), f"{optimizer_class.__name__}.{name}[_get_variable_index(v)]", user
        )
    # What the fused update reads through them is the slot of that variable.
    require(optimizers._slots(optimizer, variables[0], *slots) is not None, "keras_gen.models.optimizers._slots", user)


def test_deferred_variables_live_in_keras_global_state():
    from keras.src.backend.common import global_state

    with keras.StatelessScope(initialize_variables=False):
        keras.layers.Dense(3).build((None, 2))
    pending = global_state.get_global_attribute("uninitialized_variables")
    require(
        isinstance(pending, list) and pending,
        'keras.src.backend.common.global_state "uninitialized_variables"',
        "keras_gen.models.parameter_count (sizing a model without allocating it)",
    )
    global_state.set_global_attribute("uninitialized_variables", [])


def test_a_keras_variable_holds_the_tf_variable_a_traced_function_captures():
    variable = keras.Variable(tf.ones((2,)))
    require(
        isinstance(variable.value, tf.Variable),
        "keras.Variable.value (a tf.Variable on the TensorFlow backend)",
        "keras_gen.serving.signatures (the variables an export tracks for TF Serving's restore op)",
    )


def test_tensorflow_reports_whether_onednn_is_on():
    finished = subprocess.run(
        [sys.executable, "-c", "from tensorflow.python.util import _pywrap_util_port as p; print(p.IsMklEnabled())"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    require(
        finished.returncode == 0 and finished.stdout.strip().splitlines()[-1] in ("True", "False"),
        "tensorflow.python.util._pywrap_util_port.IsMklEnabled",
        "keras_gen._startup (the warning that TensorFlow was imported first with oneDNN off)",
    )
