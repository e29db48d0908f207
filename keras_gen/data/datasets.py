"""Named datasets and where their files come from.

A dataset is looked up in this order, and the first source that has it wins:

1. `data_dir`, when given: local files in any format `readers.read_local` knows, or a TensorFlow
   Datasets data directory holding a prepared copy. An explicit path is never silently skipped.
2. Debian's dataset packages under `/usr/share/datasets/<name>` (for example
   `apt-get install dataset-fashion-mnist`).
3. TensorFlow Datasets: a prepared copy in the tfds data directory (`~/tensorflow_datasets`, or
   `$TFDS_DATA_DIR`), else a download.

When none has it, the error names every place that was tried and how to provide the data.
"""

import dataclasses
import os
import socket
import urllib.parse
import urllib.request

import numpy as np

from keras_gen import environment
from keras_gen import errors
from keras_gen import registry
from keras_gen.data import image_files
from keras_gen.data import readers
from keras_gen.data import shards
from keras_gen.data import tfds_files

DEBIAN_DATASETS_ROOT = "/usr/share/datasets"
# An image folder whose decoded train split would take more than this share of the available
# memory is streamed from its files instead (load(stream_train="auto")).
MEMORY_FRACTION = 0.5
# Groups of files an image folder is streamed in (data.stream's "shards"): up to this many workers read their own.
FOLDER_GROUPS = 16


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What keras_gen knows about a named dataset.

    Args:
        name: the `--dataset` value.
        description: one line for `--help` and the README.
        tfds_name: the TensorFlow Datasets name, or None for user files only.
        debian_dirs: folder names under /usr/share/datasets that Debian packages install.
        binarize: sample every pixel as Bernoulli(intensity) each time an image is used (dynamic
            binarization, Salakhutdinov & Murray 2008); the test split is binarized once, with a fixed seed.
        class_names: label names for plots, or None.
        apt_package: the Debian package that installs it, for error messages.
        files_hint: how to supply the original files by hand, for error messages.
    """

    name: str
    description: str
    tfds_name: str | None = None
    debian_dirs: tuple = ()
    binarize: bool = False
    class_names: tuple | None = None
    apt_package: str | None = None
    files_hint: str | None = None


DATASETS = registry.Registry("dataset")

_DIGITS = tuple(str(digit) for digit in range(10))
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

for _spec in (
    DatasetSpec("mnist", "MNIST handwritten digits, 28x28 grey", "mnist", ("mnist",), class_names=_DIGITS),
    DatasetSpec(
        "binarized_mnist",
        "MNIST with dynamic binarization (pixels drawn as Bernoulli(intensity) each epoch)",
        "mnist",
        ("mnist",),
        binarize=True,
        class_names=_DIGITS,
    ),
    DatasetSpec(
        "fashion_mnist",
        "Fashion-MNIST clothing images, 28x28 grey",
        "fashion_mnist",
        ("fashion-mnist", "fashion_mnist"),
        class_names=_FASHION,
        apt_package="dataset-fashion-mnist",
    ),
    DatasetSpec(
        "binarized_fashion_mnist",
        "Fashion-MNIST with dynamic binarization (where MNIST cannot be had, a stand-in for binarized MNIST)",
        "fashion_mnist",
        ("fashion-mnist", "fashion_mnist"),
        binarize=True,
        class_names=_FASHION,
        apt_package="dataset-fashion-mnist",
    ),
    DatasetSpec(
        "svhn",
        "Street View House Numbers, cropped digits, 32x32 colour",
        "svhn_cropped",
        ("svhn",),
        class_names=_DIGITS,
        files_hint=(
            "download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ "
            "into a folder and pass --data_dir=FOLDER"
        ),
    ),
    DatasetSpec(
        "cifar10", "CIFAR-10 natural images, 32x32 colour", "cifar10", ("cifar10", "cifar-10"), class_names=_CIFAR10
    ),
    DatasetSpec("custom", "your own files, read from --data_dir (IDX, .npz, SVHN .mat or an image folder)"),
):
    DATASETS.register(_spec.name, _spec)


TFDS_PREFIX = "tfds:"


def lookup(name):
    """The DatasetSpec of `name`: a registered name, or "tfds:NAME" for any TensorFlow Datasets image dataset."""
    if name.startswith(TFDS_PREFIX):
        tfds_name = name[len(TFDS_PREFIX) :]
        if not tfds_name:
            raise errors.UserError(f"--dataset={name}; expected tfds:NAME with a TensorFlow Datasets name")
        return DatasetSpec(name, f"TensorFlow Datasets' {tfds_name}", tfds_name)
    return DATASETS.lookup(name)


def is_known(name):
    return name.startswith(TFDS_PREFIX) or name in DATASETS.names()


@dataclasses.dataclass
class LoadedSplit:
    """One split of a dataset, brought to the requested image size.

    Attributes:
        images: uint8 array (num_images, image_size, image_size, channels).
        labels: int64 array (num_images,), or None.
        source: where the data came from, for logs and run records.
        class_names: the names of labels 0, 1, ...: the dataset's own (Fashion-MNIST's garments), or
            an image folder's sub-folders; None where nothing names them.
    """

    images: np.ndarray
    labels: np.ndarray | None
    source: str
    class_names: tuple | None = None

    # What data.shards.StreamedSplit and data.image_files.FolderSplit have too, so the trainer reads any alike.
    streamed = False

    @property
    def count(self):
        return len(self.images)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    @property
    def has_labels(self):
        return self.labels is not None

    def head(self, count):
        """The first `count` images (uint8)."""
        return self.images[:count]

    @property
    def label_range(self):
        if self.labels is None or not len(self.labels):
            return None
        return int(self.labels.min()), int(self.labels.max())


def _looks_like_tfds_dir(path, tfds_name):
    return tfds_name is not None and os.path.isdir(os.path.join(path, tfds_name))


def _check_reachable(url, tfds_name):
    """Without internet tfds retries every file for minutes, printing as it goes; a name lookup of the
    dataset's home says the same at once."""
    host = urllib.parse.urlparse(url or "").hostname
    if not host or urllib.request.getproxies():
        return  # Behind a proxy the host need not resolve here; tfds' own attempt decides.
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        raise errors.DataNotFoundError(
            f"tfds cannot download {tfds_name!r}: no internet connection ({host} cannot be resolved)"
        ) from None


