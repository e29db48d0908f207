"""Prepared datasets (--mode=prepare) and training that streams them: every image once per epoch, the
same order on resume, each worker its own shards, corrupt records stopped or skipped and counted."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import random_images, tiny_train_config, write_idx_folder, write_npz
from keras_gen import errors, io_utils
from keras_gen.data import datasets, prepare, readers, shards, stream
from keras_gen.runs import checkpoints, reopen, train_config
from keras_gen.training import trainer
from test_distribute import free_ports
from test_reliability import REPO, cli_arguments, start_run, wait_for_saves, weights_of

NUM_IMAGES, NUM_SHARDS = 240, 4


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An .npz of 240 labelled 16x16 images and its preparation into 4 train shards."""
    directory = tmp_path_factory.mktemp("source")
    path = write_npz(directory, (NUM_IMAGES, 16, 16, 1), classes=3)
    prepared = str(directory / "prepared")
    prepare.prepare("custom", 16, prepared, data_dir=path, num_shards=NUM_SHARDS, progress=False)
    return path, prepared


def records_by_index(split):
    images, labels = split.read()
    _, _, index = zip(*tf.data.TFRecordDataset(split.paths).map(shards.parse_fn(split.image_shape, True)))
    return {int(i): (image, label) for i, image, label in zip(index, images, labels)}


def test_prepare_writes_every_image_once_with_its_label_and_a_checked_index(source):
    path, prepared = source
    wanted = readers.read_npz(path)
    index = shards.read_index(prepared)
    assert index["image_shape"] == [16, 16, 1] and index["source"] == os.path.abspath(path)
    for split in ("train", "test"):
        opened = shards.open_split(prepared, split)
        assert opened.count == len(wanted[split].images) and opened.has_labels
        found = records_by_index(opened)
        assert sorted(found) == list(range(len(wanted[split].images)))
        for i, (image, label) in found.items():
            np.testing.assert_array_equal(image, wanted[split].images[i])
            assert label == wanted[split].labels[i]
    train = shards.open_split(prepared, "train")
    assert len(train.shards) == NUM_SHARDS and {shard.count for shard in train.shards} == {54}
    # Written in a shuffled order: a shard is a sample of the split, not a run of it.
    first = records_by_index(shards.StreamedSplit(**{**vars(train), "shards": train.shards[:1]}))
    assert max(first) - min(first) > 150
    assert shards.verify(prepared) == []
    np.testing.assert_array_equal(train.head(5), train.read()[0][:5])


def test_an_image_folder_is_prepared_file_by_file_with_its_class_folders(tmp_path):
    folder = tmp_path / "folder"
    for label, name in enumerate(("cat", "dog")):
        (folder / name).mkdir(parents=True)
        for number in range(10):
            image = random_images((20, 24, 3), seed=label * 100 + number)
            if number == 0 and name == "dog":
                image = image[..., :1]  # One grey image among colour ones: repeated to RGB, as in memory.
            tf.io.write_file(str(folder / name / f"{number}.png"), tf.io.encode_png(image))
    prepared = str(tmp_path / "prepared")
    prepare.prepare("custom", 16, prepared, data_dir=str(folder), num_shards=2, progress=False)
    in_memory = readers.read_image_folder(str(folder), 16)
    loaded = datasets.load("custom", 16, data_dir=prepared)
    assert loaded["train"].class_names == ("cat", "dog")
    for split in ("train", "test"):
        found = records_by_index(shards.open_split(prepared, split))
        assert sorted(found) == list(range(len(in_memory[split].images)))
        for i, (image, label) in found.items():
            np.testing.assert_array_equal(image, in_memory[split].images[i])
            assert label == in_memory[split].labels[i]


def test_prepare_never_overwrites_a_prepared_dataset_and_sizes_must_match(source, tmp_path):
    path, prepared = source
    before = open(os.path.join(prepared, shards.INDEX)).read()
    with pytest.raises(errors.UserError, match="already holds a prepared dataset"):
        prepare.prepare("custom", 16, prepared, data_dir=path, progress=False)
    assert open(os.path.join(prepared, shards.INDEX)).read() == before
    with pytest.raises(errors.UserError, match=r"holds 16x16 images; pass --image_size=16 or prepare it again"):
        datasets.load("custom", 32, data_dir=prepared)


