"""Every data source, in the real formats, and the errors for bad input."""

import gzip
import os

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import FASHION_MNIST_DIR, random_images, write_idx_folder
from keras_gen import errors
from keras_gen.data import datasets, pipeline, readers


def test_idx_folder_round_trip(idx_folder):
    directory, written = idx_folder
    splits = readers.read_local(directory, image_size=32)
    for split in ("train", "test"):
        images, labels = written[split]
        np.testing.assert_array_equal(splits[split].images[..., 0], images)
        np.testing.assert_array_equal(splits[split].labels, labels)


def test_idx_folder_loads_as_custom_dataset_padded_to_32(idx_folder):
    directory, written = idx_folder
    loaded = datasets.load("custom", 32, data_dir=directory)
    train = loaded["train"].images
    assert train.shape == (12, 32, 32, 1) and train.dtype == np.uint8
    # 28 -> 32 pads two zero pixels on every side and keeps the original pixels.
    np.testing.assert_array_equal(train[:, 2:30, 2:30, 0], written["train"][0])
    assert train[:, :2].max() == 0 and train[:, 30:].max() == 0


def test_truncated_idx_is_a_clear_error(tmp_path, idx_folder):
    directory, _ = idx_folder
    path = os.path.join(directory, "train-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as stream:
        content = stream.read()
    with gzip.open(path, "wb") as stream:
        stream.write(content[:-100])
    with pytest.raises(errors.UserError, match="train-images.*truncated or corrupt.*9408 bytes"):
        datasets.load("custom", 32, data_dir=directory)


def test_idx_with_wrong_magic_is_a_clear_error(tmp_path):
    path = str(tmp_path / "train-images-idx3-ubyte")
    with open(path, "wb") as stream:
        stream.write(b"\x89PNG not an idx file")
    with pytest.raises(errors.UserError, match="not an IDX file"):
        readers.read_idx(path)


def test_npz_with_x_and_y_is_split_deterministically(tmp_path):
    images, labels = random_images((20, 16, 16, 3)), np.arange(20)
    np.savez(tmp_path / "data.npz", x=images, y=labels)
    first = datasets.load("custom", 16, data_dir=str(tmp_path / "data.npz"))
    second = datasets.load("custom", 16, data_dir=str(tmp_path))  # A folder holding one .npz.
    assert first["train"].images.shape == (18, 16, 16, 3) and first["test"].images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(first["test"].labels, second["test"].labels)
    # Every example lands in exactly one split, unchanged.
    together = np.concatenate([first["train"].labels, first["test"].labels])
    assert sorted(together) == list(range(20))
    np.testing.assert_array_equal(first["test"].images[0], images[first["test"].labels[0]])


def test_npz_in_keras_layout(tmp_path):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=random_images((6, 28, 28)),
        y_train=np.arange(6),
        x_test=random_images((3, 28, 28), seed=1),
        y_test=np.arange(3),
    )
    loaded = datasets.load("custom", 16, data_dir=str(tmp_path / "mnist.npz"))
    assert loaded["train"].images.shape == (6, 16, 16, 1) and loaded["test"].images.shape == (3, 16, 16, 1)


def test_npz_without_x_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "data.npz", images=random_images((4, 8, 8)))
    with pytest.raises(errors.UserError, match=r"expected 'x'.*\['images'\]|\['images'\].*expected 'x'"):
        datasets.load("custom", 16, data_dir=str(tmp_path / "data.npz"))


@pytest.mark.parametrize("kind", ["npz", "compressed_npz", "idx_gz"])
def test_a_damaged_file_is_a_one_line_error_wherever_the_damage_is(tmp_path, kind):
    if kind == "idx_gz":
        directory = str(tmp_path / "idx")
        write_idx_folder(directory, num_train=40, num_test=8)
        path = os.path.join(directory, "train-images-idx3-ubyte.gz")
    else:
        directory = path = str(tmp_path / "data.npz")
        save = np.savez_compressed if kind == "compressed_npz" else np.savez
        save(path, x=random_images((40, 8, 8)), y=np.arange(40) % 3)
    with open(path, "rb") as stream:
        intact = stream.read()
    damaged = [intact[: len(intact) // 2]]  # Truncated, then one byte flipped at 40 places.
    for position in np.linspace(0, len(intact) - 1, 40).astype(int):
        flipped = bytearray(intact)
        flipped[position] ^= 0xFF
        damaged.append(bytes(flipped))
    failures = 0
    for content in damaged:
        with open(path, "wb") as stream:
            stream.write(content)
        try:
            datasets.load("custom", 8, data_dir=directory)
        except errors.UserError as error:
            assert path in str(error) and "\n" not in str(error)
            failures += 1
    assert failures >= 10  # Most damage is caught; what is not left the arrays readable as images.


def test_svhn_mat_files(tmp_path):
    for split, count in (("train", 5), ("test", 3)):
        images = random_images((count, 32, 32, 3), seed=count)
        labels = np.arange(1, count + 1).reshape(-1, 1)
        labels[0] = 10  # SVHN writes digit 0 as 10.
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": np.transpose(images, (1, 2, 3, 0)), "y": labels})
    loaded = datasets.load("custom", 32, data_dir=str(tmp_path))
    assert loaded["train"].images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(loaded["train"].images, random_images((5, 32, 32, 3), seed=5))
    assert list(loaded["train"].labels) == [0, 2, 3, 4, 5]


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))


