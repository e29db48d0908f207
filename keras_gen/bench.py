"""Benchmarks whose results go into BENCHMARKS.md: `python -m keras_gen.bench vae --epochs=5`.

Each training benchmark trains through the same code path as `run.py` and prints a Markdown table
of seconds per epoch, training images per second and the test metrics after every epoch.
`likelihoods` trains every VAE of the likelihood table (issue 3) and evaluates it as
`run.py --mode=eval` does; rerunning it continues unfinished runs instead of starting over.
`sample_quality` times the metrics of 10,000 real test images against 10,000 training images with
the dataset's trained classifier: feature extraction and each metric separately.
`export` trains every model type for 2 steps, exports it, and times the export, measures the
SavedModel's size and the p50/p99 latency of every signature at batch 1 and 64 in TF Serving's
execution path (export.session), and the images per second of `sample`.
`layers` times each doubling step of the DCGAN generators (issue 11) as TensorFlow's transposed
convolution and as networks.matmul_conv's matrix product, forward and forward+backward.
`throughput` measures training images per second in steady state inside one `fit`, through the
trainer a user runs, and with `--peer` runs the PyTorch peer (../shared/peer) right after with the
same settings, alternating `--rounds` times; one JSON line per measurement,
then a summary line: the medians over the rounds, the ratio paired within each round.
`precision` trains one model under each `--policies` dtype policy (`--mixed_precision`) from the
same seed on the same batches, and prints images per second and the final losses of each, beside a
plot of their loss curves (`--plot`).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gen import environment
from keras_gen import plotting
from keras_gen.data import datasets
from keras_gen.evaluation import evaluate
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import sample_quality
from keras_gen.export import requests
from keras_gen.export import saved_model
from keras_gen.export import server_config
from keras_gen.export import session
from keras_gen.networks import matmul_conv
from keras_gen.training import callbacks
from keras_gen.training import checkpointing
from keras_gen.training import precision
from keras_gen.training import trainer

BENCHMARKS = {
    # The foundation's reference: conv VAE x32, z 20, batch 64 on Fashion-MNIST.
    "vae": dict(model="vae", dataset="fashion_mnist", image_size=32, z_dim=20, batch_size=64),
    # Issue 4's references: 32x32, z 100, batch 64; images/second counts every real image consumed.
    "gan": dict(model="gan", dataset="fashion_mnist", image_size=32, z_dim=100, batch_size=64),
    "wgan": dict(model="wgan", dataset="fashion_mnist", image_size=32, z_dim=100, batch_size=64),
    # Colour (3 channels) needs SVHN: tfds downloads it, or pass its .mat files with --data_dir.
    "gan_svhn": dict(model="gan", dataset="svhn", image_size=32, z_dim=100, batch_size=64),
    "wgan_svhn": dict(model="wgan", dataset="svhn", image_size=32, z_dim=100, batch_size=64),
}
# The likelihood table: model x z_dim on Fashion-MNIST 32x32 (continuous Bernoulli, dequantized).
LIKELIHOOD_RUNS = {
    "vae_z2": dict(model="vae", z_dim=2),
    "vae_z20": dict(model="vae", z_dim=20),
    "vae_z100": dict(model="vae", z_dim=100),
    "mlp_vae_z2": dict(model="mlp_vae", z_dim=2),
    "mlp_vae_z20": dict(model="mlp_vae", z_dim=20),
    "lstm_vae_z20": dict(model="lstm_vae", z_dim=20),
    "mlp_vae_z2_no_kl": dict(model="mlp_vae", z_dim=2, kl_weight=0.0),
    "mlp_vae_z2_no_reconstruction": dict(model="mlp_vae", z_dim=2, reconstruction_weight=0.0),
    # The two decoder stacks at issue 12's budget: z 100, Bernoulli on dynamically binarized pixels,
    # batch 64, Adam 1e-3, 1,800 steps (--epochs=2 --steps_per_epoch=900).
    "vae_z100_binarized_compact": dict(model="vae", z_dim=100, dataset="binarized_fashion_mnist", decoder="compact"),
    "vae_z100_binarized_report": dict(model="vae", z_dim=100, dataset="binarized_fashion_mnist", decoder="report"),
}


def likelihood_table(arguments):
    """Trains (or finishes) each run of LIKELIHOOD_RUNS, evaluates it, prints one Markdown row per run."""
    names = arguments.only.split(",") if arguments.only else list(LIKELIHOOD_RUNS)
    rows = []
    for name in names:
        run_dir = os.path.join(arguments.out_dir, name)
        settings = {"dataset": "fashion_mnist", **LIKELIHOOD_RUNS[name]}
        config = trainer.TrainConfig(
            out_dir=run_dir,
            image_size=32,
            batch_size=64,
            epochs=arguments.epochs,
            steps_per_epoch=arguments.steps_per_epoch,
            verbose=2,
            data_dir=arguments.data_dir,
            resume=checkpointing.has_checkpoint(run_dir),
            export=False,
            **settings,
        )
        trainer.train(config, given_fields=("epochs",))
        records = callbacks.read_metrics_csv(os.path.join(run_dir, "metrics.csv"))
        seconds = [row["epoch_seconds"] for row in records]
        speed = statistics.median(row["images_per_second"] for row in records)
        metrics = evaluate.evaluate_run(
            run_dir, num_samples=arguments.num_samples, iw_samples=arguments.iw_samples, metrics=["likelihood"]
        )
        metrics = dict(metrics["likelihood"], epochs=metrics["epochs"])
        rows.append(
            f"| {name} | {metrics['epochs']} | {sum(seconds) / len(seconds):.0f} | "
            f"{metrics['neg_elbo']:.1f} ± {metrics['neg_elbo_stderr']:.1f} | "
            f"{metrics['iwae_nll']:.1f} ± {metrics['iwae_nll_stderr']:.1f} | "
            f"{metrics['reconstruction']:.1f} | {metrics['kl']:.1f} | {speed:.0f} |"
        )
        print(rows[-1], flush=True)
    print(f"\nTest images: first {arguments.num_samples}; IWAE samples per image: {arguments.iw_samples}")
    print(f"Machine: {environment.machine_description()}")
    print("| run | epochs | s/epoch | test neg. ELBO | IWAE NLL | reconstruction | KL | train images/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


CIFAR10_SUBSET = "../shared/data/cifar10-subset"
PEER_SCRIPT = "../shared/peer/torch_peer.py"
PEER_EXTRA_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_peer_extra.py")
# Throughput models that train as the peer's VAE does, and those the peer lacks (torch_peer_extra.py).
VARIATIONAL_MODELS = ("vae", "lstm_vae")
EXTRA_PEER_MODELS = ("wgan_gp", "lstm_vae")
# The export table: every model type at the benchmark sizes (32x32 Fashion-MNIST).
EXPORT_RUNS = {
    "vae": {"model": "vae", "z_dim": 20},
    "mlp_vae": {"model": "mlp_vae", "z_dim": 20},
    "lstm_vae": {"model": "lstm_vae", "z_dim": 20},
    "gan": {"model": "gan", "z_dim": 100},
    "wgan": {"model": "wgan", "z_dim": 100},
    "wgan_gp": {"model": "wgan", "z_dim": 100, "gradient_penalty": 10.0},
}


def _median_milliseconds(call, repeats=20, warmup=3):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _directory_megabytes(path):
    sizes = [os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names]
    return sum(sizes) / 1e6


def _percentile_milliseconds(call, repeats, warmup=2):
    """(p50, p99) of `call` in milliseconds over `repeats` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.percentile(times, 50)), 1000 * float(np.percentile(times, 99))


