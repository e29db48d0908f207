"""PyTorch's default initialisation, for the Keras layers of the convolutional VAE.

torch.nn.Linear, Conv2d and ConvTranspose2d start from kaiming_uniform(a=sqrt(5)): weights from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases from the same interval. Keras starts from Glorot-uniform
weights and zero biases: it draws the posterior heads' and the hidden layer's weights about twice
as large, and the output convolution's 2.4 times. The conv VAE starts as the PyTorch peer's does,
so that the two compare like for like; at issue 12's budget, runs from PyTorch's start reached a
test negative ELBO about a nat better than from Keras', within the spread between runs
(BENCHMARKS.md, "The conv VAE beside the PyTorch peer").

fan_in is PyTorch's: in_features for a dense layer, k*k*in_channels for a convolution, and (its
quirk, which Keras' own fan-in rule shares) k*k*out_channels for a transposed convolution.
"""

import math

import keras


def pytorch_default(fan_in):
    """kernel_initializer and bias_initializer keyword arguments of a layer whose fan-in is `fan_in`.

    For one layer only: Keras 3 initializers without a seed fix one when they are made, so every
    layer given these instances would draw the same weights (networks.posterior).
    """
    bound = 1.0 / math.sqrt(fan_in)
    return {
        # VarianceScaling's uniform draws from +-sqrt(3 * scale / fan_in): 1/sqrt(fan_in) at scale 1/3.
        "kernel_initializer": keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform"),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
    }


def dense(features):
    """The arguments for a Dense layer reading `features` (a Keras tensor)."""
    return pytorch_default(features.shape[-1])


def conv(features, kernel_size):
    """The arguments for a Conv2D reading `features` with a square `kernel_size` kernel."""
    return pytorch_default(kernel_size * kernel_size * features.shape[-1])


def conv_transpose(filters, kernel_size):
    """The arguments for a Conv2DTranspose writing `filters` channels with a square `kernel_size` kernel."""
    return pytorch_default(kernel_size * kernel_size * filters)
