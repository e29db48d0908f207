"""A gRPC client of TF Serving for keras_gen's exports (tensorflow-serving-api's PredictRequest).

    python -m keras_gen.serving.client --model=wgan_svhn --signature=sample --seeds=0,1,2,3 --out_dir=samples
    python -m keras_gen.serving.client --model=vae_fashion --signature=reconstruct_bytes --images=shoe.png
    python -m keras_gen.serving.client --model=gan_fashion --signature=sample --seeds=0,1 --labels=7,7   # conditional

sends one Predict request to the server at `--server` (TF Serving's gRPC port, 8500 by default) and
writes every PNG of the answer into `--out_dir`, printing the other outputs. In Python:

    import grpc
    from keras_gen.serving import client
    stub = client.prediction_stub("localhost:8500")
    request = client.predict_request("wgan_svhn", "sample", {"seeds": np.arange(4)}, {"seeds": tf.int64})
    outputs = client.outputs_of(stub.Predict(request, timeout=10.0))   # {name: numpy array}

The request protos are the ones the export's warm-up file holds (requests.write_warmup).
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

# Input dtypes of every keras_gen signature input, by name (the model card lists them per signature).
INPUT_DTYPES = {
    "images": tf.float32, "latents": tf.float32, "seeds": tf.int64, "images_bytes": tf.string, "labels": tf.int64,
}  # fmt: skip


def predict_request(model_name, signature, inputs, dtypes=None, version=None):
    """A PredictRequest of `signature` of `model_name` (its newest version unless `version`).

    Args:
        inputs: {input name: array-like}; bytes for string inputs.
        dtypes: {input name: tf.DType}; default INPUT_DTYPES.
    """
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2

    dtypes = dtypes or INPUT_DTYPES
    spec = model_pb2.ModelSpec(name=model_name, signature_name=signature)
    if version is not None:
        spec.version.value = int(version)
    request = predict_pb2.PredictRequest(model_spec=spec)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes[name]))
    return request


def outputs_of(response):
    """{output name: numpy array} of a PredictResponse."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def prediction_stub(server):
    """A PredictionService stub on an insecure channel to `server` (host:port)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server))


def _integers(text):
    return np.array([int(value) for value in text.split(",")], np.int64)


def _inputs_from_arguments(arguments):
    labels = {"labels": _integers(arguments.labels)} if arguments.labels else {}
    if arguments.images:
        contents = []
        for path in arguments.images:
            with open(path, "rb") as stream:
                contents.append(stream.read())
        return {"images_bytes": np.array(contents, dtype=object), **labels}
    return {"seeds": _integers(arguments.seeds), **labels}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:8500", help="TF Serving's gRPC address")
    parser.add_argument("--model", required=True, help="the model name TF Serving serves (its folder's name)")
    parser.add_argument("--signature", default="sample")
    parser.add_argument("--version", type=int, default=None, help="default: the newest the server has")
    parser.add_argument("--seeds", default="0,1,2,3", help="sample: one seed per image, comma-separated")
    parser.add_argument("--images", nargs="*", help="*_bytes signatures: PNG or JPEG files")
    parser.add_argument("--labels", help="class-conditional models: one class index per image, comma-separated")
    parser.add_argument("--out_dir", default=".", help="where the PNGs of the answer go")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    arguments = parser.parse_args(argv)
    request = predict_request(arguments.model, arguments.signature, _inputs_from_arguments(arguments),
                              version=arguments.version)  # fmt: skip
    try:
        outputs = outputs_of(prediction_stub(arguments.server).Predict(request, timeout=arguments.timeout))
    except Exception as error:  # grpc.RpcError: the server's status and message, on one line.
        details = error.details() if hasattr(error, "details") else str(error)
        sys.exit(f"{arguments.server}: {' '.join(str(details).split())}")
    for name, value in sorted(outputs.items()):
        if name.endswith("png_bytes"):
            os.makedirs(arguments.out_dir, exist_ok=True)
            for index, data in enumerate(value):
                path = os.path.join(arguments.out_dir, f"{arguments.signature}_{index}.png")
                with open(path, "wb") as stream:
                    stream.write(data)
                print(f"{name}[{index}] -> {path}")
        else:
            print(f"{name} {value.dtype} {list(value.shape)}: {np.array2string(value, threshold=12)}")


if __name__ == "__main__":
    main()
