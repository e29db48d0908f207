"""Exports run the way TF Serving runs them: the MetaGraph in a TF1 session, SignatureDefs by tensor name.

TF Serving never calls the SavedModel's Python functions: it restores the variables with the graph's
restore op and feeds and fetches tensors by name (serving.session does exactly that, as does
`saved_model_cli run`). Requests reach it as REST JSON (converted as TF Serving's json_tensor.cc
converts them), as gRPC PredictRequests, and as the warm-up records it replays when it loads a version.
"""

import base64
import concurrent.futures
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image

from export_helpers import (
    GAN_SIGNATURES, MODELS, VAE_SIGNATURES, SessionServicer, check_outputs, png_images, request_files,
)  # fmt: skip
from keras_gen.data import readers
from keras_gen.serving import client, requests, saved_model, server_config, session, signatures
from keras_gen.models import base
from tensorflow_serving.apis import prediction_service_pb2_grpc


def test_every_signature_of_every_model_answers_its_rest_request_in_tf_servings_session(exported):
    for name, (model, _, version) in exported.items():
        with session.ServingSession(version) as served:
            bodies = request_files(version)
            assert set(bodies) == (VAE_SIGNATURES if "vae" in name else GAN_SIGNATURES), name
            for signature, body in bodies.items():
                inputs = requests.inputs_of_rest_body(body, served.input_dtypes(signature))
                outputs = served.run(signature, inputs)
                check_outputs(model, signature, inputs, outputs, f"{name} {signature}")
                # The answer TF Serving would send back is valid JSON, with PNGs as {"b64": ...}.
                json.dumps(requests.rest_response(outputs))
            # serving_default, what a request naming no signature gets: reconstruct for VAEs, sample for GANs.
            default = "reconstruct" if "vae" in name else "sample"
            inputs = requests.inputs_of_rest_body(bodies[default], served.input_dtypes("serving_default"))
            check_outputs(model, default, inputs, served.run("serving_default", inputs), f"{name} serving_default")


def test_every_warmup_record_replays_in_the_session_with_the_models_outputs(exported):
    for name, (model, _, version) in exported.items():
        records = requests.read_warmup(os.path.join(version, requests.WARMUP_FILE))
        assert {signature for signature, _ in records} == (VAE_SIGNATURES if "vae" in name else GAN_SIGNATURES)
        with session.ServingSession(version) as served:
            for signature, inputs in records:
                check_outputs(model, signature, inputs, served.run(signature, inputs), f"{name} warm-up {signature}")


def test_merged_requests_give_each_row_the_answer_it_gets_alone(exported):
    """What TF Serving's batching does: requests concatenated on the batch axis, answers split back."""
    for name, (_, _, version) in exported.items():
        with session.ServingSession(version) as served:
            for signature, inputs in requests.read_warmup(os.path.join(version, requests.WARMUP_FILE)):
                other = {key: value[::-1] for key, value in inputs.items()}
                if "seeds" in other:
                    other["seeds"] = other["seeds"] + 7
                merged = served.run(signature, {key: np.concatenate([inputs[key], other[key]]) for key in inputs})
                for part, rows in ((inputs, slice(0, 2)), (other, slice(2, 4))):
                    alone = served.run(signature, part)
                    for key, value in alone.items():
                        assert merged[key].shape[0] == 4, (name, signature, key)  # Every output is batched.
                        if value.dtype == object:  # PNGs: the same pixels, to the rounding of a float.
                            np.testing.assert_allclose(png_images(merged[key][rows]), png_images(value), atol=1 / 255)
                        else:
                            np.testing.assert_allclose(merged[key][rows], value, rtol=1e-4, atol=1e-5)


def test_a_seed_gives_the_same_sample_in_any_batch_and_the_live_model_samples_the_same(exported):
    model, _, version = exported["wgan"]
    with session.ServingSession(version) as served:
        seeds = base.row_seeds(6, seed=3)
        together = served.run("sample", {"seeds": seeds})["images_uint8"]
        alone = served.run("sample", {"seeds": seeds[4:5]})["images_uint8"]
    np.testing.assert_array_equal(together[4:5], alone)
    np.testing.assert_array_equal(model.sample(6, seed=3), together)
    assert not np.array_equal(together[0], together[1])


def test_saved_model_cli_run_answers_a_signature(exported, tmp_path):
    model, _, version = exported["gan"]
    latents = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    np.save(tmp_path / "latents.npy", latents)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "run", "--dir", version, "--tag_set", "serve", "--signature_def", "generate",
         "--inputs", f"latents={tmp_path / 'latents.npy'}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "images.npy"), model.decode_to_images(latents), atol=1e-5)


