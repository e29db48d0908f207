"""Exports of class-conditional models: every signature takes `labels` after its other inputs.

A tiny conditional GAN and VAE, trained for 2 steps on real Fashion-MNIST and exported by
the Python API (the door the CLI's training mode goes through), are run the way TF Serving runs them
(serving.session: SignatureDefs by tensor name in a TF1 session) and through `keras_gen.load`, and
held to the live model's own `sample(count, seed, labels)` and networks.
"""

import concurrent.futures
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_gen
from conftest import FASHION_MNIST_DIR
from export_helpers import (
    GAN_SIGNATURES, LOG_LIKELIHOOD_SAMPLES, VAE_SIGNATURES, SessionServicer, check_outputs, request_files,
)  # fmt: skip
from keras_gen import errors, models
from keras_gen.models import base
from keras_gen.runs import reopen
from keras_gen.serving import client, requests, saved_model, session, signatures
from tensorflow_serving.apis import prediction_service_pb2_grpc

# The WGAN's export is the GAN's (AdversarialServing: the same generator and projection critic); its
# conditional training is tested on 2 replicas (test_distribute).
MODELS = {
    "gan": {"model": "gan"},
    "gan_batch_norm": {"model": "gan", "class_conditioning": "batch_norm"},  # The label inside every batch norm.
    "vae": {"model": "vae"},
}
# Fashion-MNIST's labels 0 to 9, as the dataset names them.
GARMENTS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SNEAKER = GARMENTS.index("Sneaker")


@pytest.fixture(scope="module")
def conditional_exports(tmp_path_factory):
    """name -> (live model reopened from its run, version path, name): 2 steps on Fashion-MNIST, exported
    the first time it is asked for."""
    if not os.path.isdir(FASHION_MNIST_DIR):
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_MNIST_DIR} is missing: .ci/run must install dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    built = {}

    def export(name):
        if name not in built:
            directory = tmp_path_factory.mktemp(f"conditional_{name}")
            _, run_dir = keras_gen.train(
                dataset="fashion_mnist", conditional=True, image_size=16, latent_dim=3, base_filters=4, batch_size=4,
                epochs=1, steps_per_epoch=2, quality_every=0, verbose=0, out_dir=str(directory / "run"),
                export_dir=str(directory / "export"), export_iw_samples=LOG_LIKELIHOOD_SAMPLES, **MODELS[name],
            )  # fmt: skip
            built[name] = (reopen.load_run(run_dir).model, str(directory / "export" / "1"), name)
        return built[name]

    return export


@pytest.fixture
def conditional_export(conditional_exports):
    """The conditional GAN's export; the first test runs every model's."""
    return conditional_exports("gan")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_request_file_and_warmup_record_carries_labels_and_runs_in_tf_servings_session(conditional_exports, name):
    model, version, _ = conditional_exports(name)
    warmup = requests.read_warmup(os.path.join(version, requests.WARMUP_FILE))
    with session.ServingSession(version) as served:
        bodies = request_files(version)
        wanted = VAE_SIGNATURES if name == "vae" else GAN_SIGNATURES
        assert set(bodies) == wanted == {signature for signature, _ in warmup}, name
        for signature, body in bodies.items():
            assert served.input_dtypes(signature)["labels"] == tf.int64, (name, signature)
            inputs = requests.inputs_of_rest_body(body, served.input_dtypes(signature))
            np.testing.assert_array_equal(inputs["labels"], [0, 1])  # Row i asks for class i.
            outputs = served.run(signature, inputs)
            check_outputs(model, signature, inputs, outputs, f"{name} {signature}")
            json.dumps(requests.rest_response(outputs))
        for signature, inputs in warmup:
            np.testing.assert_array_equal(inputs["labels"], [0, 1])
            check_outputs(model, signature, inputs, served.run(signature, inputs), f"{name} warm-up {signature}")
        # serving_default, what a request naming no signature gets, with its labels.
        default = "reconstruct" if name == "vae" else "sample"
        inputs = requests.inputs_of_rest_body(bodies[default], served.input_dtypes("serving_default"))
        check_outputs(model, default, inputs, served.run("serving_default", inputs), f"{name} serving_default")
    np.testing.assert_array_equal(keras_gen.load(version).sample(4, labels=SNEAKER), model.sample(4, labels=SNEAKER))


def test_sample_with_labels_in_the_session_is_the_live_models_sample_row_by_row(conditional_export):
    model, version, _ = conditional_export
    seeds, labels = base.row_seeds(6, seed=3), np.array([7, 7, 0, 9, 3, 7])
    with session.ServingSession(version) as served:
        together = served.run("sample", {"seeds": seeds, "labels": labels})
        alone = served.run("sample", {"seeds": seeds[4:5], "labels": labels[4:5]})["images_uint8"]
        other_class = served.run("sample", {"seeds": seeds, "labels": (labels + 1) % 10})["images"]
    np.testing.assert_array_equal(together["images_uint8"], model.sample(6, seed=3, labels=labels))
    np.testing.assert_array_equal(together["images_uint8"][4:5], alone)  # Batchable: a row depends on itself alone.
    assert not np.array_equal(together["images"], other_class)  # The labels reach the generator.