def export_table(arguments):
    """Per model type: export seconds, SavedModel size, and each signature's latency in TF Serving's session.

    Latency is one request of 1 or 64 images through export.session (the MetaGraph in a TF1 session,
    SignatureDefs by tensor name: TF Serving's execution path, without its network and batching);
    images/s is 64 over the p50 latency of `sample` at batch 64.
    """
    rows = []
    for name, settings in EXPORT_RUNS.items():
        run_dir = os.path.join(arguments.out_dir, name)
        config = trainer.TrainConfig(
            out_dir=run_dir, dataset="fashion_mnist", data_dir=arguments.data_dir, image_size=32, batch_size=64,
            epochs=1, steps_per_epoch=2, verbose=0, export=False, **settings,
        )  # fmt: skip
        trainer.train(config)
        started = time.perf_counter()
        version = saved_model.export_run(run_dir, os.path.join(arguments.out_dir, "exports", name), verbose=0)
        seconds = time.perf_counter() - started
        megabytes = _directory_megabytes(version)
        with session.ServingSession(version) as served:
            for signature, inputs in requests.read_warmup(os.path.join(version, requests.WARMUP_FILE)):
                timings = {}
                for batch, repeats in ((1, 200), (64, 50)):
                    batch_inputs = server_config.tile_rows(inputs, batch)
                    timings[batch] = _percentile_milliseconds(lambda: served.run(signature, batch_inputs), repeats)
                record = {"model": name, "signature": signature, "export_seconds": round(seconds, 1),
                          "saved_model_mb": round(megabytes, 1),
                          **{f"batch{batch}_ms_p{q}": round(value, 2) for batch, (p50, p99) in timings.items()
                             for q, value in ((50, p50), (99, p99))}}  # fmt: skip
                if signature == "sample":
                    record["sample_images_per_second"] = round(64 / timings[64][0] * 1000)
                print(json.dumps(record), flush=True)
                rows.append(record)
    print(f"\nMachine: {environment.machine_description()}")
    print("| model | export s | MB | signature | batch 1 p50 / p99 ms | batch 64 p50 / p99 ms | sample images/s |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for record in rows:
        print(
            f"| {record['model']} | {record['export_seconds']} | {record['saved_model_mb']} | {record['signature']} "
            f"| {record['batch1_ms_p50']} / {record['batch1_ms_p99']} | {record['batch64_ms_p50']} / "
            f"{record['batch64_ms_p99']} | {record.get('sample_images_per_second', '')} |"
        )


# (input channels, output channels, input size) of every doubling step of the generators at 16-64 pixels.
DOUBLING_SHAPES = [(512, 256, 4), (256, 128, 8), (128, 64, 16), (64, 32, 32), (128, 1, 16), (128, 3, 16), (64, 3, 32)]


def layer_table(arguments):
    """One Markdown row per doubling shape: ms forward and forward+backward, convolution vs matrix product."""

    def timings(convolve, inputs, kernel):
        kernel = tf.Variable(kernel)

        @tf.function
        def forward_backward(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(tf.square(convolve(inputs, kernel)))
            return tape.gradient(loss, [inputs, kernel])

        forward = tf.function(lambda inputs: convolve(inputs, kernel))
        return [
            _median_milliseconds(lambda: [t.numpy() for t in tf.nest.flatten(f(inputs))])
            for f in (forward, forward_backward)
        ]

    def conv2d_transpose(inputs, kernel):
        shape = (inputs.shape[0], 2 * inputs.shape[1], 2 * inputs.shape[2], kernel.shape[2])
        return tf.nn.conv2d_transpose(inputs, kernel, shape, 2, padding="SAME")

    print(f"Machine: {environment.machine_description()}, batch {arguments.batch_size}")
    print("| in -> out channels | input size | convolution ms (fwd / fwd+bwd) | matrix product ms (fwd / fwd+bwd) |")
    print("|---|---:|---:|---:|")
    for in_channels, out_channels, size in DOUBLING_SHAPES:
        inputs = tf.random.normal((arguments.batch_size, size, size, in_channels))
        kernel = tf.random.normal((4, 4, out_channels, in_channels)) * 0.02
        convolution = timings(conv2d_transpose, inputs, kernel)
        product = timings(matmul_conv.conv_transpose_4x4_stride_2, inputs, kernel)
        print(
            f"| {in_channels} -> {out_channels} | {size}x{size} | {convolution[0]:.1f} / {convolution[1]:.1f} "
            f"| {product[0]:.1f} / {product[1]:.1f} |"
        )


class StepTimer(keras.callbacks.Callback):
    """Stamps the end of every training step; reading a logged value waits until the step has run."""

    def __init__(self):
        super().__init__()
        self.started = None
        self.ends = []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(next(iter(logs.values())))
        self.ends.append(time.perf_counter())


def step_definition(config):
    """What one training step of `config` does, in the peer's terms."""
    if config.model == "gan":
        return f"{config.d_steps} discriminator update(s) + 1 generator update; images = {config.d_steps} x batch"
    if config.model == "wgan":
        constraint = f"gradient penalty {config.gradient_penalty}" if config.gradient_penalty else "clipping"
        return f"{config.critic_steps} critic updates ({constraint}) + 1 generator update; images = {config.critic_steps} x batch"
    return "one Adam update on one batch; images = batch"


def model_settings(name):
    """The TrainConfig fields of a benchmark's --model: a registered model, or "wgan_gp"."""
    return {"model": "wgan", "gradient_penalty": 10.0} if name == "wgan_gp" else {"model": name}


def throughput_config(arguments, out_dir, steps):
    """The TrainConfig of a throughput measurement: the defaults a user gets, at the peer's sizes."""
    settings = model_settings(arguments.model)
    variational = arguments.model in VARIATIONAL_MODELS
    if arguments.channels == 3:
        settings.update(dataset="cifar10", data_dir=arguments.data_dir or CIFAR10_SUBSET)
    else:
        # The peer's VAE: Bernoulli likelihood on dynamically binarized pixels.
        dataset = "binarized_fashion_mnist" if variational else "fashion_mnist"
        settings.update(dataset=dataset, data_dir=arguments.data_dir)
    if variational:
        settings.update(decoder=arguments.decoder)
    return trainer.TrainConfig(
        out_dir=out_dir, image_size=32, batch_size=arguments.batch_size, z_dim=arguments.z_dim, epochs=1,
        steps_per_epoch=steps, verbose=0, export=False, grid_size=16, mixed_precision=arguments.mixed_precision,
        **settings,
    )  # fmt: skip


def measure_throughput(arguments):
    """One measurement: images/second over `--steps` steps after `--warmup`, inside one fit."""
    timer = StepTimer()
    config = throughput_config(
        arguments, tempfile.mkdtemp(prefix="bench_throughput_"), arguments.warmup + arguments.steps
    )
    model, _ = trainer.train(config, extra_callbacks=[timer])
    per_step = config.batch_size * (model.batches_per_step or 1)
    variational = config.model in VARIATIONAL_MODELS
    # A small dataset (the CIFAR-10 subset holds 15 WGAN steps) ends the epoch early: count what ran.
    timed = len(timer.ends) - arguments.warmup
    if timed < 1:
        raise ValueError(f"the epoch held {len(timer.ends)} steps, no more than --warmup={arguments.warmup}")
    seconds = timer.ends[-1] - timer.ends[arguments.warmup - 1]
    return {
        "framework": f"keras_gen (TensorFlow {tf.__version__}, Keras {keras.__version__})",
        "model": arguments.model,
        "channels": arguments.channels,
        "batch_size": config.batch_size,
        "z_dim": config.z_dim,
        "images_per_second": round(timed * per_step / seconds, 1),
        "steps_per_second": round(timed / seconds, 3),
        "timed_steps": timed,
        "first_step_seconds": round(timer.ends[0] - timer.started, 2),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "step_definition": step_definition(config),
        "decoder": config.decoder if variational else None,
        "dataset": config.dataset,
        "likelihood": (
            trainer.resolve_likelihood(config.likelihood, datasets.DATASETS.lookup(config.dataset))
            if variational
            else None
        ),
        "jit_compile": bool(model.jit_compile),
        "mixed_precision": config.mixed_precision,
        "device": environment.machine_description(),
    }


def run_peer(arguments, steps):
    """The PyTorch peer's JSON line for the same model, channels, batch and steps (channels-last, 2 threads).

    WGAN-GP and the LSTM-VAE, which the peer lacks, run through torch_peer_extra.py on the peer's harness.
    """
    if arguments.model in EXTRA_PEER_MODELS:
        program = [PEER_EXTRA_SCRIPT, "--peer_script", arguments.peer_script]
    else:
        program = [arguments.peer_script]
    command = [
        arguments.peer_python, *program, "--model", arguments.model, "--channels", str(arguments.channels),
        "--batch_size", str(arguments.batch_size), "--steps", str(steps), "--warmup", str(arguments.warmup),
        "--repeats", "1", "--threads", str(os.cpu_count()), "--channels_last", "--data", "fmnist",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"error": " ".join(result.stderr.split())[-300:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def round_ratio(ours, peer):
    """keras_gen's images/s over the peer's in one round, or None where the peer did not run."""
    return round(ours["images_per_second"] / peer["images_per_sec"], 2) if "images_per_sec" in peer else None


def throughput_summary(ours, peers):
    """Medians over the rounds: keras_gen's images/s, the peer's and the per-round ratios (None if no peer ran).

    The ratio's median is taken over rounds, each ratio from one alternating pair, because a shared
    host drifts between rounds: a median of each side's rates would pair measurements minutes apart.
    """
    ratios = [ratio for ratio in map(round_ratio, ours, peers) if ratio is not None]
    peer_rates = [peer["images_per_sec"] for peer in peers if "images_per_sec" in peer]
    return {
        "rounds": len(ours),
        "images_per_second": statistics.median(mine["images_per_second"] for mine in ours),
        "peer_images_per_sec": statistics.median(peer_rates) if peer_rates else None,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
    }


def throughput(arguments):
    """Alternates keras_gen and (with --peer) the PyTorch peer `--rounds` times; one JSON line each,
    then one line of medians over the rounds."""
    ours, peers = [], []
    for round_index in range(arguments.rounds):
        ours.append(measure_throughput(arguments))
        print(json.dumps({"round": round_index + 1, **ours[-1]}), flush=True)
        if arguments.peer:
            peer = run_peer(arguments, steps=ours[-1]["timed_steps"])
            ratio = round_ratio(ours[-1], peer)
            if ratio is not None:
                peer["ratio"] = ratio
            peers.append(peer)
            print(json.dumps({"round": round_index + 1, "peer": peer}), flush=True)
    summary = {"model": arguments.model, "channels": arguments.channels, **throughput_summary(ours, peers)}
    print(json.dumps({"summary": summary}), flush=True)


# metrics.csv columns that are not training curves.
NOT_CURVES = ("epoch", "epoch_seconds", "images_per_second", "skipped_updates", "val_skipped_updates")


def precision_curves(arguments):
    """The same run under each dtype policy: speed, final losses, and the curves side by side."""
    settings = model_settings(arguments.model)
    if arguments.model in VARIATIONAL_MODELS:
        settings.update(dataset="binarized_fashion_mnist", decoder=arguments.decoder)
    steps_per_epoch = arguments.steps_per_epoch or 50  # Points on the curves every 50 steps by default.
    runs = {}
    print(f"Machine: {environment.machine_description()}")
    for policy in arguments.policies.split(","):
        config = trainer.TrainConfig(
            out_dir=os.path.join(arguments.out_dir, policy), image_size=32, batch_size=arguments.batch_size,
            z_dim=arguments.z_dim, epochs=arguments.epochs, steps_per_epoch=steps_per_epoch,
            data_dir=arguments.data_dir, verbose=0, export=False, mixed_precision=policy, **settings,
        )  # fmt: skip
        trainer.train(config)
        rows = callbacks.read_metrics_csv(os.path.join(config.out_dir, "metrics.csv"))
        losses = [key for key in rows[0] if key.endswith("loss") and not key.startswith("val_")]
        if not runs:
            header = " | ".join(f"final {name} (train / test)" for name in losses)
            print(f"| policy | images/s (median epoch) | {header} | skipped updates |")
            print("|---|---:" + "|---:" * len(losses) + "|---:|")
        finals = " | ".join(
            f"{rows[-1][name]:.3f} / {rows[-1].get('val_' + name, float('nan')):.3f}" for name in losses
        )
        speed = statistics.median(row["images_per_second"] for row in rows)
        skipped = sum(row.get("skipped_updates", 0) for row in rows)
        print(f"| {policy} | {speed:.0f} | {finals} | {skipped:.0f} |", flush=True)
        steps = [row["epoch"] * steps_per_epoch for row in rows]
        curves = [{key: value for key, value in row.items() if key not in NOT_CURVES} for row in rows]
        runs[policy] = (steps, curves)
    if arguments.plot:
        title = f"{arguments.model}, 32x32, batch {arguments.batch_size}: curves by dtype policy (test dashed)"
        plotting.plot_compared_curves(runs, arguments.plot, title)
        print(f"Wrote {arguments.plot}")


def sample_quality_timing(arguments):
    """Seconds to extract features of N test and N training images and to compute each metric."""
    net = feature_nets.load_classifier(arguments.dataset, arguments.feature_nets_dir)
    splits = datasets.load(arguments.dataset, net.image_shape[0], data_dir=arguments.data_dir)
    count = arguments.num_samples
    test = splits["test"].images[:count].astype(np.float32) / 255.0
    train = splits["train"].images[:count].astype(np.float32) / 255.0
    net.extract(test[:500])  # Traces the network once, outside the timing.
    timings = {}
    started = time.time()
    real, other = net.extract(test), net.extract(train)
    timings["feature extraction (both sets)"] = time.time() - started
    steps = {
        "FID": lambda: sample_quality.fid(real[0], other[0]),
        "KID (100 subsets of 1000)": lambda: sample_quality.kid(real[0], other[0]),
        "Inception-style score": lambda: sample_quality.inception_score(other[1]),
        "precision/recall (k=3)": lambda: sample_quality.precision_recall(real[0], other[0]),
    }
    results = {}
    for name, step in steps.items():
        started = time.time()
        results[name] = step()
        timings[name] = time.time() - started
    print(f"\n{len(test)} test vs {len(train)} training images of {arguments.dataset}, classifier {net.identity}")
    print("| step | seconds | value |\n|---|---:|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.1f} | {results.get(name, '')} |")
    print(f"| total | {sum(timings.values()):.1f} | |")


def _at_least_one(text):
    """argparse type: an integer of at least 1 (a count of steps or rounds)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}; expected an integer of at least 1")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark",
        choices=sorted(BENCHMARKS) + ["likelihoods", "sample_quality", "export", "throughput", "layers", "precision"],
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps_per_epoch", type=int, default=None)
    parser.add_argument("--out_dir", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--data_dir", default=None, help="local dataset files, as run.py's --data_dir")
    parser.add_argument("--num_samples", type=int, default=10_000, help="likelihoods, sample_quality: images")
    parser.add_argument("--iw_samples", type=int, default=1000, help="likelihoods: IWAE samples per image")
    parser.add_argument("--only", default=None, help="likelihoods: comma-separated run names")
    parser.add_argument("--dataset", default="fashion_mnist", help="sample_quality: whose classifier and data")
    parser.add_argument("--feature_nets_dir", default=feature_nets.DEFAULT_ROOT)
    parser.add_argument("--model", default="wgan", choices=["vae", "lstm_vae", "gan", "wgan", "wgan_gp"])
    parser.add_argument("--channels", type=int, default=1, choices=[1, 3], help="throughput: 3 = CIFAR-10 subset")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--z_dim", type=int, default=100, help="throughput: the peer's latent size")
    parser.add_argument("--steps", type=_at_least_one, default=20, help="throughput: timed steps")
    parser.add_argument("--warmup", type=_at_least_one, default=3, help="throughput: untimed steps first (tracing)")
    parser.add_argument("--rounds", type=_at_least_one, default=1, help="throughput: alternating measurements")
    parser.add_argument("--peer", action="store_true", help="throughput: run the PyTorch peer after each")
    parser.add_argument("--mixed_precision", default="float32", choices=precision.POLICIES, help="throughput")
    parser.add_argument("--policies", default=",".join(precision.POLICIES), help="precision: comma-separated")
    parser.add_argument("--plot", default=None, help="precision: where to save the curves (PNG)")
    parser.add_argument("--decoder", default="report", help="throughput: VAE decoder stack (the peer's: report)")
    parser.add_argument("--peer_python", default=sys.executable, help="a Python with torch (see ../shared/peer)")
    parser.add_argument("--peer_script", default=PEER_SCRIPT)
    arguments = parser.parse_args(argv)
    if arguments.benchmark == "sample_quality":
        return sample_quality_timing(arguments)
    if arguments.benchmark == "throughput":
        return throughput(arguments)
    if arguments.benchmark == "layers":
        return layer_table(arguments)
    if arguments.benchmark == "precision":
        arguments.out_dir = arguments.out_dir or tempfile.mkdtemp(prefix="bench_precision_")
        return precision_curves(arguments)
    if arguments.benchmark == "export":
        arguments.out_dir = arguments.out_dir or tempfile.mkdtemp(prefix="bench_export_")
        return export_table(arguments)
    if arguments.benchmark == "likelihoods":
        arguments.out_dir = arguments.out_dir or tempfile.mkdtemp(prefix="bench_likelihoods_")
        return likelihood_table(arguments)
    out_dir = arguments.out_dir or tempfile.mkdtemp(prefix=f"bench_{arguments.benchmark}_")
    config = trainer.TrainConfig(
        out_dir=out_dir,
        epochs=arguments.epochs,
        steps_per_epoch=arguments.steps_per_epoch,
        verbose=2,
        data_dir=arguments.data_dir,
        export=False,
        **BENCHMARKS[arguments.benchmark],
    )
    trainer.train(config)
    rows = callbacks.read_metrics_csv(os.path.join(out_dir, "metrics.csv"))
    print(f"\nMachine: {environment.machine_description()}")
    test_metrics = [key for key in rows[0] if key.startswith("val_")]
    print("| epoch | seconds | train images/s | " + " | ".join(f"test {key[4:]}" for key in test_metrics) + " |")
    print("|---:" * (3 + len(test_metrics)) + "|")
    for row in rows:
        values = " | ".join(f"{row[key]:.2f}" for key in test_metrics)
        print(f"| {row['epoch']} | {row['epoch_seconds']:.1f} | {row['images_per_second']:.0f} | {values} |")
    print(f"Run directory: {out_dir}")


if __name__ == "__main__":
    main()
