"""Feature networks: training, saving with a content hash, refusing stale files, and real features."""

import json
import os

import numpy as np
import pytest

from conftest import FASHION_MNIST_DIR, write_idx_folder, write_npz
from keras_gen import errors, io_utils
from keras_gen.data import datasets
from keras_gen.evaluation import feature_nets, sample_quality


def tiny_classifier(tmp_path, data_dir, **overrides):
    settings = dict(
        dataset="mnist", data_dir=data_dir, image_size=16, epochs=1, steps_per_epoch=2, batch_size=8,
        root=str(tmp_path / "feature_nets"), verbose=0,
    )  # fmt: skip
    settings.update(overrides)
    return feature_nets.ClassifierConfig(**settings)


@pytest.fixture
def labelled_folder(tmp_path):
    directory = str(tmp_path / "mnist")
    write_idx_folder(directory, num_train=40, num_test=24)
    return directory


def test_trained_classifier_is_saved_with_its_accuracy_and_hash_and_reloads(tmp_path, labelled_folder):
    config = tiny_classifier(tmp_path, labelled_folder)
    metadata = feature_nets.train_classifier(config)
    directory = os.path.join(config.root, "mnist")
    with open(os.path.join(directory, feature_nets.METADATA_FILE)) as stream:
        assert json.load(stream) == metadata
    path = os.path.join(directory, metadata["model_file"])
    assert io_utils.sha256_of(path) == metadata["sha256"] and metadata["sha256"][:12] in path
    assert 0.0 <= metadata["test_accuracy"] <= 1.0 and metadata["test_images"] == 24
    assert metadata["image_shape"] == [16, 16, 1] and metadata["num_classes"] == 10

    net = feature_nets.load_classifier("mnist", config.root)
    assert net.identity["sha256"] == metadata["sha256"] and net.identity["kind"] == "classifier"
    images = np.random.default_rng(0).random((7, 16, 16, 1)).astype(np.float32)
    features, probabilities = net.extract(images, batch_size=3)
    assert features.shape == (7, 128) and probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # Deterministic (dropout off), and other image sizes are resized to the network's.
    np.testing.assert_allclose(net.extract(images)[0], features, rtol=1e-5, atol=1e-6)
    assert net.extract(np.zeros((2, 32, 32, 1), np.float32))[0].shape == (2, 128)

    assert net.identity["weights_sha256"] == metadata["weights_sha256"] == feature_nets.weights_sha256(net.model)

    # The same training elsewhere: the same weights, whatever the file's own hash (the archive records
    # when it was saved), so its numbers compare with the first network's.
    again = feature_nets.train_classifier(tiny_classifier(tmp_path, labelled_folder, root=str(tmp_path / "again")))
    assert again["weights_sha256"] == metadata["weights_sha256"]

    # Retraining replaces the network; the old file goes only once the new one is current.
    second = feature_nets.train_classifier(tiny_classifier(tmp_path, labelled_folder, seed=1))
    assert second["sha256"] != metadata["sha256"] and second["weights_sha256"] != metadata["weights_sha256"]
    assert sorted(name for name in os.listdir(directory) if name.endswith(".keras")) == [second["model_file"]]


