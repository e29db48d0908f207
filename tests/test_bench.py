"""The benchmark commands measure what BENCHMARKS.md says they measure."""

import argparse

import pytest

from keras_gen import bench


def throughput_arguments(**overrides):
    arguments = dict(
        model="vae", channels=1, batch_size=64, z_dim=100, data_dir=None, decoder="report", steps=20, warmup=3
    )
    return argparse.Namespace(**{**arguments, **overrides})


@pytest.mark.parametrize("model", ["vae", "lstm_vae"])
def test_throughput_trains_the_vaes_as_the_peer_does(model, tmp_path):
    config = bench.throughput_config(throughput_arguments(model=model), str(tmp_path), steps=5)
    # The peer's VAE: the report's decoder, Bernoulli on dynamically binarized pixels, z 100, batch 64.
    assert (config.decoder, config.dataset, config.z_dim, config.batch_size) == (
        "report",
        "binarized_fashion_mnist",
        100,
        64,
    )


@pytest.mark.parametrize("model, gradient_penalty", [("gan", 0.0), ("wgan", 0.0), ("wgan_gp", 10.0)])
def test_throughput_trains_the_gans_on_the_default_flags(model, gradient_penalty, tmp_path):
    config = bench.throughput_config(throughput_arguments(model=model), str(tmp_path), steps=5)
    assert config.model == model.removesuffix("_gp") and config.dataset == "fashion_mnist"
    assert config.gradient_penalty == gradient_penalty and config.image_size == 32 and config.steps_per_epoch == 5
