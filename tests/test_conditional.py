"""Class-conditional GAN and WGAN: labels from the data through the networks, studies and metrics."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_images, tiny_train_config
from keras_gen import errors, models, studies
from keras_gen.data import pipeline
from keras_gen.evaluation import evaluate, sample_quality
from keras_gen.networks import dcgan
from keras_gen.runs import reopen
from keras_gen.training import trainer

CLASSES = 3


def write_labelled_npz(directory, count=60, side=16, classes=CLASSES, seed=0):
    """An .npz of random images with `y`: labels 0 .. classes - 1 in random order; returns its path."""
    path = os.path.join(str(directory), "labelled.npz")
    labels = np.random.default_rng(seed + 1).integers(0, classes, count)
    np.savez(path, x=random_images((count, side, side, 1), seed), y=labels)
    return path


def tiny_conditional(name="gan", **settings):
    extra = {"gradient_penalty_weight": 10.0, "critic_steps": 2} if name == "wgan_gp" else {}
    model = models.build(
        "wgan" if name == "wgan_gp" else name, (16, 16, 1), latent_dim=4, base_filters=4, num_classes=CLASSES,
        seed=0, **extra, **settings,
    )  # fmt: skip
    model.compile(**model.default_optimizers(1e-3))
    return model


def test_the_projection_critic_adds_the_label_embedding_dotted_with_the_features():
    critic = dcgan.critic((16, 16, 1), base_filters=4, num_classes=CLASSES)
    images = tf.random.stateless_uniform((4, 16, 16, 1), seed=(1, 2), minval=-1.0, maxval=1.0)
    labels = tf.constant([0, 1, 2, 1])
    flatten = next(layer for layer in critic.layers if isinstance(layer, keras.layers.Flatten))
    features = keras.Model(critic.inputs, flatten.output)([images, labels], training=False)
    score = critic.get_layer("score")
    table = critic.get_layer("class_projection").embeddings.numpy()
    table[:] = np.random.default_rng(0).standard_normal(table.shape)  # Trained tables are not zero.
    critic.get_layer("class_projection").embeddings.assign(table)
    expected = features.numpy() @ score.kernel.numpy() + score.bias.numpy()
    expected[:, 0] += np.sum(table[labels.numpy()] * features.numpy(), axis=1)
    np.testing.assert_allclose(critic([images, labels], training=False).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_one_latent_drawn_as_each_class_gives_different_images_and_labels_default_to_cycling():
    model = tiny_conditional()
    model.generator.get_layer(dcgan.CLASS_EMBEDDING).embeddings.assign(np.eye(CLASSES, 4) * 3.0)
    latents = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    tiles = studies.classes(model, latents)
    assert tiles.shape == (CLASSES, 2, 16, 16, 1)
    for label in range(CLASSES):
        drawn = np.asarray(model.decode_to_images(latents, np.full(2, label)))
        np.testing.assert_allclose(tiles[label], drawn, atol=1e-6)
    assert not np.allclose(tiles[0], tiles[1], atol=1e-4)
    # Without labels, row i is class i mod classes: every class equally often.
    cycled = np.asarray(model.decode_to_images(np.repeat(latents[:1], 4, axis=0)))
    np.testing.assert_allclose(cycled[3], tiles[0, 0], atol=1e-6)
    np.testing.assert_allclose(cycled[2], tiles[2, 0], atol=1e-6)
    np.testing.assert_array_equal(model.sample(3, seed=1, labels=2), model.sample(3, seed=1, labels=[2, 2, 2]))


def test_class_interpolation_ends_at_the_two_classes_images():
    model = tiny_conditional(ema_decay=0.9)  # Through the weight average, which is what samples come from.
    latents = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    tiles = studies.class_interpolate(model, latents, [(0, 2), (1, 0)], num_steps=4)
    assert tiles.shape == (2, 4, 16, 16, 1)
    for row, (first, second) in enumerate([(0, 2), (1, 0)]):
        ends = np.asarray(model.decode_to_images(np.repeat(latents[row : row + 1], 2, axis=0), [first, second]))
        np.testing.assert_allclose(tiles[row, 0], ends[0], atol=1e-5)
        np.testing.assert_allclose(tiles[row, -1], ends[1], atol=1e-5)


@pytest.mark.parametrize("per_step", [1, 2])
def test_each_image_arrives_with_its_own_label_and_a_resumed_epoch_with_the_same_labels(per_step):
    # Image i is filled with the value i, so a batch names the images it holds.
    count = 24
    images = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 2, 2, 1)).copy()
    labels = np.arange(count) * 7 % 5
    settings = dict(batch_size=4, value_range="unit", pixel_noise=None, seed=3, epochs=1, steps=3)
    straight = list(
        pipeline.train_dataset(images, initial_epoch=0, batches_per_step=per_step, labels=labels, **settings)
    )
    for batch, batch_labels in straight:
        indices = np.round(batch.numpy()[:, 0, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(batch_labels.numpy(), labels[indices])
    resumed = list(
        pipeline.train_dataset(
            images, initial_epoch=0, initial_step=1, batches_per_step=per_step, labels=labels, **settings
        )
    )
    for (batch, batch_labels), (expected_batch, expected_labels) in zip(resumed, straight[1:], strict=True):
        np.testing.assert_array_equal(batch.numpy(), expected_batch.numpy())
        np.testing.assert_array_equal(batch_labels.numpy(), expected_labels.numpy())
    with pytest.raises(ValueError, match="one per image"):
        pipeline.train_dataset(images, initial_epoch=0, labels=labels[:-1], **settings)


def test_the_gradient_penalty_is_of_the_critic_of_each_pairs_own_class():
    model = tiny_conditional("wgan_gp")
    projection = model.critic.get_layer("class_projection")
    projection.embeddings.assign(np.random.default_rng(0).standard_normal(projection.embeddings.shape))
    real = tf.random.stateless_uniform((4, 16, 16, 1), seed=(3, 4), minval=-1.0, maxval=1.0)
    fake = tf.random.stateless_uniform((4, 16, 16, 1), seed=(5, 6), minval=-1.0, maxval=1.0)
    labels = tf.constant([0, 1, 2, 0])
    weights = tf.constant([0.1, 0.5, 0.9, 0.3])
    model.uniform_noise = lambda shape: weights  # The interpolation weights e of x_hat = e x + (1 - e) G(z).
    penalty = model.gradient_penalty(real, fake, labels).numpy()
    interpolates = weights[:, None, None, None] * real + (1.0 - weights[:, None, None, None]) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = model.critic([interpolates, labels], training=True)
    norms = tf.sqrt(tf.reduce_sum(tf.square(tape.gradient(scores, interpolates)), axis=[1, 2, 3]))
    np.testing.assert_allclose(penalty, np.square(norms.numpy() - 1.0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(model.gradient_penalty(real, fake, tf.constant([1, 2, 0, 1])).numpy(), penalty, atol=1e-6)


def test_conditional_accuracy_and_the_fid_within_each_class_in_closed_form():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert sample_quality.conditional_accuracy(probabilities, [0, 1, 1, 1]) == 0.75
    rng = np.random.default_rng(0)
    real = rng.standard_normal((400, 2))
    real_labels = np.repeat([0, 1], 200)
    real[real_labels == 1] += 10.0
    # Samples of class 0 where class 0's real images are; "class 1" samples land on class 0 too.
    fake = rng.standard_normal((400, 2))
    fake_labels = np.repeat([0, 1], 200)
    by_class = sample_quality.fid_by_class(real, real_labels, fake, fake_labels, num_classes=3)
    assert by_class[0] < 0.2 and by_class[2] is None
    # Mean shift of (10, 10): ||mu_a - mu_b||^2 = 200, covariances alike.
    np.testing.assert_allclose(by_class[1], 200.0, rtol=0.1)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("conditional")
    config = tiny_train_config(
        write_labelled_npz(directory), directory / "run", model="gan", conditional=True, latent_dim=4, epochs=1,
        ema_decay=0.9,
    )  # fmt: skip
    trainer.train(config)
    return str(directory / "run")


def test_a_conditional_run_records_its_classes_and_reopens_conditional(conditional_run):
    record = json.load(open(os.path.join(conditional_run, "config.json")))
    assert record["class_names"] == ["0", "1", "2"] and record["config"]["num_classes"] == CLASSES
    run = reopen.load_run(conditional_run)
    assert run.model.num_classes == CLASSES and len(run.model.generator.inputs) == 2
    path, data = studies.run_study(run, "classes")
    assert os.path.exists(path) and data.shape[:2] == (CLASSES, studies.CLASS_COLUMNS)
    # Every column keeps its latent: column j of row y is latent j drawn as class y.
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((studies.CLASS_COLUMNS, 4)).astype(np.float32)
    np.testing.assert_allclose(data[1], np.asarray(run.model.decode_to_images(latents, np.ones(10, int))), atol=1e-5)
    labels = evaluate.sample_labels(run.model, 7)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2, 0])


def test_conditional_needs_labels_and_a_conditional_run(tmp_path, conditional_run):
    unlabelled = os.path.join(str(tmp_path), "unlabelled.npz")
    np.savez(unlabelled, x=random_images((20, 16, 16, 1)))
    with pytest.raises(errors.UserError, match=f"--conditional needs labelled images; {unlabelled} has none"):
        trainer.train(tiny_train_config(unlabelled, tmp_path / "a", model="gan", conditional=True))
    assert not os.path.exists(tmp_path / "a")
    unconditional = tmp_path / "plain"
    trainer.train(tiny_train_config(unlabelled, unconditional, model="gan", epochs=1))
    with pytest.raises(errors.UserError, match="--study=classes needs a class-conditional model"):
        studies.run_study(reopen.load_run(str(unconditional)), "classes")
    model = reopen.load_run(conditional_run).model
    with pytest.raises(ValueError, match="expected class indices from 0 to 2"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match="train it with --conditional"):
        reopen.load_run(str(unconditional)).model.sample(2, labels=1)


@pytest.mark.parametrize("name", ["vae", "mlp_vae", "lstm_vae"])
def test_a_conditional_vae_reads_the_label_in_both_networks_and_overfits_a_batch(name):
    model = models.build(name, (16, 16, 1), latent_dim=4, num_classes=CLASSES, seed=0, likelihood="bernoulli")
    model.compile(**model.default_optimizers(3e-3))
    assert [len(network.inputs) for network in (model.encoder, model.decoder)] == [2, 2]
    images = (random_images((8, 16, 16, 1)) > 127).astype(np.float32)
    labels = np.arange(8) % CLASSES
    # The label changes both q(z|x, y) and p(x|z, y).
    mean_0 = np.asarray(model.encode(images, np.zeros(8, int))[0])
    assert not np.allclose(mean_0, np.asarray(model.encode(images, np.ones(8, int))[0]), atol=1e-6)
    latents = np.zeros((2, 4), np.float32)
    drawn = np.asarray(model.decode_to_images(latents, [0, 1]))
    assert not np.allclose(drawn[0], drawn[1], atol=1e-6)
    first = model.train_on_batch(images, labels, return_dict=True)["neg_elbo"]
    for _ in range(60):
        last = model.train_on_batch(images, labels, return_dict=True)["neg_elbo"]
    assert last < 0.7 * first, (first, last)
    with pytest.raises(ValueError, match="encodes an image with its label"):
        model.encode(images)


def test_the_likelihood_of_a_conditional_vae_is_of_each_image_given_its_own_label():
    from keras_gen.evaluation import likelihood

    model = models.build("mlp_vae", (16, 16, 1), latent_dim=2, num_classes=CLASSES, seed=0, likelihood="bernoulli")
    images = (random_images((6, 16, 16, 1)) > 127).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    result = likelihood.evaluate_vae(model, batches, iw_samples=2, seed=0)
    expected = likelihood.evaluate_vae(model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(6), 2, 0)
    assert result["num_images"] == 6
    # The bound depends on the labels given: the one-hot weights are random at the start.
    other = likelihood.evaluate_vae(
        model, tf.data.Dataset.from_tensor_slices((images, (labels + 1) % CLASSES)).batch(3), iw_samples=2, seed=0
    )
    assert abs(other["neg_elbo"] - result["neg_elbo"]) > 1e-3
    np.testing.assert_allclose(result["kl"], expected["kl"], rtol=1e-5)


def test_the_analogy_study_draws_each_test_images_posterior_as_every_class(tmp_path):
    config = tiny_train_config(
        write_labelled_npz(tmp_path, count=120), tmp_path / "run", model="vae", conditional=True, latent_dim=4,
        epochs=1,
    )  # fmt: skip
    trainer.train(config)
    run = reopen.load_run(str(tmp_path / "run"))
    path, data = studies.run_study(run, "analogy")
    assert os.path.exists(path) and data.shape[:2] == (studies.RECONSTRUCT_COLUMNS, 1 + CLASSES)
    images, labels = next(iter(reopen.eval_split(run, max_images=studies.RECONSTRUCT_COLUMNS)[0].unbatch().batch(10)))
    np.testing.assert_allclose(data[:, 0], images.numpy(), atol=1e-6)
    mean = run.model.encode(images, labels)[0]
    np.testing.assert_allclose(data[:, 2], run.model.decode_to_images(mean, np.full(10, 1)), atol=1e-5)
    for study in ("reconstruct", "interpolate", "scatter", "traverse"):
        assert os.path.exists(studies.run_study(run, study, num_images=6)[0])
    with pytest.raises(errors.UserError, match="--study_class=5; expected a class index from 0 to 2"):
        studies.run_study(run, "traverse", study_class=5)
    assert os.path.exists(studies.run_study(run, "analogy", study_class=5)[0])  # It draws every class anyway.
    with pytest.raises(errors.UserError, match="class_interpolate walks between a GAN's or WGAN's label embeddings"):
        studies.run_study(run, "class_interpolate")
    # A test split smaller than the two batches interpolate looks through for two images of a class.
    wide = run._replace(config=dataclasses.replace(run.config, batch_size=64))
    _, data = studies.run_study(wide, "interpolate")
    assert data.shape[:2] == (2, studies.INTERPOLATION_STEPS)


def test_with_spectral_norm_the_class_projection_is_normalized_too():
    from keras_gen.networks import spectral_norm

    model = tiny_conditional(gan_loss="hinge", spectral_norm=True)
    layer = model.critic.get_layer("class_projection")
    assert isinstance(layer, spectral_norm.SNEmbedding)
    layer.embeddings.assign(np.random.default_rng(0).standard_normal(layer.embeddings.shape) * 5.0)
    images, labels = random_images((8, 16, 16, 1)).astype(np.float32) / 127.5 - 1.0, np.arange(8) % CLASSES
    for _ in range(20):  # One power iteration per training call of the critic (two per update).
        model.train_on_batch(images, labels)
    assert spectral_norm.spectral_norm_of(layer.normalized_kernel(False)) == pytest.approx(1.0, abs=0.02)
    assert spectral_norm.spectral_norm_of(layer.embeddings) > 2.0  # The table itself is not rescaled.


def test_conditional_batch_norm_normalizes_over_the_batch_then_scales_and_shifts_each_row_by_its_class():
    generator = dcgan.generator((16, 16, 1), 4, base_filters=4, num_classes=CLASSES, class_conditioning="batch_norm")
    assert dcgan.CLASS_EMBEDDING not in {layer.name for layer in generator.layers}  # The label acts only here.
    norm = next(layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert not (norm.center or norm.scale)
    add = next(layer for layer in generator.layers if isinstance(layer, keras.layers.Add))
    scale, shift = [layer for layer in generator.layers if isinstance(layer, keras.layers.Embedding)][:2]
    rng = np.random.default_rng(0)
    for table in (scale, shift):  # Trained tables are not the initial ones and zeros.
        table.embeddings.assign(rng.standard_normal(table.embeddings.shape).astype(np.float32))
    probe = keras.Model(generator.inputs, [norm.input, add.output])
    latents, labels = rng.standard_normal((6, 4)).astype(np.float32), np.array([0, 1, 2, 2, 1, 0], np.int32)
    before, after = (value.numpy() for value in probe([latents, labels], training=True))
    mean, variance = before.mean(axis=(0, 1, 2)), before.var(axis=(0, 1, 2))
    normalized = (before - mean) / np.sqrt(variance + 1e-5)
    table_scale, table_shift = scale.embeddings.numpy()[labels], shift.embeddings.numpy()[labels]
    expected = normalized * table_scale[:, None, None, :] + table_shift[:, None, None, :]
    np.testing.assert_allclose(after, expected, rtol=1e-3, atol=1e-3)


def test_a_conditional_batch_norm_gan_trains_draws_each_class_and_has_no_embedding_to_interpolate():
    model = tiny_conditional(class_conditioning="batch_norm", ema_decay=0.9)
    images, labels = random_images((8, 16, 16, 1)).astype(np.float32) / 127.5 - 1.0, np.arange(8) % CLASSES
    for _ in range(3):
        logs = model.train_on_batch(images, labels, return_dict=True)
    assert all(np.isfinite(value) for value in logs.values())
    model.refresh_sampling_statistics()  # The average's standing statistics, through the class tables.
    latents = np.zeros((CLASSES, 4), np.float32)
    drawn = np.asarray(model.decode_to_images(latents, np.arange(CLASSES)))
    assert not np.allclose(drawn[0], drawn[1], atol=1e-6)  # One latent, another class, another image.
    with pytest.raises(errors.UserError, match="conditional batch norm"):
        studies.class_interpolate(model, latents[:1], [(0, 1)])


def test_conditional_batch_norm_without_classes_is_refused_by_the_builder_too():
    with pytest.raises(errors.UserError, match="--class_conditioning=batch_norm says how a label enters"):
        models.build("gan", (16, 16, 1), latent_dim=4, class_conditioning="batch_norm")
