"""The exports every serving and export test reads: each model type trained for 2 steps and exported once.

`expected` computes what a signature should answer from the trained Keras model alone, with no export
code, so a test can hold any path (TF Serving's session, a fresh process, keras_gen.load) to it;
`SessionServicer` answers gRPC Predict requests from TF Serving's session path.
"""

import json
import os

import numpy as np
import tensorflow as tf

from conftest import tiny_train_config, write_npz
from keras_gen.runs import reopen
from keras_gen.serving import requests, saved_model, signatures
from keras_gen.serving import session
from keras_gen.training import trainer
from tensorflow_serving.apis import prediction_service_pb2_grpc

MODELS = {
    "vae": {"model": "vae"},
    "mlp_vae": {"model": "mlp_vae", "hidden_units": 8},
    "lstm_vae": {"model": "lstm_vae", "hidden_units": 8},
    "gan": {"model": "gan"},
    "wgan": {"model": "wgan", "critic_steps": 2},
    "wgan_gp": {"model": "wgan", "critic_steps": 2, "gradient_penalty_weight": 10.0},
}
VAE_SIGNATURES = {"encode", "encode_bytes", "decode", "reconstruct", "reconstruct_bytes", "log_likelihood", "sample"}
GAN_SIGNATURES = {"generate", "critic", "critic_bytes", "sample"}
LOG_LIKELIHOOD_SAMPLES = 5


def build_exports(root):
    """{name: (model, run directory, version path)}: every model type, 2 steps on 16x16 RGB, exported.

    Builds what `root` does not hold yet; the models are always reopened from their run directories,
    so a second caller gets the same weights as the first.
    """
    data_path = write_npz(root, (60, 16, 16, 3))
    result = {}
    for name, settings in MODELS.items():
        run_dir = root / "runs" / name
        export_dir = root / "saved_models" / name
        if not saved_model.versions(str(export_dir)):
            config = tiny_train_config(
                data_path, run_dir, latent_dim=3, epochs=1, steps_per_epoch=2, batch_size=4, **settings
            )
            trainer.train(config)
            saved_model.export_run(
                str(run_dir), str(export_dir), verbose=0, log_likelihood_samples=LOG_LIKELIHOOD_SAMPLES
            )
        result[name] = (reopen.load_run(str(run_dir)).model, str(run_dir), os.path.join(str(export_dir), "1"))
    return result


def png_images(data):
    """(batch, size, size, channels) floats in [0, 1] of a batch of PNG files."""
    return np.stack([tf.io.decode_png(item).numpy() for item in data]).astype(np.float32) / 255.0


def expected(model, signature, inputs):
    """What the trained Keras model gives for a signature's inputs, computed outside any export code.

    A class-conditional model's requests carry `labels`, which go to its networks beside the other inputs.
    """
    labels = inputs.get(signatures.LABELS_INPUT)
    if signature.endswith("_bytes"):
        inputs = {**inputs, "images": png_images(inputs[signatures.BYTES_INPUT])}
    if signature.startswith("encode"):
        mean, log_variance = model.encode(inputs["images"], labels)
        return {"mean": mean, "log_variance": log_variance}
    if signature in ("decode", "generate"):
        return {"images": model.decode_to_images(inputs["latents"], labels)}
    if signature.startswith("reconstruct"):
        return {"reconstructions": model.decode_to_images(model.encode(inputs["images"], labels)[0], labels)}
    if signature.startswith("critic"):
        images = tf.convert_to_tensor(inputs["images"] * 2.0 - 1.0)  # Keras refuses a mix of arrays and tensors.
        return {"scores": tf.reshape(model.critic(model.critic_inputs(images, labels)), [-1])}
    if signature == "sample":
        latents = np.stack(
            [tf.random.stateless_normal([model.latent_dim], seed=[int(seed), 0]).numpy() for seed in inputs["seeds"]]
        )
        return {"latents": latents, "images": model.decode_to_images(latents, labels)}
    if signature == "log_likelihood":
        images = tf.constant(inputs["images"])
        epsilon = np.stack(
            [
                tf.random.stateless_normal([LOG_LIKELIHOOD_SAMPLES, model.latent_dim], seed=[int(seed), 1]).numpy()
                for seed in inputs["seeds"]
            ],
            axis=1,
        )  # (samples, batch, latent_dim)
        posterior = model.encode(images, labels)
        log_likelihood, log_prior_ratio = model.importance_samples(images, posterior, epsilon, labels)
        weights = np.asarray(log_likelihood + log_prior_ratio, np.float64)
        iwae = np.log(np.mean(np.exp(weights - weights.max(0)), axis=0)) + weights.max(0)
        return {"elbo": weights.mean(0), "iwae": iwae}
    raise KeyError(signature)


def check_outputs(model, signature, inputs, outputs, context):
    """Every output of a signature against the model; PNG outputs are the rounded images, losslessly."""
    wanted = expected(model, signature, inputs)
    # reconstruct_bytes answers with the PNG alone; every other output must be there.
    assert set(wanted) <= set(outputs) or signature == "reconstruct_bytes", (context, sorted(outputs))
    for name in set(wanted) & set(outputs):
        np.testing.assert_allclose(
            outputs[name], np.asarray(wanted[name]), rtol=1e-4, atol=1e-5, err_msg=f"{context} {name}"
        )
    if signatures.PNG_OUTPUT in outputs:
        images = np.asarray(wanted.get("images", wanted.get("reconstructions")))
        decoded = np.stack([tf.io.decode_png(item).numpy() for item in outputs[signatures.PNG_OUTPUT]])
        assert np.abs(decoded.astype(int) - np.round(images * 255).astype(int)).max() <= 1, context
    if "images_uint8" in outputs:
        np.testing.assert_array_equal(outputs["images_uint8"], np.round(np.clip(outputs["images"], 0, 1) * 255))


def request_files(version):
    """{signature: REST body} of a version's request files."""
    bodies = {}
    for name in sorted(os.listdir(os.path.join(version, requests.REQUESTS_DIR))):
        with open(os.path.join(version, requests.REQUESTS_DIR, name)) as stream:
            body = json.load(stream)
        bodies[body["signature_name"]] = body
    return bodies


class SessionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's Predict over gRPC, answered by the session: request protos converted as the server does."""

    def __init__(self, versions):
        self.sessions = {name: session.ServingSession(version) for name, version in versions.items()}

    def Predict(self, request, context):
        from tensorflow_serving.apis import predict_pb2

        served = self.sessions[request.model_spec.name]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs = served.run(request.model_spec.signature_name or "serving_default", inputs)
        response = predict_pb2.PredictResponse()
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response
