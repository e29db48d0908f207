"""Feature networks for the sample-quality metrics: a classifier keras_gen trains itself, or Inception-v3.

A trained classifier lives in `<root>/<dataset>/` (root: saved_models/feature_nets by default):
    classifier-<hash>.keras   the Keras model (its name carries the first 12 hex digits of its SHA-256)
    feature_net.json          dataset, image shape, classes, test accuracy, the file's full SHA-256,
                              the weights' SHA-256, training budget and data source: written last,
                              it is what makes a model file current, so an interrupted training
                              never leaves a half-written network in use.
Loading checks the hash: a model file changed since it was trained is refused, since numbers from
a different feature network are not comparable. The file's hash changes with every save (the
archive records when it was saved); the weights' hash does not: the same seed and data on the same
kind of CPU train the same weights, and numbers measured with them compare, whichever file holds them.
"""

import contextlib
import dataclasses
import datetime
import hashlib
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen import io_utils
from keras_gen.data import datasets
from keras_gen.networks import classifier as classifier_network
from keras_gen.runs import layout

DEFAULT_ROOT = layout.FEATURE_NETS
METADATA_FILE = "feature_net.json"
FEATURES = ("classifier", "inception")
INCEPTION_WEIGHTS = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"


@dataclasses.dataclass
class ClassifierConfig:
    """How `--mode=train_classifier` trains a feature network (defaults: the budget BENCHMARKS.md states)."""

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    image_size: int = 32
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    steps_per_epoch: int | None = None
    seed: int = 0
    root: str = DEFAULT_ROOT
    verbose: str | int = "auto"


def train_classifier(config):
    """Trains the classifier on the dataset's training split and saves it; returns its metadata."""
    splits = datasets.load(config.dataset, config.image_size, data_dir=config.data_dir)
    train, test = splits["train"], splits["test"]
    if train.labels is None or test.labels is None:
        raise errors.UserError(
            f"--mode=train_classifier needs class labels; dataset {config.dataset!r} from {train.source} has none"
        )
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    steps = len(train.images) // config.batch_size
    if steps == 0:
        raise errors.UserError(f"--batch_size={config.batch_size} exceeds the {len(train.images)} training images")
    steps = min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps
    keras.utils.set_random_seed(config.seed)
    model = classifier_network.classifier(train.images.shape[1:], num_classes)
    # Cosine decay to 0 over the whole budget: the last epochs settle into a minimum instead of
    # bouncing around it: 91.3% test accuracy on Fashion-MNIST after 5 epochs, 90.8% at a constant rate.
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps * config.epochs)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    started = time.time()
    model.fit(
        _labelled_batches(train, config.batch_size, shuffle_seed=config.seed),
        epochs=config.epochs,
        steps_per_epoch=steps,
        verbose=config.verbose,
    )
    seconds = time.time() - started
    _, accuracy = model.evaluate(_labelled_batches(test, 500), verbose=0)
    directory = os.path.join(config.root, config.dataset)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".tmp-{os.getpid()}.keras")
    try:
        model.save(temporary)
        digest = io_utils.sha256_of(temporary)
        model_file = f"classifier-{digest[:12]}.keras"
        os.replace(temporary, os.path.join(directory, model_file))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)  # Only there if saving failed half-way.
    previous = _read_metadata(directory)
    metadata = {
        "kind": "classifier",
        "dataset": config.dataset,
        "model_file": model_file,
        "sha256": digest,
        "weights_sha256": weights_sha256(model),
        "image_shape": list(train.images.shape[1:]),
        "num_classes": num_classes,
        "test_accuracy": float(accuracy),
        "test_images": int(len(test.images)),
        "data_source": train.source.rsplit(" [", 1)[0],
        "epochs": config.epochs,
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "training_seconds": round(seconds, 1),
        "trained_at": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    io_utils.write_json(os.path.join(directory, METADATA_FILE), metadata)
    if previous and previous.get("model_file") not in (None, model_file):
        # Only after the new metadata is in place: until then the old network stayed usable.
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, previous["model_file"]))
    return metadata


