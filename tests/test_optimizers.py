"""Optimizers that update through fused kernels: tested equal to Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.training import distribute
from keras_gen.models import optimizers


def train(optimizer_class, strategy=None, steps=5, **options):
    """Variables after `steps` updates of a small quadratic problem, and the op types of one update."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        variables = [
            keras.Variable(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)),
            keras.Variable([0.5, -2.0]),
        ]
        optimizer = optimizer_class(**options)
        optimizer.build(variables)

    @tf.function
    def step(target):
        def replica_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((variables[0] - target) ** 2) + tf.reduce_sum(tf.sin(variables[1]))
            optimizer.apply(tape.gradient(loss, variables), variables)

        strategy.run(replica_step)

    target = tf.constant(0.3)
    for _ in range(steps):
        step(target)
    op_types = {op.type for op in step.get_concrete_function(target).graph.get_operations()}
    for function in step.get_concrete_function(target).graph._functions.values():
        op_types |= {node.op for node in function.definition.node_def}
    slots = [np.asarray(variable) for variable in optimizer.variables]
    return [np.asarray(variable) for variable in variables], slots, op_types


# (keras_gen's optimizer, Keras' own, the fused kernel it should take, options that exercise it)
FUSED = {
    "adam": (optimizers.Adam, keras.optimizers.Adam, "ResourceApplyAdam"),
    "rmsprop": (optimizers.RMSprop, keras.optimizers.RMSprop, "ResourceApplyRMSProp"),
}
CASES = [
    ("adam", dict(learning_rate=0.1)),
    ("adam", dict(learning_rate=0.05, beta_1=0.5, beta_2=0.9, epsilon=1e-3)),
    ("adam", dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5))),
    ("rmsprop", dict(learning_rate=0.1)),
    ("rmsprop", dict(learning_rate=0.05, rho=0.99, epsilon=1e-3)),  # The clipped WGAN's rho.
    ("rmsprop", dict(learning_rate=0.05, momentum=0.5)),
    ("rmsprop", dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5))),
]


@pytest.mark.parametrize("kind, options", CASES)
def test_fused_optimizer_matches_keras_and_takes_the_fused_kernel(kind, options):
    fused, reference, kernel = FUSED[kind]
    values, slots, op_types = train(fused, **options)
    expected_values, expected_slots, _ = train(reference, **options)
    assert kernel in op_types
    assert len(slots) == len(expected_slots)  # No slot of its own: checkpoints stay Keras'.
    for actual, expected in zip(values + slots, expected_values + expected_slots):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)  # Steps are ~0.1.
    assert not np.allclose(values[0], np.linspace(-1, 1, 12).reshape(3, 4))  # It did move.


@pytest.mark.parametrize("kind, options", [("adam", dict(amsgrad=True)), ("rmsprop", dict(centered=True))])
def test_fused_optimizer_falls_back_to_keras_where_the_kernel_does_not_apply(kind, options):
    fused, reference, kernel = FUSED[kind]
    values, _, op_types = train(fused, learning_rate=0.1, **options)
    expected, _, _ = train(reference, learning_rate=0.1, **options)
    assert kernel not in op_types
    for actual, expected_value in zip(values, expected):
        np.testing.assert_allclose(actual, expected_value, rtol=1e-6)


@pytest.mark.parametrize("kind", FUSED)
def test_fused_optimizer_on_two_replicas_matches_keras(kind):
    fused, reference, _ = FUSED[kind]
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    values, slots, _ = train(fused, strategy, learning_rate=0.1)
    expected_values, expected_slots, _ = train(reference, strategy, learning_rate=0.1)
    for actual, expected in zip(values + slots, expected_values + expected_slots):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)  # Steps are ~0.1.


def test_fused_optimizers_reload_from_their_config():
    optimizer = optimizers.Adam(learning_rate=0.01, beta_1=0.5)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is optimizers.Adam and clone.beta_1 == 0.5
    optimizer = optimizers.RMSprop(learning_rate=0.01, rho=0.99)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is optimizers.RMSprop and clone.rho == 0.99


def test_fused_rmsprop_checkpoint_holds_only_keras_state(tmp_path):
    """Its scratch buffers stay out of checkpoints: one written by Keras' RMSprop restores into it and back."""
    variables = [keras.Variable(np.ones((3, 4), np.float32))]
    keras_optimizer = keras.optimizers.RMSprop(0.1)
    keras_optimizer.build(variables)
    keras_optimizer.apply([tf.fill((3, 4), 2.0)], variables)
    path = tf.train.Checkpoint(optimizer=keras_optimizer).write(str(tmp_path / "keras"))
    fused = optimizers.RMSprop(0.1)
    fused.build([keras.Variable(np.ones((3, 4), np.float32))])
    tf.train.Checkpoint(optimizer=fused).read(path).assert_consumed()
    np.testing.assert_allclose(np.asarray(fused.variables[-1]), np.asarray(keras_optimizer.variables[-1]))
    path = tf.train.Checkpoint(optimizer=fused).write(str(tmp_path / "fused"))
    names = [name for name, _ in tf.train.list_variables(path)]
    expected = [name for name, _ in tf.train.list_variables(str(tmp_path / "keras"))]
    assert names == expected
