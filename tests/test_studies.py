"""Latent-space studies and reopening a run directory."""

import os

import numpy as np
import pytest

from conftest import tiny_train_config, write_npz
from keras_gen import errors, models, runs, studies
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


def test_studies_on_a_reopened_run(tmp_path):
    data_path = write_npz(tmp_path, (40, 16, 16, 1))
    config = tiny_train_config(data_path, tmp_path / "run", z_dim=3, epochs=1, steps_per_epoch=2)
    trained, run_dir = trainer.train(config)
    model, loaded_config, _ = runs.load_run(run_dir)
    latents = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    # The checkpoint reloads to the same outputs.
    np.testing.assert_allclose(model.decode_to_images(latents), trained.decode_to_images(latents), atol=1e-6)
    assert loaded_config.z_dim == 3
    for study, shape in (("traverse", (3, 10)), ("interpolate", (2, 10))):
        figure, tiles = studies.run_study(model, study, run_dir, seed=0, title="test")
        assert os.path.getsize(figure) > 5000 and tiles.shape[:2] == shape
    assert os.listdir(os.path.join(run_dir, "logs", "explore"))
    with pytest.raises(errors.UserError, match=r"--dims=\[7\] outside the latent dimensions 0..2"):
        studies.run_study(model, "traverse", run_dir, dims=[0, 7])


def test_load_run_of_a_directory_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(errors.UserError, match="holds no config.json"):
        runs.load_run(str(tmp_path))
