"""The conv VAE against the PyTorch peer at equal steps: test negative ELBO, trained side by side.

For each seed of `--seeds`, keras_gen trains the VAE of issue 12's budget (`--model=vae
--decoder=report`, z `--latent_dim` (100), Bernoulli likelihood on dynamically binarized
Fashion-MNIST at 32x32, batch 64, Adam 1e-3, `--epochs` x `--steps_per_epoch` = 1,800 steps, stride-2
layers padded as `--conv_padding` says, `--encoder_dense_activation` after the encoder's dense layer,
batch norm trained through the fused kernel or, `--batch_norm=keras`, through Keras' own), then
the peer (`torch_peer.py --model vae --train_steps N`, the same network in PyTorch) trains with the
same seed right after it. Both are scored with the peer's estimator on the peer's own test set:
the one-sample ELBO of all 10,000 test images binarized once as the peer binarizes them (torch,
seed 1234; drawn by the peer's Python and kept in the output directory), batch norm in inference
mode. A binarization is a draw: the same model scores 0.1-0.2 nats apart on two of them, the same
for every seed, so both sides are scored on one. The standard error is over test images; the
spread between seeds is the training's own.

Rerun, the command reuses the runs it finished, keras_gen's and the peer's.
"""

import contextlib
import json
import os
import statistics
import subprocess

import keras
import numpy as np
import tensorflow as tf

from benchmarks import results
from keras_gen.data import datasets
from keras_gen.evaluation import likelihood
from keras_gen.networks import normalization
from keras_gen.runs import checkpoints
from keras_gen.runs import train_config
from keras_gen.training import trainer

TEST_BINARIZATION_SEED = 1234  # The peer's.
EVAL_BATCH = 500


def binarized_test_images(seed=TEST_BINARIZATION_SEED):
    """The Fashion-MNIST test set at 32x32 (zero-padded), each pixel drawn once from Bernoulli(intensity)."""
    intensities = datasets.load("fashion_mnist", 32)["test"].images.astype(np.float32) / 255.0
    return (np.random.default_rng(seed).uniform(size=intensities.shape) < intensities).astype(np.float32)


def test_bounds(model, images):
    """keras_gen's likelihood evaluation with one posterior sample per image: the peer's estimator."""
    batches = tf.data.Dataset.from_tensor_slices(images).batch(EVAL_BATCH)
    return likelihood.evaluate_vae(model, batches, iw_samples=1)


# What the peer writes into its --out directory for the VAE: its test bounds, samples and budget.
PEER_RESULT = "vae_c1_torch.npz"
PEER_TEST_IMAGES = "peer_test_binarized.npy"
PEER_DATA = os.path.join(datasets.DEBIAN_DATASETS_ROOT, "fashion-mnist")  # The peer's --data_dir default.
# The start of every script run by the peer's Python (argv[1]: the peer's script): the peer as a module.
LOAD_PEER = """
import os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(sys.argv[1]))
peer = __import__("importlib").import_module(os.path.basename(sys.argv[1])[:-3])
"""
# The peer's binarization of the test set, drawn as its evaluate_and_save draws it (its first use of
# a Generator seeded 1234), by its own data reader; NHWC uint8. argv: script, out, data_dir.
PEER_BINARIZATION = (
    LOAD_PEER
    + """
test = torch.bernoulli(peer.load_fmnist(sys.argv[3], "test", 1), generator=torch.Generator().manual_seed(1234))
np.save(sys.argv[2], test.permute(0, 2, 3, 1).numpy().astype(np.uint8))
"""
)


