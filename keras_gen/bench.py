"""Benchmarks whose results go into BENCHMARKS.md: `python -m keras_gen.bench vae --epochs=5`.

Each benchmark trains through the same code path as `run.py` and prints a Markdown table of
seconds per epoch, training images per second and the test metrics after every epoch.
"""

import argparse
import os
import platform
import tempfile

import tensorflow as tf

from keras_gen.training import callbacks
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps_per_epoch", type=int, default=None)
    parser.add_argument("--out_dir", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--data_dir", default=None, help="local dataset files, as run.py's --data_dir")
    arguments = parser.parse_args(argv)
    out_dir = arguments.out_dir or tempfile.mkdtemp(prefix=f"bench_{arguments.benchmark}_")
    config = trainer.TrainConfig(
        out_dir=out_dir,
        epochs=arguments.epochs,
        steps_per_epoch=arguments.steps_per_epoch,
        verbose=2,
        data_dir=arguments.data_dir,
        **BENCHMARKS[arguments.benchmark],
    )
    trainer.train(config)
    rows = callbacks.read_metrics_csv(os.path.join(out_dir, "metrics.csv"))
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}"
    )
    test_metrics = [key for key in rows[0] if key.startswith("val_")]
    print("| epoch | seconds | train images/s | " + " | ".join(f"test {key[4:]}" for key in test_metrics) + " |")
    print("|---:" * (3 + len(test_metrics)) + "|")
    for row in rows:
        values = " | ".join(f"{row[key]:.2f}" for key in test_metrics)
        print(f"| {row['epoch']} | {row['epoch_seconds']:.1f} | {row['images_per_second']:.0f} | {values} |")
    print(f"Run directory: {out_dir}")


if __name__ == "__main__":
    main()
