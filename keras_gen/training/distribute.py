"""tf.distribute strategies chosen by name (`--distribute`)."""

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def get_strategy(name="auto"):
    """Returns the strategy called `name`.

    - auto: MirroredStrategy over all local GPUs when there are several, else the default strategy.
    - default: no distribution (one device).
    - mirrored: synchronous data parallelism over all local devices.
    - multi_worker: synchronous data parallelism over the machines described by $TF_CONFIG.

    `--batch_size` is the global batch, split evenly over the replicas.
    """
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy {name!r}; expected one of {STRATEGIES}")
