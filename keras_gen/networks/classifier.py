"""A compact convolutional classifier: the feature network of the sample-quality metrics.

Three (conv 3x3, batch norm, ReLU, max-pool) stages, then a dense "features" layer whose
activations the Fréchet and kernel distances compare, and class logits whose softmax the
Inception-style score uses.
"""

import keras

from keras_gen.networks import convolutional

FEATURES_LAYER = "features"


def classifier(image_shape, num_classes, base_filters=32, feature_dim=128, name="classifier"):
    """Images in [0, 1] (batch, size, size, channels) -> class logits (batch, num_classes)."""
    images = keras.Input(image_shape, name="images")
    hidden = images
    for stage in range(3):
        hidden = keras.layers.Conv2D(base_filters * 2**stage, 3, padding="same", use_bias=False)(hidden)
        # Momentum 0.9: the moving statistics settle within a short budget (0.99 lags for hundreds of steps).
        hidden = convolutional.batch_norm()(hidden)
        hidden = keras.layers.ReLU()(hidden)
        hidden = keras.layers.MaxPooling2D()(hidden)
    hidden = keras.layers.Flatten()(hidden)
    hidden = keras.layers.Dropout(0.3)(hidden)
    features = keras.layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(hidden)
    hidden = keras.layers.Dropout(0.3)(features)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    return keras.Model(images, logits, name=name)


def feature_extractor(model):
    """images -> [features (batch, feature_dim), class probabilities (batch, num_classes)]."""
    probabilities = keras.layers.Softmax(name="probabilities")(model.output)
    return keras.Model(model.input, [model.get_layer(FEATURES_LAYER).output, probabilities])
