"""Optimizers that update through fused kernels: tested equal to Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.training import distribute
from keras_gen.training import optimizers


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


@pytest.mark.parametrize(
    "options",
    [
        dict(learning_rate=0.1),
        dict(learning_rate=0.05, beta_1=0.5, beta_2=0.9, epsilon=1e-3),
        dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)),
    ],
)
def test_fused_adam_matches_keras_adam_and_takes_the_fused_kernel(options):
    values, slots, op_types = train(optimizers.Adam, **options)
    expected_values, expected_slots, _ = train(keras.optimizers.Adam, **options)
    assert "ResourceApplyAdam" in op_types
    for actual, expected in zip(values + slots, expected_values + expected_slots):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)  # Steps are ~0.1.
    assert not np.allclose(values[0], np.linspace(-1, 1, 12).reshape(3, 4))  # It did move.


def test_fused_adam_falls_back_to_keras_where_the_kernel_does_not_apply():
    values, _, op_types = train(optimizers.Adam, learning_rate=0.1, amsgrad=True)
    expected, _, _ = train(keras.optimizers.Adam, learning_rate=0.1, amsgrad=True)
    assert "ResourceApplyAdam" not in op_types
    for actual, reference in zip(values, expected):
        np.testing.assert_allclose(actual, reference, rtol=1e-6)


def test_fused_adam_on_two_replicas_matches_keras_adam():
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    values, slots, _ = train(optimizers.Adam, strategy, learning_rate=0.1)
    expected_values, expected_slots, _ = train(keras.optimizers.Adam, strategy, learning_rate=0.1)
    for actual, expected in zip(values + slots, expected_values + expected_slots):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)  # Steps are ~0.1.


def test_fused_adam_reloads_from_its_config():
    optimizer = optimizers.Adam(learning_rate=0.01, beta_1=0.5)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is optimizers.Adam and clone.beta_1 == 0.5
