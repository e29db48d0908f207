"""How a label enters a VAE's networks: one-hot, joined to the encoder's features and to z.

A conditional VAE (Sohn et al., 2015; Kingma et al., 2014's M2 with y observed) has the label as a
second input of both networks: q(z|x, y) and p(x|z, y). Joining the one-hot label to the encoder's
last features and to z at the decoder's input leaves every encoder and decoder of the family as it
is, whatever reads the image (convolutions, a dense layer, an LSTM over rows).
"""

import keras


def labels_input(num_classes):
    """The labels input (batch,) int32 of a conditional network, or None for an unconditional one."""
    return keras.Input((), dtype="int32", name="labels") if num_classes else None


def join(features, labels, num_classes):
    """`features` (batch, d) with the one-hot labels appended, (batch, d + num_classes); as is without labels."""
    if labels is None:
        return features
    one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", name="one_hot_labels")(labels)
    return keras.layers.Concatenate()([features, keras.ops.cast(one_hot, features.dtype)])


def inputs(data, labels):
    """A functional model's inputs: `data` alone, or [data, labels]."""
    return data if labels is None else [data, labels]
