"""Benchmarks whose results go into BENCHMARKS.md: `python -m keras_gen.bench vae --epochs=5`.

Each training benchmark trains through the same code path as `run.py` and prints a Markdown table
of seconds per epoch, training images per second and the test metrics after every epoch.
`likelihoods` trains every VAE of the likelihood table (issue 3) and evaluates it as
`run.py --mode=eval` does; rerunning it continues unfinished runs instead of starting over.
`sample_quality` times the metrics of 10,000 real test images against 10,000 training images with
the dataset's trained classifier: feature extraction and each metric separately.
`export` trains every model type for 2 steps, exports it, and times the export, measures the
SavedModel's size and the latency of `sample(64)` from the reloaded SavedModel and in memory.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np

import tensorflow as tf

from keras_gen.data import datasets
from keras_gen.evaluation import evaluate
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import sample_quality
from keras_gen.export import saved_model
from keras_gen.export import signatures
from keras_gen.training import callbacks
from keras_gen.training import checkpointing
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
}


def likelihood_table(arguments):
    """Trains (or finishes) each run of LIKELIHOOD_RUNS, evaluates it, prints one Markdown row per run."""
    names = arguments.only.split(",") if arguments.only else list(LIKELIHOOD_RUNS)
    rows = []
    for name in names:
        run_dir = os.path.join(arguments.out_dir, name)
        config = trainer.TrainConfig(
            out_dir=run_dir,
            dataset="fashion_mnist",
            image_size=32,
            batch_size=64,
            epochs=arguments.epochs,
            steps_per_epoch=arguments.steps_per_epoch,
            verbose=2,
            data_dir=arguments.data_dir,
            resume=checkpointing.has_checkpoint(run_dir),
            export=False,
            **LIKELIHOOD_RUNS[name],
        )
        trainer.train(config, given_fields=("epochs",))
        seconds = [row["epoch_seconds"] for row in callbacks.read_metrics_csv(os.path.join(run_dir, "metrics.csv"))]
        metrics = evaluate.evaluate_run(
            run_dir, num_samples=arguments.num_samples, iw_samples=arguments.iw_samples, metrics=["likelihood"]
        )
        metrics = dict(metrics["likelihood"], epochs=metrics["epochs"])
        rows.append(
            f"| {name} | {metrics['epochs']} | {sum(seconds) / len(seconds):.0f} | "
            f"{metrics['neg_elbo']:.1f} ± {metrics['neg_elbo_stderr']:.1f} | "
            f"{metrics['iwae_nll']:.1f} ± {metrics['iwae_nll_stderr']:.1f} | "
            f"{metrics['reconstruction']:.1f} | {metrics['kl']:.1f} |"
        )
        print(rows[-1], flush=True)
    print(f"\nTest images: first {arguments.num_samples}; IWAE samples per image: {arguments.iw_samples}")
    print("| run | epochs | s/epoch | test neg. ELBO | IWAE NLL | reconstruction | KL |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


# The export table: every model type at the benchmark sizes (32x32 Fashion-MNIST).
EXPORT_RUNS = {
    "vae": {"model": "vae", "z_dim": 20},
    "mlp_vae": {"model": "mlp_vae", "z_dim": 20},
    "lstm_vae": {"model": "lstm_vae", "z_dim": 20},
    "gan": {"model": "gan", "z_dim": 100},
    "wgan": {"model": "wgan", "z_dim": 100},
}


def machine_description():
    """CPU model, cores and the vector extensions TensorFlow's speed depends on, e.g. for BENCHMARKS.md."""
    model, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    extensions = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if name in flags]
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    return (
        f"{model}, {os.cpu_count()} cores ({', '.join(extensions) or 'no AVX2'}), TensorFlow {tf.__version__}, "
        f"TF_ENABLE_ONEDNN_OPTS={onednn}"
    )


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


def export_table(arguments):
    """Per model type: export seconds, SavedModel size, sample(64) latency reloaded vs in memory."""
    rows = []
    for name, settings in EXPORT_RUNS.items():
        run_dir = os.path.join(arguments.out_dir, name)
        config = trainer.TrainConfig(
            out_dir=run_dir, dataset="fashion_mnist", data_dir=arguments.data_dir, image_size=32, batch_size=64,
            epochs=1, steps_per_epoch=2, verbose=0, export=False, **settings,
        )  # fmt: skip
        model, _ = trainer.train(config)
        started = time.perf_counter()
        version = saved_model.export_run(run_dir, os.path.join(arguments.out_dir, "exports", name), verbose=0)
        seconds = time.perf_counter() - started
        count, seed = tf.constant(64), tf.constant(0, tf.int64)
        served = tf.saved_model.load(version).signatures["sample"]
        in_memory = signatures.serving_module(model).sample
        reloaded_ms = _median_milliseconds(lambda: served(count=count, seed=seed)["images_uint8"].numpy())
        memory_ms = _median_milliseconds(lambda: in_memory(count, seed)["images_uint8"].numpy())
        rows.append(
            f"| {name} | {seconds:.1f} | {_directory_megabytes(version):.1f} | {reloaded_ms:.1f} | {memory_ms:.1f} |"
        )
        print(rows[-1], flush=True)
    print(f"\nMachine: {machine_description()}")
    print("| model | export s | SavedModel MB | sample(64) ms, reloaded | sample(64) ms, in memory |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS) + ["likelihoods", "sample_quality", "export"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps_per_epoch", type=int, default=None)
    parser.add_argument("--out_dir", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--data_dir", default=None, help="local dataset files, as run.py's --data_dir")
    parser.add_argument("--num_samples", type=int, default=10_000, help="likelihoods, sample_quality: images")
    parser.add_argument("--iw_samples", type=int, default=1000, help="likelihoods: IWAE samples per image")
    parser.add_argument("--only", default=None, help="likelihoods: comma-separated run names")
    parser.add_argument("--dataset", default="fashion_mnist", help="sample_quality: whose classifier and data")
    parser.add_argument("--feature_nets_dir", default=feature_nets.DEFAULT_ROOT)
    arguments = parser.parse_args(argv)
    if arguments.benchmark == "sample_quality":
        return sample_quality_timing(arguments)
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
    print(f"\nMachine: {machine_description()}")
    test_metrics = [key for key in rows[0] if key.startswith("val_")]
    print("| epoch | seconds | train images/s | " + " | ".join(f"test {key[4:]}" for key in test_metrics) + " |")
    print("|---:" * (3 + len(test_metrics)) + "|")
    for row in rows:
        values = " | ".join(f"{row[key]:.2f}" for key in test_metrics)
        print(f"| {row['epoch']} | {row['epoch_seconds']:.1f} | {row['images_per_second']:.0f} | {values} |")
    print(f"Run directory: {out_dir}")


if __name__ == "__main__":
    main()