def weights_sha256(model):
    """SHA-256 of the model's weights (each one's dtype, shape and bytes, in the model's order)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{value.dtype.str}{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _labelled_batches(split, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    if shuffle_seed is not None:
        # Repeated: epochs are counted in steps, a full pass each unless capped.
        dataset = dataset.shuffle(len(split.images), seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    return dataset.batch(batch_size).map(lambda images, labels: (tf.cast(images, tf.float32) / 255.0, labels))


def _read_metadata(directory):
    path = os.path.join(directory, METADATA_FILE)
    return io_utils.read_json(path) if os.path.exists(path) else None


@dataclasses.dataclass
class FeatureNet:
    """A loaded feature network: `extract` maps images in [0, 1] to (features, class probabilities)."""

    identity: dict  # what produced the numbers: kind, dataset or weights, SHA-256, accuracy
    model: keras.Model  # images -> [features, probabilities]
    image_shape: tuple  # what the network takes; other sizes are resized, grey tiled to colour

    def extract(self, images, batch_size=500):
        """(features (num, d), probabilities (num, classes)) as float64, computed `batch_size` images at a time."""
        images = np.asarray(images, np.float32)
        channels = self.image_shape[-1]
        if images.shape[-1] not in (1, channels):
            raise errors.UserError(
                f"images with {images.shape[-1]} channels cannot be fed to a feature network for {channels} channels "
                f"({self.identity.get('dataset', self.identity['kind'])})"
            )
        features, probabilities = [], []
        for start in range(0, len(images), batch_size):
            batch = tf.convert_to_tensor(images[start : start + batch_size])
            if tuple(batch.shape[1:3]) != tuple(self.image_shape[:2]):
                batch = tf.image.resize(batch, self.image_shape[:2], antialias=True)
            if batch.shape[-1] != channels:
                batch = tf.repeat(batch, channels, axis=-1)
            batch_features, batch_probabilities = self._call(batch)
            features.append(np.asarray(batch_features, np.float64))
            probabilities.append(np.asarray(batch_probabilities, np.float64))
        return np.concatenate(features), np.concatenate(probabilities)

    def __post_init__(self):
        self._call = tf.function(lambda batch: self.model(batch, training=False), reduce_retracing=True)


def load_classifier(dataset, root=DEFAULT_ROOT):
    """The classifier trained for `dataset`, after checking that its file is the one trained."""
    directory = os.path.join(root, dataset)
    retrain = f"train one with: python run.py --mode=train_classifier --dataset={dataset}"
    metadata = _read_metadata(directory)
    if metadata is None:
        raise errors.UserError(f"no feature network for {dataset!r} in {directory}; {retrain}")
    path = os.path.join(directory, metadata["model_file"])
    if not os.path.exists(path):
        raise errors.UserError(f"feature network {path} is missing; {retrain}")
    if io_utils.sha256_of(path) != metadata["sha256"]:
        raise errors.UserError(
            f"feature network {path} has changed since it was trained (SHA-256 differs from {METADATA_FILE}): "
            f"its numbers would not be comparable; {retrain}"
        )
    model = keras.saving.load_model(path)
    identity = {
        "kind": "classifier",
        "dataset": dataset,
        "sha256": metadata["sha256"],
        # Computed, not read: networks trained before the field existed have one too.
        "weights_sha256": weights_sha256(model),
        "test_accuracy": metadata["test_accuracy"],
        "data_source": metadata.get("data_source"),  # e.g. a subset: its numbers compare only with its own.
    }
    return FeatureNet(identity, classifier_network.feature_extractor(model), tuple(metadata["image_shape"]))


def _keras_cache():
    return os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "models")


def load_inception(weights="imagenet"):
    """Keras's InceptionV3 with ImageNet weights: pool features (2048) and the 1000-class softmax.

    `weights=None` (random weights) exists for tests of the wiring; its numbers mean nothing.
    """
    try:
        model = keras.applications.InceptionV3(weights=weights, include_top=True)
    except Exception as error:  # noqa: BLE001 - any failure to get the weights ends the same way
        reason = " ".join(str(error).split())[:160]
        raise errors.UserError(
            f"InceptionV3 ImageNet weights could not be loaded ({type(error).__name__}: {reason}); copy "
            f"{INCEPTION_WEIGHTS} into {_keras_cache()} from a machine with internet, or use --features=classifier"
        ) from None
    # Inception expects [-1, 1]; the metrics feed [0, 1].
    images = keras.Input((299, 299, 3))
    features_model = keras.Model(model.input, [model.get_layer("avg_pool").output, model.output])
    outputs = features_model(images * 2.0 - 1.0)
    weights_path = os.path.join(_keras_cache(), INCEPTION_WEIGHTS)
    identity = {
        "kind": "inception_v3",
        "weights": weights,
        "sha256": io_utils.sha256_of(weights_path) if weights == "imagenet" and os.path.exists(weights_path) else None,
    }
    return FeatureNet(identity, keras.Model(images, outputs), (299, 299, 3))


def load(features, dataset, root=DEFAULT_ROOT):
    """The feature network `features` ("classifier" or "inception") for images of `dataset`."""
    if features == "classifier":
        return load_classifier(dataset, root)
    if features == "inception":
        return load_inception()
    raise errors.UserError(f"--features={features}; expected one of {', '.join(FEATURES)}")
