"""Training runs: the run directory, checkpoints and resuming to the same end state."""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from conftest import tiny_train_config as tiny_config
from conftest import write_npz
from keras_gen import errors
from keras_gen.runs import records
from keras_gen.training import trainer


@pytest.fixture
def npz_path(tmp_path):
    return write_npz(tmp_path, (40, 16, 16, 1))


def test_run_directory_holds_what_the_readme_documents(npz_path, tmp_path):
    model, run_dir = trainer.train(tiny_config(npz_path, tmp_path / "run"))
    for name in (
        "config.json",
        "metrics.csv",
        "training_curves.png",
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
        "checkpoints/checkpoint",
        "logs/train",
        "logs/validation",
        "logs/samples",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "metrics.csv")) as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "neg_elbo", "reconstruction", "kl", "val_neg_elbo", "images_per_second"} <= set(rows[0])
    with open(os.path.join(run_dir, "config.json")) as stream:
        record = json.load(stream)
    # "auto" resolves to the continuous Bernoulli on grey images.
    assert record["config"]["likelihood"] == "continuous_bernoulli" and record["image_shape"] == [16, 16, 1]
    assert int(model.optimizer.iterations.numpy()) == 6


def test_resumed_run_reaches_the_same_weights_as_a_straight_run(npz_path, tmp_path):
    straight, _ = trainer.train(tiny_config(npz_path, tmp_path / "straight"))
    trainer.train(tiny_config(npz_path, tmp_path / "split", epochs=1))
    resumed_config = tiny_config(npz_path, tmp_path / "split", resume=True, epochs=2)
    resumed, run_dir = trainer.train(resumed_config, given_fields=["epochs", "resume", "out_dir", "verbose"])
    # The optimizer state came back: 3 steps before, 3 after.
    assert int(resumed.optimizer.iterations.numpy()) == 6
    for expected, actual in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6, err_msg=expected.path)
    with open(os.path.join(run_dir, "metrics.csv")) as stream:
        assert [row["epoch"] for row in csv.DictReader(stream)] == ["1", "2"]


def test_resume_restores_the_saved_step_and_optimizer_slots(npz_path, tmp_path):
    first, _ = trainer.train(tiny_config(npz_path, tmp_path / "run", epochs=1))
    saved_slots = [variable.numpy().copy() for variable in first.optimizer.variables]
    # epochs=1 again: nothing left to train, so the restored state is exactly the saved one.
    restored, _ = trainer.train(tiny_config(npz_path, tmp_path / "run", resume=True, epochs=1), ["resume"])
    assert int(restored.optimizer.iterations.numpy()) == 3
    for saved, variable in zip(saved_slots, restored.optimizer.variables):
        np.testing.assert_array_equal(saved, variable.numpy())


def test_existing_run_is_never_overwritten(npz_path, tmp_path):
    trainer.train(tiny_config(npz_path, tmp_path / "run", epochs=1))
    checkpoint_files = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    with pytest.raises(errors.UserError, match="already holds a training run; pass --resume"):
        trainer.train(tiny_config(npz_path, tmp_path / "run", epochs=1))
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == checkpoint_files


def test_resume_refuses_a_changed_architecture(npz_path, tmp_path):
    trainer.train(tiny_config(npz_path, tmp_path / "run", epochs=1))
    with pytest.raises(errors.UserError, match="--latent_dim=3 differs from the run being resumed"):
        trainer.train(tiny_config(npz_path, tmp_path / "run", resume=True, latent_dim=3), ["resume", "latent_dim"])


def test_resume_without_checkpoints_is_a_clear_error(npz_path, tmp_path):
    with pytest.raises(errors.UserError, match="--resume needs --out_dir of a run with checkpoints"):
        trainer.train(tiny_config(npz_path, tmp_path / "nothing", resume=True), ["resume"])


def test_resume_refuses_a_changed_critic_loop(tmp_path):
    data_path = write_npz(tmp_path, (60, 16, 16, 1))
    trainer.train(tiny_config(data_path, tmp_path / "run", model="wgan", critic_steps=2, epochs=1, steps_per_epoch=2))
    checkpoints = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    with pytest.raises(errors.UserError, match="--critic_steps=3 differs from the run being resumed"):
        trainer.train(tiny_config(data_path, tmp_path / "run", resume=True, critic_steps=3), ["resume", "critic_steps"])
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == checkpoints


def test_a_learning_rate_given_at_resume_takes_effect_and_is_recorded(npz_path, tmp_path):
    trainer.train(tiny_config(npz_path, tmp_path / "run", epochs=1, learning_rate=1e-3))
    config = tiny_config(npz_path, tmp_path / "run", resume=True, epochs=2, learning_rate=1e-4)
    resumed, run_dir = trainer.train(config, given_fields=["resume", "epochs", "learning_rate"])
    # The checkpoint holds 1e-3; the rate asked for at resume wins.
    np.testing.assert_allclose(float(resumed.optimizer.learning_rate.numpy()), 1e-4, rtol=1e-6)
    with open(os.path.join(run_dir, "config.json")) as stream:
        record = json.load(stream)
    assert record["config"]["learning_rate"] == 1e-4
    (resume,) = record["resumes"]
    assert resume["at_epoch"] == 1 and resume["changed"] == {"epochs": 2, "learning_rate": 1e-4}


def test_train_leaves_the_config_it_was_given_unchanged(npz_path, tmp_path):
    config = tiny_config(npz_path, tmp_path / "run", epochs=1)
    before = dataclasses.asdict(config)
    trainer.train(config)
    assert dataclasses.asdict(config) == before  # likelihood stays "auto", learning_rate None


def test_metrics_log_plots_only_the_metrics_that_moved(tmp_path, monkeypatch):
    from keras_gen import plotting
    from keras_gen.training import callbacks

    plotted = []
    monkeypatch.setattr(plotting, "plot_training_curves", lambda rows, path, title=None: plotted.append(rows))
    log = callbacks.MetricsLog(str(tmp_path / "metrics.csv"), str(tmp_path / "curves.png"), images_per_step=4)
    for epoch, (loss, skipped) in enumerate([(3.0, 0.0), (2.0, 1.0)]):
        log.on_epoch_begin(epoch)
        log.on_train_batch_end(0)
        logs = {"loss": loss, "gradient_penalty": 0.0, "skipped_updates": skipped, "val_loss": loss + 1}
        log.on_epoch_end(epoch, dict(logs, val_gradient_penalty=0.0, val_skipped_updates=0.0))
    # The first epoch: loss only; once an update was skipped, its panel appears; a penalty of 0 never.
    assert set(plotted[0][0]) == {"epoch", "loss", "val_loss"}
    assert set(plotted[1][0]) == {"epoch", "loss", "val_loss", "skipped_updates"}
    rows = records.read_metrics_csv(str(tmp_path / "metrics.csv"))
    assert "gradient_penalty" in rows[0] and "val_skipped_updates" not in rows[0]


def test_the_progress_bar_numbers_epochs_out_of_the_run_not_out_of_one_fit(capsys):
    import keras

    from keras_gen.training import callbacks

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    images, targets = np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")
    # The fit that finishes epoch 2 of an 11-epoch run resumed inside it (trainer.train's first phase).
    model.fit(images, targets, epochs=2, initial_epoch=1, batch_size=2, verbose=2, callbacks=[callbacks.Progress(11)])
    output = capsys.readouterr().out
    assert output.count("Epoch ") == 1 and "Epoch 2/11" in output, output
