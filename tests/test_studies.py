"""Latent-space studies and reopening a run directory."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_train_config, write_idx_folder
from keras_gen import errors, models, plotting, studies
from keras_gen.runs import reopen
from keras_gen.runs import train_config
from keras_gen.training import trainer


@pytest.fixture(params=["vae", "wgan"])
def model(request):
    return models.build(request.param, (16, 16, 1), latent_dim=4, base_filters=4, seed=0)


def test_traverse_grid_and_zero_epsilon_is_the_unperturbed_decode(model):
    latent = np.random.default_rng(0).standard_normal(4).astype(np.float32)
    tiles = studies.traverse(model, latent, dims=[0, 2, 3])
    assert tiles.shape == (3, 10, 16, 16, 1)
    zero_column = studies.TRAVERSE_EPSILONS.index(0)
    expected = np.asarray(model.decode_to_images(latent[np.newaxis]))[0]
    for row in range(3):
        np.testing.assert_allclose(tiles[row, zero_column], expected, atol=1e-5)
    # Perturbing a dimension changes the decode.
    assert not np.allclose(tiles[0, 0], expected, atol=1e-4)


def test_interpolate_ends_at_the_two_decodes_and_fades_linearly(model):
    start, end = np.zeros(4, np.float32), np.ones(4, np.float32)
    latent_path, crossfade = studies.interpolate(model, start, end, num_steps=5)
    ends = np.asarray(model.decode_to_images(np.stack([start, end])))
    assert latent_path.shape == crossfade.shape == (5, 16, 16, 1)
    np.testing.assert_allclose(latent_path[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(latent_path[-1], ends[1], atol=1e-5)
    np.testing.assert_allclose(crossfade[2], 0.5 * ends[0] + 0.5 * ends[1], atol=1e-5)


def test_manifold_grid_follows_the_prior_quantiles_with_z1_upwards():
    model = models.build("vae", (16, 16, 1), latent_dim=2, base_filters=4, seed=0)
    tiles = studies.manifold(model, size=5)
    axis = studies.manifold_axis(5)  # quantiles 0.05, 0.275, 0.5, 0.725, 0.95 of N(0, 1)
    np.testing.assert_allclose(axis, [-1.6449, -0.5978, 0.0, 0.5978, 1.6449], atol=1e-4)
    # Top-left tile: smallest z[0], largest z[1].
    expected = np.asarray(model.decode_to_images(np.array([[axis[0], axis[-1]]], np.float32)))[0]
    np.testing.assert_allclose(tiles[0, 0], expected, atol=1e-5)
    with pytest.raises(errors.UserError, match="latent_dim=4"):
        studies.manifold(models.build("vae", (16, 16, 1), latent_dim=4, base_filters=4))


def test_pca_projection_keeps_a_plane_exactly():
    rng = np.random.default_rng(0)
    plane = rng.standard_normal((200, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    projected, kept = studies.project_2d(plane @ basis.T + 7.0)
    assert projected.shape == (200, 2) and kept == pytest.approx(1.0)
    # Distances between points survive the projection (it is a rotation of the plane).
    distances = lambda points: np.linalg.norm(points[:, None] - points[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(projected), distances(plane), atol=1e-8)
    two_d = rng.standard_normal((10, 2))
    assert studies.project_2d(two_d)[0] is two_d


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """Tiny VAE runs with 2 and 3 latents on a labelled MNIST-format folder of 24 test images."""
    root = tmp_path_factory.mktemp("studies")
    data_dir = str(root / "mnist")
    write_idx_folder(data_dir, num_train=40, num_test=24)
    trained = {}
    for latent_dim in (2, 3):
        config = tiny_train_config(
            data_dir, root / f"run_z{latent_dim}", dataset="mnist", latent_dim=latent_dim, epochs=1
        )
        trained[latent_dim] = trainer.train(config)
    return trained


def test_reopened_run_gives_the_same_outputs(trained_runs):
    trained, run_dir = trained_runs[2]
    run = reopen.load_run(run_dir)
    latents = np.random.default_rng(1).standard_normal((2, 2)).astype(np.float32)
    np.testing.assert_allclose(run.model.decode_to_images(latents), trained.decode_to_images(latents), atol=1e-6)
    assert run.config.latent_dim == 2 and run.epochs == 1 and run.directory == run_dir


def tensorboard_tags(run_dir):
    tags = set()
    for path in glob.glob(os.path.join(run_dir, "logs", "explore", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.parametrize(
    "study, grid",
    [
        ("reconstruct", (3, studies.RECONSTRUCT_COLUMNS)),
        ("traverse", (2, len(studies.TRAVERSE_EPSILONS))),
        ("interpolate", (2, studies.INTERPOLATION_STEPS)),
        ("manifold", (studies.MANIFOLD_SIZE, studies.MANIFOLD_SIZE)),
        ("scatter", (24, 2)),
    ],
)
def test_every_study_writes_its_documented_figure(trained_runs, study, grid):
    _, run_dir = trained_runs[2]
    run = reopen.load_run(run_dir)
    path, data = studies.run_study(run, study, seed=0)
    assert path == os.path.join(run_dir, "explore", f"{study}.png")
    assert os.path.getsize(path) > 5000 and data.shape[:2] == grid
    assert study in tensorboard_tags(run_dir)
    if study == "reconstruct":
        batches, _ = reopen.eval_split(run, max_images=studies.RECONSTRUCT_COLUMNS)
        np.testing.assert_allclose(data[0], np.concatenate(list(batches.as_numpy_iterator())), atol=1e-6)
    if study == "interpolate":
        # Row (b) cross-fades two real test images: its ends are images of the test split.
        test_images, _ = reopen.eval_split(run, max_images=100)
        test_images = np.concatenate(list(test_images.as_numpy_iterator()))
        for end in (data[1, 0], data[1, -1]):
            assert np.min(np.abs(test_images - end).reshape(len(test_images), -1).max(axis=1)) < 1e-6


def test_studies_beyond_two_latents_and_without_an_encoder(trained_runs, tmp_path):
    _, run_dir = trained_runs[3]
    run = reopen.load_run(run_dir)
    _, points = studies.run_study(run, "scatter", out_dir=str(tmp_path))
    assert points.shape == (24, 2)  # PCA of the 3-D posterior means
    with pytest.raises(errors.UserError, match="latent_dim=3"):
        studies.run_study(run, "manifold", out_dir=str(tmp_path))
    with pytest.raises(errors.UserError, match=r"--dims=\[7\] outside the latent dimensions 0..2"):
        studies.run_study(run, "traverse", out_dir=str(tmp_path), dims=[0, 7])
    generator = reopen.LoadedRun(
        models.build("wgan", (16, 16, 1), latent_dim=2, base_filters=4),
        train_config.TrainConfig(model="wgan"),
        {},
        "",
        0,
        "",
    )
    for study in ("reconstruct", "scatter"):
        with pytest.raises(errors.UserError, match="needs a model with an encoder"):
            studies.run_study(generator, study, out_dir=str(tmp_path))
    one_latent = generator._replace(model=models.build("vae", (16, 16, 1), latent_dim=1, base_filters=4))
    with pytest.raises(errors.UserError, match="--study=scatter plots two latent dimensions; .* latent_dim=1"):
        studies.run_study(one_latent, "scatter", out_dir=str(tmp_path))
    # Generators interpolate between prior draws and have a manifold at 2 latents.
    for study, grid in (("interpolate", (2, 10)), ("manifold", (15, 15))):
        _, tiles = studies.run_study(generator, study, out_dir=str(tmp_path))
        assert tiles.shape[:2] == grid


def test_the_scatter_gives_every_class_its_own_colour_past_twenty_classes(tmp_path, monkeypatch):
    colours = []
    scatter = plotting.plt.Axes.scatter

    def recording(self, *args, **kwargs):
        colours.append(tuple(kwargs["color"]))
        return scatter(self, *args, **kwargs)

    monkeypatch.setattr(plotting.plt.Axes, "scatter", recording)
    labels = np.arange(25).repeat(2)
    points = np.random.default_rng(0).standard_normal((50, 2))
    plotting.scatter_by_class(points, labels, None, str(tmp_path / "s.png"), ("a", "b"), "25 classes")
    assert len(colours) == 25 and len(set(colours)) == 25


def test_load_run_of_a_directory_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(errors.UserError, match="holds no config.json"):
        reopen.load_run(str(tmp_path))