def epoch_stream(prepared, context=None, **options):
    split = shards.open_split(prepared, "train")
    settings = dict(batch_size=8, value_range="unit", pixel_noise="binarize", seed=3, initial_epoch=0, epochs=2)
    settings.update(options)
    steps = settings.pop("steps", stream.steps_per_epoch(split, settings["batch_size"]))
    dataset_fn = stream.train_dataset_fn(split, steps=steps, labels=True, with_index=True, **settings)
    return [tuple(part.numpy() for part in element) for element in dataset_fn(context or tf.distribute.InputContext())]


def test_each_epoch_reads_every_image_once_in_its_own_order_and_resumes_where_it_stopped(source):
    _, prepared = source
    elements = epoch_stream(prepared)
    steps = (NUM_IMAGES - 24) // 8
    assert len(elements) == 2 * steps
    epochs = [np.concatenate([index for _, _, index in elements[e * steps : (e + 1) * steps]]) for e in range(2)]
    for indices in epochs:
        assert len(set(indices)) == len(indices) == steps * 8
    assert not np.array_equal(epochs[0], epochs[1])
    # Labels travel with their images.
    wanted = readers.read_npz(source[0])["train"].labels
    for _, labels, index in elements:
        np.testing.assert_array_equal(labels, wanted[index])
    # Built again, the same stream; resumed at step 5 of epoch 2, the rest of it, pixel noise included.
    again = epoch_stream(prepared)
    resumed = epoch_stream(prepared, initial_epoch=1, initial_step=5)
    for expected, actual in zip(elements + elements[steps + 5 :], again + resumed):
        for expected_part, actual_part in zip(expected, actual):
            np.testing.assert_array_equal(actual_part, expected_part)
    assert len(resumed) == steps - 5


def test_a_shuffle_window_holds_at_most_10000_images_and_64_mb():
    assert stream.window_size((32, 32, 1)) == 10_000
    assert stream.window_size((64, 64, 3)) == 64 * 2**20 // (64 * 64 * 3) == 5461


def test_critic_batches_are_batch_first_runs_of_the_stream(source):
    _, prepared = source
    one = epoch_stream(prepared, epochs=1, pixel_noise=None)
    three = epoch_stream(prepared, epochs=1, pixel_noise=None, batches_per_step=3, steps=len(one) // 3)
    flat = np.concatenate([index for _, _, index in one])
    for step, (_, _, index) in enumerate(three):
        for batch in range(3):  # Image i * 3 + s belongs to batch s: the s-th run of 8 of the step's 24.
            np.testing.assert_array_equal(index[batch::3], flat[step * 24 + batch * 8 : step * 24 + (batch + 1) * 8])


def test_two_input_pipelines_read_disjoint_shards(source, tmp_path):
    _, prepared = source
    split = shards.open_split(prepared, "train")
    steps = stream.steps_per_epoch(split, 8, num_pipelines=2)
    assert steps == 54 * 2 // 4
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        elements = epoch_stream(prepared, context, epochs=1, steps=steps)
        assert all(len(index) == 4 for _, _, index in elements)  # The per-replica batch of a global 8.
        seen.append(np.concatenate([index for _, _, index in elements]))
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0])) == len(seen[0]) == steps * 4
    with pytest.raises(errors.UserError, match="has 4 shard.* for 5 workers.*prepare it again with --num_shards=5"):
        stream.steps_per_epoch(split, 10, num_pipelines=5)
    # An image folder's groups are not the user's to set: prepare it, or use fewer workers.
    folder = image_folder(tmp_path / "few", per_class=2)
    grouped = datasets.load("custom", 16, data_dir=folder, stream_train="always")["train"]
    with pytest.raises(errors.UserError, match=r"for 9 workers.*: prepare it \(--mode=prepare\) with --num_shards=9"):
        stream.steps_per_epoch(grouped, 2, num_pipelines=9)


WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras_gen
    from keras_gen.data import shards, stream
    from keras_gen.training import distribute, trainer
    from keras_gen.runs import train_config

    prepared, out, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    strategy = distribute.get_strategy("multi_worker")
    split = shards.open_split(prepared, "train")
    steps = stream.steps_per_epoch(split, 8, distribute.num_workers(strategy))
    dataset = stream.train_dataset(
        split, 8, "unit", None, 0, 0, 1, steps, strategy, labels=True, with_index=True
    )
    consumed = []
    for element in dataset:
        consumed.extend(int(i) for i in strategy.experimental_local_results(element[2])[0].numpy())
    model, _ = trainer.train(train_config.TrainConfig(**settings))
    np.savez(out, consumed=np.array(consumed), *[variable.numpy() for variable in model.weights])
    """
)


def start_workers(command_of, cluster, **popen):
    processes = []
    for index in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        environment = dict(os.environ, TF_CONFIG=json.dumps(task))
        processes.append(
            subprocess.Popen(
                command_of(index), env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
            )
        )
    return processes


def finish(processes, timeout=240):
    try:
        return [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()


def test_two_workers_split_an_epoch_and_a_lost_worker_ends_the_other_then_both_resume(source, tmp_path):
    _, prepared = source
    # The MLP VAE: what is tested is the data and the cluster, and the conv VAE's synchronized batch
    # norm adds collectives to every step that made this the slowest test of the suite.
    settings = dict(
        model="mlp_vae", dataset="custom", data_dir=prepared, image_size=16, latent_dim=2, batch_size=8, epochs=2,
        grid_size=4, verbose=0, quality_every=0, distribute="multi_worker", checkpoint_every=4, peer_timeout=5,
    )  # fmt: skip
    # Straight: each worker records the images it reads in an epoch, then both train the run.
    straight = {**settings, "out_dir": str(tmp_path / "straight")}
    workers = start_workers(
        lambda index: [sys.executable, "-c", WORKER, prepared, str(tmp_path / f"w{index}.npz"), json.dumps(straight)],
        {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]},
    )
    for worker, (_, stderr) in zip(workers, finish(workers)):
        assert worker.returncode == 0, stderr.decode()[-3000:]
    results = [np.load(tmp_path / f"w{index}.npz") for index in range(2)]
    consumed = [result["consumed"] for result in results]
    assert len(consumed[0]) == len(consumed[1]) == 27 * 4  # Each worker reads all of its 2 shards of 54.
    assert not set(consumed[0]) & set(consumed[1]), "an image was read by both workers in one epoch"
    assert len(set(consumed[0])) == len(consumed[0])
    expected = [results[0][key] for key in results[0].files if key != "consumed"]
    # Killed: worker 1 dies (SIGKILL) in the middle of the run; worker 0 stops within the peer timeout.
    killed_dir = str(tmp_path / "killed")
    config = train_config.TrainConfig(**{**settings, "out_dir": killed_dir})
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = start_workers(
        lambda index: [sys.executable, "run.py", *cli_arguments(config), "--noexport"], cluster, cwd=REPO
    )
    try:
        wait_for_saves(workers[0], killed_dir, 2)
        workers[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        workers[0].wait(timeout=60)
        waited = time.monotonic() - killed_at
    finally:
        outputs = finish(workers)
    assert workers[0].returncode == 1 and waited < 5 + 30
    last = outputs[0][1].decode().strip().splitlines()[-1]
    assert last.startswith("run.py: lost /job:worker/replica:0/task:1 (no heartbeat for 5 s, or it failed)"), last
    assert last.endswith(
        f"Restart every worker with: python run.py --resume --out_dir={killed_dir} --distribute=multi_worker"
    )
    epoch, step = checkpoints.Checkpoint.position_of(checkpoints.latest(killed_dir))
    assert (epoch, step) != (2, 0), "the run finished before a worker was killed"
    # Both restarted with --resume: the run ends where the straight one did.
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    resume = [
        sys.executable,
        "run.py",
        "--resume",
        f"--out_dir={killed_dir}",
        "--distribute=multi_worker",
        "--noexport",
    ]
    workers = start_workers(lambda index: resume, cluster, cwd=REPO)
    for worker, (_, stderr) in zip(workers, finish(workers)):
        assert worker.returncode == 0, stderr.decode()[-3000:]
    resumed = reopen.load_run(killed_dir, checkpoint="newest").model
    for want, got in zip(expected, weights_of(resumed)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def damage(prepared, shard_number=0):
    """Overwrites bytes in the middle of a train shard, keeping its size: what a bad disk does."""
    path = shards.open_split(prepared, "train").paths[shard_number]
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        handle.write(b"\xff" * 64)
    return os.path.basename(path)


def test_a_corrupt_record_stops_the_run_naming_the_shard_or_is_skipped_and_counted(source, tmp_path, main_in_process):
    path, _ = source
    prepared = str(tmp_path / "prepared")
    prepare.prepare("custom", 16, prepared, data_dir=path, num_shards=NUM_SHARDS, progress=False)
    name = damage(prepared)
    arguments = [
        "--dataset=custom", f"--data_dir={prepared}", "--image_size=16", "--latent_dim=2", "--base_filters=4",
        "--batch_size=8", "--epochs=2", "--quality_every=0", "--grid_size=4", "--noexport",
    ]  # fmt: skip
    status, lines = main_in_process(*arguments, f"--out_dir={tmp_path / 'stopped'}")
    assert status == 2 and len(lines) == 1
    assert f"corrupt record in the prepared dataset {prepared} ({name} differ from the index)" in lines[0]
    assert "--corrupt_data=skip" in lines[0]
    status, lines = main_in_process(*arguments, "--corrupt_data=skip", f"--out_dir={tmp_path / 'skipped'}")
    assert status == 0, lines
    with open(tmp_path / "skipped" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    # Counted when a shard has been read to its end: epoch 1 read all four, the damaged one short of the
    # records from the damage on (a TFRecord file cannot be read past a record whose length is lost).
    # Read again in epoch 2, the same records are missing: not counted twice.
    assert [float(row["corrupt_records_skipped"]) for row in rows] == [27, 27]


RUN = {"epochs": 2, "steps_per_epoch": 24, "checkpoint_every": 4, "batch_size": 4, "latent_dim": 3}


def test_a_streamed_run_killed_at_a_random_step_resumes_to_the_same_weights(source, tmp_path):
    _, prepared = source
    # A conditional WGAN-GP: the stream's position, the critic batches, the labels and the penalty's
    # draws all come back (test_reliability kills the GAN with the other techniques).
    settings = dict(model="wgan", critic_steps=2, gradient_penalty_weight=10.0, conditional=True, **RUN)
    straight, _ = trainer.train(tiny_train_config(prepared, tmp_path / "straight", **settings))
    killed_dir = str(tmp_path / "killed")
    process = start_run(tiny_train_config(prepared, killed_dir, **settings))
    try:
        wait_for_saves(process, killed_dir, random.Random("streamed").randint(1, 5))
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    epoch, step = checkpoints.Checkpoint.position_of(checkpoints.latest(killed_dir))
    assert (epoch, step) != (RUN["epochs"], 0), "the run finished before it was killed"
    resumed, _ = trainer.train(
        tiny_train_config(prepared, killed_dir, resume=True, **settings), given_fields=["resume", "verbose"]
    )
    for expected, actual in zip(weights_of(straight), weights_of(resumed)):
        np.testing.assert_array_equal(actual, expected)


def test_prepare_from_the_command_line_then_train_on_it(tmp_path, main_in_process):
    source_dir = str(tmp_path / "idx")
    write_idx_folder(source_dir, num_train=40, num_test=8, side=16)
    prepared = str(tmp_path / "prepared")
    status, lines = main_in_process(
        "--mode=prepare", "--dataset=custom", f"--data_dir={source_dir}", "--image_size=16", f"--out_dir={prepared}"
    )
    assert status == 0, lines
    assert "train 40 images in 16 shards" in main_in_process.stdout
    status, lines = main_in_process(
        "--dataset=custom", f"--data_dir={prepared}", "--image_size=16", "--latent_dim=2", "--base_filters=4",
        "--batch_size=4", "--epochs=1", "--steps_per_epoch=2", "--quality_every=0", "--grid_size=4", "--noexport",
        f"--out_dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert status == 0, lines
    record = json.load(open(tmp_path / "run" / "config.json"))
    assert record["config"]["data_dir"] == prepared and record["data_source"] == os.path.abspath(prepared)
    status, lines = main_in_process(
        "--mode=eval", "--metrics=likelihood", "--num_samples=8", "--iw_samples=2", f"--out_dir={tmp_path / 'run'}"
    )
    assert status == 0, lines
    assert json.loads(main_in_process.stdout)["data_source"] == f"{os.path.abspath(prepared)} [test]"
    status, lines = main_in_process("--mode=prepare", "--dataset=custom", f"--data_dir={prepared}", "--image_size=16")
    assert status == 2 and len(lines) == 1
    assert lines[0].endswith("error: --mode=prepare needs --out_dir, the folder to write the shards into")


def image_folder(directory, per_class=12):
    """Class folders of 20x24 colour PNGs, one grey and one with transparency among them."""
    for label, name in enumerate(("cat", "dog")):
        (directory / name).mkdir(parents=True)
        for number in range(per_class):
            image = random_images((20, 24, 4 if number == 1 else 3), seed=label * 100 + number)
            if number == 0:
                image = image[..., :1]
            tf.io.write_file(str(directory / name / f"{number}.png"), tf.io.encode_png(image))
    return str(directory)


def test_a_large_image_folder_streams_the_images_training_from_memory_sees(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "folder")
    in_memory = readers.read_image_folder(folder, 16)
    assert not datasets.load("custom", 16, data_dir=folder, stream_train="auto")["train"].streamed  # It fits.
    monkeypatch.setattr(datasets.environment, "available_memory", lambda: 1000)  # 21 images of 768 bytes do not.
    loaded = datasets.load("custom", 16, data_dir=folder, stream_train="auto")
    split = loaded["train"]
    assert split.streamed and split.count == 22 and split.class_names == ("cat", "dog")
    np.testing.assert_array_equal(loaded["test"].images, in_memory["test"].images)
    steps = stream.steps_per_epoch(split, 2)
    dataset_fn = stream.train_dataset_fn(split, 2, "unit", None, 0, 0, 1, steps, labels=True, with_index=True)
    seen = 0
    for images, labels, index in dataset_fn(tf.distribute.InputContext()):
        wanted = in_memory["train"].images[index.numpy()]
        # Decoded in the graph as in numpy; compositing transparency may round the other way by one.
        np.testing.assert_allclose(np.round(images.numpy() * 255), wanted, atol=1)
        np.testing.assert_array_equal(labels, in_memory["train"].labels[index.numpy()])
        seen += len(index)
    assert seen == steps * 2 == 22
    first = split.head(3)  # What --mode=eval compares with: the first images of the streamed order.
    np.testing.assert_allclose(first, in_memory["train"].images[split.indices[:3]], atol=1)


def test_a_run_read_from_memory_resumes_from_memory_whatever_memory_it_finds(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "folder")
    settings = dict(model="mlp_vae", dataset="custom", image_size=16, latent_dim=2, batch_size=4, epochs=1)
    _, run_dir = trainer.train(tiny_train_config(folder, tmp_path / "run", **settings))
    monkeypatch.setattr(datasets, "MEMORY_FRACTION", 1e-9)  # A new run would stream.
    assert datasets.load("custom", 16, data_dir=folder, stream_train="auto")["train"].streamed
    trainer.train(tiny_train_config(folder, run_dir, **{**settings, "epochs": 2}, resume=True), ["resume", "epochs"])
    assert train_config.read_record(run_dir)["config"]["stream"] is False


def test_a_streamed_epoch_resumed_on_another_number_of_workers_is_refused(tmp_path):
    folder = image_folder(tmp_path / "folder", per_class=20)
    settings = dict(model="mlp_vae", dataset="custom", image_size=16, latent_dim=2, batch_size=4, epochs=1,
                    stream=True, steps_per_epoch=8, checkpoint_every=3)  # fmt: skip
    _, run_dir = trainer.train(tiny_train_config(folder, tmp_path / "run", **settings))
    record = train_config.read_record(run_dir)
    assert record["input_pipelines"] == 1
    # As if two workers had streamed it: the checkpoint before the newest is at step 6 of their streams.
    io_utils.write_json(os.path.join(run_dir, "config.json"), {**record, "input_pipelines": 2})
    config = tiny_train_config(folder, run_dir, **settings, resume="previous")
    with pytest.raises(errors.UserError, match=r"step 6 of epoch 1 of data streamed to 2 worker\(s\); this run has 1"):
        trainer.train(config, given_fields=["resume"])


def test_only_a_tfds_records_decoding_error_is_reported_as_corrupt_data():
    from keras_gen.data import tfds_files

    split = tfds_files.TfdsSplit("/tfds/mnist", "train", (), (), (28, 28, 1), None, "tfds mnist", None, "image", None)
    undecodable = tf.errors.InvalidArgumentError(None, None, "Input to DecodePng has length 3 which is too short")
    assert "corrupt record in tfds mnist" in trainer._corrupt_data(split, undecodable)
    assert "corrupt record" in trainer._corrupt_data(split, tf.errors.DataLossError(None, None, "truncated record"))
    models_own = tf.errors.InvalidArgumentError(None, None, "Matrix size-incompatible: In[0]: [4,10], In[1]: [3,5]")
    assert trainer._corrupt_data(split, models_own) is None  # Raised as it is, not blamed on the data.


def test_a_streamed_folder_records_it_and_an_unreadable_image_stops_or_is_skipped(tmp_path, main_in_process):
    folder = image_folder(tmp_path / "folder", per_class=20)
    # The MLP VAE: what is tested is the reading of the folder, three times over.
    arguments = [
        "--model=mlp_vae", "--dataset=custom", f"--data_dir={folder}", "--image_size=16", "--latent_dim=2",
        "--base_filters=4", "--batch_size=4", "--epochs=1", "--quality_every=0", "--grid_size=4", "--noexport",
        "--stream",
    ]  # fmt: skip
    status, lines = main_in_process(*arguments, f"--out_dir={tmp_path / 'run'}")
    assert status == 0, lines
    assert json.load(open(tmp_path / "run" / "config.json"))["config"]["stream"] is True
    with open(readers.plan_image_folder(folder)["train"].paths[5], "wb") as handle:
        handle.write(b"not a png at all")
    status, lines = main_in_process(*arguments, f"--out_dir={tmp_path / 'stopped'}")
    assert status == 2 and len(lines) == 1, lines
    assert f"an image file under {os.path.abspath(folder)} cannot be read or decoded" in lines[0]
    status, lines = main_in_process(*arguments, "--corrupt_data=skip", f"--out_dir={tmp_path / 'skipped'}")
    assert status == 0, lines
    with open(tmp_path / "skipped" / "metrics.csv") as handle:
        assert [float(row["corrupt_records_skipped"]) for row in csv.DictReader(handle)] == [1.0]


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A real tfds data directory: tfds' own DummyMnist (20 + 20 random 28x28 digits), prepared offline."""
    import tensorflow_datasets as tfds

    directory = str(tmp_path_factory.mktemp("tfds"))
    tfds.testing.DummyMnist(data_dir=directory).download_and_prepare()
    return directory