def _prepared_builder(tfds_name, data_dir, download):
    """tfds' builder of `tfds_name`, prepared (downloading if allowed); raises DataNotFoundError with the reason."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
        if not builder.is_prepared():
            if not download:
                raise errors.DataNotFoundError(f"tfds has no prepared copy of {tfds_name!r} in {builder.data_dir}")
            _check_reachable(builder.info.homepage, tfds_name)
            builder.download_and_prepare()
    except errors.DataNotFoundError:
        raise
    except Exception as error:  # Lookup, download and preparation fail in many ways; the message says which.
        reason = " ".join(str(error).split())[:300]
        raise errors.DataNotFoundError(
            f"tfds could not provide {tfds_name!r}: {type(error).__name__}: {reason}"
        ) from None
    return builder


def _load_tfds(tfds_name, data_dir, download):
    """Loads tfds' train and test splits as numpy arrays; raises DataNotFoundError with the reason.

    Returns:
        ({split: readers.Split}, a description of the source).
    """
    import tensorflow_datasets as tfds

    builder = _prepared_builder(tfds_name, data_dir, download)
    splits = {}
    try:
        for split in ("train", "test"):
            # Read in chunks rather than with batch_size=-1, which needs the split's size up front.
            dataset = builder.as_dataset(split=split, as_supervised=True).batch(4096)
            chunks = list(tfds.as_numpy(dataset))
            images = np.concatenate([chunk_images for chunk_images, _ in chunks])
            labels = np.concatenate([chunk_labels for _, chunk_labels in chunks]).astype(np.int64)
            splits[split] = readers.Split(images, labels)
    except Exception as error:  # Reading fails in many ways; the message says which.
        reason = " ".join(str(error).split())[:300]
        raise errors.DataNotFoundError(
            f"tfds could not provide {tfds_name!r}: {type(error).__name__}: {reason}"
        ) from None
    return splits, f"tfds:{tfds_name} ({builder.data_dir})"


def _load_tfds_named(spec, image_size, data_dir, download, stream_train):
    """The splits of `--dataset=tfds:NAME`: train streamed from tfds' files when asked, test in memory."""
    builder = _prepared_builder(spec.tfds_name, data_dir, download)
    loaded = {}
    for split in ("train", "test"):
        opened = tfds_files.open_split(builder, split, image_size)
        if split == "train" and stream_train:
            loaded[split] = opened
        else:
            images, labels = opened.read()
            loaded[split] = LoadedSplit(
                images, labels, opened.source, opened.class_names if labels is not None else None
            )
    return loaded


