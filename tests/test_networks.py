"""Layers that compute what Keras' own layers compute, faster: tested equal to them."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import divergences, errors
from keras_gen.networks import convolutional, dcgan, dense, matmul_conv, normalization, recurrent
from keras_gen.training import distribute


def gradients(layer, inputs, training):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training)
        loss = tf.reduce_sum(tf.sin(outputs))  # Any non-linear loss: the gradient is not constant.
    return outputs, tape.gradient(loss, [inputs] + layer.trainable_variables)


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_matches_keras_batch_norm(training):
    inputs = tf.random.stateless_normal((8, 4, 4, 6), seed=(0, 1)) * 3.0 + 1.0
    fused = normalization.BatchNormalization(momentum=0.9, epsilon=1e-5)
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    fused.build(inputs.shape)
    reference.build(inputs.shape)
    weights = [np.linspace(0.5, 1.5, 6), np.linspace(-1, 1, 6), np.linspace(-0.2, 0.3, 6), np.linspace(0.5, 2, 6)]
    for layer in (fused, reference):
        layer.set_weights([np.asarray(weight, np.float32) for weight in weights])
    outputs, grads = gradients(fused, inputs, training)
    expected_outputs, expected_grads = gradients(reference, inputs, training)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-4, atol=1e-5)
    for actual, expected in zip(grads, expected_grads):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # Moving statistics: Keras' momentum update with the biased batch variance (none in inference).
    for actual, expected in zip(fused.non_trainable_weights, reference.non_trainable_weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    if training:
        mean = inputs.numpy().mean(axis=(0, 1, 2))
        np.testing.assert_allclose(fused.moving_mean.numpy(), 0.9 * weights[2] + 0.1 * mean, rtol=1e-5, atol=1e-6)


def test_fused_batch_norm_takes_the_fused_kernel_only_on_one_replica():
    layer = normalization.BatchNormalization()
    inputs = tf.zeros((2, 3, 3, 4))
    layer.build(inputs.shape)
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(inputs).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}
    strategy = distribute.get_strategy("mirrored")  # Over conftest.py's two logical devices.
    with strategy.scope():
        replicated = normalization.BatchNormalization(synchronized=True)
        replicated.build(inputs.shape)
    graph = (
        tf.function(lambda x: strategy.run(lambda y: replicated(y, training=True), (x,)))
        .get_concrete_function(inputs)
        .graph
    )
    assert "FusedBatchNormV3" not in {op.type for op in graph.get_operations()}


def test_latent_projection_matches_the_transposed_convolution_it_replaces():
    latents = tf.random.stateless_normal((5, 1, 1, 7), seed=(0, 2))
    projection = dcgan.LatentProjection(16, 4, strides=1, padding="valid", use_bias=True)
    reference = keras.layers.Conv2DTranspose(16, 4, strides=1, padding="valid", use_bias=True)
    projection.build(latents.shape)
    reference.build(latents.shape)
    reference.set_weights([np.asarray(weight) + 0.1 for weight in projection.get_weights()])
    projection.set_weights(reference.get_weights())
    outputs, grads = gradients(projection, latents, True)
    expected_outputs, expected_grads = gradients(reference, latents, True)
    assert outputs.shape == (5, 4, 4, 16)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-6)
    for actual, expected in zip(grads, expected_grads):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert [tuple(weight.shape) for weight in projection.weights] == [(4, 4, 16, 7), (16,)]  # Checkpoints unchanged.


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shape, channels", [((3, 4, 4, 6), 5), ((2, 2, 3, 4), 1), ((1, 8, 8, 3), 3)])
def test_transposed_convolution_as_a_matrix_product_matches_tensorflow(shape, channels, fused):
    inputs = tf.random.stateless_normal(shape, seed=(1, 2))
    kernel = tf.random.stateless_normal((4, 4, channels, shape[-1]), seed=(1, 3))
    output_shape = (shape[0], 2 * shape[1], 2 * shape[2], channels)

    def values_and_gradients(convolve):
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            outputs = convolve(inputs, kernel)
            loss = tf.reduce_sum(tf.sin(outputs))
        return [outputs, *tape.gradient(loss, [inputs, kernel])]

    actual = values_and_gradients(lambda x, k: matmul_conv.conv_transpose_4x4_stride_2(x, k, fused=fused))
    expected = values_and_gradients(lambda x, k: tf.nn.conv2d_transpose(x, k, output_shape, 2, padding="SAME"))
    assert actual[0].shape == output_shape
    for value, reference in zip(actual, expected):
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fused", [True, False])
def test_image_to_patches_is_tensorflows_patch_extraction_and_the_adjoint_of_patches_to_image(fused):
    images = tf.random.stateless_normal((2, 6, 8, 3), seed=(2, 2))
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    expected = tf.image.extract_patches(padded, [1, 4, 4, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(matmul_conv.image_to_patches(images), expected)
    # Inside a function whose batch size is only known when it runs, as in training.
    unknown_batch = tf.function(matmul_conv.image_to_patches, input_signature=[tf.TensorSpec((None, 6, 8, 3))])
    np.testing.assert_array_equal(unknown_batch(images), expected)
    patches = tf.random.stateless_normal((2, 3, 4, 16 * 3), seed=(2, 1))
    forward = tf.reduce_sum(matmul_conv.patches_to_image(patches, fused) * images)
    adjoint = tf.reduce_sum(patches * matmul_conv.image_to_patches(images))
    np.testing.assert_allclose(forward, adjoint, rtol=1e-5)


def graph_op_types(layer, inputs, training):
    return {
        op.type
        for op in tf.function(lambda x: layer(x, training=training))
        .get_concrete_function(inputs)
        .graph.get_operations()
    }


@pytest.mark.parametrize("input_shape, filters", [((2, 4, 4, 8), 6), ((2, 16, 16, 8), 3)])
def test_doubling_layer_matches_conv2d_transpose_and_trains_as_a_matrix_product(input_shape, filters):
    inputs = tf.random.stateless_normal(input_shape, seed=(3, 1))
    layer = matmul_conv.DoublingConv2DTranspose(filters, activation="tanh")
    reference = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="tanh")
    layer.build(inputs.shape)
    reference.build(inputs.shape)
    reference.set_weights([np.asarray(weight) + 0.1 for weight in layer.get_weights()])
    layer.set_weights(reference.get_weights())
    for training in (True, False):
        outputs, grads = gradients(layer, inputs, training)
        expected_outputs, expected_grads = gradients(reference, inputs, training)
        np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-5)
        for actual, expected in zip(grads, expected_grads):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # Training takes the matrix product; inference (and so every export) only standard convolution ops.
    assert "MatMul" in graph_op_types(layer, inputs, True)
    assert "Conv2DBackpropInput" not in graph_op_types(layer, inputs, True)
    assert "Conv2DBackpropInput" in graph_op_types(layer, inputs, False)
    assert [tuple(weight.shape) for weight in layer.weights] == [(4, 4, filters, 8), (filters,)]
    clone = matmul_conv.DoublingConv2DTranspose.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides, clone.padding) == (filters, (4, 4), (2, 2), "same")


def test_doubling_layer_keeps_the_convolution_where_it_is_faster():
    layer = matmul_conv.DoublingConv2DTranspose(16)  # 8x8 into 16 channels: oneDNN's kernel wins there.
    inputs = tf.zeros((2, 8, 8, 8))
    layer.build(inputs.shape)
    assert "Conv2DBackpropInput" in graph_op_types(layer, inputs, True)
    image_layer = matmul_conv.DoublingConv2DTranspose(3)  # A map of unknown size: the convolution.
    image_layer.build((None, None, None, 8))
    assert "Conv2DBackpropInput" in graph_op_types(image_layer, tf.TensorSpec((2, None, None, 8)), True)


def test_dcgan_generator_trains_its_first_and_last_doubling_as_matrix_products():
    generator = dcgan.generator((32, 32, 1), 100)
    latents = tf.zeros((2, 100))
    graph = tf.function(lambda z: generator(z, training=True)).get_concrete_function(latents).graph
    transposed = [op for op in graph.get_operations() if op.type == "Conv2DBackpropInput"]
    assert len(transposed) == 1  # Only 8x8 -> 16x16 (256 -> 128) stays a convolution.


@pytest.mark.parametrize("image_size", [16, 32, 64])
def test_report_decoder_goes_to_twice_the_image_size_and_back(image_size):
    from keras_gen.networks import convolutional

    decoder = convolutional.deconv_decoder((image_size, image_size, 3), 5, base_filters=4, stack="report")
    upsampling = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    sizes = [layer.output.shape[1] for layer in decoder.layers if isinstance(layer, normalization.BatchNormalization)]
    assert sizes[-1] == 2 * image_size and sizes == [4 * 2**stage for stage in range(len(sizes))]
    assert upsampling[-1].filters == upsampling[-2].filters == 4  # The report's extra 32 -> 32 stage.
    assert decoder.get_layer("logits").strides == (2, 2) and decoder.output.shape[1:] == (image_size, image_size, 3)
    compact = convolutional.deconv_decoder((image_size, image_size, 3), 5, base_filters=4)
    assert compact.output.shape[1:] == (image_size, image_size, 3) and compact.get_layer("logits").strides == (1, 1)


def test_the_conv_vae_starts_from_pytorchs_default_initialisation():
    # Every weight and bias of U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with PyTorch's fan-in: in_features,
    # k*k*in_channels for a convolution, k*k*out_channels for a transposed one.
    keras.utils.set_random_seed(0)
    encoder = convolutional.conv_encoder((32, 32, 1), 100)
    decoder = convolutional.deconv_decoder((32, 32, 1), 100, stack="report")
    checked = 0
    for layer in [*encoder.layers, *decoder.layers]:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            fan_in = 9 * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            fan_in = 9 * layer.kernel.shape[-2]
        elif isinstance(layer, keras.layers.Dense):
            fan_in = layer.kernel.shape[0]
        else:
            continue
        bound = 1 / np.sqrt(fan_in)
        for weights in layer.weights:
            values = weights.numpy()
            assert np.abs(values).max() <= bound * (1 + 1e-6), (layer.name, weights.name)  # float32 round-off.
            if values.size >= 100:  # Spread over the whole interval: std bound/sqrt(3), within 10%.
                assert abs(values.std() / (bound / np.sqrt(3)) - 1) < 0.1, (layer.name, weights.name)
        checked += 1
    assert checked == 4 + 1 + 2 + 1 + 5 + 1  # Convolutions, hidden, heads; projection, 5 stages, logits.


def _random_starts(models):
    """(name, flat values) of every weight drawn at random (not a constant such as batch norm's ones)."""
    return [
        (f"{model.name}/{weights.path}", weights.numpy().ravel())
        for model in models
        for weights in model.weights
        if weights.numpy().size > 1 and weights.numpy().std() > 0
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda: [
            convolutional.conv_encoder((32, 32, 1), 20),
            convolutional.deconv_decoder((32, 32, 1), 20, stack="report"),
        ],
        lambda: [
            convolutional.conv_encoder((16, 16, 3), 8, num_classes=10),
            convolutional.deconv_decoder((16, 16, 3), 8),
        ],
        lambda: [dense.mlp_encoder((16, 16, 1), 8, 32), dense.mlp_decoder((16, 16, 1), 8, 32)],
        lambda: [recurrent.lstm_encoder((16, 16, 1), 8, 16)],
        lambda: [dcgan.generator((32, 32, 1), 20, 16), dcgan.critic((32, 32, 1), 16, spectral_norm=True)],
        lambda: [dcgan.generator((32, 32, 1), 20, 16, num_classes=10), dcgan.critic((32, 32, 1), 16, num_classes=10)],
        lambda: [divergences.make_critic(2, 64, seed=0)],
    ],
)
def test_no_two_layers_start_from_the_same_draw(build):
    # A Keras 3 initializer fixes its seed when it is made (or is given one): every layer handed the
    # same instance draws the same numbers, a copy (or, for another shape, a prefix) of the other's.
    # The conv VAE's posterior heads did so (the log-variance started as a copy of the mean), as did
    # the divergence critic's three layers.
    keras.utils.set_random_seed(0)
    starts = _random_starts(build())
    assert len(starts) >= 2
    for (name, values), (other_name, other_values) in itertools.combinations(starts, 2):
        n = min(values.size, other_values.size)
        if n < 16:  # Too few numbers to tell a shared draw from chance.
            continue
        correlation = np.corrcoef(values[:n], other_values[:n])[0, 1]
        assert abs(correlation) < 0.9, f"{name} and {other_name} start from one draw (correlation {correlation:.3f})"


