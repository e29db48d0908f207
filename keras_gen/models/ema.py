"""An exponential moving average of a network's weights (Yazici et al., ICLR 2019).

After update t of the network, every weight of the average moves towards the network's:

    average <- d_t * average + (1 - d_t) * weight,    d_t = min(decay, (1 + t) / (10 + t))

The warm-up d_t (tf.train.ExponentialMovingAverage's `num_updates` rule) keeps the first averages
from being dominated by the random initialisation: d_1 = 0.18, d_10 = 0.55, d_100 = 0.93, and
`decay` itself once (1 + t) / (10 + t) reaches it, at t = (10 decay - 1) / (1 - decay): after 8,991
updates for 0.999 (at 2,000 updates the average still forgets with d = 0.9955).

Every weight is averaged, batch norm's moving statistics included (as BigGAN's reference code
does): the average is a network of its own, evaluated in inference mode.
"""

import keras
import tensorflow as tf


def decay_at(decay, updates):
    """d_t: the decay applied at update `updates` (t >= 1)."""
    updates = tf.cast(updates, tf.float32)
    return tf.minimum(tf.cast(decay, tf.float32), (1.0 + updates) / (10.0 + updates))


def average_copy(network):
    """A new network of `network`'s architecture holding a copy of its weights: the average's start."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    copy.trainable = False
    return copy


def update(average, network, decay, updates):
    """One step of the average towards `network` after its update number `updates` (see the module doc)."""
    rate = 1.0 - decay_at(decay, updates)
    for averaged, weight in zip(average.weights, network.weights):
        averaged.assign_sub(tf.cast(rate, averaged.dtype) * (averaged - tf.cast(weight, averaged.dtype)))
