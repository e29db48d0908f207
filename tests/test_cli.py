"""The command line as a user runs it, in a subprocess."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FASHION_MNIST_DIR

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "run.py"), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def test_two_step_run_on_real_fashion_mnist_writes_the_documented_run_directory(tmp_path):
    if not os.path.isdir(FASHION_MNIST_DIR):
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_MNIST_DIR} is missing: .ci/run must install dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    out_dir = str(tmp_path / "run")
    result = run_cli(
        "--model=vae",
        "--dataset=fashion_mnist",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--batch_size=16",
        "--base_filters=8",
        f"--out_dir={out_dir}",
        f"--export_dir={tmp_path / 'exports'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Run directory: {out_dir}" in result.stdout
    # Training ends with an export (version 1) unless --noexport.
    assert os.path.exists(tmp_path / "exports" / "1" / "saved_model.pb")
    for name in (
        "config.json",
        "metrics.csv",
        "training_curves.png",
        "samples/epoch_0001.png",
        "checkpoints/checkpoint",
    ):
        assert os.path.exists(os.path.join(out_dir, name)), name
    with open(os.path.join(out_dir, "metrics.csv")) as stream:
        (row,) = list(csv.DictReader(stream))
    # Nats per 8-bit 32x32 image: a bound on -log P, so positive; after 2 steps still near the
    # 1024 * ln 256 = 5678 nats of a uniform model.
    assert 0 < float(row["val_neg_elbo"]) < 2 * 5678
    with open(os.path.join(out_dir, "config.json")) as stream:
        assert FASHION_MNIST_DIR in stream.read()

    # The run evaluates and explores from its directory alone.
    result = run_cli(
        "--mode=eval", f"--out_dir={out_dir}", "--num_samples=20", "--iw_samples=4", "--metrics=likelihood"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    printed = json.loads(line)
    with open(os.path.join(out_dir, "metrics.json")) as stream:
        assert json.load(stream) == printed
    assert printed["likelihood"]["num_images"] == 20 and printed["likelihood"]["iw_samples"] == 4
    assert 0 < printed["likelihood"]["iwae_nll"] < 2 * 5678
    result = run_cli("--mode=explore", "--study=reconstruct", f"--out_dir={out_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.getsize(os.path.join(out_dir, "explore", "reconstruct.png")) > 5000


BAD_INPUT = [
    (["--model=transformer"], "--model=transformer"),
    (["--image_size=28"], "expected one of 16, 32, 64"),
    (["--dataset=custom", "--data_dir=/nowhere/at/all"], "--data_dir /nowhere/at/all does not exist"),
    (["--epochs=0"], "--epochs"),
    (["stray"], "unexpected arguments stray"),
    (["--mode=eval"], "holds no config.json"),
    (["--mode=explore", "--study=spiral"], "--study=spiral"),
]


@pytest.mark.parametrize("arguments, expected", BAD_INPUT)
def test_bad_input_is_one_line_with_exit_status_2(tmp_path, main_in_process, arguments, expected):
    # In process: the same parser and main as run.py, without a TensorFlow start-up per case.
    status, lines = main_in_process(*arguments, f"--out_dir={tmp_path / 'run'}")
    assert status == 2 and len(lines) == 1, lines
    assert expected in lines[0] and ": error: " in lines[0]
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_divergence_study_estimates_match_the_closed_forms(tmp_path):
    result = run_cli("--mode=divergence", "--thetas=-0.5,0,1", "--divergence_steps=300", f"--out_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "divergence.json") as stream:
        results = json.load(stream)
    assert results["theta"] == [-0.5, 0.0, 1.0]
    assert results["wasserstein_closed_form"] == [0.5, 0.0, 1.0]
    assert results["squared_hellinger_closed_form"] == [2.0, 0.0, 2.0]
    # 300 critic updates: Wasserstein within 0.1 of |theta| (seen: 0.507, -0.001, 1.054); squared
    # Hellinger near its maximum 2 for disjoint supports and near 0 for identical ones.
    np.testing.assert_allclose(results["wasserstein"], [0.5, 0.0, 1.0], atol=0.1)
    np.testing.assert_allclose(results["squared_hellinger"], [2.0, 0.0, 2.0], atol=0.2)
    assert os.path.getsize(tmp_path / "divergence.png") > 10_000


def test_train_classifier_from_the_command_line(tmp_path):
    from conftest import write_idx_folder

    data_dir = str(tmp_path / "mnist")
    write_idx_folder(data_dir, num_train=40, num_test=24)
    root = tmp_path / "feature_nets"
    result = run_cli(
        "--mode=train_classifier",
        "--dataset=mnist",
        f"--data_dir={data_dir}",
        "--image_size=16",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--batch_size=8",
        f"--feature_nets_dir={root}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    # The flags given override the classifier's defaults (5 epochs of batch 128 at 32x32).
    assert printed["epochs"] == 1 and printed["batch_size"] == 8 and printed["image_shape"] == [16, 16, 1]
    assert os.path.exists(root / "mnist" / "feature_net.json")
