"""Faults: a killed or stopped run resumes exactly, non-finite losses, damaged checkpoints, atomic writes."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import QUALITY_TECHNIQUES, tiny_train_config, write_npz
from keras_gen import errors, io_utils
from keras_gen.models import vae
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.training import faults, trainer
from keras_gen.runs import train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a kill can break is the state a run saves: the optimizers', the random generators' (the
# noise, DiffAugment's draws), the EMA, the labels' order, the critic loop's. The GAN with every
# quality technique (hinge loss, spectral norm, DiffAugment, EMA, two learning rates) and labels holds
# all of it but the critic loop's and the gradient penalty's, which test_streaming's kill test (a
# conditional WGAN-GP) resumes; the VAE's resume is the SIGTERM test's below.
FAMILIES = {
    "gan_techniques_conditional": {"model": "gan", **QUALITY_TECHNIQUES, "conditional": True},
}
# Long enough to be killed in the middle of an epoch: 2 epochs of 24 steps, a checkpoint every 4.
RUN = {"epochs": 2, "steps_per_epoch": 24, "checkpoint_every": 4, "batch_size": 4, "latent_dim": 3}


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("data"), (240, 16, 16, 1), classes=3)


def cli_arguments(config):
    """The run.py flags of a TrainConfig (the fields that differ from the defaults)."""
    defaults = train_config.TrainConfig()
    arguments = []
    for name, value in vars(config).items():
        if value != getattr(defaults, name) and name != "verbose":
            arguments.append(f"--{name}={value}" if not isinstance(value, bool) else f"--{'' if value else 'no'}{name}")
    return arguments


def saves(run_dir):
    """Checkpoints written so far (the newest is ckpt-N; the manager keeps only the last few files)."""
    newest = checkpoints.latest(run_dir) if os.path.isdir(os.path.join(run_dir, "checkpoints")) else None
    return int(newest.rsplit("-", 1)[1]) if newest else 0


def start_run(config):
    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "run.py"), *cli_arguments(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


def wait_for_saves(process, run_dir, count, timeout=120):
    deadline = time.monotonic() + timeout
    while saves(run_dir) < count:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the run wrote too few checkpoints in time"
        time.sleep(0.01)


def weights_of(model):
    return [variable.numpy() for variable in model.weights]


def resume(data_path, out_dir, **settings):
    config = tiny_train_config(data_path, out_dir, resume=True, **RUN, **settings)
    return trainer.train(config, given_fields=["resume", "verbose"])[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_run_killed_at_a_random_step_resumes_to_the_same_weights(data_path, tmp_path, family):
    settings = FAMILIES[family]
    straight, _ = trainer.train(tiny_train_config(data_path, tmp_path / "straight", **RUN, **settings))
    killed_dir = str(tmp_path / "killed")
    process = start_run(tiny_train_config(data_path, killed_dir, **RUN, **settings, verbose=0))
    try:
        # At least one checkpoint inside an epoch, then a random moment while the run goes on.
        wait_for_saves(process, killed_dir, random.Random(family).randint(1, 5))
        time.sleep(random.Random(family).uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    epoch, step = checkpoints.Checkpoint.position_of(checkpoints.latest(killed_dir))
    assert (epoch, step) != (RUN["epochs"], 0), "the run finished before it was killed"
    resumed = resume(data_path, killed_dir, **settings)
    for expected, actual in zip(weights_of(straight), weights_of(resumed)):
        np.testing.assert_array_equal(actual, expected)
    # The record continues without duplicated or missing rows.
    with open(os.path.join(killed_dir, "metrics.csv")) as stream:
        assert [line.split(",")[0] for line in stream.read().splitlines()[1:]] == ["1", "2"]


def test_sigterm_saves_where_it_stopped_and_the_resumed_run_matches_a_straight_one(data_path, tmp_path):
    straight, straight_dir = trainer.train(tiny_train_config(data_path, tmp_path / "straight", **RUN))
    stopped_dir = str(tmp_path / "stopped")
    process = start_run(tiny_train_config(data_path, stopped_dir, **RUN, verbose=0))
    try:
        wait_for_saves(process, stopped_dir, 2)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-2000:]
    (line,) = [line for line in stdout.splitlines() if line.startswith("Stopped by SIGTERM")]
    assert "saved" in line and "--resume" in line
    epoch, step = checkpoints.Checkpoint.position_of(checkpoints.latest(stopped_dir))
    assert step > 0 or epoch < RUN["epochs"]
    resumed = resume(data_path, stopped_dir)
    for expected, actual in zip(weights_of(straight), weights_of(resumed)):
        np.testing.assert_array_equal(actual, expected)
    # The metrics of the interrupted epoch are those of the straight run: their running sums were saved.
    with open(os.path.join(straight_dir, "metrics.csv")) as one, open(os.path.join(stopped_dir, "metrics.csv")) as two:
        columns = lambda text: [row.split(",")[3:] for row in text.splitlines()]  # noqa: E731 (after the timings)
        assert columns(one.read()) == columns(two.read())


@pytest.fixture
def nan_at_step(monkeypatch):
    """Makes the VAE's loss NaN at its `step`-th evaluation (1-based): a training step of the first epoch."""

    def inject(step):
        objective = vae.VAE._objective
        calls = tf.Variable(0, dtype=tf.int64, trainable=False)

        def poisoned(self, reconstruction, kl):
            value = objective(self, reconstruction, kl)
            at_step = tf.equal(calls.assign_add(1), step)
            return tf.where(at_step, tf.fill(tf.shape(value), float("nan")), value)

        monkeypatch.setattr(vae.VAE, "_objective", poisoned)

    return inject


