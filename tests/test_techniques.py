"""The techniques for better samples per step, each tested for what it promises.

EMA of the generator, the hinge loss, spectral normalization, DiffAugment and two learning rates.
(On 2 replicas and across a kill-and-resume they are covered with the other models in
test_distribute.py and test_reliability.py.)
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import losses
from keras_gen import models
from keras_gen.models import ema
from keras_gen.models import gan
from keras_gen.models import wgan
from keras_gen.networks import augment
from keras_gen.networks import spectral_norm
from keras_gen.training import callbacks


def test_ema_equals_the_closed_form_average_of_a_toy_update_sequence():
    network = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    network.layers[0].kernel.assign([[5.0]])
    average = ema.average_copy(network)
    decay, expected = 0.9, 5.0
    rng = np.random.default_rng(0)
    for update in range(1, 40):
        value = float(rng.normal())
        network.layers[0].kernel.assign([[value]])
        ema.update(average, network, decay, update)
        # d_t = min(decay, (1 + t) / (10 + t)): 0.18 at the first update, the full decay from t = 80.
        d = min(decay, (1 + update) / (10 + update))
        expected = d * expected + (1 - d) * value
        np.testing.assert_allclose(float(average.layers[0].kernel.numpy()[0, 0]), expected, rtol=1e-5)
    assert float(ema.decay_at(decay, 1)) == pytest.approx(2 / 11)
    assert float(ema.decay_at(decay, 10_000)) == pytest.approx(decay)


def test_the_average_leaves_batch_norm_statistics_to_standing_statistics():
    network = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    network.layers[0].gamma.assign([3.0, 3.0])
    network.layers[0].moving_mean.assign([7.0, 7.0])
    average = ema.average_copy(network)
    network.layers[0].moving_mean.assign([-1.0, -1.0])
    ema.update(average, network, 0.9, 1_000)
    np.testing.assert_allclose(average.layers[0].moving_mean.numpy(), [7.0, 7.0])  # Not averaged,
    np.testing.assert_allclose(average.layers[0].gamma.numpy(), [3.0, 3.0])  # while gamma is (still 3: equal).


def as_trainable(network):
    copy = ema.average_copy(network)
    copy.trainable = True
    return copy


def test_standing_statistics_make_inference_equal_the_batch_statistics_of_their_latents():
    generator = tiny_gan().generator
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # Statistics far from any batch's.
            layer.moving_mean.assign(tf.fill(layer.moving_mean.shape, 5.0))
            layer.moving_variance.assign(tf.fill(layer.moving_variance.shape, 1e-3))
    # 64 latents in two batches of 32: their pooled statistics are those of one batch of all 64.
    ema.standing_statistics(generator, 3, count=64, batch_size=32, seed=7)
    latents = np.random.default_rng(7).standard_normal((64, 3)).astype(np.float32)
    inference = generator(latents, training=False).numpy()
    np.testing.assert_allclose(inference, as_trainable(generator)(latents, training=True).numpy(), atol=2e-4)


def test_after_an_epoch_the_average_samples_with_its_own_statistics(tmp_path):
    model = tiny_gan(ema_decay=0.5)
    model.fit(images(64), batch_size=8, epochs=1, verbose=0, callbacks=[callbacks.SamplingStatistics()])
    latents = np.random.default_rng(ema.STANDING_SEED).standard_normal((ema.STANDING_LATENTS, 3)).astype(np.float32)
    batch = latents[: ema.STANDING_BATCH]
    # Statistics of 2,048 latents against those of one batch of 256: equal to sampling noise (0.005 here;
    # 0.27 with the statistics the average started with).
    difference = model.ema_generator(batch, training=False) - as_trainable(model.ema_generator)(batch, training=True)
    assert float(np.abs(difference).mean()) < 0.02
    # Those statistics are the average's own, not the trained generator's.
    norms = [layer for layer in model.ema_generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    raw = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert any(np.abs(a.moving_mean.numpy() - r.moving_mean.numpy()).max() > 1e-3 for a, r in zip(norms, raw))


def tiny_gan(critic_learning_rate=None, **settings):
    model = gan.build((16, 16, 1), 3, base_filters=4, seed=0, **settings)
    model.compile(**model.default_optimizers(2e-4, critic_learning_rate))
    return model


def images(count=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, 16, 16, 1)).astype(np.float32)


def test_the_average_moves_after_every_generator_update_and_samples_come_from_it():
    model = tiny_gan(ema_decay=0.5)
    model.fit(images(), batch_size=8, epochs=1, verbose=0)  # 2 generator updates.
    raw = [w.numpy() for w in model.generator.weights]
    averaged = [w.numpy() for w in model.ema_generator.weights]
    assert any(np.abs(a - r).max() > 0 for a, r in zip(averaged, raw)), "the average should lag the weights"
    latents = np.zeros((2, 3), np.float32)
    np.testing.assert_allclose(model.decode_to_images(latents), (model.ema_generator(latents) + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(model.decode_with_raw_weights(latents), (model.generator(latents) + 1) / 2, atol=1e-6)
    assert tiny_gan().ema_generator is None  # Off by default: samples from the trained weights.


def test_a_checkpoint_restores_the_average(tmp_path):
    model = tiny_gan(ema_decay=0.5)
    model.fit(images(), batch_size=8, epochs=1, verbose=0)
    tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = tiny_gan(ema_decay=0.5)
    tf.train.Checkpoint(model=fresh).read(str(tmp_path / "ckpt")).assert_existing_objects_matched()
    for expected, actual in zip(model.ema_generator.weights, fresh.ema_generator.weights):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())


def test_hinge_losses_at_known_scores():
    real = tf.constant([2.0, 0.5, -1.0])
    fake = tf.constant([-2.0, 0.0, 1.0])
    # max(0, 1 - real) + max(0, 1 + fake): (0 + 0), (0.5 + 1), (2 + 2).
    np.testing.assert_allclose(losses.discriminator_loss("hinge", real, fake), [0.0, 1.5, 4.0])
    np.testing.assert_allclose(losses.generator_loss("hinge", fake), [2.0, 0.0, -1.0])


@pytest.mark.parametrize("layer", [spectral_norm.SNConv2D(8, 4, strides=2, padding="same"), spectral_norm.SNDense(5)])
def test_a_normalized_kernel_has_spectral_norm_one_after_a_few_power_iterations(layer):
    # Seeded: the kernel is drawn when the layer is built, here, and without a seed its draw depended
    # on the tests this worker ran before (30 iterations left one draw 2.6% off).
    keras.utils.set_random_seed(0)
    inputs = tf.random.stateless_normal((2, 8, 8, 3) if isinstance(layer, keras.layers.Conv2D) else (2, 12), (1, 2))
    layer(inputs)
    layer.kernel.assign(layer.kernel * 7.0)  # Far from 1 to start with.
    # One power iteration per training call, as in training. The error shrinks as (sigma_2 / sigma_1)^k:
    # over 20 seeds of each layer the worst was 4% after 30 iterations and 0.02% after 100.
    for _ in range(100):
        layer(inputs, training=True)
    assert spectral_norm.spectral_norm_of(layer.kernel) > 2.0  # The variable itself is left as trained.
    assert spectral_norm.spectral_norm_of(layer.normalized_kernel(training=False)) == pytest.approx(1.0, abs=0.02)


def test_spectral_norm_is_a_reparameterization_the_gradient_sees_sigma():
    # The gradient of sum(W / sigma(W) x) with respect to W is not that of W x divided by sigma: it has
    # the term through sigma. (keras.layers.SpectralNormalization assigns W / sigma into W instead.)
    layer = spectral_norm.SNDense(3, use_bias=False)
    inputs = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    layer(inputs)
    for _ in range(20):
        layer(inputs, training=True)
    kernel_before = layer.kernel.numpy().copy()
    with tf.GradientTape() as tape:
        output = tf.reduce_sum(layer(inputs, training=False))
    gradient = tape.gradient(output, layer.kernel).numpy()
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel_before)  # The call changed no weight.
    naive = np.broadcast_to(inputs.numpy().T, kernel_before.shape) / spectral_norm.spectral_norm_of(kernel_before)
    assert np.abs(gradient - naive).max() > 1e-3


def test_a_spectrally_normalized_critic_has_no_batch_norm():
    critic = gan.build((32, 32, 1), 3, base_filters=4, spectral_norm=True).critic
    kinds = {type(layer).__name__ for layer in critic.layers}
    assert {"SNConv2D", "SNDense"} <= kinds and "BatchNormalization" not in kinds and "Conv2D" not in kinds
    assert "LayerNormalization" not in {
        type(layer).__name__ for layer in wgan.build((32, 32, 1), 3, 4, gradient_penalty_weight=10.0,
                                                     spectral_norm=True).critic.layers
    }  # fmt: skip


def uniform_from(seed):
    generator = tf.random.Generator.from_seed(seed)
    return lambda shape: generator.uniform(shape)


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), augment.POLICIES])
def test_augmentations_keep_the_shape_and_pass_gradients(policy):
    batch = tf.constant(images(32))
    with tf.GradientTape() as tape:
        tape.watch(batch)
        augmented = augment.augment(batch, policy, uniform_from(1))
        total = tf.reduce_sum(augmented * tf.random.stateless_normal(augmented.shape, (3, 4)))
    assert augmented.shape == batch.shape
    gradient = tape.gradient(total, batch)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0
    if "color" not in policy:  # Moving and zeroing pixels keeps them in [-1, 1]; colour is unclipped (paper).
        assert float(tf.reduce_min(augmented)) >= -1.0 and float(tf.reduce_max(augmented)) <= 1.0


def test_translation_shifts_each_image_by_whole_pixels_uniform_over_the_range():
    count, side = 4000, 16
    ramp = np.arange(side * side, dtype=np.float32).reshape(1, side, side, 1) + 1.0  # Every pixel distinct, > 0.
    out = augment.translation(tf.constant(np.repeat(ramp, count, axis=0)), uniform_from(2)).numpy()
    shifts = []
    for image in out[:, :, :, 0]:
        # The pixel now at (8, 8) came from (8 - dy, 8 - dx): a shift of at most 2 keeps it inside.
        source = int(image[8, 8]) - 1
        dy, dx = 8 - source // side, 8 - source % side
        expected = np.zeros((side, side), np.float32)
        rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        inside = (rows - dy >= 0) & (rows - dy < side) & (cols - dx >= 0) & (cols - dx < side)
        expected[inside] = ramp[0, :, :, 0][(rows - dy)[inside], (cols - dx)[inside]]
        np.testing.assert_array_equal(image, expected)
        shifts.append((dy, dx))
    shifts = np.array(shifts)
    assert shifts.min() == -2 and shifts.max() == 2  # 16 / 8 = 2 pixels.
    counts = np.unique(shifts[:, 0], return_counts=True)[1]
    assert len(counts) == 5 and np.all(np.abs(counts / count - 0.2) < 0.03)


def test_cutout_zeroes_one_square_of_half_the_side_and_colour_shifts_brightness_uniformly():
    count = 2000
    out = augment.cutout(tf.ones((count, 16, 16, 1)), uniform_from(3)).numpy()[:, :, :, 0]
    for image in out[:50]:
        rows, cols = np.nonzero(image == 0)
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # A rectangle.
    covered = (out == 0).mean(axis=0)
    # 8 of the 16 centres cover the middle row, and 8 of 16 the middle column: 1/4 of the images.
    assert covered[8, 8] == pytest.approx(0.25, abs=0.03)
    # Brightness alone: a constant image gets x + (u - 0.5), u ~ U(0, 1): saturation and contrast
    # leave a constant image unchanged.
    brightened = augment.color(tf.zeros((count, 4, 4, 3)), uniform_from(4)).numpy()
    shifts = brightened[:, 0, 0, 0]
    assert np.allclose(brightened, shifts[:, None, None, None], atol=1e-6)
    assert shifts.min() >= -0.5 and shifts.max() <= 0.5
    assert shifts.mean() == pytest.approx(0.0, abs=0.02) and shifts.var() == pytest.approx(1 / 12, rel=0.1)


def test_diffaugment_reaches_the_critic_in_both_updates():
    model = tiny_gan(diffaugment="cutout")
    seen = []
    view = model.critic_view

    def recorded_view(batch):
        seen.append(view(batch))
        return seen[-1]

    model.critic_view = recorded_view
    model.train_step(tf.constant(images(8)))
    # Real, fake (critic update), fake (generator update): each with a zeroed square in every image.
    assert len(seen) == 3
    for batch in seen:
        assert np.all((batch.numpy() == 0).reshape(len(batch), -1).sum(axis=1) >= 16)


def test_two_learning_rates():
    model = tiny_gan(critic_learning_rate=4e-4)
    assert float(model.critic_optimizer.learning_rate) == pytest.approx(4e-4)
    assert float(model.generator_optimizer.learning_rate) == pytest.approx(2e-4)


def test_the_techniques_are_hyperparameters_of_both_adversarial_models_only():
    for name in ("gan", "wgan"):
        assert {"ema_decay", "diffaugment", "spectral_norm"} <= models.hyperparameters(name)
    assert not {"ema_decay", "diffaugment", "spectral_norm"} & models.hyperparameters("vae")
    with pytest.raises(ValueError, match="diffaugment=flip"):
        augment.parse_policy("flip")
    assert augment.parse_policy("cutout, color") == ("color", "cutout")
