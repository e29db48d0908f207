"""Sample quality measured while training: FID/KID in the records, the best checkpoint kept and used."""

import csv
import glob
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_train_config, write_idx_folder
from keras_gen import errors
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import sample_quality
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import reopen
from keras_gen.serving import saved_model
from keras_gen.training import faults
from keras_gen.training import quality
from keras_gen.training import trainer


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(IDX folder of 40 training and 24 test images, feature-network root holding a classifier for them)."""
    root = tmp_path_factory.mktemp("quality")
    data_dir = str(root / "idx")
    write_idx_folder(data_dir, num_train=40, num_test=24, side=16)
    nets = str(root / "feature_nets")
    feature_nets.train_classifier(
        feature_nets.ClassifierConfig(
            dataset="fashion_mnist", data_dir=data_dir, image_size=16, epochs=1, batch_size=8, root=nets, verbose=0
        )
    )
    return data_dir, nets


def gan_config(labelled, out_dir, **overrides):
    data_dir, nets = labelled
    settings = dict(
        model="gan", dataset="fashion_mnist", data_dir=data_dir, epochs=3, steps_per_epoch=2, ema_decay=0.5,
        quality_every=1, quality_samples=24, feature_nets_dir=nets,
        quality_budget=0,  # Measure every epoch: a tiny model's steps cost far less than a measurement.
    )  # fmt: skip
    settings.update(overrides)
    return tiny_train_config(None, out_dir, **settings)


def rows(run_dir):
    with open(layout.path(run_dir, layout.METRICS)) as stream:
        return list(csv.DictReader(stream))


def test_fid_and_kid_are_logged_each_epoch_and_the_lowest_fid_is_kept_as_best(labelled, tmp_path):
    model, run_dir = trainer.train(gan_config(labelled, tmp_path / "run"))
    epochs = rows(run_dir)
    assert [row["epoch"] for row in epochs] == ["1", "2", "3"]
    for row in epochs:
        for name in ("fid", "fid_raw", "kid", "kid_std", "quality_seconds"):
            assert np.isfinite(float(row[name])), name
    fids = [float(row["fid"]) for row in epochs]
    path, record = checkpoints.best(run_dir)
    assert record["epoch"] == 1 + int(np.argmin(fids)) and record["fid"] == pytest.approx(min(fids))
    assert os.path.exists(path + ".index") and glob.glob(path + ".data-*")
    # The reference is the test images' features, kept in the run directory.
    net = feature_nets.load_classifier("fashion_mnist", labelled[1])
    splits = reopen.load_splits(reopen.load_run(run_dir, "newest"))
    expected, _ = net.extract(splits["test"].images[:24].astype(np.float32) / 255.0)
    with np.load(layout.path(run_dir, layout.QUALITY_REFERENCE)) as saved:
        np.testing.assert_allclose(saved["features"], expected, rtol=1e-5)
    # The last epoch's FID is that of the EMA generator's samples from the monitor's fixed latents
    # (those of --mode=eval for the run's seed).
    latents = np.random.default_rng(0).standard_normal((24, model.latent_dim)).astype(np.float32)
    features, _ = net.extract(np.asarray(model.decode_to_images(latents)))
    assert float(epochs[-1]["fid"]) == pytest.approx(sample_quality.fid(expected, features), rel=1e-6)
    # TensorBoard has the curve beside the losses.
    tags = set()
    for event_file in glob.glob(os.path.join(run_dir, "logs", "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_fid", "epoch_kid"} <= tags


def test_the_best_checkpoint_is_what_eval_export_and_resume_see(labelled, tmp_path):
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, epochs=2))
    best_path, record = checkpoints.best(run_dir)
    assert reopen.load_run(run_dir).checkpoint == best_path  # "auto": the best, when kept.
    assert reopen.load_run(run_dir, "newest").checkpoint == checkpoints.latest(run_dir)
    version = saved_model.export_run(run_dir, str(tmp_path / "export"), verbose=0, checkpoint="best")
    with open(os.path.join(version, "model_card.json")) as stream:
        card = json.load(stream)
    assert card["checkpoint"] == os.path.basename(best_path) and card["checkpoint_kind"] == "best"
    assert card["generator_weights"].startswith("exponential moving average")
    # Resuming for more epochs reuses the reference and keeps the best unless a later epoch beats it.
    reference = layout.path(run_dir, layout.QUALITY_REFERENCE)
    written = os.stat(reference).st_mtime_ns
    trainer.train(gan_config(labelled, run_dir, epochs=4, resume=True), given_fields=["resume", "epochs"])
    assert os.stat(reference).st_mtime_ns == written
    fids = [float(row["fid"]) for row in rows(run_dir)]
    assert len(fids) == 4 and checkpoints.best(run_dir)[1]["fid"] == pytest.approx(min(fids))


def test_a_resume_measuring_with_fewer_samples_does_not_compare_its_fids_with_the_kept_best(labelled, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, epochs=2))
    net = feature_nets.load_classifier("fashion_mnist", labelled[1])
    before = checkpoints.best(run_dir)[1]
    assert before["measurement"] == {"samples": 24, "feature_net": quality.network_key(net)}
    # FID's bias grows as the samples shrink: 8 samples' FIDs are on another scale than 24's.
    trainer.train(
        gan_config(labelled, run_dir, epochs=3, quality_samples=8, resume=True),
        given_fields=["resume", "epochs", "quality_samples"],
    )
    after = checkpoints.best(run_dir)[1]
    assert after["epoch"] == 3 and after["measurement"]["samples"] == 8
    assert after["fid"] == pytest.approx(float(rows(run_dir)[-1]["fid"]))
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "the next measured epoch replaces it" in line]
    assert f"epoch {before['epoch']}" in line and "'samples': 24" in line and "'samples': 8" in line


def test_the_measurements_share_of_time_is_its_closed_form():
    # Measured 1 s after 9 s of training: 1 / (9 + 1) is exactly 10%.
    assert quality.within_budget(0.0, 1.0, 9.0, 0.1)
    assert not quality.within_budget(0.0, 1.0, 8.9, 0.1)
    # Two measurements of 1 s need 18 s of training beside them.
    assert not quality.within_budget(1.0, 1.0, 17.9, 0.1) and quality.within_budget(1.0, 1.0, 18.0, 0.1)
    assert quality.within_budget(100.0, 1.0, 0.0, 0)  # 0: no limit.


def test_a_measurement_over_the_budget_waits_but_the_first_and_last_epochs_are_measured(labelled, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, epochs=4, quality_budget=1e-6))
    measured = [row["epoch"] for row in rows(run_dir) if row["fid"]]
    assert measured == ["1", "4"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "--quality_budget" in line]
    assert len(lines) == 1 and "epoch 2 unmeasured" in lines[0]
    # The best checkpoint is chosen among the measured epochs.
    fids = [float(row["fid"]) for row in rows(run_dir) if row["fid"]]
    assert checkpoints.best(run_dir)[1]["fid"] == pytest.approx(min(fids))


@pytest.mark.parametrize("epochs, every, measured", [(4, 3, ["3", "4"]), (2, 5, ["2"])])
def test_the_runs_last_epoch_is_measured_whatever_quality_every_says(labelled, tmp_path, epochs, every, measured):
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, epochs=epochs, quality_every=every))
    assert [row["epoch"] for row in rows(run_dir) if row.get("fid")] == measured
    assert checkpoints.best(run_dir) is not None


def test_a_conditional_run_with_fewer_samples_than_classes_logs_what_it_can(labelled, tmp_path):
    # 8 samples for 10 classes: no class has two, so there is no FID within a class to log.
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, epochs=1, conditional=True, quality_samples=8))
    (row,) = rows(run_dir)
    assert np.isfinite(float(row["fid"])) and 0 <= float(row["conditional_accuracy"]) <= 1
    assert "fid_within_class" not in row


def write_checkpoint(path, value):
    """A checkpoint of one variable holding `value`; returns its prefix."""
    return tf.train.Checkpoint(v=tf.Variable(tf.fill([100], float(value)))).write(path)


def kept_value(run_dir):
    path, record = checkpoints.best(run_dir)
    return float(tf.train.load_checkpoint(path).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE")[0]), record


def test_an_epoch_best_twice_is_copied_beside_the_kept_best_so_a_crash_mid_copy_loses_nothing(tmp_path, monkeypatch):
    run_dir = str(tmp_path)
    first = write_checkpoint(str(tmp_path / "checkpoints" / "ckpt-2"), 1.0)
    checkpoints.keep_best(run_dir, first, {"epoch": 2, "fid": 10.0})
    # Epoch 2 redone (--resume=previous) and best again; the copy is killed after its first file.
    again = write_checkpoint(str(tmp_path / "checkpoints" / "ckpt-3"), 2.0)
    copy, calls = checkpoints.shutil.copyfile, []

    def killed_after_one(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return copy(source, target)

    monkeypatch.setattr(checkpoints.shutil, "copyfile", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.keep_best(run_dir, again, {"epoch": 2, "fid": 9.0})
    assert kept_value(run_dir) == (1.0, {"epoch": 2, "fid": 10.0, "checkpoint": "best-epoch0002"})
    monkeypatch.setattr(checkpoints.shutil, "copyfile", copy)
    checkpoints.keep_best(run_dir, again, {"epoch": 2, "fid": 9.0})
    assert kept_value(run_dir)[0] == 2.0
    # Only the new best's files and its record remain: the old copy and the part-copy are gone.
    kept = os.path.basename(checkpoints.best(run_dir)[0])
    names = os.listdir(tmp_path / "checkpoints" / "best")
    assert sorted(name.split(".")[0] for name in names) == sorted([kept] * (len(names) - 1) + ["best"])


def test_a_resumed_run_makes_the_checkpoint_it_resumes_from_best_when_its_recorded_fid_is_lower(tmp_path):
    run_dir = str(tmp_path)
    one = write_checkpoint(str(tmp_path / "checkpoints" / "ckpt-1"), 1.0)
    two = write_checkpoint(str(tmp_path / "checkpoints" / "ckpt-2"), 2.0)
    checkpoints.keep_best(run_dir, one, {"epoch": 1, "fid": 5.0})
    rows = [{"epoch": 1, "fid": 5.0}, {"epoch": 2, "fid": 3.0, "kid": 0.1, "loss": 1.0}]
    # Mid-epoch: the checkpoint was not measured; the kept best stands.
    assert checkpoints.best_to_beat(run_dir, two, (2, 7), rows) == 5.0 and kept_value(run_dir)[0] == 1.0
    # Killed between saving epoch 2 and copying it as best: the resume copies it.
    assert checkpoints.best_to_beat(run_dir, two, (2, 0), rows) == 3.0
    assert kept_value(run_dir) == (2.0, {"epoch": 2, "fid": 3.0, "kid": 0.1, "checkpoint": "best-epoch0002"})
    # Rolled back (--resume=previous) past the best, to an epoch worse than it: the resumed epoch is
    # the best of the epochs kept, and the one to beat.
    three = write_checkpoint(str(tmp_path / "checkpoints" / "ckpt-3"), 3.0)
    checkpoints.keep_best(run_dir, three, {"epoch": 3, "fid": 1.0})
    assert checkpoints.best_to_beat(run_dir, two, (2, 0), rows) == 3.0 and kept_value(run_dir)[0] == 2.0
    # Without a measurement of the resumed epoch, nothing is kept to beat.
    checkpoints.keep_best(run_dir, three, {"epoch": 3, "fid": 1.0})
    assert checkpoints.best_to_beat(run_dir, two, (2, 0), rows[:1]) == float("inf")


def test_an_epoch_ending_after_a_stop_signal_saves_without_measuring(capsys):
    stop = faults.StopSignals()
    stop.received = "SIGTERM"
    # No model, a network that cannot extract: an epoch end that measured would fail on them.
    net = types.SimpleNamespace(identity={"sha256": "0" * 64})
    monitor = quality.SampleQuality(net, None, every=1, num_samples=2, epochs=3, stop_signals=stop)
    logs = {"loss": 1.0}
    monitor.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0}
    assert "Sample quality: epoch 1 unmeasured: stopping on SIGTERM" in capsys.readouterr().err


def test_without_a_classifier_training_says_so_once_and_trains_on(labelled, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    trainer.train(gan_config(labelled, run_dir, feature_nets_dir=str(tmp_path / "none"), epochs=2))
    lines = [line for line in capsys.readouterr().err.splitlines() if "Sample quality" in line]
    assert len(lines) == 1 and "--mode=train_classifier --dataset=fashion_mnist" in lines[0]
    assert "fid" not in rows(run_dir)[0] and len(rows(run_dir)) == 2
    assert checkpoints.best(run_dir) is None
    with pytest.raises(errors.UserError, match="--checkpoint=best: .* kept no best checkpoint"):
        reopen.load_run(run_dir, "best")
    assert reopen.load_run(run_dir).checkpoint == checkpoints.latest(run_dir)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": "vae", "ema_decay": 0.9}, "--ema_decay=0.9 applies to the GAN and WGAN"),
        ({"model": "vae", "ema_decay": None, "critic_learning_rate": 1e-4}, "--critic_learning_rate=0.0001 applies to"),
        ({"diffaugment": "color,flip"}, "--diffaugment=color,flip: no augmentation flip"),
        ({"ema_decay": 1.0}, "--ema_decay=1.0; expected 0 .off. or a decay in .0, 1."),
        ({"class_conditioning": "batch_norm"}, "--class_conditioning=batch_norm says how a label enters; add --cond"),
        (
            {"model": "vae", "ema_decay": None, "conditional": True, "class_conditioning": "batch_norm"},
            "--class_conditioning=batch_norm applies to the GAN and WGAN",
        ),
        ({"conditional": True, "class_conditioning": "film"}, "--class_conditioning=film; expected one of embedding,"),
        ({"quality_budget": 1.0}, r"--quality_budget=1.0; expected a share of training time in \[0, 1\)"),
    ],
)
def test_bad_technique_settings_are_one_line_errors_before_anything_is_written(labelled, tmp_path, overrides, message):
    run_dir = tmp_path / "run"
    with pytest.raises(errors.UserError, match=message):
        trainer.train(gan_config(labelled, run_dir, **overrides))
    assert not run_dir.exists()
