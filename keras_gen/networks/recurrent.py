"""An LSTM encoder that reads an image as a sequence of rows (../shared/seeds/002)."""

import keras

from keras_gen.networks import conditioning
from keras_gen.networks import posterior


def lstm_encoder(image_shape, latent_dim, units=256, num_classes=0, name="encoder"):
    """One LSTM layer over the image rows -> final hidden state -> posterior mean and log-variance.

    A (size, size, channels) image is a length-`size` sequence of rows, each row its
    size * channels values (a 28x28 MNIST digit: 28 steps of 28 values).

    Args:
        image_shape: (height, width, channels).
        latent_dim: dimension of z.
        units: size of the LSTM state.
        num_classes: > 0 for q(z|x, y) of [images, labels] (networks.conditioning).

    Returns:
        A functional keras.Model mapping images to [mean, log_variance], each (batch, latent_dim).
        On GPU Keras runs the LSTM with cuDNN, which has no XLA kernel; the layer then reports
        `supports_jit = False` and Keras trains the model without XLA.
    """
    height, width, channels = image_shape
    images = keras.Input(image_shape, name="images")
    rows = keras.layers.Reshape((height, width * channels), name="rows")(images)  # (batch, height, width*channels)
    state = keras.layers.LSTM(units, name="lstm")(rows)  # (batch, units): the state after the last row
    labels = conditioning.labels_input(num_classes)
    head = posterior.gaussian_head(conditioning.join(state, labels, num_classes), latent_dim)
    return keras.Model(conditioning.inputs(images, labels), head, name=name)
