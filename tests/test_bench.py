"""The benchmarks (benchmarks/, beside the package) measure what BENCHMARKS.md says they measure."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from benchmarks import peer_elbo, peer_gradients, peer_replay, recipes, results, streaming, tables, throughput, trained
from conftest import FASHION_MNIST_DIR
from keras_gen import errors
from keras_gen.data import datasets, shards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def throughput_settings(**overrides):
    settings = dict(
        model="vae", channels=1, batch_size=64, latent_dim=100, data_dir=None, decoder="report", steps=20, warmup=3,
        mixed_precision="float32", gradient_penalty_weight=0.0,
    )  # fmt: skip
    return types.SimpleNamespace(**{**settings, **overrides})


def run_benchmarks(*arguments, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *arguments], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


@pytest.mark.parametrize("model", ["vae", "lstm_vae"])
def test_throughput_trains_the_vaes_as_the_peer_does(model, tmp_path):
    config = throughput.throughput_config(throughput_settings(model=model), str(tmp_path), steps=5)
    # The peer's VAE: the report's decoder, Bernoulli on dynamically binarized pixels, z 100, batch 64.
    assert (config.decoder, config.dataset, config.latent_dim, config.batch_size) == (
        "report",
        "binarized_fashion_mnist",
        100,
        64,
    )


@pytest.mark.parametrize(
    "model, penalty, peer_name", [("gan", 0.0, "gan"), ("wgan", 0.0, "wgan"), ("wgan", 10.0, "wgan_gp")]
)
def test_throughput_trains_the_gans_on_the_default_flags(model, penalty, peer_name, tmp_path):
    settings = throughput_settings(model=model, gradient_penalty_weight=penalty)
    config = throughput.throughput_config(settings, str(tmp_path), steps=5)
    assert config.model == model and config.dataset == "fashion_mnist" and throughput.peer_model(settings) == peer_name
    assert config.gradient_penalty_weight == penalty and config.image_size == 32 and config.steps_per_epoch == 5


def test_throughput_trains_under_the_policy_asked_for(tmp_path):
    settings = throughput_settings(model="gan", mixed_precision="mixed_bfloat16")
    assert throughput.throughput_config(settings, str(tmp_path), steps=5).mixed_precision == "mixed_bfloat16"


def test_precision_trains_one_run_per_policy_writes_its_result_and_plots_the_curves(idx_folder, tmp_path):
    data_dir, _ = idx_folder
    plot = tmp_path / "curves.png"
    finished = run_benchmarks(
        "precision", "--model=gan", "--policies=float32,mixed_bfloat16", "--batch_size=4", "--latent_dim=2",
        "--image_size=16", "--base_filters=4", "--epochs=2", "--steps_per_epoch=2", f"--data_dir={data_dir}",
        f"--out_dir={tmp_path / 'runs'}", f"--plot={plot}", f"--results_dir={tmp_path / 'results'}",
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    (written,) = os.listdir(tmp_path / "results")
    result = results.read(str(tmp_path / "results" / written))
    assert result["benchmark"] == "precision" and [row[1] for row in result["rows"]] == ["float32", "mixed_bfloat16"]
    assert result["command"].startswith("python -m benchmarks precision --model=gan") and "cores" in result["machine"]
    for policy in ("float32", "mixed_bfloat16"):
        config = json.loads((tmp_path / "runs" / policy / "config.json").read_text())["config"]
        assert config["mixed_precision"] == policy and config["epochs"] == 2
    assert plot.stat().st_size > 10_000
    assert results.render(result) in finished.stdout  # The table printed is the table BENCHMARKS.md shows.


def test_throughput_summary_takes_medians_over_rounds_and_pairs_each_ratio_within_its_round():
    ours = [{"images_per_second": rate} for rate in (300.0, 330.0, 310.0)]
    # The peer failed in round 2: its ratio is left out, not paired with another round's rate.
    peers = [{"images_per_sec": 250.0}, {"error": "torch missing"}, {"images_per_sec": 260.0}]
    summary = throughput.summary(ours, peers)
    assert summary["rounds"] == 3 and summary["images_per_second"] == 310.0
    assert summary["peer_images_per_sec"] == 255.0
    assert summary["ratios"] == [1.2, 1.19] and summary["median_ratio"] == pytest.approx(1.195)


def test_recipes_combine_by_plus_and_compare_each_with_the_default_raw_weights():
    assert recipes.recipe_flags("hinge_sn+ttur") == {
        "gan_loss": "hinge", "spectral_norm": True, "learning_rate": 1e-4, "critic_learning_rate": 4e-4
    }  # fmt: skip
    with pytest.raises(ValueError, match="recipe 'sngan'"):
        recipes.recipe_flags("default+sngan")
    run = lambda recipe, raw, ema: {  # noqa: E731
        "recipe": recipe, "fid_raw": raw, "fid_ema": ema, "seconds": 110.0, "quality_seconds": 10.0,
        "generator_steps": 100, "seconds_per_quality": 5.0,
    }  # fmt: skip
    measured = [run("default", 100.0, 80.0), run("default", 120.0, 90.0), run("ttur", 66.0, 70.0)]
    summary = recipes._summary(measured, types.SimpleNamespace(dataset="d", model="gan", quality_samples=10))
    assert summary["default"]["fid_raw"] == 110.0 and summary["default"]["ema_better_in_every_run"]
    assert summary["ttur"]["raw_vs_default"] == pytest.approx(0.6) and not summary["ttur"]["ema_better_in_every_run"]
    assert summary["seconds_per_generator_step"] == pytest.approx(1.0)


def test_throughput_summary_without_the_peer_has_no_ratio():
    summary = throughput.summary([{"images_per_second": 300.0}], [])
    assert summary["images_per_second"] == 300.0 and summary["median_ratio"] is None and summary["ratios"] == []


@pytest.mark.parametrize("flag", ["--rounds=0", "--warmup=0"])
def test_throughput_counts_below_one_are_a_one_line_error(flag):
    # --rounds=0 would leave no round to summarise; --warmup=0 no step to time from. Each case starts a
    # process that loads TensorFlow: the other counts share absl's lower_bound check with these.
    finished = run_benchmarks("throughput", "--model=gan", flag, timeout=120)
    assert finished.returncode == 2
    lines = [line for line in finished.stderr.splitlines() if "error:" in line]
    name, value = flag.split("=")
    assert len(lines) == 1 and name in lines[0] and value in lines[0], finished.stderr[-2000:]


def test_an_unknown_benchmark_is_a_one_line_error():
    finished = run_benchmarks("speed", timeout=120)
    assert finished.returncode == 2 and "expected one benchmark name, one of training, likelihoods" in finished.stderr


def test_a_result_renders_as_a_table_naming_its_machine_and_writes_beside_earlier_ones(tmp_path):
    result = results.make("serving", ["model", "ms"], [["gan", 5.1], ["vae", 3.9]], argv=["benchmarks", "serving"])
    text = results.render(result)
    assert text.splitlines()[0].startswith(f"*Measured {result['date']} on ") and "cores" in text.splitlines()[0]
    assert "`python -m benchmarks serving`" in text and "| model | ms |\n|---|---:|\n| gan | 5.1 |" in text
    first, second = results.write(result, str(tmp_path)), results.write(result, str(tmp_path))
    assert first != second and results.read(first) == results.read(second) == result


def test_benchmarks_md_is_generated_from_the_committed_result_files():
    assert tables.main(["--check"]) == 0  # python -m benchmarks.tables would change nothing.
    with open(os.path.join(REPO, "BENCHMARKS.md"), encoding="utf-8") as stream:
        text = stream.read()
    named = [path for match in tables.MARKED.finditer(text) for path in match["paths"].split()]
    assert len(named) >= 8
    for path in named:
        assert os.path.exists(os.path.join(REPO, path)), path
        assert "cores" in results.read(os.path.join(REPO, path))["machine"], path  # Every table names its CPU.


def test_the_installed_package_ships_no_benchmark_or_torch_code(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), REPO],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-2000:]
    import zipfile

    (wheel,) = [name for name in os.listdir(tmp_path) if name.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    assert any(name.startswith("keras_gen/serving/") for name in names)
    assert not [name for name in names if name.startswith("benchmarks/") or "torch" in name or "bench" in name]


def test_peer_elbo_scores_the_whole_test_set_binarized_once_like_the_peer():
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.skip(f"{FASHION_MNIST_DIR} is missing")  # test_cli fails loudly for it.
    images = peer_elbo.binarized_test_images()
    assert images.shape == (10_000, 32, 32, 1)
    assert set(np.unique(images)) == {0.0, 1.0}
    assert not images[:, :2].any() and not images[:, :, -2:].any()  # The zero padding stays 0.
    intensities = datasets.load("fashion_mnist", 32)["test"].images / 255.0
    assert abs(images.mean() - intensities.mean()) < 0.002  # Each pixel is Bernoulli(intensity).
    np.testing.assert_array_equal(images, peer_elbo.binarized_test_images())  # Once: the same every time.


def test_peer_elbo_scores_on_the_peers_binarization_drawn_once_by_the_peers_python(tmp_path):
    settings = types.SimpleNamespace(peer_python=sys.executable, peer_script=throughput.PEER_SCRIPT)
    with pytest.raises(SystemExit, match="the peer's binarization failed: .*No module named 'torch'"):
        peer_elbo.peer_test_images(settings, str(tmp_path))  # This Python has no torch.
    drawn = (np.random.default_rng(0).uniform(size=(4, 32, 32, 1)) < 0.5).astype(np.uint8)
    np.save(tmp_path / peer_elbo.PEER_TEST_IMAGES, drawn)
    settings.peer_python = str(tmp_path / "no_python_here")  # Drawn before: read, not drawn again.
    images = peer_elbo.peer_test_images(settings, str(tmp_path))
    assert images.dtype == np.float32 and np.array_equal(images, drawn)


def test_peer_elbo_reads_the_peers_json_line_and_names_its_failure(tmp_path):
    script = tmp_path / "peer.py"
    script.write_text('import sys\nprint("progress")\nprint(\'{"test_elbo": -243.5}\')\n')
    settings = types.SimpleNamespace(peer_python=sys.executable, peer_script=str(script), batch_size=64)
    assert peer_elbo.run_peer(settings, 0, 10, str(tmp_path))["test_elbo"] == -243.5
    script.write_text('import sys\nsys.exit("no torch here")\n')
    with pytest.raises(SystemExit, match="the peer failed: no torch here"):
        peer_elbo.run_peer(settings, 0, 10, str(tmp_path))


def test_peer_elbo_reuses_the_peers_saved_run_of_the_same_budget(tmp_path):
    script = tmp_path / "peer.py"
    script.write_text('import sys\nsys.exit("trained again")\n')
    settings = types.SimpleNamespace(peer_python=sys.executable, peer_script=str(script), batch_size=64)
    np.savez(tmp_path / peer_elbo.PEER_RESULT, test_elbo=-243.0, test_kl=14.0, steps=10, samples=np.zeros((2, 2)))
    record = peer_elbo.run_peer(settings, 0, 10, str(tmp_path))
    assert record["test_elbo"] == -243.0 and record["test_kl"] == 14.0 and "samples" not in record
    with pytest.raises(SystemExit, match="trained again"):  # Another budget: trained again.
        peer_elbo.run_peer(settings, 0, 20, str(tmp_path))


def test_peer_replay_reuses_the_peers_recording_of_the_same_length_and_names_a_failure(tmp_path):
    script = tmp_path / "peer.py"
    script.write_text("")  # Neither torch (not in this Python) nor the peer's VAE: the run fails.
    settings = types.SimpleNamespace(peer_python=sys.executable, peer_script=str(script), batch_size=2)
    with pytest.raises(SystemExit, match="peer_replay: the peer's run failed: "):
        peer_replay.peer_run(settings, 0, 3, str(tmp_path))
    np.savez(tmp_path / peer_replay.RECORD, images=np.zeros((3, 2, 1, 32, 32), np.uint8), loss=np.ones(3))
    np.savez(tmp_path / peer_elbo.PEER_RESULT, test_elbo=-243.0, test_rec_nll=228.0, test_kl=15.0)
    recording, peer = peer_replay.peer_run(settings, 0, 3, str(tmp_path))
    assert recording["images"].shape == (3, 2, 1, 32, 32) and peer["test_elbo"] == -243.0
    with pytest.raises(SystemExit, match="holds 3 steps, not 4"):
        peer_replay.peer_run(settings, 0, 4, str(tmp_path))


def test_conditional_vae_scores_each_model_on_its_own_bound():
    from benchmarks import conditional_vae
    from keras_gen import models

    images = (np.random.default_rng(0).uniform(size=(6, 16, 16, 1)) < 0.5).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    plain = models.build("mlp_vae", (16, 16, 1), latent_dim=2, seed=0, likelihood="bernoulli")
    conditional = models.build("mlp_vae", (16, 16, 1), latent_dim=2, num_classes=3, seed=0, likelihood="bernoulli")
    # The unconditional model ignores the labels; the conditional one reads each image's own.
    assert conditional_vae.bounds(plain, images, labels, 2)["num_images"] == 6
    given = conditional_vae.bounds(conditional, images, labels, 2)
    shifted = conditional_vae.bounds(conditional, images, (labels + 1) % 3, 2)
    assert given["num_images"] == 6 and abs(given["neg_elbo"] - shifted["neg_elbo"]) > 1e-3


def test_streaming_memory_compares_shards_and_memory_on_the_same_images(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "TEST_IMAGES", 3)
    prepared = streaming.noise_dataset(str(tmp_path / "small"), 5)
    written = os.path.getmtime(os.path.join(prepared, shards.INDEX))
    assert streaming.noise_dataset(prepared, 5) == prepared  # Rerun, it is reused, not written again.
    assert os.path.getmtime(os.path.join(prepared, shards.INDEX)) == written
    in_memory = datasets.load("custom", 64, data_dir=streaming.noise_npz(str(tmp_path / "small.npz"), 5))
    from_shards = datasets.load("custom", 64, data_dir=prepared)
    for split in ("train", "test"):
        np.testing.assert_array_equal(from_shards[split].images, in_memory[split].images)
    assert streaming.dataset_bytes(prepared) > (5 + 3) * 64 * 64 * 3  # Noise does not compress.


def test_streaming_input_charges_each_step_the_iterator_time_inside_it(tmp_path):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    plane.event_metadata[1].name = streaming.STEP_EVENT
    plane.event_metadata[2].name = streaming.INPUT_EVENT
    plane.event_metadata[3].name = "Conv2D"
    main = plane.lines.add(name="run.py", timestamp_ns=1000)
    data = plane.lines.add(name="iterator", timestamp_ns=5_001_000)
    ms = 10**9  # Picoseconds.
    for offset, duration in ((0, 100 * ms), (200 * ms, 50 * ms)):  # Steps 1000 ns + [0, 100) and [200, 250) ms.
        main.events.add(metadata_id=1, offset_ps=offset, duration_ps=duration)
    main.events.add(metadata_id=3, offset_ps=10 * ms, duration_ps=80 * ms)  # Compute: not input.
    # The data line starts 5 ms later: 2 ms inside step 1, 3 ms across the end of step 2.
    for offset, duration in ((0, 2 * ms), (248 * ms, 3 * ms)):
        data.events.add(metadata_id=2, offset_ps=offset - 5 * ms, duration_ps=duration)
    path = tmp_path / "host.xplane.pb"
    path.write_bytes(space.SerializeToString())
    (first, second) = streaming.step_input_times(str(path))
    assert first == pytest.approx((0.100, 0.002)) and second == pytest.approx((0.050, 0.002))


def test_recipes_refuse_a_run_that_stopped_before_its_epochs():
    trained.check_finished("runs/gp_seed0", 8, 8)
    with pytest.raises(errors.UserError, match="runs/gp_seed0 stopped after 7 of 8 epochs; run the command again"):
        trained.check_finished("runs/gp_seed0", 7, 8)


def test_quality_cost_counts_only_the_measured_epochs_but_every_epochs_seconds():
    epochs = [
        {"epoch": 1, "epoch_seconds": 10.0, "quality_seconds": 2.0},
        {"epoch": 2, "epoch_seconds": 8.0},  # Unmeasured: metrics.csv leaves the cell empty.
        {"epoch": 3, "epoch_seconds": 12.0, "quality_seconds": 1.0},
    ]
    assert trained.quality_share(epochs) == ([1, 3], 3.0, 30.0)


def test_peer_gradients_maps_every_trainable_weight_of_the_conv_vae_to_one_peer_parameter():
    from keras_gen.models import vae

    model = vae.build_conv((32, 32, 1), 100, decoder="report")
    names = peer_gradients.peer_names(model)
    assert sorted(id(variable) for variable, _, _ in names) == sorted(id(v) for v in model.trainable_variables)
    assert len({name for _, name, _ in names}) == len(names)
    # The peer's shapes, by its Sequential's indices: laid out as keras_gen's, each fits its variable.
    peer_shapes = {
        "encoder.13.weight": (256, 1024),
        "fc_dec.weight": (2048, 100),
        "fc_dec.bias": (2048,),
        "decoder.0.weight": (512, 256, 3, 3),
        "decoder.15.weight": (1, 32, 3, 3),
        "mu.weight": (100, 256),
    }
    for variable, name, layout in names:
        if name in peer_shapes:
            assert layout(np.zeros(peer_shapes[name])).shape == tuple(variable.shape), name
