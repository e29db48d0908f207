"""Colour images end to end: SVHN from its own .mat files, the real CIFAR-10 subset, and SVHN's
one-line message where it cannot be had."""

import json
import os

import numpy as np
import pytest
import scipy.io

from conftest import random_images
from keras_gen import errors
from keras_gen import io_utils
from keras_gen.data import datasets
from keras_gen.runs import train_config

CIFAR10_SUBSET = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10-subset")
TINY = ["--latent_dim=2", "--base_filters=4", "--batch_size=4", "--epochs=1", "--steps_per_epoch=2", "--grid_size=4"]


def write_svhn_mats(directory, counts=(("train", 24), ("test", 8))):
    """SVHN's exact layout: X is (32, 32, 3, N) uint8, y is (N, 1) with 10 standing for the digit 0."""
    os.makedirs(directory, exist_ok=True)
    for split, count in counts:
        images = random_images((count, 32, 32, 3), seed=count)
        labels = (np.arange(count) % 10 + 1).reshape(-1, 1).astype(np.uint8)
        scipy.io.savemat(
            os.path.join(directory, f"{split}_32x32.mat"), {"X": np.transpose(images, (1, 2, 3, 0)), "y": labels}
        )
    return directory


def test_wgan_trains_on_svhn_mat_files_from_the_command_line(tmp_path, main_in_process):
    data_dir = write_svhn_mats(str(tmp_path / "svhn"))
    run_dir = tmp_path / "run"
    status, lines = main_in_process(
        "--model=wgan", "--dataset=svhn", f"--data_dir={data_dir}", "--critic_steps=2", f"--out_dir={run_dir}",
        "--noexport", *TINY,
    )  # fmt: skip
    assert status == 0, lines
    record = io_utils.read_json(str(run_dir / "config.json"))
    assert record["image_shape"] == [32, 32, 3]
    assert record["data_source"] == os.path.abspath(data_dir)
    assert os.path.exists(run_dir / "samples" / "epoch_0001.png")
    # SVHN's 10 is read as the digit 0.
    loaded = datasets.load("svhn", 32, data_dir=data_dir)
    assert loaded["train"].labels[:10].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_svhn_without_internet_says_in_one_line_how_to_supply_the_files(tmp_path, main_in_process, monkeypatch):
    def no_internet(tfds_name, data_dir, download):
        # What tfds' download raises with no route to the internet.
        raise errors.DataNotFoundError(f"tfds could not provide {tfds_name!r}: DownloadError: Failed to get url")

    monkeypatch.setattr(datasets, "_load_tfds", no_internet)
    monkeypatch.setattr(datasets, "DEBIAN_DATASETS_ROOT", str(tmp_path / "nowhere"))
    status, lines = main_in_process("--model=wgan", "--dataset=svhn", f"--out_dir={tmp_path / 'run'}")
    assert status == 2 and len(lines) == 1, lines
    assert "download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/" in lines[0]
    assert "--data_dir=FOLDER" in lines[0] and "svhn_cropped" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not os.path.isdir(CIFAR10_SUBSET), reason="../shared/data/cifar10-subset is not on this machine")
def test_vae_trains_evaluates_and_explores_on_the_real_cifar10_subset(tmp_path, main_in_process):
    run_dir = tmp_path / "run"
    common = [f"--out_dir={run_dir}"]
    status, lines = main_in_process(
        "--model=vae", "--dataset=cifar10", f"--data_dir={CIFAR10_SUBSET}", "--noexport", *common, *TINY
    )
    assert status == 0, lines
    record = io_utils.read_json(str(run_dir / "config.json"))
    assert record["image_shape"] == [32, 32, 3] and record["config"]["likelihood"] == "continuous_bernoulli"
    loaded = datasets.load("cifar10", 32, data_dir=CIFAR10_SUBSET)
    assert loaded["train"].images.shape == (5085, 32, 32, 3) and loaded["test"].images.shape == (1017, 32, 32, 3)
    assert loaded["test"].labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # As the subset's README says.

    status, lines = main_in_process("--mode=eval", "--num_samples=8", "--iw_samples=2", "--metrics=likelihood", *common)
    assert status == 0, lines
    likelihood = json.loads(main_in_process.stdout)["likelihood"]
    # Continuous Bernoulli over 32*32*3 pixels: a finite value per image, and IWAE no worse than the ELBO.
    # The ELBO's KL is in closed form while the IWAE samples log q/p, so at k = 2 the IWAE may lie above
    # the ELBO by Monte Carlo noise (0.008 nats at 17,054 was seen): the margin is relative, not one ulp.
    assert np.isfinite(likelihood["neg_elbo"])
    assert likelihood["iwae_nll"] <= likelihood["neg_elbo"] * (1 + 1e-5) + 1e-2, likelihood

    status, lines = main_in_process("--mode=explore", "--study=interpolate", *common)
    assert status == 0, lines
    assert os.path.exists(run_dir / "explore" / "interpolate.png")


def test_tfds_without_internet_fails_at_once_instead_of_retrying_for_minutes(tmp_path, monkeypatch):
    import socket

    looked_up = []

    def no_dns(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(errors.DataNotFoundError) as raised:
        datasets.load("svhn", 32, debian_root=str(tmp_path / "nowhere"))
    message = str(raised.value)
    assert looked_up == ["ufldl.stanford.edu"]
    assert "no internet connection (ufldl.stanford.edu cannot be resolved)" in message
    assert "download train_32x32.mat and test_32x32.mat" in message and "\n" not in message


@pytest.mark.skipif(not os.path.isdir(CIFAR10_SUBSET), reason="../shared/data/cifar10-subset is not on this machine")
@pytest.mark.parametrize(
    "model, extra", [("mlp_vae", {}), ("lstm_vae", {}), ("gan", {}), ("wgan", {"critic_steps": 2}),
                     ("wgan", {"critic_steps": 2, "gradient_penalty_weight": 10.0})],
)  # fmt: skip
def test_every_model_trains_on_the_cifar10_subset_in_colour(tmp_path, model, extra):
    from keras_gen.training import trainer

    config = train_config.TrainConfig(
        model=model, dataset="cifar10", data_dir=CIFAR10_SUBSET, latent_dim=2, base_filters=4, hidden_units=8,
        batch_size=4, epochs=1, steps_per_epoch=2, grid_size=4, out_dir=str(tmp_path / "run"), verbose=0,
        **extra,
    )  # fmt: skip
    trained, _ = trainer.train(config)
    latents = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    images = np.asarray(trained.decode_to_images(latents))
    assert images.shape == (3, 32, 32, 3) and np.isfinite(images).all()
    # Colour, not grey repeated: the three channels of the samples differ.
    assert np.abs(images[..., 0] - images[..., 1]).max() > 0