# PyTorch's padding=1 around the map, as TensorFlow's convolutions take it explicitly.
PAD_ONE = [[0, 0], [1, 1], [1, 1], [0, 0]]


def test_pytorch_padding_is_pytorchs_stride_two_convolution_and_its_transpose():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(2, 8, 8, 3)), tf.float32)
    inputs = keras.Input((8, 8, 3))
    halving = keras.Model(inputs, convolutional.halve(inputs, 5, "pytorch", use_bias=False))
    (kernel,) = [layer for layer in halving.layers if isinstance(layer, keras.layers.Conv2D)][0].weights
    expected = tf.nn.conv2d(images, kernel, strides=2, padding=PAD_ONE)  # torch Conv2d(3, 5, 3, 2, 1)
    np.testing.assert_allclose(halving(images), expected, rtol=1e-5, atol=1e-5)
    maps = tf.constant(rng.normal(size=(2, 4, 4, 5)), tf.float32)
    inputs = keras.Input((4, 4, 5))
    doubling = keras.Model(inputs, convolutional.double(inputs, 3, "pytorch", use_bias=False))
    (kernel,) = [layer for layer in doubling.layers if isinstance(layer, keras.layers.Conv2DTranspose)][0].weights
    # torch ConvTranspose2d(5, 3, 3, 2, 1, output_padding=1): the adjoint of the convolution above.
    expected = tf.nn.conv2d_transpose(maps, kernel, (2, 8, 8, 3), strides=2, padding=PAD_ONE)
    np.testing.assert_allclose(doubling(maps), expected, rtol=1e-5, atol=1e-5)
    assert halving.output.shape[1:] == (4, 4, 5) and doubling.output.shape[1:] == (8, 8, 3)