def test_oversized_requests_are_refused_by_the_graph_naming_the_bound(exported, tmp_path):
    with session.ServingSession(exported["gan"][2]) as served:
        seeds = np.arange(signatures.MAX_IMAGES_PER_REQUEST + 1, dtype=np.int64)
        with pytest.raises(tf.errors.InvalidArgumentError, match="at most 1024 images per request"):
            served.run("sample", {"seeds": seeds})
        assert served.run("sample", {"seeds": seeds[:3]})["images"].shape == (3, 16, 16, 3)  # Still serving.
    # log_likelihood bounds its posterior samples: 2000 per image leaves room for 32 images.
    _, run_dir, _ = exported["vae"]
    version = saved_model.export_run(run_dir, str(tmp_path / "vae"), verbose=0, log_likelihood_samples=2000)
    with session.ServingSession(version) as served:
        images = np.zeros((33, 16, 16, 3), np.float32)
        with pytest.raises(tf.errors.InvalidArgumentError, match="send at most 32 images"):
            served.run("log_likelihood", {"images": images, "seeds": np.arange(33, dtype=np.int64)})
        bounds = served.run("log_likelihood", {"images": images[:2], "seeds": np.arange(2, dtype=np.int64)})
        assert bounds["iwae"].shape == (2,) and np.all(bounds["iwae"] >= bounds["elbo"] - 1e-3)
        with pytest.raises(tf.errors.InvalidArgumentError, match="one seed per image"):
            served.run("log_likelihood", {"images": images[:2], "seeds": np.arange(3, dtype=np.int64)})
        with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
            served.run("encode_bytes", {"images_bytes": np.array([b"not an image"], dtype=object)})
    with open(os.path.join(version, saved_model.CARD_FILE)) as stream:
        card = json.load(stream)
    assert card["log_likelihood_samples"] == 2000
    assert card["limits"] == {"images_per_request": 1024, "posterior_samples_per_request": 65536}


def test_a_png_goes_in_and_a_png_comes_out_through_the_rest_format(exported):
    model, _, version = exported["vae"]
    with open(os.path.join(version, requests.REQUESTS_DIR, "reconstruct_bytes.json")) as stream:
        body = json.load(stream)
    # The request file is what curl sends: one {"b64": PNG} per image, nothing else.
    assert body["signature_name"] == "reconstruct_bytes" and set(body["instances"][0]) == {"b64"}
    sent = [base64.b64decode(instance["b64"]) for instance in body["instances"]]
    assert all(Image.open(io.BytesIO(data)).format == "PNG" for data in sent)
    with session.ServingSession(version) as served:
        outputs = served.run(
            "reconstruct_bytes", requests.inputs_of_rest_body(body, served.input_dtypes("reconstruct_bytes"))
        )
    answer = json.loads(json.dumps(requests.rest_response(outputs)))
    received = [base64.b64decode(prediction["b64"]) for prediction in answer["predictions"]]
    pictures = [Image.open(io.BytesIO(data)) for data in received]
    assert all(picture.format == "PNG" and picture.size == (16, 16) and picture.mode == "RGB" for picture in pictures)
    wanted = model.decode_to_images(model.encode(png_images(sent))[0])
    np.testing.assert_allclose(np.stack([np.asarray(p) for p in pictures]), np.round(np.asarray(wanted) * 255), atol=1)


