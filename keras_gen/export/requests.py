"""Example requests for every signature: REST bodies for `curl` and TF Serving's warm-up file.

The examples need no dataset: images are the model's own samples (binarized for a Bernoulli VAE,
whose likelihood is defined on binary pixels), latents are draws from the prior, all fixed by a seed.

REST bodies use TF Serving's formats (https://www.tensorflow.org/tfx/serving/api_rest):
- row format, `{"signature_name": ..., "instances": [{input: value, ...}, ...]}`, where every input
  has the batch dimension (encode, decode, reconstruct, generate, critic);
- columnar format, `{"signature_name": ..., "inputs": {input: value, ...}}`, for signatures with a
  scalar input (sample's count and seed, log_likelihood's num_samples and seed): the row format
  stacks instances along a new batch axis, which a scalar input does not have.
"""

import json
import os

import numpy as np
import tensorflow as tf

from keras_gen import io_utils

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
REQUESTS_DIR = "requests"
EXAMPLE_COUNT = 2


def example_inputs(module, seed=0):
    """{signature name: {input name: numpy array}} for every signature of a serving module."""
    latents = tf.random.stateless_normal((EXAMPLE_COUNT, module.latent_dim), seed=(seed, 2)).numpy()
    images = module.sample(tf.constant(EXAMPLE_COUNT), tf.constant(seed, tf.int64))["images"].numpy()
    if getattr(module, "likelihood", None) == "bernoulli":
        images = (images > 0.5).astype(np.float32)
    examples = {"sample": {"count": np.int32(EXAMPLE_COUNT), "seed": np.int64(seed)}}
    per_signature = {
        "encode": {"images": images},
        "decode": {"latents": latents},
        "reconstruct": {"images": images},
        "log_likelihood": {"images": images, "num_samples": np.int32(4), "seed": np.int64(seed)},
        "generate": {"latents": latents},
        "critic": {"images": images},
    }
    examples.update({name: inputs for name, inputs in per_signature.items() if name in module.signature_names()})
    return examples


def rest_body(signature, inputs):
    """The JSON body of a TF Serving REST predict request (row format when every input is batched)."""
    if all(np.ndim(value) > 0 for value in inputs.values()):
        count = len(next(iter(inputs.values())))
        instances = [{name: value[index].tolist() for name, value in inputs.items()} for index in range(count)]
        return {"signature_name": signature, "instances": instances}
    return {"signature_name": signature, "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()}}


def inputs_of_rest_body(body):
    """The tensors TF Serving would feed for a REST body: instances stacked, columnar values as given."""
    if "instances" in body:
        names = body["instances"][0].keys()
        return {name: np.asarray([instance[name] for instance in body["instances"]]) for name in names}
    return {name: np.asarray(value) for name, value in body["inputs"].items()}


def write_rest_requests(directory, examples):
    """Writes requests/<signature>.json for every signature; returns their paths."""
    paths = []
    for signature, inputs in examples.items():
        path = os.path.join(directory, REQUESTS_DIR, f"{signature}.json")
        io_utils.write_text(path, json.dumps(rest_body(signature, inputs)) + "\n")
        paths.append(path)
    return paths


def write_warmup(directory, examples, model_name, dtypes):
    """TF Serving's warm-up file: one PredictRequest per signature (a TFRecord of PredictionLog).

    TF Serving replays it when it loads a version, so the first real request does not pay for
    graph initialisation. `dtypes`: {signature: {input: tf.DType}} from the signatures themselves.
    """
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(directory, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in examples.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes[signature][name]))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(path):
    """[(signature name, {input name: numpy array})] of a warm-up file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        requests.append((request.model_spec.signature_name, inputs))
    return requests