def _load_all_splits(spec, data_dir, image_size, debian_root, download):
    """Returns ({split: Split}, source) from the first source that has the dataset."""
    if data_dir is not None:
        if not os.path.exists(data_dir):
            raise errors.DataNotFoundError(f"--data_dir {data_dir} does not exist")
        if readers.detect_format(data_dir) is None and _looks_like_tfds_dir(data_dir, spec.tfds_name):
            return _load_tfds(spec.tfds_name, data_dir, download=False)
        return readers.read_local(data_dir, image_size), os.path.abspath(data_dir)
    if spec.tfds_name is None:
        raise errors.DataNotFoundError(
            f"--dataset={spec.name} reads your own files: pass --data_dir=PATH to {readers.describe_formats()}"
        )
    tried = []
    for folder in spec.debian_dirs:
        path = os.path.join(debian_root, folder)
        if os.path.isdir(path) and readers.detect_format(path) is not None:
            return readers.read_local(path, image_size), path
        tried.append(f"{path} ({'holds no dataset files' if os.path.isdir(path) else 'missing'})")
    try:
        return _load_tfds(spec.tfds_name, None, download)
    except errors.DataNotFoundError as error:
        tried.append(str(error))
    fixes = [spec.files_hint or f"pass --data_dir=PATH to {readers.describe_formats()}"]
    if spec.apt_package:
        fixes.append(f"install Debian's package (apt-get install {spec.apt_package})")
    fixes.append(f"or let tfds download {spec.tfds_name!r} on a machine with internet access")
    raise errors.DataNotFoundError(
        f"dataset {spec.name!r} not found; tried: {'; '.join(tried)}. To fix: {', '.join(fixes)}"
    )


def load(name, image_size, data_dir=None, debian_root=DEBIAN_DATASETS_ROOT, download=True, stream_train=None):
    """Loads the train and test splits of dataset `name`, brought to `image_size`.

    Args:
        name: a registered dataset name (see `DATASETS.names()`).
        image_size: side of the square images the model takes (16, 32 or 64).
        data_dir: optional path to local files, a prepared dataset (`--mode=prepare`) or a tfds data
            directory; tried first and only.
        debian_root: where Debian's dataset packages install their files.
        download: let tfds download the data when no prepared copy exists.
        stream_train: None reads the train split into memory. "auto" gives a prepared dataset's as a
            shards.StreamedSplit, and an image folder's as an image_files.FolderSplit when decoded it
            would take more than MEMORY_FRACTION of the memory available; "always" streams any image
            folder too. A streamed split is read by data.stream as training needs it.

    Returns:
        {"train": LoadedSplit, StreamedSplit or FolderSplit, "test": LoadedSplit}.
    """
    spec = lookup(name)
    if shards.is_prepared(data_dir):
        return _load_prepared(data_dir, image_size, stream_train is not None)
    if name.startswith(TFDS_PREFIX):
        return _load_tfds_named(spec, image_size, data_dir, download, stream_train is not None)
    if stream_train is not None and data_dir is not None and readers.detect_format(data_dir) == "images":
        streamed = _stream_folder(data_dir, image_size, always=stream_train == "always")
        if streamed is not None:
            return streamed
    splits, source = _load_all_splits(spec, data_dir, image_size, debian_root, download)
    loaded = {}
    for split_name, split in splits.items():
        if len(split.images) == 0:
            raise errors.UserError(f"the {split_name} split of {name!r} from {source} holds no images")
        images = readers.fit_to_size(split.images, image_size)
        names = getattr(split, "class_names", None) or (spec.class_names if split.labels is not None else None)
        loaded[split_name] = LoadedSplit(images, split.labels, f"{source} [{split_name}]", names)
    return loaded


def _load_prepared(directory, image_size, stream_train):
    """The splits of a prepared directory: the test split in memory, the train split too unless streamed."""
    splits = {split: shards.open_split(directory, split) for split in ("train", "test")}
    side = splits["train"].image_shape[0]
    if side != image_size:
        raise errors.UserError(
            f"the prepared dataset {directory} holds {side}x{side} images; pass --image_size={side} or prepare "
            f"it again with --image_size={image_size}"
        )
    loaded = {}
    for name, split in splits.items():
        if split.count == 0:
            raise errors.UserError(f"the {name} split of the prepared dataset {directory} holds no images")
        if name == "train" and stream_train:
            loaded[name] = split
        else:
            images, labels = split.read()
            loaded[name] = LoadedSplit(images, labels, split.source, split.class_names if split.has_labels else None)
    return loaded


def _stream_folder(directory, image_size, always):
    """The splits of an image folder with the train split streamed, or None where it fits in memory."""
    plans = readers.plan_image_folder(directory)
    channels = readers.choose_channels(plans, image_size)
    needed = len(plans["train"].paths) * image_size * image_size * channels
    available = environment.available_memory()
    if not always and (available is None or needed <= MEMORY_FRACTION * available):
        return None
    groups = min(FOLDER_GROUPS, len(plans["train"].paths))
    train = image_files.folder_split(directory, "train", plans["train"], image_size, channels, groups)
    test_plan = plans["test"]
    decoded = [readers.decode_image(path, image_size)[0] for path in test_plan.paths]
    test_images = np.stack([readers.to_channels(image, channels) for image in decoded])
    test = LoadedSplit(test_images, test_plan.labels, f"{os.path.abspath(directory)} [test]", test_plan.class_names)
    return {"train": train, "test": test}