@pytest.mark.parametrize(
    "mode, size, file_format, channels",
    [("L", 14, "PNG", 1), ("RGB", 16, "JPEG", 3), ("RGBA", 40, "PNG", 3), ("RGB", 12, "PNG", 3), ("LA", 16, "PNG", 1)],
)
def test_images_bytes_are_decoded_as_the_data_readers_decode_files(tmp_path, mode, size, file_format, channels):
    """Padding (14 -> 16), cropping and resizing (40x30 -> 16), alpha over black: as data.readers."""
    rng = np.random.default_rng(size)
    array = rng.integers(0, 256, (size * 3 // 4 if size == 40 else size, size, len(mode)), dtype=np.uint8)
    path = str(tmp_path / f"image.{file_format.lower()}")
    Image.fromarray(array.squeeze(-1) if len(mode) == 1 else array, mode).save(path, format=file_format)
    with open(path, "rb") as stream:
        data = stream.read()
    decoded = signatures.decode_images(tf.constant([data]), (16, 16, channels)).numpy()[0]
    wanted, _ = readers.decode_image(path, 16)
    np.testing.assert_allclose(decoded * 255, wanted, atol=1.0)


def test_grey_images_become_rgb_and_rgb_becomes_grey_for_the_models_channels():
    grey = np.full((16, 16, 1), 100, np.uint8)
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 1] = 200  # Pure green: luminance 0.587 * 200.
    data = tf.stack([tf.io.encode_png(grey), tf.io.encode_png(colour)])
    as_rgb = signatures.decode_images(data, (16, 16, 3)).numpy() * 255
    as_grey = signatures.decode_images(data, (16, 16, 1)).numpy() * 255
    np.testing.assert_allclose(as_rgb[0], 100, atol=1e-3)
    np.testing.assert_allclose(as_grey[1], 0.587 * 200, atol=0.5)


def test_published_versions_and_server_files_are_readable_by_other_users(exported, tmp_path):
    _, run_dir, _ = exported["gan"]
    # A folder any user can enter (pytest's own are private), as a shared model volume would be.
    shared = tempfile.mkdtemp(prefix="keras_gen_serving_")
    os.chmod(shared, 0o755)
    previous = os.umask(0o022)
    try:
        version = saved_model.export_run(run_dir, os.path.join(shared, "gan"), verbose=0)
    finally:
        os.umask(previous)
    try:
        paths = [os.path.join(shared, server_config.MODELS_CONFIG), os.path.join(shared, server_config.BATCHING_FILE)]
        for directory, folders, files in os.walk(os.path.join(shared, "gan")):
            paths += [directory] + [os.path.join(directory, name) for name in files]
        for path in paths:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            assert mode == (0o755 if os.path.isdir(path) else 0o644), (path, oct(mode))
        if os.geteuid() == 0:  # Read every file as an unprivileged user, as a server running as `nobody` would.
            result = subprocess.run(
                ["/bin/sh", "-c", 'find "$0" -type f -exec cat {} + > /dev/null', version],
                user=65534, group=65534, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr[-2000:]
    finally:
        shutil.rmtree(shared)
    # A private umask is respected too.
    previous = os.umask(0o077)
    try:
        private = saved_model.export_run(run_dir, str(tmp_path / "private"), verbose=0)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700


def test_models_config_serves_every_export_and_batching_parameters_come_from_measurements(exported):
    from tensorflow_serving.config import model_server_config_pb2

    root = os.path.dirname(os.path.dirname(exported["vae"][2]))
    with open(os.path.join(root, server_config.MODELS_CONFIG)) as stream:
        config = text_format.Parse(stream.read(), model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry.base_path for entry in config.model_config_list.config}
    assert entries == {name: os.path.join(root, name) for name in MODELS}
    assert all(entry.model_platform == "tensorflow" for entry in config.model_config_list.config)
    version = exported["gan"][2]
    with open(os.path.join(version, saved_model.CARD_FILE)) as stream:
        card = json.load(stream)
    parameters = card["batching"]["parameters"]
    assert card["batching"]["signature"] == "sample" and set(card["batching"]["latency_ms"]) == {
        "1",
        "2",
        "4",
        "8",
        "16",
        "32",
        "64",
    }
    assert parameters["allowed_batch_sizes"][-1] == parameters["max_batch_size"]
    with open(os.path.join(version, server_config.BATCHING_FILE)) as stream:
        text = stream.read()
    assert f"max_batch_size {{ value: {parameters['max_batch_size']} }}" in text
    assert f"batch_timeout_micros {{ value: {parameters['batch_timeout_micros']} }}" in text


def test_batching_parameters_follow_the_latencies():
    # Throughput per image flattens at 16: larger batches only add latency.
    latencies = {1: 0.002, 2: 0.0025, 4: 0.003, 8: 0.004, 16: 0.006, 32: 0.0118, 64: 0.0236}
    parameters = server_config.batching_parameters(latencies, cores=4)
    assert parameters["max_batch_size"] == 16 and parameters["allowed_batch_sizes"] == [1, 2, 4, 8, 16]
    assert parameters["batch_timeout_micros"] == 1000 and parameters["num_batch_threads"] == 4
    assert parameters["max_enqueued_batches"] == round(1 / 0.006) * 4


def test_grpc_client_example_against_a_predict_service_backed_by_the_session(exported, tmp_path, capsys):
    import grpc

    model, _, version = exported["vae"]
    servicer = SessionServicer({"vae": version})
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        image = np.round(np.asarray(model.sample(1, seed=5))[0]).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / "in.png")
        client.main([f"--server=127.0.0.1:{port}", "--model=vae", "--signature=reconstruct_bytes",
                     f"--images={tmp_path / 'in.png'}", f"--out_dir={tmp_path / 'out'}"])  # fmt: skip
        written = np.asarray(Image.open(tmp_path / "out" / "reconstruct_bytes_0.png"))
        wanted = model.decode_to_images(model.encode(image[np.newaxis].astype(np.float32) / 255.0)[0])[0]
        np.testing.assert_allclose(written, np.round(np.asarray(wanted) * 255), atol=1)
        client.main([f"--server=127.0.0.1:{port}", "--model=vae", "--signature=sample", "--seeds=0,1,2",
                     f"--out_dir={tmp_path / 'samples'}"])  # fmt: skip
        assert sorted(os.listdir(tmp_path / "samples")) == [f"sample_{index}.png" for index in range(3)]
        assert "latents float32 [3, 3]" in capsys.readouterr().out
        with pytest.raises(SystemExit, match="127.0.0.1"):
            client.main([f"--server=127.0.0.1:{port}", "--model=vae", "--signature=generate", "--seeds=0"])
    finally:
        server.stop(None)
