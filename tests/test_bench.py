"""The benchmark commands measure what BENCHMARKS.md says they measure."""

import argparse
import json

import pytest

from keras_gen import bench


def throughput_arguments(**overrides):
    arguments = dict(
        model="vae", channels=1, batch_size=64, z_dim=100, data_dir=None, decoder="report", steps=20, warmup=3,
        mixed_precision="float32",
    )  # fmt: skip
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


def test_throughput_trains_under_the_policy_asked_for(tmp_path):
    arguments = throughput_arguments(model="gan", mixed_precision="mixed_bfloat16")
    assert bench.throughput_config(arguments, str(tmp_path), steps=5).mixed_precision == "mixed_bfloat16"


def test_precision_trains_one_run_per_policy_and_plots_their_curves(idx_folder, tmp_path, capsys):
    data_dir, _ = idx_folder
    plot = tmp_path / "curves.png"
    bench.main(
        ["precision", "--model=gan", "--policies=float32,mixed_bfloat16", "--batch_size=4", "--z_dim=2",
         "--epochs=2", "--steps_per_epoch=2", f"--data_dir={data_dir}", f"--out_dir={tmp_path / 'runs'}",
         f"--plot={plot}"]
    )  # fmt: skip
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| mixed") or line.startswith("| float")
    ]
    assert [row.split(" | ")[0] for row in rows] == ["| float32", "| mixed_bfloat16"]
    for policy in ("float32", "mixed_bfloat16"):
        config = json.loads((tmp_path / "runs" / policy / "config.json").read_text())["config"]
        assert config["mixed_precision"] == policy and config["epochs"] == 2
    assert plot.stat().st_size > 10_000


def test_throughput_summary_takes_medians_over_rounds_and_pairs_each_ratio_within_its_round():
    ours = [{"images_per_second": rate} for rate in (300.0, 330.0, 310.0)]
    # The peer failed in round 2: its ratio is left out, not paired with another round's rate.
    peers = [{"images_per_sec": 250.0}, {"error": "torch missing"}, {"images_per_sec": 260.0}]
    summary = bench.throughput_summary(ours, peers)
    assert summary["rounds"] == 3 and summary["images_per_second"] == 310.0
    assert summary["peer_images_per_sec"] == 255.0
    assert summary["ratios"] == [1.2, 1.19] and summary["median_ratio"] == pytest.approx(1.195)


def test_throughput_summary_without_the_peer_has_no_ratio():
    summary = bench.throughput_summary([{"images_per_second": 300.0}], [])
    assert summary["images_per_second"] == 300.0 and summary["median_ratio"] is None and summary["ratios"] == []


@pytest.mark.parametrize("flag", ["--rounds=0", "--steps=-3", "--warmup=0", "--rounds=two"])
def test_throughput_counts_below_one_are_a_one_line_error(flag, capsys):
    # --rounds=0 would leave no round to summarise; --warmup=0 no step to time from.
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["throughput", "--model=gan", flag])
    assert exit_info.value.code == 2
    name, value = flag.split("=")
    assert f"argument {name}: '{value}'; expected an integer of at least 1" in capsys.readouterr().err