def test_load_draws_ten_sneakers_as_the_live_model_does_and_passes_labels_to_generate_and_critic(conditional_export):
    model, version, _ = conditional_export
    loaded = keras_gen.load(version)
    sneakers = loaded.sample(10, labels=SNEAKER)
    np.testing.assert_array_equal(sneakers, model.sample(10, labels=SNEAKER))
    np.testing.assert_array_equal(loaded.sample(3, seed=2, labels=[1, 2, 3]), model.sample(3, seed=2, labels=[1, 2, 3]))
    latents = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.generate(latents, labels=[4, 5]), model.decode_to_images(latents, [4, 5]), rtol=1e-4, atol=1e-5
    )
    scores = model.critic(model.critic_inputs(tf.constant(sneakers / 127.5 - 1.0, tf.float32), np.full(10, SNEAKER)))
    np.testing.assert_allclose(loaded.critic(sneakers, labels=SNEAKER), np.ravel(scores), rtol=1e-4, atol=1e-5)
    with pytest.raises(errors.UserError, match=r"is class-conditional: sample needs labels.*7 Sneaker, 8 Bag"):
        loaded.sample(4)
    with pytest.raises(ValueError, match="expected class indices from 0 to 9"):
        loaded.sample(2, labels=[0, 10])


def test_out_of_range_or_miscounted_labels_are_refused_by_the_graph_naming_the_bound(conditional_export):
    _, version, _ = conditional_export
    seeds = base.row_seeds(2)
    with session.ServingSession(version) as served:
        for labels in ([0, 10], [-1, 0], [0, 2**40]):  # 2**40 would be 0 as an int32.
            with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class indices from 0 to 9"):
                served.run("sample", {"seeds": seeds, "labels": np.array(labels)})
        with pytest.raises(tf.errors.InvalidArgumentError, match="labels must hold one class index per row"):
            served.run("generate", {"latents": np.zeros((2, 3), np.float32), "labels": np.array([1])})
        # The labels are checked before the images are even decoded.
        with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class indices from 0 to 9"):
            served.run("critic_bytes", {"images_bytes": np.array([b"not an image"], object), "labels": np.array([10])})
        with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class indices from 0 to 9"):
            served.run("critic", {"images": np.zeros((1, 16, 16, 1), np.float32), "labels": np.array([12])})
        assert served.run("sample", {"seeds": seeds, "labels": np.array([9, 0])})["images"].shape == (2, 16, 16, 1)


def test_the_model_card_lists_the_classes_and_the_labels_input(conditional_export):
    _, version, _ = conditional_export
    with open(os.path.join(version, saved_model.CARD_FILE)) as stream:
        card = json.load(stream)
    assert card["num_classes"] == 10 and card["class_names"] == GARMENTS
    for signature in GAN_SIGNATURES:
        assert card["signatures"][signature]["inputs"]["labels"] == {"dtype": "int64", "shape": [None]}, signature


def test_grpc_client_asks_for_a_class(conditional_export, tmp_path, capsys):
    import grpc

    model, version, name = conditional_export
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(SessionServicer({name: version}), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client.main([f"--server=127.0.0.1:{port}", f"--model={name}", "--signature=sample", "--seeds=0,1",
                     f"--labels={SNEAKER},{SNEAKER}", f"--out_dir={tmp_path}"])  # fmt: skip
    finally:
        server.stop(None)
    written = np.stack([tf.io.decode_png(tf.io.read_file(str(tmp_path / f"sample_{i}.png"))).numpy() for i in (0, 1)])
    np.testing.assert_array_equal(written, model.sample(2, labels=SNEAKER))
    assert "images_uint8 uint8 [2, 16, 16, 1]" in capsys.readouterr().out


def test_unconditional_exports_keep_their_signatures_and_refuse_labels(tmp_path):
    untrained = models.build("gan", (16, 16, 1), latent_dim=2, base_filters=4)
    module = signatures.serving_module(untrained)
    inputs = {name: sorted(saved_model.describe(function)["inputs"]) for name, function in module.signatures().items()}
    assert inputs == {"sample": ["seeds"], "serving_default": ["seeds"], "generate": ["latents"],
                      "critic": ["images"], "critic_bytes": ["images_bytes"]}  # fmt: skip
    assert not any("labels" in example for example in requests.example_inputs(module).values())
    tf.saved_model.save(module, str(tmp_path), signatures=module.signatures())
    loaded = keras_gen.load(str(tmp_path))
    assert loaded.sample(2).shape == (2, 16, 16, 1)
    with pytest.raises(errors.UserError, match="is not class-conditional: its sample takes no labels"):
        loaded.sample(2, labels=1)