def test_nan_policy_stop_names_the_step_and_keeps_the_last_good_checkpoint(data_path, tmp_path, nan_at_step):
    run = {**RUN, "epochs": 1, "steps_per_epoch": 8, "checkpoint_every": 2}
    nan_at_step(6)
    with pytest.raises(errors.TrainingError) as error:
        trainer.train(tiny_train_config(data_path, tmp_path / "run", **run))
    message = str(error.value)
    assert "at epoch 1, step 6: loss is nan" in message and "ckpt-2 (epoch 1, step 4)" in message
    paths = checkpoints.all_checkpoints(str(tmp_path / "run"))
    assert [os.path.basename(path) for path in paths] == ["ckpt-1", "ckpt-2"]
    reader = tf.train.load_checkpoint(paths[-1])
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


def test_nan_policy_skip_leaves_the_weights_and_counts_the_skip(data_path, tmp_path, nan_at_step, capsys):
    run = {**RUN, "epochs": 1, "steps_per_epoch": 8, "checkpoint_every": 0}
    nan_at_step(4)
    model, run_dir = trainer.train(tiny_train_config(data_path, tmp_path / "run", nan_policy="skip", **run))
    # 8 steps, one skipped: the optimizer counted 7 updates, every weight is finite.
    assert int(model.optimizer.iterations.numpy()) == 7
    assert all(np.all(np.isfinite(value)) for value in weights_of(model))
    with open(os.path.join(run_dir, "metrics.csv")) as stream:
        header, row = stream.read().splitlines()
    record = dict(zip(header.split(","), row.split(",")))
    assert float(record["skipped_updates"]) == 1.0 and np.isfinite(float(record["loss"]))
    assert "skipped 1 update(s) with a non-finite loss" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_named_and_previous_is_used_only_when_asked(data_path, tmp_path, main_in_process):
    run = {**RUN, "epochs": 1, "steps_per_epoch": 8, "checkpoint_every": 3}
    trainer.train(tiny_train_config(data_path, tmp_path / "run", **run))
    newest = checkpoints.latest(str(tmp_path / "run"))
    data_file = f"{newest}.data-00000-of-00001"
    with open(data_file, "r+b") as stream:
        stream.truncate(os.path.getsize(data_file) // 2)
    flags = ["--dataset=custom", f"--data_dir={data_path}", f"--out_dir={tmp_path / 'run'}", "--epochs=2"]
    status, lines = main_in_process("--resume", *flags, "--noexport")
    assert status == 1 and len(lines) == 1, lines
    assert data_file in lines[0] and "is damaged" in lines[0] and "--resume=previous" in lines[0]
    status, lines = main_in_process("--resume=previous", *flags, "--noexport")
    assert status == 0, lines
    assert "Resuming" in main_in_process.stdout and "ckpt-2" in main_in_process.stdout


def test_a_mid_epoch_resume_with_another_batch_size_is_refused(data_path, tmp_path):
    run = {**RUN, "epochs": 1, "steps_per_epoch": 8, "checkpoint_every": 3}
    _, run_dir = trainer.train(tiny_train_config(data_path, tmp_path / "run", **run))
    kept = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
    # The checkpoint before the newest is at step 6: six batches of 4, not of 8.
    config = tiny_train_config(data_path, run_dir, resume="previous", **{**run, "batch_size": 8})
    refused = r"--batch_size=8: the checkpoint is at step 6 of epoch 1, 6 batches of 4;"
    with pytest.raises(errors.UserError, match=refused):
        trainer.train(config, given_fields=["resume", "batch_size"])
    # An epoch now shorter than the steps already taken in it.
    config = tiny_train_config(data_path, run_dir, resume="previous", **{**run, "steps_per_epoch": 4})
    with pytest.raises(errors.UserError, match="step 6 of epoch 1, but an epoch now has 4 steps"):
        trainer.train(config, given_fields=["resume", "steps_per_epoch"])
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == kept


def test_a_write_that_fails_half_way_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    io_utils.write_json(path, {"epoch": 1})

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        io_utils.write_json(path, {"epoch": 2, "padding": "x" * 100_000})
    with open(path) as stream:
        assert json.load(stream) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]  # No temporary file left behind.


def test_a_second_run_into_a_directory_in_use_is_refused(data_path, tmp_path, main_in_process):
    run_dir = tmp_path / "run"
    with faults.run_lock(str(run_dir)):
        status, lines = main_in_process("--dataset=custom", f"--data_dir={data_path}", f"--out_dir={run_dir}")
    assert status == 2 and len(lines) == 1
    assert f"--out_dir {run_dir} is in use by another run (process {os.getpid()})" in lines[0]
    assert sorted(os.listdir(run_dir)) == [layout.LOCK]  # Nothing else written.