def run_in_peer(settings, what, code, *arguments):
    """Runs `code` (beginning with LOAD_PEER) in the peer's Python with the peer's script and `arguments`;
    `what` names the work in the error if it fails."""
    command = [settings.peer_python, "-c", code, settings.peer_script, *map(str, arguments)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise SystemExit(
            f"--peer_python={settings.peer_python}: cannot run it ({error.strerror}); expected a Python with torch"
        )
    if completed.returncode != 0:
        raise SystemExit(f"{what} failed: {' '.join(completed.stderr.split())[-300:]}")


def peer_test_images(settings, out_dir):
    """The test images the peer scores itself on (float32 NHWC of 0 and 1), drawn by the peer's Python once."""
    path = os.path.join(out_dir, PEER_TEST_IMAGES)
    if not os.path.exists(path):
        os.makedirs(out_dir, exist_ok=True)
        run_in_peer(settings, "peer_elbo: the peer's binarization", PEER_BINARIZATION, path + ".tmp.npy", PEER_DATA)
        os.replace(path + ".tmp.npy", path)
    return np.load(path).astype(np.float32)


def run_peer(settings, seed, steps, out_dir):
    """The peer's record for `seed`: read from `out_dir` when it trained there already, else trained now."""
    saved = os.path.join(out_dir, PEER_RESULT)
    if os.path.exists(saved):
        with np.load(saved) as record:
            if int(record["steps"]) == steps:
                return {name: record[name].item() for name in record.files if record[name].ndim == 0}
    command = [
        settings.peer_python, settings.peer_script, "--model", "vae", "--train_steps", str(steps),
        "--out", out_dir, "--seed", str(seed), "--batch_size", str(settings.batch_size),
        "--threads", str(os.cpu_count()), "--channels_last", "--data", "fmnist",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"peer_elbo: the peer failed: {' '.join(completed.stderr.split())[-300:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def keras_batch_norm():
    """Training through Keras' own batch norm instead of the fused kernel (networks.normalization)."""
    fused = normalization.BatchNormalization.call
    normalization.BatchNormalization.call = keras.layers.BatchNormalization.call
    try:
        yield
    finally:
        normalization.BatchNormalization.call = fused


def train_vae(settings, seed, run_dir, conditional=False, dataset="binarized_fashion_mnist"):
    """keras_gen's VAE of the issue's budget, trained in `run_dir` (or finished there, if it began)."""
    config = train_config.TrainConfig(
        model="vae", decoder="report", dataset=dataset, data_dir=settings.data_dir,
        image_size=32, latent_dim=settings.latent_dim, batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, epochs=settings.epochs, steps_per_epoch=settings.steps_per_epoch,
        seed=seed, out_dir=run_dir, quality_every=0, verbose=2, resume=checkpoints.has_checkpoint(run_dir),
        conditional=conditional, conv_padding=settings.conv_padding,
        encoder_dense_activation=settings.encoder_dense_activation,
    )  # fmt: skip
    # A run finished earlier in `run_dir` keeps its settings; a run flag given that differs from it is an
    # error (train_config.config_for_resume), as for `run.py --resume`.
    present = getattr(settings, "present", ())
    given = ("epochs", *(name for name in train_config.IDENTITY_FIELDS if name in present and hasattr(config, name)))
    return trainer.train(config, given_fields=given)[0]


COLUMNS = [
    "seed",
    "keras_gen −ELBO",
    "reconstruction / KL",
    "peer −ELBO",
    "peer reconstruction / KL",
    "keras_gen − peer",
]


def side_by_side(seed, steps, ours, peer, **extra):
    """The record of one seed: keras_gen's bounds (`test_bounds`) beside the peer's test record."""
    return {
        "seed": seed, "steps": steps,
        "keras_gen": {"mean": ours["neg_elbo"], "standard_error": ours["neg_elbo_stderr"]},
        "keras_gen_reconstruction": ours["reconstruction"], "keras_gen_kl": ours["kl"],
        "peer": -peer["test_elbo"], "peer_reconstruction": peer["test_rec_nll"], "peer_kl": peer["test_kl"],
        **extra,
    }  # fmt: skip


def row(record, digits):
    """A `side_by_side` record as a row of COLUMNS, to `digits` decimals."""
    ours, f = record["keras_gen"], f".{digits}f"
    return [
        record["seed"], f"{ours['mean']:{f}} ± {ours['standard_error']:{f}}",
        f"{record['keras_gen_reconstruction']:{f}} / {record['keras_gen_kl']:{f}}", f"{record['peer']:{f}}",
        f"{record['peer_reconstruction']:{f}} / {record['peer_kl']:{f}}", f"{ours['mean'] - record['peer']:+{f}}",
    ]  # fmt: skip


def run(settings):
    test = peer_test_images(settings, settings.out_dir)
    steps = settings.epochs * settings.steps_per_epoch
    rows, measured = [], []
    for seed in (int(seed) for seed in settings.seeds):
        with keras_batch_norm() if settings.batch_norm == "keras" else contextlib.nullcontext():
            model = train_vae(settings, seed, os.path.join(settings.out_dir, f"keras_gen_seed{seed}"))
        ours = test_bounds(model, test)
        peer = run_peer(settings, seed, steps, os.path.join(settings.out_dir, f"peer_seed{seed}"))
        record = side_by_side(seed, steps, ours, peer, peer_record=peer)
        measured.append(record)
        rows.append(row(record, digits=1))
        print(rows[-1], flush=True)
    differences = [r["keras_gen"]["mean"] - r["peer"] for r in measured]
    summary = {
        "keras_gen_mean": statistics.mean(r["keras_gen"]["mean"] for r in measured),
        "peer_mean": statistics.mean(r["peer"] for r in measured),
        "mean_difference": statistics.mean(differences),
    }
    return results.make("peer_elbo", COLUMNS, rows, measured, summary, title="VAE test negative ELBO beside the peer")
