"""Export for TF Serving: versions, signatures, request files, the warm-up file, and loading back."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import keras_gen
from conftest import tiny_train_config, write_npz
from export_helpers import GAN_SIGNATURES, VAE_SIGNATURES, check_outputs, request_files
from keras_gen.serving import requests, saved_model, server_config
from keras_gen.training import trainer

FRESH_PROCESS = textwrap.dedent(
    """
    import base64, json, os, sys
    import numpy as np
    import tensorflow as tf

    results = {}
    for name, version in json.loads(sys.argv[2]).items():
        loaded = tf.saved_model.load(version)
        for file in sorted(os.listdir(os.path.join(version, "requests"))):
            with open(os.path.join(version, "requests", file)) as stream:
                body = json.load(stream)
            signature = loaded.signatures[body["signature_name"]]
            specs = signature.structured_input_signature[1]
            rows = body["instances"]  # TF Serving's row format: one instance per image.
            if len(specs) == 1:  # One input: plain values, {"b64": ...} for bytes.
                (key,) = specs
                rows = [{key: row} for row in rows]
            inputs = {}
            for key, spec in specs.items():
                values = [row[key] for row in rows]
                if spec.dtype == tf.string:
                    values = [base64.b64decode(value["b64"]) for value in values]
                inputs[key] = tf.constant(values, spec.dtype)
            for key, value in signature(**inputs).items():
                results[f"{name}/{body['signature_name']}/{key}"] = value.numpy()
    assert not any(module.startswith("keras_gen") for module in sys.modules), "the export needs no keras_gen"
    np.savez(sys.argv[1], **results)
    """
)


def test_every_model_reloads_in_a_fresh_process_and_answers_its_requests_as_the_model_does(exported, tmp_path):
    versions = {name: version for name, (_, _, version) in exported.items()}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "outputs.npz"), json.dumps(versions)],
        capture_output=True, text=True, timeout=240, cwd=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz", allow_pickle=True)
    for name, (model, _, version) in exported.items():
        bodies = request_files(version)
        assert set(bodies) == (VAE_SIGNATURES if "vae" in name else GAN_SIGNATURES), name
        for signature, body in bodies.items():
            dtypes = {
                key: tf.as_dtype(spec["dtype"])
                for key, spec in _card(version)["signatures"][signature]["inputs"].items()
            }
            inputs = requests.inputs_of_rest_body(body, dtypes)
            prefix = f"{name}/{signature}/"
            answer = {key[len(prefix) :]: outputs[key] for key in outputs.files if key.startswith(prefix)}
            check_outputs(model, signature, inputs, answer, f"{name} {signature}")


def _card(version):
    with open(os.path.join(version, saved_model.CARD_FILE)) as stream:
        return json.load(stream)


def test_sample_with_the_same_seed_gives_the_same_images_in_another_process(exported, tmp_path):
    _, _, version = exported["wgan"]
    script = (
        "import sys, numpy as np, tensorflow as tf; loaded = tf.saved_model.load(sys.argv[1]); "
        "seeds = tf.constant(np.arange(4) + 7 * 2**32, tf.int64); "
        "np.save(sys.argv[2], loaded.signatures['sample'](seeds=seeds)['images_uint8'].numpy())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, version, str(tmp_path / "a.npy")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    here = keras_gen.load(version).sample(4, seed=7)
    np.testing.assert_array_equal(here, np.load(tmp_path / "a.npy"))
    assert here.dtype == np.uint8 and here.shape == (4, 16, 16, 3)
    assert not np.array_equal(here, keras_gen.load(version).sample(4, seed=8))


def test_layout_versions_and_model_card(exported, tmp_path):
    model, run_dir, version = exported["gan"]
    export_dir = os.path.dirname(version)
    assert os.path.basename(version) == "1"
    for name in ("saved_model.pb", "variables", requests.WARMUP_FILE, "requests/sample.json", "model_card.json",
                 server_config.BATCHING_FILE):  # fmt: skip
        assert os.path.exists(os.path.join(version, name)), name
    second = saved_model.export_run(run_dir, export_dir, verbose=0)
    assert os.path.basename(second) == "2" and saved_model.versions(export_dir) == [1, 2]
    assert sorted(os.listdir(export_dir)) == ["1", "2"]  # No staging directory left behind.
    with open(os.path.join(version, "model_card.json")) as stream:
        card = json.load(stream)
    assert card["model"] == "gan" and card["dataset"] == "custom" and card["version"] == 1
    assert card["epochs_trained"] == 1 and card["steps_trained"] == {"generator_optimizer": 2, "critic_optimizer": 2}
    assert card["flags"]["latent_dim"] == 3 and card["serving_default"] == "sample"
    assert card["signatures"]["generate"]["inputs"] == {"latents": {"dtype": "float32", "shape": [None, 3]}}
    assert card["signatures"]["sample"]["outputs"]["images_uint8"] == {"dtype": "uint8", "shape": [None, 16, 16, 3]}
    assert card["signatures"]["sample"]["inputs"] == {"seeds": {"dtype": "int64", "shape": [None]}}
    assert card["signatures"]["critic_bytes"]["inputs"] == {"images_bytes": {"dtype": "string", "shape": [None]}}
    assert "critic_loss" in card["metrics"]["last_epoch"] and card["versions"]["tensorflow"] == tf.__version__


def test_serving_default_is_reconstruct_for_vaes_and_sample_for_gans(exported):
    for name, (_, _, version) in exported.items():
        signatures = tf.saved_model.load(version).signatures
        assert set(signatures) == (VAE_SIGNATURES if "vae" in name else GAN_SIGNATURES) | {"serving_default"}, name
        expected = "reconstructions" if "vae" in name else "images_uint8"
        assert "images_png_bytes" in signatures["serving_default"].structured_outputs, name
        assert expected in signatures["serving_default"].structured_outputs, name


def test_saved_model_cli_lists_every_signature(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    for name in ("vae", "wgan"):
        _, _, version = exported[name]
        result = subprocess.run([cli, "show", "--dir", version, "--all"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        for signature in (VAE_SIGNATURES if name == "vae" else GAN_SIGNATURES) | {"serving_default"}:
            assert f"signature_def['{signature}']" in result.stdout, (name, signature)


def test_load_picks_the_newest_version_and_offers_the_models_methods(exported):
    model, _, version = exported["vae"]
    loaded = keras_gen.load(os.path.dirname(version))
    assert loaded.path == version and loaded.card["model"] == "vae"
    latents = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.decode(latents), model.decode_to_images(latents), rtol=1e-5, atol=1e-6)
    images = loaded.decode(latents)
    mean, _ = loaded.encode(images)
    np.testing.assert_allclose(mean, model.encode(images)[0], rtol=1e-5, atol=1e-6)
    # uint8 images are read as pixel values.
    np.testing.assert_allclose(loaded.reconstruct((images * 255).astype(np.uint8)).shape, (3, 16, 16, 3))
    bounds = loaded.log_likelihood(images)
    assert bounds["elbo"].shape == (3,) and np.all(bounds["iwae"] >= bounds["elbo"] - 1e-3)
    with pytest.raises(keras_gen.errors.UserError, match="has no signature 'generate'"):
        loaded.generate(latents)


def test_export_of_a_run_without_a_checkpoint_or_missing_run_or_unwritable_dir(main_in_process, tmp_path, exported):
    (tmp_path / "empty_run").mkdir()
    with open(os.path.join(exported["gan"][1], "config.json")) as stream:
        (tmp_path / "empty_run" / "config.json").write_text(stream.read())
    (tmp_path / "a_file").write_text("not a directory")
    cases = [
        ([f"--out_dir={tmp_path / 'nowhere'}"], "holds no config.json"),
        ([f"--out_dir={tmp_path / 'empty_run'}"], "holds no checkpoint yet"),
        ([f"--out_dir={exported['gan'][1]}", f"--export_dir={tmp_path / 'a_file' / 'x'}"], "cannot be written"),
        ([f"--out_dir={exported['gan'][1]}", f"--export_dir={tmp_path / 'a_file'}"], "is a file; expected a directory"),
    ]
    for arguments, expected in cases:
        before = sorted(os.listdir(tmp_path))
        status, lines = main_in_process("--mode=export", f"--export_dir={tmp_path / 'exports'}", *arguments)
        assert status == 2 and len(lines) == 1 and expected in lines[0], (arguments, lines)
        assert sorted(os.listdir(tmp_path)) == before, arguments  # Nothing written.


def test_export_from_the_command_line(main_in_process, exported, tmp_path):
    status, lines = main_in_process("--mode=export", f"--out_dir={exported['wgan'][1]}", f"--export_dir={tmp_path}")
    assert status == 0, lines
    assert f"to {tmp_path / '1'}" in main_in_process.stdout
    assert keras_gen.load(str(tmp_path)).sample(2).shape == (2, 16, 16, 3)


def test_profile_batches_write_a_trace_for_tensorboard(tmp_path):
    data_path = write_npz(tmp_path, (40, 16, 16, 1))
    config = tiny_train_config(data_path, tmp_path / "run", epochs=1, steps_per_epoch=4, profile_batches="2,3")
    _, run_dir = trainer.train(config)
    traces = glob.glob(os.path.join(run_dir, "logs", "train", "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 1000
