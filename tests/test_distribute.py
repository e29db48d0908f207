"""Loss reduction under tf.distribute, on 2 logical CPU devices (in a subprocess: devices are fixed at start)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from keras_gen import losses
    from keras_gen.training import distribute

    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    per_example = np.arange(8, dtype=np.float32) ** 2
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(per_example).batch(8))
    replica_losses = strategy.run(losses.average_over_global_batch, args=(next(iter(batches)),))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, replica_losses, axis=None)
    # Each replica divides its 4 examples by the global batch of 8; summing the replicas (what the
    # gradient all-reduce does) gives the single-device mean, whatever the replica count.
    np.testing.assert_allclose(float(total), per_example.mean(), rtol=1e-6)
    print("OK", float(total))
    """
)


def test_global_batch_reduction_matches_one_device_under_mirrored_strategy():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 17.5" in result.stdout  # mean of 0, 1, 4, ..., 49