def test_image_folder_with_class_subfolders(tmp_path):
    for index in range(10):
        label = "cats" if index % 2 else "dogs"
        _write_png(str(tmp_path / label / f"{index}.png"), random_images((40, 48, 3), seed=index))
    loaded = datasets.load("custom", 16, data_dir=str(tmp_path))
    assert loaded["train"].images.shape == (9, 16, 16, 3) and loaded["test"].images.shape == (1, 16, 16, 3)
    assert set(loaded["train"].labels) == {0, 1}


def test_image_folder_with_train_and_test_splits(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        for index in range(count):
            _write_png(str(tmp_path / split / f"{index}.png"), random_images((16, 16, 1), seed=index))
    loaded = datasets.load("custom", 16, data_dir=str(tmp_path))
    assert len(loaded["train"].images) == 3 and len(loaded["test"].images) == 2
    assert loaded["train"].labels is None
    written = sorted(random_images((16, 16, 1), seed=index).tobytes() for index in range(3))
    assert sorted(image.tobytes() for image in loaded["train"].images) == written


def test_a_split_folder_is_read_shuffled_so_its_first_test_images_hold_every_class(tmp_path):
    # Found class by class, the first half of the test split would be all "a" (the sample-quality
    # reference is the first N test images).
    for split, count in (("train", 4), ("test", 20)):
        for name in ("a", "b"):
            for index in range(count):
                _write_png(str(tmp_path / split / name / f"{index}.png"), random_images((8, 8, 1), seed=index))
    first = datasets.load("custom", 8, data_dir=str(tmp_path))
    assert set(first["test"].labels[:10]) == {0, 1} and sorted(first["test"].labels) == [0] * 20 + [1] * 20
    again = datasets.load("custom", 8, data_dir=str(tmp_path))
    np.testing.assert_array_equal(first["test"].labels, again["test"].labels)
    np.testing.assert_array_equal(first["test"].images, again["test"].images)


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(errors.DataNotFoundError, match="does not exist"):
        datasets.load("custom", 32, data_dir=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.UserError, match="no dataset files found at .*empty"):
        datasets.load("custom", 32, data_dir=str(tmp_path / "empty"))


def test_custom_dataset_without_data_dir_says_what_to_pass():
    with pytest.raises(errors.DataNotFoundError, match="--data_dir"):
        datasets.load("custom", 32)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(errors.UserError, match="unknown dataset 'imagenet'.*fashion_mnist"):
        datasets.load("imagenet", 32)


def test_debian_folder_comes_before_tfds(tmp_path):
    write_idx_folder(str(tmp_path / "fashion-mnist"), num_train=4, num_test=2)
    loaded = datasets.load("fashion_mnist", 16, debian_root=str(tmp_path))
    assert loaded["train"].images.shape == (4, 16, 16, 1)
    assert loaded["train"].source.startswith(str(tmp_path / "fashion-mnist"))


def test_nothing_found_names_every_place_tried(tmp_path):
    with pytest.raises(errors.DataNotFoundError) as raised:
        datasets.load("fashion_mnist", 32, debian_root=str(tmp_path), download=False)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{tmp_path / 'fashion-mnist'} (missing)" in message
    assert "tfds has no prepared copy of 'fashion_mnist'" in message
    assert "apt-get install dataset-fashion-mnist" in message
    os.makedirs(tmp_path / "fashion-mnist")  # There, but empty: said so, not "missing".
    with pytest.raises(errors.DataNotFoundError, match="fashion-mnist .holds no dataset files."):
        datasets.load("fashion_mnist", 32, debian_root=str(tmp_path), download=False)


@pytest.mark.parametrize("name, channels", [("mnist", 1), ("svhn", 3), ("cifar10", 3)])
@pytest.mark.parametrize("image_size", [16, 32, 64])
def test_tfds_path(tmp_path, name, channels, image_size, monkeypatch):
    # mock_data stands in for the download itself, so the name lookup done before one is skipped too.
    monkeypatch.setattr(datasets, "_check_reachable", lambda url, tfds_name: None)
    with tfds.testing.mock_data(num_examples=4):
        loaded = datasets.load(name, image_size, debian_root=str(tmp_path))
    for split in ("train", "test"):
        images = loaded[split].images
        assert images.shape == (4, image_size, image_size, channels) and images.dtype == np.uint8
        assert loaded[split].labels.shape == (4,) and loaded[split].labels.max() < 10
        assert loaded[split].source.startswith("tfds:")


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian():
    loaded = datasets.load("fashion_mnist", 32)
    train, test = loaded["train"], loaded["test"]
    assert train.images.shape == (60000, 32, 32, 1) and test.images.shape == (10000, 32, 32, 1)
    assert sorted(np.unique(train.labels)) == list(range(10))
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.images.max() == 255 and train.images[:, :2].max() == 0  # The 2-pixel zero border.


def test_pipeline_ranges_and_noise():
    images = random_images((10, 8, 8, 1))
    seed = tf.constant([1, 2], tf.int32)
    unit = pipeline.to_model_range(images, "unit", None).numpy()
    np.testing.assert_allclose(unit, images / 255.0, rtol=1e-6)
    symmetric = pipeline.to_model_range(images, "symmetric", None).numpy()
    assert symmetric.min() >= -1.0 and symmetric.max() <= 1.0
    binary = pipeline.to_model_range(images, "unit", "binarize", seed=seed).numpy()
    assert set(np.unique(binary)) <= {0.0, 1.0}
    dequantized = pipeline.to_model_range(images, "unit", "dequantize", seed=seed).numpy()
    # Every value stays inside its pixel's 1/256-wide bin.
    assert np.all(np.floor(dequantized * 256.0) == images)
    with pytest.raises(ValueError, match="value_range 'pixels'"):
        pipeline.to_model_range(images, "pixels", None)


def test_dynamic_binarization_matches_intensities_on_average():
    images = np.full((200, 8, 8, 1), 64, np.uint8)  # p = 64 / 255
    batches = pipeline.train_dataset(images, 50, "unit", "binarize", seed=0, initial_epoch=0, epochs=2, steps=4)
    values = np.concatenate([batch.numpy() for batch in batches])
    assert values.shape == (400, 8, 8, 1)
    assert abs(values.mean() - 64 / 255) < 0.01


def test_train_stream_of_an_epoch_is_the_same_when_resumed():
    images = random_images((40, 4, 4, 1))
    straight = [batch.numpy() for batch in pipeline.train_dataset(images, 8, "unit", "dequantize", 3, 0, 3, 5)]
    resumed = [batch.numpy() for batch in pipeline.train_dataset(images, 8, "unit", "dequantize", 3, 2, 3, 5)]
    assert len(straight) == 15 and len(resumed) == 5
    for expected, actual in zip(straight[10:], resumed):
        np.testing.assert_array_equal(expected, actual)
    # Different epochs see different orders.
    assert not np.array_equal(straight[0], straight[5])


def test_eval_stream_keeps_every_image_and_is_fixed():
    images = random_images((10, 4, 4, 1))
    first = np.concatenate([batch.numpy() for batch in pipeline.eval_dataset(images, 4, "unit", "binarize", seed=1)])
    second = np.concatenate([batch.numpy() for batch in pipeline.eval_dataset(images, 4, "unit", "binarize", seed=1)])
    assert first.shape == (10, 4, 4, 1)
    np.testing.assert_array_equal(first, second)


def test_batch_larger_than_dataset_is_a_clear_error():
    with pytest.raises(
        errors.UserError,
        match=r"--batch_size=64 with 1 batch\(es\) per step needs at least 64 training images; found 10",
    ):
        pipeline.steps_per_epoch(10, 64)
    with pytest.raises(errors.UserError, match="needs at least 80 training images; found 50"):
        pipeline.steps_per_epoch(50, 16, batches_per_step=5)