def test_any_tfds_image_dataset_streams_from_tfds_own_files(tfds_dir, tmp_path, main_in_process):
    in_memory = datasets.load("tfds:dummy_mnist", 32, data_dir=tfds_dir)
    loaded = datasets.load("tfds:dummy_mnist", 32, data_dir=tfds_dir, stream_train="auto")
    split = loaded["train"]
    assert split.streamed and split.count == 20 and split.class_names == tuple(str(digit) for digit in range(10))
    dataset_fn = stream.train_dataset_fn(split, 4, "unit", None, 0, 0, 1, 5, labels=True, with_index=True)
    seen = []
    for images, labels, index in dataset_fn(tf.distribute.InputContext()):
        # 28x28 padded to 32x32 in the graph as in numpy.
        np.testing.assert_array_equal(np.round(images.numpy() * 255), in_memory["train"].images[index.numpy()])
        np.testing.assert_array_equal(labels, in_memory["train"].labels[index.numpy()])
        seen.extend(index.numpy())
    assert sorted(seen) == list(range(20))
    np.testing.assert_array_equal(split.head(3), in_memory["train"].images[:3])
    status, lines = main_in_process(
        "--dataset=tfds:dummy_mnist", f"--data_dir={tfds_dir}", "--latent_dim=2", "--base_filters=4", "--batch_size=4",
        "--epochs=1", "--quality_every=0", "--grid_size=4", "--noexport", f"--out_dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert status == 0, lines
    assert json.load(open(tmp_path / "run" / "config.json"))["config"]["stream"] is True
    status, lines = main_in_process("--dataset=tfds:", f"--out_dir={tmp_path / 'bad'}")
    assert status == 2 and len(lines) == 1 and "tfds:NAME" in lines[0]
