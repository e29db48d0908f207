"""Runs an exported version the way TF Serving does, without the server.

TF Serving does not call a SavedModel's Python functions: its loader imports the MetaGraph into a
session, runs the restore op on `variables/`, and answers each request by feeding the SignatureDef's
input tensors and fetching its output tensors by name. `tf.compat.v1.saved_model.loader.load` into
a `tf.compat.v1.Session` is that same path (and `saved_model_cli run`'s); `tf.saved_model.load`
is not, which is how an export can work in Python and fail in the server.
"""

import tensorflow as tf


class ServingSession:
    """A version directory loaded as TF Serving loads it; `run` answers a request as its Predict does.

    Example:
        >>> with ServingSession("saved_models/wgan_svhn/1") as session:
        ...     session.run("sample", {"seeds": np.arange(4)})["images_uint8"].shape
        (4, 32, 32, 3)
    """

    def __init__(self, version_dir, tags=("serve",)):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        # The TF1 loader warns on every call that it is deprecated in favour of tf.saved_model.load,
        # which is exactly the path TF Serving does not take: nothing for a user to act on.
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")
        try:
            with self.graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), version_dir)
        finally:
            logger.setLevel(level)
        self.signature_defs = dict(meta_graph.signature_def)

    def input_dtypes(self, signature):
        """{input name: tf.DType} of a SignatureDef."""
        return {name: tf.as_dtype(info.dtype) for name, info in self._definition(signature).inputs.items()}

    def run(self, signature, inputs, output_filter=None):
        """{output name: numpy array} for {input name: array}, every input fed by its tensor name.

        As TF Serving's Predict: the inputs must be exactly the signature's, and `output_filter`
        (names) limits what is fetched, hence what is computed.
        """
        definition = self._definition(signature)
        if set(inputs) != set(definition.inputs):
            raise ValueError(
                f"signature {signature!r} takes inputs {sorted(definition.inputs)}; the request has {sorted(inputs)}"
            )
        names = sorted(output_filter or definition.outputs)
        feed = {definition.inputs[name].name: value for name, value in inputs.items()}
        fetched = self.session.run([definition.outputs[name].name for name in names], feed)
        return dict(zip(names, fetched))

    def _definition(self, signature):
        if signature not in self.signature_defs:
            raise ValueError(f"no signature {signature!r}; the version has {sorted(self.signature_defs)}")
        return self.signature_defs[signature]

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()