def test_missing_or_changed_feature_network_is_a_clear_error(tmp_path, labelled_folder):
    root = str(tmp_path / "feature_nets")
    with pytest.raises(errors.UserError, match="no feature network for 'svhn'.*--mode=train_classifier --dataset=svhn"):
        feature_nets.load("classifier", "svhn", root)
    metadata = feature_nets.train_classifier(tiny_classifier(tmp_path, labelled_folder))
    path = os.path.join(root, "mnist", metadata["model_file"])
    with open(path, "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(errors.UserError, match="has changed since it was trained"):
        feature_nets.load("classifier", "mnist", root)
    os.remove(path)
    with pytest.raises(errors.UserError, match="is missing"):
        feature_nets.load("classifier", "mnist", root)


def test_datasets_without_labels_cannot_train_a_classifier(tmp_path):
    config = tiny_classifier(tmp_path, write_npz(tmp_path, (40, 16, 16, 1)), dataset="custom")
    with pytest.raises(errors.UserError, match="needs class labels"):
        feature_nets.train_classifier(config)


def test_inception_without_its_weights_says_how_to_get_them(tmp_path, monkeypatch):
    import urllib.error

    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setattr(file_utils.config, "keras_home", lambda: str(tmp_path))  # an empty cache
    with pytest.raises(
        errors.UserError, match="InceptionV3 ImageNet weights could not be loaded.*--features=classifier"
    ):
        feature_nets.load("inception", "fashion_mnist")


def test_on_real_fashion_mnist_train_is_far_closer_to_test_than_shuffled_pixels(tmp_path):
    if not os.path.isdir(FASHION_MNIST_DIR):
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_MNIST_DIR} is missing: .ci/run must install dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    # A briefly trained classifier (150 steps) already separates real images from scrambled ones.
    config = feature_nets.ClassifierConfig(
        dataset="fashion_mnist", image_size=16, epochs=1, steps_per_epoch=150, root=str(tmp_path), verbose=0
    )
    metadata = feature_nets.train_classifier(config)
    assert metadata["test_accuracy"] > 0.7, metadata
    net = feature_nets.load_classifier("fashion_mnist", str(tmp_path))
    splits = datasets.load("fashion_mnist", 16)
    test = splits["test"].images[:2000].astype(np.float32) / 255.0
    train = splits["train"].images[:2000].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(image.reshape(-1)).reshape(image.shape) for image in test])
    real = net.extract(test)
    near = sample_quality.compare(real, net.extract(train))
    far = sample_quality.compare(real, net.extract(shuffled))
    # Observed (seed 0, 82% accuracy): FID 0.57 vs 369, KID 0.005 vs 91, precision/recall 0.90/0.89 vs 0.09/0.00.
    assert near["fid"] < 0.05 * far["fid"], (near, far)
    assert near["kid_mean"] < 0.05 * far["kid_mean"], (near, far)
    assert near["precision"] > 0.5 > far["precision"] and near["recall"] > 0.5 > far["recall"], (near, far)


def test_eval_of_a_gan_run_records_sample_quality_and_the_feature_net(tmp_path, labelled_folder, monkeypatch):
    from conftest import tiny_train_config
    from keras_gen.evaluation import evaluate
    from keras_gen.training import trainer

    config = tiny_classifier(tmp_path, labelled_folder)
    metadata = feature_nets.train_classifier(config)
    run_config = tiny_train_config(labelled_folder, tmp_path / "gan", model="gan", dataset="mnist", epochs=1)
    _, run_dir = trainer.train(run_config)
    with pytest.raises(errors.UserError, match=r"--num_samples=12 .* needs at least 20 .* --metrics=likelihood"):
        evaluate.evaluate_run(run_dir, num_samples=12, feature_nets_root=config.root)
    compared, compare = [], evaluate.sample_quality.compare

    def counting(real, fake, seed=0):
        compared.append((len(real[0]), len(fake[0])))
        return compare(real, fake, seed)

    monkeypatch.setattr(evaluate.sample_quality, "compare", counting)
    # More than the 24 test images: the samples and the training images' floor are as many as they.
    record = evaluate.evaluate_run(run_dir, num_samples=40, feature_nets_root=config.root)
    assert compared == [(24, 24), (24, 24)]
    with open(os.path.join(run_dir, "metrics.json")) as stream:
        assert json.load(stream) == record
    quality = record["sample_quality"]
    assert quality["feature_net"]["sha256"] == metadata["sha256"]
    assert quality["num_real"] == quality["num_generated"] == 24 and quality["seed"] == 0
    assert "likelihood" not in record  # A GAN has no likelihood to report.
    for result in (quality, quality["real_train_vs_test"]):
        assert result["fid"] >= 0 and 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
        assert 1 <= result["inception_score_mean"] <= 10


def test_inception_wiring_resizes_grey_images_to_its_input():
    net = feature_nets.load_inception(weights=None)  # Random weights: the wiring, not the numbers.
    assert net.image_shape == (299, 299, 3) and net.identity["kind"] == "inception_v3"
    features, probabilities = net.extract(np.random.default_rng(0).random((3, 32, 32, 1)), batch_size=2)
    assert features.shape == (3, 2048) and probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
