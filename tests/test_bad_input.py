"""Bad input: one line naming the value and what was expected, exit status 2, nothing written."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from conftest import random_images, tiny_train_config, write_idx, write_idx_folder, write_npz
from keras_gen.data import datasets
from keras_gen.evaluation import evaluate, likelihood
from keras_gen.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--image_size=16", "--latent_dim=2", "--base_filters=4", "--batch_size=4", "--epochs=1", "--steps_per_epoch=2"]


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(tf.io.encode_png(image).numpy())


def write_mat(path, **arrays):
    scipy.io.savemat(path, arrays)


def npz_with(directory, **arrays):
    path = os.path.join(directory, "data.npz")
    np.savez(path, **arrays)
    return path


def bad_data(tmp_path, case):
    """Writes the files of one bad-input case; returns the --data_dir to pass."""
    directory = str(tmp_path / "data")
    os.makedirs(directory)
    if case == "corrupt_image":
        for index in range(4):
            write_png(os.path.join(directory, f"{index}.png"), random_images((16, 16, 1), seed=index))
        with open(os.path.join(directory, "4.png"), "wb") as stream:
            stream.write(b"\x89PNG\r\n\x1a\n not really a png")
    elif case == "mat_without_x":
        write_mat(os.path.join(directory, "train_32x32.mat"), y=np.ones((4, 1)))
        write_mat(os.path.join(directory, "test_32x32.mat"), y=np.ones((4, 1)))
    elif case == "mat_wrong_shape":
        for split in ("train", "test"):
            write_mat(os.path.join(directory, f"{split}_32x32.mat"), X=random_images((32, 32, 4)), y=np.ones((4, 1)))
    elif case == "idx_label_count":
        written = write_idx_folder(directory, num_train=12, num_test=6)
        write_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"), written["train"][1][:10])
    elif case == "npz_label_count":
        return npz_with(directory, x=random_images((20, 16, 16, 1)), y=np.zeros(19, np.int64))
    elif case == "npz_out_of_range":
        return npz_with(directory, x=np.linspace(-0.5, 2.0, 20 * 256, dtype=np.float32).reshape(20, 16, 16, 1))
    elif case == "npz_nan":
        images = np.random.default_rng(0).uniform(size=(20, 16, 16, 1)).astype(np.float32)
        images[3, 4, 5, 0] = np.nan
        return npz_with(directory, x=images)
    elif case == "truncated_gz":
        write_idx_folder(directory)
        path = os.path.join(directory, "train-images-idx3-ubyte.gz")
        with open(path, "rb") as stream:
            content = stream.read()
        with open(path, "wb") as stream:
            stream.write(content[: len(content) // 2])
    return directory


BAD_DATA = [
    ("corrupt_image", r"cannot decode image .*4\.png"),
    ("mat_without_x", r"train_32x32\.mat has no array 'X'"),
    ("mat_wrong_shape", r"'X' in .*train_32x32\.mat has shape \(32, 32, 4\); expected \(32, 32, 3, N\)"),
    ("idx_label_count", r"train-labels-idx1-ubyte\.gz holds \(10,\) labels for 12 images"),
    ("npz_label_count", r"data\.npz\[y\] holds 19 labels for 20 images"),
    ("npz_out_of_range", r"float pixels from -0\.5 to 2; expected floats in \[0, 1\]"),
    ("npz_nan", r"hold 1 NaN or infinite pixel values"),
    ("truncated_gz", r"cannot read IDX file .*train-images-idx3-ubyte\.gz"),
]


@pytest.mark.parametrize("case, expected", BAD_DATA, ids=[case for case, _ in BAD_DATA])
def test_bad_data_files(tmp_path, main_in_process, case, expected):
    data_dir = bad_data(tmp_path, case)
    status, lines = main_in_process(
        "--dataset=custom", f"--data_dir={data_dir}", f"--out_dir={tmp_path / 'run'}", *TINY
    )
    assert status == 2 and len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--seed=-1"], "flag --seed=-1: -1 is not an integer in the range [0, 2147483647]"),
        (["--seed=4294967296"], "flag --seed=4294967296: 4294967296 is not an integer in the range [0, 2147483647]"),
        (["--latent_dim=100000000"], "--latent_dim=100000000, --base_filters=4 at 16x16 does not fit in memory"),
        (
            ["--batch_size=100000"],
            "--batch_size=100000 with 1 batch(es) per step needs at least 100000 training images",
        ),
        (["--flagfile=/nowhere/preset.cfg"], "/nowhere/preset.cfg"),
        (["--resume=sometimes"], "flag --resume=sometimes"),
    ],
)
def test_bad_values(tmp_path, main_in_process, arguments, expected):
    data_path = write_npz(tmp_path, (40, 16, 16, 1))
    status, lines = main_in_process(
        "--dataset=custom", f"--data_dir={data_path}", f"--out_dir={tmp_path / 'run'}", *TINY, *arguments
    )
    assert status == 2 and len(lines) == 1, lines
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def test_a_model_too_big_for_memory_is_refused_where_memory_is_unknown_too(tmp_path, main_in_process, monkeypatch):
    # Without /proc/meminfo (or on a GPU) no estimate is made: the allocation itself fails, and says so.
    # (TensorFlow's own OOM error, raised here as a real allocation would raise it, without taking the memory.)
    monkeypatch.setattr(trainer.environment, "available_memory", lambda: None)

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[16,10000000000]")

    monkeypatch.setattr(trainer.models, "build", out_of_memory)
    data_path = write_npz(tmp_path, (40, 16, 16, 1))
    status, lines = main_in_process(
        "--dataset=custom",
        f"--data_dir={data_path}",
        f"--out_dir={tmp_path / 'run'}",
        *TINY,
        "--latent_dim=10000000000",
    )
    assert status == 2 and len(lines) == 1, lines
    assert (
        "--latent_dim=10000000000, --base_filters=4 at 16x16 does not fit in memory (ResourceExhaustedError)"
        in lines[0]
    )
    assert not (tmp_path / "run").exists()


def test_a_flagfile_naming_an_unknown_flag(tmp_path, main_in_process):
    flagfile = tmp_path / "preset.cfg"
    flagfile.write_text("--model=vae\n--latent_size=20\n")
    status, lines = main_in_process(f"--flagfile={flagfile}", f"--out_dir={tmp_path / 'run'}")
    assert status == 2 and len(lines) == 1 and "latent_size" in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_grey_rgb_and_rgba_images_in_one_folder_are_converted_to_rgb_and_said_so(tmp_path, capsys):
    directory = str(tmp_path / "images")
    write_png(os.path.join(directory, "grey.png"), np.full((16, 16, 1), 200, np.uint8))
    write_png(os.path.join(directory, "rgb.png"), np.full((16, 16, 3), 100, np.uint8))
    rgba = np.concatenate([np.full((16, 16, 3), 255, np.uint8), np.full((16, 16, 1), 128, np.uint8)], axis=-1)
    write_png(os.path.join(directory, "rgba.png"), rgba)
    for index in range(7):
        write_png(os.path.join(directory, f"more{index}.png"), random_images((16, 16, 3), seed=index))
    splits = datasets.load("custom", 16, data_dir=directory)
    images = np.concatenate([splits["train"].images, splits["test"].images])
    assert images.shape == (10, 16, 16, 3)
    # The grey image repeated to 3 channels; the RGBA one composited over black (255 * 128/255).
    assert any(np.all(image == 200) for image in images) and any(np.all(image == 128) for image in images)
    note = capsys.readouterr().err
    assert (
        "mixes image kinds: 1 grey image(s) repeated to 3 channels, 1 with transparency composited over black" in note
    )


def test_a_bad_flag_writes_exactly_one_line_to_stderr():
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "run.py"), "--model=transformer"],
        capture_output=True, text=True, cwd=REPO, env=environment, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr  # TensorFlow's start-up lines stay out.
    assert "--model=transformer" in result.stderr and "vae" in result.stderr  # It lists the valid models.


def test_eval_without_a_feature_network_computes_the_likelihood_and_says_what_it_skipped(tmp_path, capsys):
    data_path = write_npz(tmp_path, (80, 16, 16, 1))
    _, run_dir = trainer.train(tiny_train_config(data_path, tmp_path / "run", epochs=1))
    record = evaluate.evaluate_run(
        run_dir, num_samples=8, iw_samples=2, feature_nets_root=str(tmp_path / "no_feature_nets"), verbose=0
    )
    assert record["likelihood"]["num_images"] == 8 and "sample_quality" not in record
    assert "feature network" in record["skipped"]["sample_quality"]
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Skipping")]
    assert "python run.py --mode=train_classifier --dataset=custom" in line


def test_eval_progress_bar_ends_on_the_reported_value(tmp_path, capsys):
    from test_likelihood import binary_images, tiny_mlp_vae

    model = tiny_mlp_vae()
    images = binary_images(10)
    # Batches of 4, 4 and 2: Keras' own averaging ended the bar on the last batch's value.
    batches = tf.data.Dataset.from_tensor_slices(images).batch(4)
    result = likelihood.evaluate_vae(model, batches, iw_samples=5, num_images=10, verbose=1)
    shown = re.findall(r"iwae_nll: ([0-9.]+)", capsys.readouterr().out)
    assert shown and float(shown[-1]) == pytest.approx(result["iwae_nll"], abs=1e-4)
