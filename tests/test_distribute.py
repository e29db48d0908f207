"""tf.distribute: one training step means the same on one device, on 2 replicas and on 2 worker processes.

conftest.py gives this process 2 logical CPU devices, so MirroredStrategy has 2 replicas here.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import QUALITY_TECHNIQUES, tiny_train_config, write_npz
from keras_gen import errors, losses, models
from keras_gen.training import distribute, trainer

# Largest |difference| of each weight tensor, relative to its largest |value|, between a run on one
# device and on 2 replicas. Summation order differs (two half-batch sums, then the all-reduce), and
# one device normalizes through the fused batch-norm kernel, whose variance sums carry a few times
# float32's round-off (benchmarks peer_gradients), two replicas through Keras' own: they agree to
# round-off, amplified by Adam/RMSprop; seen: at most 1.2e-4 after 3 steps (the conditional conv VAE).
WEIGHT_TOLERANCE = 3e-4
# The settings the comparisons share: 3 steps of batch 8 (4 per replica) of 16x16 grey images.
MODELS = {
    "vae": {"model": "vae"},
    # The plain GAN's loss is averaged over the global batch as the hinge loss below is, and its
    # critic's batch norm spans the replicas as the clipped WGAN's does.
    "wgan_clip": {"model": "wgan", "critic_steps": 2},
    # The gradient penalty (its interpolates drawn per replica) with the techniques and labels below.
    # The quality techniques together: hinge loss, spectral norm, DiffAugment, EMA, two learning rates.
    "gan_techniques": {"model": "gan", **QUALITY_TECHNIQUES},
    # With the class labels too: each replica takes its rows' labels with its rows' images, the
    # penalty's interpolates keep theirs, and conditional batch norm's statistics span the replicas.
    "wgan_gp_techniques_conditional": {
        "model": "wgan",
        "critic_steps": 2,
        "gradient_penalty_weight": 10.0,
        "spectral_norm": True,
        "diffaugment": "color,translation,cutout",
        "ema_decay": 0.9,
        "conditional": True,
        "class_conditioning": "batch_norm",
    },
    "vae_conditional": {"model": "vae", "conditional": True},
}
TIME_COLUMNS = ("epoch_seconds", "images_per_second")


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("data"), (80, 16, 16, 1), classes=3)


def mirrored():
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, "conftest.py should give this process 2 logical CPU devices"
    return strategy


def train(data_path, out_dir, **settings):
    config = tiny_train_config(data_path, out_dir, latent_dim=3, epochs=1, steps_per_epoch=3, batch_size=8, **settings)
    return trainer.train(config)


def metric_rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as stream:
        return [
            {key: float(value) for key, value in row.items() if key not in TIME_COLUMNS}
            for row in csv.DictReader(stream)
        ]


def assert_same_weights(expected, actual, tolerance=WEIGHT_TOLERANCE):
    assert len(expected.weights) == len(actual.weights)
    for reference, variable in zip(expected.weights, actual.weights):
        scale = max(float(np.abs(reference.numpy()).max()), 1e-6)
        difference = float(np.abs(reference.numpy() - variable.numpy()).max())
        assert difference <= tolerance * scale, f"{reference.path}: differs by {difference:.3g} (scale {scale:.3g})"


def test_global_batch_reduction_matches_one_device_under_mirrored_strategy():
    strategy = mirrored()
    per_example = np.arange(8, dtype=np.float32) ** 2
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(per_example).batch(8))
    replica_losses = strategy.run(losses.average_over_global_batch, args=(next(iter(batches)),))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, replica_losses, axis=None)
    # Each replica divides its 4 examples by the global batch of 8; summing the replicas (what the
    # gradient all-reduce does) gives the single-device mean (of 0, 1, 4, ..., 49), whatever the replica count.
    np.testing.assert_allclose(float(total), 17.5, rtol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_training_on_two_replicas_matches_one_device(data_path, tmp_path, name):
    # The design makes them equal, not merely alike: each replica takes its half of every batch
    # (critic batches included), its own rows of one noise draw for the global batch, batch norm
    # statistics over the global batch, and losses averaged over the global batch.
    one_device, one_device_dir = train(data_path, tmp_path / "one", distribute="default", **MODELS[name])
    replicas, replicas_dir = train(data_path, tmp_path / "two", distribute="mirrored", **MODELS[name])
    assert_same_weights(one_device, replicas)
    expected, actual = metric_rows(one_device_dir), metric_rows(replicas_dir)
    assert expected[0].keys() == actual[0].keys()
    for key in expected[0]:
        np.testing.assert_allclose(actual[0][key], expected[0][key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_replicas_draw_different_latents_that_together_are_the_one_device_draw():
    strategy = mirrored()
    with strategy.scope():
        model = models.build("gan", (16, 16, 1), latent_dim=3, base_filters=4, seed=7)
    per_replica = strategy.experimental_local_results(strategy.run(tf.function(lambda: model.sample_latents(4))))
    first, second = (np.asarray(latents) for latents in per_replica)
    assert first.shape == second.shape == (4, 3)
    assert not np.allclose(first, second)
    single = models.build("gan", (16, 16, 1), latent_dim=3, base_filters=4, seed=7)
    np.testing.assert_allclose(np.concatenate([first, second]), np.asarray(single.sample_latents(8)), rtol=1e-6)


def test_plain_keras_fit_of_a_wgan_under_mirrored_strategy():
    # The notebook way: a WGAN with 2 critic updates takes 2 x 4 images per step, on 2 replicas.
    strategy = mirrored()
    with strategy.scope():
        model = models.build("wgan", (16, 16, 1), latent_dim=3, base_filters=4, seed=0, critic_steps=2)
        model.compile(**model.default_optimizers(1e-3))
    images = np.random.default_rng(0).uniform(-1, 1, (24, 16, 16, 1)).astype(np.float32)
    history = model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert int(model.generator_optimizer.iterations.numpy()) == 3
    assert int(model.critic_optimizer.iterations.numpy()) == 6
    assert np.isfinite(history.history["wasserstein"][0])


WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from keras_gen import api
    model, run_dir = api.train(**json.loads(sys.argv[1]))  # Exports at the end, as run.py does.
    np.savez(sys.argv[2], *[variable.numpy() for variable in model.weights])
    """
)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_worker_processes_train_one_model_and_only_the_chief_writes(data_path, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    out_dir = tmp_path / "run"
    settings = dict(
        model="wgan", critic_steps=2, dataset="custom", data_dir=data_path, image_size=16, latent_dim=3, batch_size=8,
        epochs=1, steps_per_epoch=3, base_filters=4, grid_size=4, out_dir=str(out_dir), verbose=0,
        distribute="multi_worker", export_dir=str(tmp_path / "exports"),
    )  # fmt: skip
    workers = []
    for index in range(2):
        temporary = tmp_path / f"tmp{index}"
        temporary.mkdir()
        environment = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            TMPDIR=str(temporary),  # Where a non-chief worker puts (and must delete) its files.
        )
        command = [sys.executable, "-c", WORKER, json.dumps(settings), str(tmp_path / f"weights{index}.npz")]
        workers.append(subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr.decode()[-3000:]
    chief, other = (np.load(tmp_path / f"weights{index}.npz") for index in range(2))
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key])
    # The chief wrote the run; worker 1 left nothing behind, in the run directory or its temporary one.
    assert (out_dir / "checkpoints" / "checkpoint").exists() and (out_dir / "samples" / "epoch_0001.png").exists()
    assert os.listdir(tmp_path / "tmp1") == []
    assert sorted(os.listdir(tmp_path / "exports")) == ["1"]  # One export, by the chief.
    # Two workers of batch 4 each train as one device with batch 8 does.
    one_device, _ = train(data_path, tmp_path / "one", distribute="default", model="wgan", critic_steps=2)
    for variable, key in zip(one_device.weights, chief.files):
        scale = max(float(np.abs(chief[key]).max()), 1e-6)
        assert float(np.abs(variable.numpy() - chief[key]).max()) <= WEIGHT_TOLERANCE * scale, variable.path
    # The checkpoint of two workers resumes on one device.
    resumed, _ = trainer.train(
        tiny_train_config(data_path, out_dir, resume=True, epochs=2, distribute="default"),
        given_fields=["resume", "epochs", "distribute"],
    )
    assert int(resumed.generator_optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize(
    "tf_config, expected",
    [
        (None, "--distribute=multi_worker needs $TF_CONFIG"),
        ("{not json", "$TF_CONFIG is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster'"),
        ('{"cluster": {"worker": ["localhost:1"]}}', "has no 'task'"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}',
            "task index 3; expected 0 to 0",
        ),
        (
            '{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}',
            "expected a list of 'host:port'",
        ),
    ],
)
def test_bad_tf_config_is_one_line_and_writes_nothing(main_in_process, monkeypatch, tmp_path, tf_config, expected):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    status, lines = main_in_process("--distribute=multi_worker", f"--out_dir={tmp_path / 'run'}")
    assert status == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_a_global_batch_the_replicas_cannot_share_is_refused(main_in_process, data_path, tmp_path):
    status, lines = main_in_process(
        "--distribute=mirrored", "--batch_size=7", "--dataset=custom", f"--data_dir={data_path}",
        "--image_size=16", f"--out_dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert status == 2 and len(lines) == 1, lines
    assert "--batch_size=7 cannot be split over 2 replicas; expected a multiple of 2" in lines[0]
    assert not (tmp_path / "run").exists()


def test_is_chief_follows_tensorflows_convention():
    assert distribute.is_chief({"chief": ["a:1"], "worker": ["b:1"]}, "chief", 0)
    assert not distribute.is_chief({"chief": ["a:1"], "worker": ["b:1"]}, "worker", 0)
    assert distribute.is_chief({"worker": ["a:1", "b:1"]}, "worker", 0)
    assert not distribute.is_chief({"worker": ["a:1", "b:1"]}, "worker", 1)


def test_check_global_batch_names_the_value():
    with pytest.raises(errors.UserError, match="--batch_size=9 cannot be split over 2 replicas"):
        distribute.check_global_batch(9, mirrored())
    distribute.check_global_batch(8, mirrored())


def test_nan_policy_skip_on_two_replicas_trains_as_on_one_device(data_path, tmp_path):
    # Under "skip" the replicas agree on whether an update is finite before taking it.
    settings = {"model": "gan", "nan_policy": "skip"}
    one_device, _ = train(data_path, tmp_path / "one", distribute="default", **settings)
    replicas, replicas_dir = train(data_path, tmp_path / "two", distribute="mirrored", **settings)
    assert_same_weights(one_device, replicas)
    assert metric_rows(replicas_dir)[0]["skipped_updates"] == 0.0


def test_skipped_updates_count_updates_not_replicas():
    strategy = mirrored()
    with strategy.scope():
        model = models.build("gan", (16, 16, 1), latent_dim=3, base_filters=4, seed=0)
        model.compile(**model.default_optimizers(1e-3))
    model.nan_policy = "skip"
    score = model.critic.get_layer("score")
    score.bias.assign([np.nan])  # Every loss is NaN from here on: every update is skipped.
    images = np.zeros((24, 16, 16, 1), np.float32)
    history = model.fit(images, batch_size=8, epochs=1, verbose=0)
    # 3 steps of one discriminator and one generator update each, on either replica count.
    assert history.history["skipped_updates"] == [6.0]
    assert int(model.critic_optimizer.iterations.numpy()) == 0


def test_float16_loss_scaling_on_two_replicas_trains_as_on_one_device(data_path, tmp_path):
    # An overflow on either replica skips the update on both (models.base.apply_update) and halves the
    # one loss scale, so both runs skip the same updates and end alike; Keras' LossScaleOptimizer alone
    # looks at the first replica's gradients only, and the other's overflow reached the weights.
    settings = {
        "model": "wgan",
        "critic_steps": 2,
        "gradient_penalty_weight": 10.0,
        "mixed_precision": "mixed_float16",
    }
    one_device, one_device_dir = train(data_path, tmp_path / "one", distribute="default", **settings)
    replicas, replicas_dir = train(data_path, tmp_path / "two", distribute="mirrored", **settings)
    # 16-bit round-off, amplified by the gradient penalty's second derivatives: alike, not equal.
    assert_same_weights(one_device, replicas, tolerance=5e-2)
    (expected,), (actual,) = metric_rows(one_device_dir), metric_rows(replicas_dir)
    assert actual["skipped_updates"] == expected["skipped_updates"]
    assert all(np.isfinite(value) for value in actual.values()), actual
