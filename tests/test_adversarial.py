"""GAN and WGAN: the alternating step, the critic constraint, the losses' closed forms."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_train_config, write_npz
from keras_gen import losses, models
from keras_gen.models import gan as gan_module
from keras_gen.training import trainer


def tiny(name, image_size=16, channels=1, learning_rate=1e-3, run_eagerly=False, **kwargs):
    model = models.build(name, (image_size, image_size, channels), latent_dim=3, base_filters=4, seed=0, **kwargs)
    model.compile(**model.default_optimizers(learning_rate), run_eagerly=run_eagerly)
    model.build_optimizers()
    return model


def step_batch(steps, batch=4, image_size=16, channels=1, seed=0):
    """The real images of one train_step with `steps` critic updates: steps x batch images, batch first."""
    images = np.random.default_rng(seed).uniform(-1, 1, (batch * steps, image_size, image_size, channels))
    return images.astype(np.float32)


def largest_critic_weight(model):
    return max(float(np.abs(variable.numpy()).max()) for variable in model.critic.trainable_variables)


def recording_critic_steps(model):
    """Wraps model.critic_step (eager) to record each update's real batch and the critic's largest |weight|
    once the update is done, with its constraint (a WGAN clips right after each critic_step)."""
    calls = []
    original_step, original_clip = model.critic_step, getattr(model, "clip_critic_weights", None)

    def critic_step(real_images, fake_images, labels=None):
        result = original_step(real_images, fake_images, labels)
        calls.append([np.asarray(real_images), largest_critic_weight(model)])
        return result

    def clip_critic_weights():
        original_clip()
        calls[-1][1] = largest_critic_weight(model)

    model.critic_step = critic_step
    if original_clip is not None:
        model.clip_critic_weights = clip_critic_weights
    return calls


def snapshot(variables):
    return [variable.numpy().copy() for variable in variables]


def changed(before, variables):
    return [not np.array_equal(old, variable.numpy()) for old, variable in zip(before, variables)]


@pytest.mark.parametrize("image_size, channels", [(16, 1), (32, 3), (64, 1)])
@pytest.mark.parametrize("name", ["gan", "wgan"])
def test_shapes_follow_image_size_and_channels(name, image_size, channels):
    model = tiny(name, image_size, channels)
    images = model.decode_to_images(tf.zeros((2, 3))).numpy()
    assert images.shape == (2, image_size, image_size, channels) and 0 <= images.min() and images.max() <= 1
    assert model.critic(tf.zeros((2, image_size, image_size, channels))).shape == (2, 1)


def test_report_architecture_at_32_pixels():
    model = models.build("gan", (32, 32, 1), latent_dim=100, seed=0)
    upsampling = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    shapes = [tuple(layer.output.shape[1:]) for layer in upsampling]
    assert shapes == [(4, 4, 512), (8, 8, 256), (16, 16, 128), (32, 32, 1)]
    flatten = [layer for layer in model.critic.layers if "flatten" in layer.name][0]
    assert flatten.output.shape[-1] == 4096  # 4 x 4 x 256, as the report prints.


def test_wgan_step_updates_critic_n_times_and_generator_once():
    model = tiny("wgan", critic_steps=3)
    logs = model.train_on_batch(step_batch(3), return_dict=True)
    assert int(model.critic_optimizer.iterations.numpy()) == 3
    assert int(model.generator_optimizer.iterations.numpy()) == 1
    assert {"critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "real_score", "fake_score"} <= set(logs)


def test_critic_steps_never_move_the_generator_and_generator_steps_never_move_the_critic():
    model = tiny("wgan", critic_steps=1)
    generator_before = snapshot(model.generator.trainable_variables)
    critic_before = snapshot(model.critic.trainable_variables)
    model.critic_step(tf.constant(step_batch(1)), model.generate(4))
    assert not any(changed(generator_before, model.generator.trainable_variables))
    assert any(changed(critic_before, model.critic.trainable_variables))
    critic_before = snapshot(model.critic.trainable_variables)
    tape = tf.GradientTape()
    model.generator_step(tape, model.generate(4, tape))
    assert not any(changed(critic_before, model.critic.trainable_variables))
    assert all(changed(generator_before, model.generator.trainable_variables))


def test_each_critic_update_gets_its_own_batch_in_the_batch_first_layout():
    model = tiny("wgan", critic_steps=3, run_eagerly=True)
    calls = recording_critic_steps(model)
    images = step_batch(3, batch=4)
    model.train_on_batch(images)
    assert len(calls) == 3
    # Image i * critic_steps + s belongs to update s: three disjoint batches of 4, every image used once.
    for step, (real_images, _) in enumerate(calls):
        np.testing.assert_array_equal(real_images, images[step::3])


@pytest.mark.parametrize("name, steps, generations", [("gan", 2, 2), ("wgan", 2, 3)])
def test_gan_generator_update_reuses_the_last_fakes_and_wgan_draws_fresh_ones(name, steps, generations):
    # GAN (the DCGAN references): the generator update scores the last critic update's fakes, one
    # generator pass fewer per step. WGAN (Algorithm 1): a fresh batch of z for the generator update.
    model = tiny(name, run_eagerly=True, critic_steps=steps)
    generated, scored = [], []
    generate, critic_step, generator_step = model.generate, model.critic_step, model.generator_step
    model.generate = lambda *args, **kwargs: generated.append(generate(*args, **kwargs)) or generated[-1]
    model.critic_step = lambda real, fake, labels: scored.append(fake) or critic_step(real, fake, labels)
    model.generator_step = lambda tape, fake, labels: scored.append(fake) or generator_step(tape, fake, labels)
    model.train_on_batch(step_batch(steps))
    assert len(generated) == generations and len(scored) == steps + 1
    reused = np.array_equal(np.asarray(scored[-1]), np.asarray(scored[-2]))
    assert reused == (name == "gan")
    assert int(model.generator_optimizer.iterations.numpy()) == 1


def test_weight_clipping_holds_after_every_critic_update_not_only_after_the_loop():
    # A learning rate of 0.5 pushes weights far past c at every update.
    model = tiny("wgan", critic_steps=3, weight_clip=0.01, learning_rate=0.5, run_eagerly=True)
    calls = recording_critic_steps(model)
    model.train_on_batch(step_batch(3))
    assert [largest <= 0.01 + 1e-7 for _, largest in calls] == [True] * 3
    # Clipping binds: some weights sit exactly at the bound, none beyond it.
    assert any(np.isclose(np.abs(variable.numpy()).max(), 0.01) for variable in model.critic.trainable_variables)


def test_gradient_penalty_of_a_unit_norm_linear_critic_is_zero():
    weights = tf.constant(np.random.default_rng(0).normal(size=(4, 4, 1)), tf.float32)
    weights /= tf.norm(weights)

    def linear_critic(images):
        return tf.reduce_sum(images * weights, axis=[1, 2, 3])

    real, fake = tf.random.uniform((5, 4, 4, 1)), tf.random.uniform((5, 4, 4, 1))
    penalty = losses.gradient_penalty(linear_critic, real, fake, tf.random.uniform((5,)))
    np.testing.assert_allclose(penalty.numpy(), np.zeros(5), atol=1e-6)


def test_gradient_penalty_matches_a_hand_computation():
    # f(x) = sum(x^2) has gradient 2 x_hat, so the penalty is (2 ||x_hat|| - 1)^2 with
    # x_hat = w real + (1 - w) fake.
    real = np.random.default_rng(1).uniform(size=(3, 2, 2, 1)).astype(np.float32)
    fake = np.random.default_rng(2).uniform(size=(3, 2, 2, 1)).astype(np.float32)
    weights = np.array([0.0, 0.25, 1.0], np.float32)
    interpolated = weights[:, None, None, None] * real + (1 - weights[:, None, None, None]) * fake
    expected = (2 * np.sqrt(np.sum(interpolated**2, axis=(1, 2, 3))) - 1) ** 2
    penalty = losses.gradient_penalty(lambda x: tf.reduce_sum(x**2, axis=[1, 2, 3]), real, fake, weights)
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)


def test_gradient_penalty_is_finite_where_the_gradient_vanishes():
    # f(x) = v * sum(x) with v = 0: grad_x f = 0, where d sqrt(.)/d v is 0/0 = NaN without the epsilon.
    scale = tf.Variable(0.0)
    real = tf.random.uniform((2, 2, 2, 1))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(lambda x: scale * tf.reduce_sum(x, axis=[1, 2, 3]), real, real, tf.ones(2))
    np.testing.assert_allclose(penalty.numpy(), [1.0, 1.0], rtol=1e-5)  # (0 - 1)^2
    assert np.isfinite(tape.gradient(penalty, scale).numpy())


def test_gan_losses_match_their_formulas_on_fixed_logits():
    real, fake = np.array([2.0, -1.0, 0.0], np.float32), np.array([-3.0, 0.5, 0.0], np.float32)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    np.testing.assert_allclose(
        losses.discriminator_loss("non_saturating", real, fake).numpy(),
        -np.log(sigmoid(real)) - np.log(1 - sigmoid(fake)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(losses.generator_loss("non_saturating", fake).numpy(), -np.log(sigmoid(fake)), rtol=1e-5)
    np.testing.assert_allclose(
        losses.discriminator_loss("least_squares", real, fake).numpy(),
        0.5 * ((sigmoid(real) - 1) ** 2 + sigmoid(fake) ** 2),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        losses.generator_loss("least_squares", fake).numpy(), (sigmoid(fake) - 1) ** 2, rtol=1e-5
    )
    # At logit 0 the discriminator says 1/2: both cross-entropy terms are ln 2.
    assert math.isclose(
        float(losses.discriminator_loss("non_saturating", [0.0], [0.0])[0]), 2 * math.log(2), rel_tol=1e-6
    )


def test_wasserstein_losses_match_their_formulas():
    real, fake = np.array([3.0, 1.0]), np.array([0.5, -2.0])
    np.testing.assert_allclose(losses.wasserstein_critic_loss(real, fake).numpy(), fake - real)
    np.testing.assert_allclose(losses.wasserstein_generator_loss(fake).numpy(), -fake)


def test_gan_critic_steps_and_test_step():
    model = tiny("gan", critic_steps=2, gan_loss="least_squares")
    model.train_on_batch(step_batch(2), return_dict=True)
    assert int(model.critic_optimizer.iterations.numpy()) == 2
    before = snapshot(model.weights)
    logs = model.test_on_batch(step_batch(1), return_dict=True)
    assert np.isfinite(logs["critic_loss"])
    for old, variable in zip(before, model.weights):
        np.testing.assert_array_equal(old, variable.numpy(), err_msg=variable.path)


@pytest.mark.parametrize("weight_clip, penalty", [(0.01, 10.0), (0.0, 0.0)], ids=["both", "neither"])
def test_wgan_rejects_both_or_neither_constraint(weight_clip, penalty):
    model = tiny("wgan")
    with pytest.raises(ValueError, match="exactly one"):
        models.wgan.WGAN(model.generator, model.critic, weight_clip=weight_clip, gradient_penalty_weight=penalty)


def test_config_round_trip_gives_the_same_samples():
    model = tiny("gan", gan_loss="least_squares", critic_steps=3)
    clone = gan_module.GAN.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.gan_loss == "least_squares" and clone.critic_steps == 3
    latents = tf.constant([[0.1, 0.2, -0.3]])
    np.testing.assert_allclose(clone.decode_to_images(latents), model.decode_to_images(latents), rtol=1e-6)


@pytest.mark.parametrize(
    "name, extra", [("gan", {}), ("wgan", {"critic_steps": 2}), ("wgan", {"gradient_penalty_weight": 10.0})]
)
def test_short_training_run_writes_samples_and_checkpoints(tmp_path, name, extra):
    data_path = write_npz(tmp_path, (60, 16, 16, 3))
    config = tiny_train_config(
        data_path, tmp_path / "run", model=name, latent_dim=3, epochs=1, steps_per_epoch=2, **extra
    )
    model, run_dir = trainer.train(config)
    assert os.path.exists(os.path.join(run_dir, "samples", "epoch_0001.png"))
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "checkpoint"))
    assert int(model.generator_optimizer.iterations.numpy()) == 2
    assert int(model.critic_optimizer.iterations.numpy()) == 2 * model.critic_steps