@pytest.mark.parametrize("padding, reads", [("pytorch", [1, 2, 3]), ("same", [2, 3, 4])])
def test_a_halving_output_reads_the_inputs_its_padding_aligns_it_with(padding, reads):
    inputs = keras.Input((8, 8, 1))
    halving = keras.Model(inputs, convolutional.halve(inputs, 1, padding, kernel_initializer="ones", use_bias=False))
    images = tf.Variable(tf.zeros((1, 8, 8, 1)))
    with tf.GradientTape() as tape:
        output = halving(images)[0, 1, 1, 0]  # Output (1, 1).
    rows = np.nonzero(tape.gradient(output, images).numpy()[0, :, :, 0].any(axis=1))[0]
    assert list(rows) == reads


def test_a_run_saved_before_the_padding_choice_keeps_keras_same_padding():
    from keras_gen.runs import train_config

    assert train_config.TrainConfig().conv_padding == "pytorch"
    assert train_config.TrainConfig.from_saved({"model": "vae"}).conv_padding == "same"
    assert train_config.TrainConfig.from_saved({"model": "vae", "conv_padding": "pytorch"}).conv_padding == "pytorch"
    # And had a LeakyReLU after the encoder's dense layer, which no weight tells apart.
    assert train_config.TrainConfig().encoder_dense_activation == "none"
    assert train_config.TrainConfig.from_saved({"model": "vae"}).encoder_dense_activation == "leaky_relu"
    with pytest.raises(errors.UserError, match="--conv_padding=valid; expected one of pytorch, same"):
        convolutional.conv_encoder((16, 16, 1), 2, padding="valid")


@pytest.mark.parametrize("activation, leaky_layers", [("none", 4), ("leaky_relu", 5)])
def test_the_encoders_dense_layer_feeds_the_posterior_directly_or_through_a_leaky_relu(activation, leaky_layers):
    encoder = convolutional.conv_encoder((32, 32, 1), 3, base_filters=2, dense_activation=activation)
    layers = [layer for layer in encoder.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(layers) == leaky_layers  # One after each of the 4 conv stages, and one after the dense layer.
    with pytest.raises(errors.UserError, match="--encoder_dense_activation=relu; expected one of none, leaky_relu"):
        convolutional.conv_encoder((32, 32, 1), 3, dense_activation="relu")
