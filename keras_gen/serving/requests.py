"""Example requests for every signature: REST bodies for `curl` and TF Serving's warm-up file.

The examples need no dataset: images are the model's own samples (binarized for a Bernoulli VAE,
whose likelihood is defined on binary pixels), as floats and as PNG files, and latents are draws
from the prior, all fixed by a seed. A class-conditional model's examples give row i class
i mod num_classes, the images drawn for those classes.

REST bodies use TF Serving's row format (https://www.tensorflow.org/tfx/serving/api_rest):
`{"signature_name": ..., "instances": [...]}`, one instance per image, every input batched. A
signature with one input takes plain values (`"instances": [0, 1]`, `[{"b64": "..."}]` for bytes),
one with several takes objects (`[{"images": ..., "seeds": 0}, ...]`). `inputs_of_rest_body` and
`rest_response` convert as TF Serving's json_tensor.cc does, so tests can follow a request from its
JSON to the JSON answer.
"""

import base64
import json
import os

import numpy as np
import tensorflow as tf

from keras_gen import io_utils
from keras_gen.models import base
from keras_gen.serving import client
from keras_gen.serving import signatures

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
REQUESTS_DIR = "requests"
EXAMPLE_COUNT = 2


def example_inputs(module, seed=0):
    """{signature name: {input name: numpy array}} for every signature of a serving module."""
    seeds = base.row_seeds(EXAMPLE_COUNT, seed)
    # Every signature of a conditional module takes labels beside its other input: these, in every request.
    labels = {}
    if module.num_classes:
        labels[signatures.LABELS_INPUT] = np.arange(EXAMPLE_COUNT, dtype=np.int64) % module.num_classes
    images = module.sample(*[tf.constant(value) for value in (seeds, *labels.values())])["images"]
    if getattr(module, "likelihood", None) == "bernoulli":
        images = tf.cast(images > 0.5, tf.float32)
    png = signatures.encode_png(images).numpy()
    latents = base.row_latents(base.row_seeds(EXAMPLE_COUNT, seed + 1), module.latent_dim).numpy()
    images = images.numpy()
    per_signature = {
        "sample": {"seeds": seeds},
        "encode": {"images": images},
        "encode_bytes": {signatures.BYTES_INPUT: png},
        "decode": {"latents": latents},
        "reconstruct": {"images": images},
        "reconstruct_bytes": {signatures.BYTES_INPUT: png},
        "log_likelihood": {"images": images, "seeds": seeds},
        "generate": {"latents": latents},
        "critic": {"images": images},
        "critic_bytes": {signatures.BYTES_INPUT: png},
    }
    return {name: {**per_signature[name], **labels} for name in module.signature_names()}


def _json_value(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return np.asarray(value).tolist()


def rest_body(signature, inputs):
    """The JSON body of a TF Serving REST predict request in the row format, one instance per row."""
    count = len(next(iter(inputs.values())))
    if len(inputs) == 1:
        (values,) = inputs.values()
        instances = [_json_value(values[index]) for index in range(count)]
    else:
        instances = [{name: _json_value(value[index]) for name, value in inputs.items()} for index in range(count)]
    return {"signature_name": signature, "instances": instances}


def _tensor_value(value, dtype):
    if isinstance(value, dict):  # {"b64": ...}: TF Serving decodes it for string inputs only.
        if dtype != tf.string or set(value) != {"b64"}:
            raise ValueError(f"JSON object {value} where a {dtype.name} value was expected")
        return base64.b64decode(value["b64"])
    return value


def _tensor(values, dtype):
    if dtype == tf.string:
        return np.array([_tensor_value(value, dtype) for value in values], dtype=object)
    return np.asarray(values, dtype=dtype.as_numpy_dtype)


def inputs_of_rest_body(body, dtypes):
    """The tensors TF Serving feeds for a REST body, given the signature's {input name: tf.DType}.

    Row format: instances stacked on a new batch axis (plain values when the signature has one input,
    else one object per instance); columnar format (`"inputs"`): each input as given.
    """
    if "instances" in body:
        instances = body["instances"]
        if len(dtypes) == 1 and not (isinstance(instances[0], dict) and set(instances[0]) != {"b64"}):
            ((name, dtype),) = dtypes.items()
            return {name: _tensor(instances, dtype)}
        return {name: _tensor([instance[name] for instance in instances], dtype) for name, dtype in dtypes.items()}
    return {name: _tensor(body["inputs"][name], dtype) for name, dtype in dtypes.items()}


def rest_response(outputs):
    """The JSON TF Serving answers a row-format request with: {"predictions": [one entry per row]}.

    An entry is the row's value when the signature has one output, else {output name: value}; string
    outputs whose name ends in `_bytes` are written as {"b64": ...}, as TF Serving writes them.
    """

    def value(name, array):
        if array.dtype == object:
            encode = name.endswith("_bytes")
            return [{"b64": base64.b64encode(item).decode("ascii")} if encode else item.decode() for item in array]
        return array.tolist()

    columns = {name: value(name, np.asarray(array)) for name, array in outputs.items()}
    rows = len(next(iter(columns.values())))
    if len(columns) == 1:
        (column,) = columns.values()
        return {"predictions": column}
    return {"predictions": [{name: column[index] for name, column in columns.items()} for index in range(rows)]}


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
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(directory, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in examples.items():
            request = client.predict_request(model_name, signature, inputs, dtypes[signature])
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
