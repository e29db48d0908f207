"""Shared test helpers: files written in the real formats, and tiny sizes everywhere."""

import gzip
import os
import struct

import numpy as np
import pytest

# keras_gen before TensorFlow, as run.py does: keras_gen turns oneDNN on before TensorFlow loads, and
# the runs tests start as subprocesses inherit that setting. On a CPU where oneDNN is off by default
# (AMD), this process would otherwise compute with other kernels than its children, and a resumed
# run would not match, to the last bit, the straight run it is compared with.
import keras_gen  # noqa: F401  isort: skip
import tensorflow as tf
from keras_gen.runs import train_config

# Two logical CPU devices for the whole session, so tests can train under MirroredStrategy in this
# process: devices can only be configured before TensorFlow initialises them. Without a strategy
# everything runs on the first, as on a one-device machine.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

# Modules whose tests start worker processes or train several runs each (half the suite's time).
# They run first: with `--dist=worksteal` (pytest.ini) the worker that finishes early takes tests
# from the other, and what is left at the end are short tests, not a minute-long cluster test that
# leaves one core idle. Whole modules move, so module-scoped fixtures are set up once per worker.
HEAVY_MODULES = ("test_distribute", "test_streaming", "test_reliability", "test_export", "test_readme", "test_cli")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.module.__name__ if item.module else ""
        return HEAVY_MODULES.index(name) if name in HEAVY_MODULES else len(HEAVY_MODULES)

    items.sort(key=rank)  # Stable: each module keeps its own order.


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# The GAN quality techniques together (hinge loss, spectral norm, DiffAugment, EMA, two learning
# rates), as the distribution and resume tests train them.
QUALITY_TECHNIQUES = {
    "gan_loss": "hinge",
    "spectral_norm": True,
    "diffaugment": "color,translation,cutout",
    "ema_decay": 0.9,
    "critic_learning_rate": 4e-4,
}


def write_idx(path, array):
    """Writes a uint8 array as an IDX file (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(header + array.tobytes())


def write_idx_folder(directory, num_train=12, num_test=6, side=28, seed=0):
    """An MNIST-style folder; returns the arrays written."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    written = {}
    for split, prefix, count in (("train", "train", num_train), ("test", "t10k", num_test)):
        images = rng.integers(0, 256, (count, side, side), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels)
        written[split] = (images, labels)
    return written


@pytest.fixture
def idx_folder(tmp_path):
    directory = str(tmp_path / "idx")
    return directory, write_idx_folder(directory)


def random_images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_npz(directory, shape, seed=0, classes=None):
    """An .npz of random uint8 images (`x`; with `classes`, random labels `y` below it too); returns its path."""
    path = os.path.join(str(directory), "data.npz")
    labels = {} if classes is None else {"y": np.random.default_rng(seed + 1).integers(0, classes, shape[0])}
    np.savez(path, x=random_images(shape, seed), **labels)
    return path


def tiny_train_config(data_path, out_dir, **overrides):
    """A TrainConfig for a few steps of a tiny model on the 16x16 images in `data_path`."""

    settings = {
        "model": "vae", "dataset": "custom", "data_dir": data_path, "image_size": 16, "latent_dim": 2, "batch_size": 4,
        "epochs": 2, "steps_per_epoch": 3, "base_filters": 4, "grid_size": 4, "out_dir": str(out_dir), "verbose": 0,
        "quality_every": 0,  # test_quality_in_training.py measures sample quality during training.
    }  # fmt: skip
    settings.update(overrides)
    return train_config.TrainConfig(**settings)


@pytest.fixture
def main_in_process(capsys):
    """Runs the CLI's parser and main in this process: (exit status, stderr lines); 0 when main returns.

    The run's stdout is left in `invoke.stdout`.
    """
    from keras_gen import cli

    def invoke(*arguments):
        cli.FLAGS.unparse_flags()
        status = 0
        try:
            cli.main(cli.parse_flags(["run.py", *arguments]))
        except SystemExit as exit_info:
            status = exit_info.code
        finally:
            cli.FLAGS.unparse_flags()
        captured = capsys.readouterr()
        invoke.stdout = captured.out
        return status, [line for line in captured.err.splitlines() if line.strip()]

    return invoke


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """{name: (trained model, run directory, version path)} of every model type, trained and exported once.

    Under pytest-xdist the first worker to get here builds them in the folder the workers share, the
    others wait for it and reopen the same runs (the models restored from their checkpoints).
    """
    import fcntl

    import export_helpers

    # The workers' shared folder under xdist (their base temps are siblings); alone, this session's own:
    # the parent of a lone session's base temp outlives it, and a later session would reuse stale exports.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "exports"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return export_helpers.build_exports(shared)
