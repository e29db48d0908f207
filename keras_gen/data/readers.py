"""Readers for datasets stored as local files, in the formats they are distributed in.

Every reader returns a dict `{"train": Split, "test": Split}` of uint8 images shaped
(num_images, height, width, channels) and int64 labels (or None when the files carry none).
Formats (`read_local` picks one from what it finds):

- IDX (MNIST, Fashion-MNIST; what Debian's `dataset-fashion-mnist` installs):
  `train-images-idx3-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]` and the matching `*-labels-idx1-ubyte`.
- NumPy `.npz`: `x_train`/`y_train`/`x_test`/`y_test` (Keras' mnist.npz layout), or `x` with an
  optional `y`, split deterministically into train and test.
- SVHN's `train_32x32.mat` / `test_32x32.mat` (label 10 stands for digit 0).
- A folder of images (png, jpg, gif, bmp), optionally in class sub-folders, optionally already split
  into `train/` and `test/` sub-folders.
"""

import collections
import gzip
import os
import sys
import zlib

import numpy as np

from keras_gen import errors

# class_names: the names of labels 0, 1, ... where the files name them (an image folder's sub-folders).
Split = collections.namedtuple("Split", ["images", "labels", "class_names"], defaults=(None,))

# Fraction held out as the test split when the files do not come split; fixed so that the same
# files always give the same split.
TEST_FRACTION = 0.1
_SPLIT_SEED = 0

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
# IDX type codes (http://yann.lecun.com/exdb/mnist/): only unsigned bytes hold images and labels.
_IDX_UINT8 = 0x08


def read_idx(path):
    """Reads one IDX file (optionally gzip-compressed) into a numpy array, checking its size."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            content = stream.read()
    except (OSError, EOFError, zlib.error) as error:  # zlib: a damaged .gz whose header still reads.
        raise errors.UserError(f"cannot read IDX file {path}: {error}") from None
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise errors.UserError(f"{path} is not an IDX file: it does not start with the IDX magic number")
    type_code, num_dims = content[2], content[3]
    if type_code != _IDX_UINT8:
        raise errors.UserError(f"IDX file {path} holds type code {type_code:#04x}; expected unsigned bytes (0x08)")
    header_size = 4 + 4 * num_dims
    if len(content) < header_size:
        raise errors.UserError(f"IDX file {path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">i4", count=num_dims, offset=4))
    expected = int(np.prod(shape))
    found = len(content) - header_size
    if found != expected:
        raise errors.UserError(
            f"IDX file {path} is truncated or corrupt: its header gives shape {shape} "
            f"({expected} bytes of data) but it holds {found}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def _find_one(directory, names, patterns):
    """Returns the first file in `directory` whose name matches, or None."""
    entries = sorted(os.listdir(directory))
    for name in names:
        if name in entries:
            return os.path.join(directory, name)
    for entry in entries:
        if all(part in entry for part in patterns):
            return os.path.join(directory, entry)
    return None


def _idx_file(directory, prefix, kind):
    dims = "idx3" if kind == "images" else "idx1"
    names = [f"{prefix}-{kind}-{dims}-ubyte{suffix}" for suffix in (".gz", "")]
    names += [f"{prefix}-{kind}.{dims}-ubyte{suffix}" for suffix in (".gz", "")]
    return _find_one(directory, names, (prefix, kind, dims))


def has_idx_files(directory):
    return _idx_file(directory, "train", "images") is not None


def read_idx_folder(directory):
    """Reads the train and t10k IDX image/label files of an MNIST-style folder."""
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images_path = _idx_file(directory, prefix, "images")
        if images_path is None:
            raise errors.UserError(
                f"no {prefix}-images-idx3-ubyte[.gz] file in {directory}; an IDX folder needs both "
                "train-* and t10k-* files"
            )
        images = read_idx(images_path)
        if images.ndim != 3:
            raise errors.UserError(f"IDX image file {images_path} has shape {images.shape}; expected (N, H, W)")
        labels_path = _idx_file(directory, prefix, "labels")
        labels = None
        if labels_path is not None:
            labels = read_idx(labels_path).astype(np.int64)
            if labels.shape != (len(images),):
                raise errors.UserError(
                    f"{labels_path} holds {labels.shape} labels for {len(images)} images in {images_path}"
                )
        splits[split] = Split(images[..., np.newaxis], labels)
    return splits


def _as_uint8_images(array, source):
    """Brings an image array to uint8 (N, H, W, C); floats must already be in [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise errors.UserError(
            f"images in {source} have shape {array.shape}; expected (N, H, W) or (N, H, W, C) with C in 1, 3, 4"
        )
    if array.shape[-1] == 4:
        array = array[..., :3]  # Alpha carries no image content.
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            raise errors.UserError(
                f"images in {source} hold {array.size - int(finite.sum())} NaN or infinite pixel values; "
                "expected finite floats in [0, 1] (or uint8)"
            )
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0.0 or high > 1.0:
            raise errors.UserError(
                f"images in {source} have float pixels from {low:g} to {high:g}; expected floats in [0, 1] "
                "(or uint8 in [0, 255])"
            )
        return np.round(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > 255:
            raise errors.UserError(
                f"images in {source} have integer pixels from {low} to {high}; expected values in [0, 255]"
            )
        return array.astype(np.uint8)
    raise errors.UserError(
        f"images in {source} have dtype {array.dtype}; expected uint8 in [0, 255] or floats in [0, 1]"
    )


def _as_labels(array, num_images, source):
    if array is None:
        return None
    labels = np.asarray(array).reshape(-1)
    if labels.shape != (num_images,):
        raise errors.UserError(f"{source} holds {labels.size} labels for {num_images} images")
    return labels.astype(np.int64)


def fixed_permutation(count):
    """A permutation of `count` positions, the same for the same count."""
    return np.random.default_rng(_SPLIT_SEED).permutation(count)


def split_indices(count):
    """(train, test) positions of `count` examples: TEST_FRACTION held out, the same for the same count."""
    order = fixed_permutation(count)
    num_test = max(1, int(round(count * TEST_FRACTION)))
    if count - num_test < 1:
        raise errors.UserError(f"need at least 2 images to make a train and a test split; found {count}")
    return order[num_test:], order[:num_test]


def split_train_test(images, labels):
    """Deterministically holds out TEST_FRACTION of the examples as the test split."""
    train, test = split_indices(len(images))

    def pick(indices):
        return Split(images[indices], None if labels is None else labels[indices])

    return {"train": pick(train), "test": pick(test)}


def read_npz(path):
    """Reads an .npz holding `x_train`/`x_test` (+ `y_*`) or `x` (+ `y`)."""
    try:
        return _read_npz(path)
    except errors.UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged archive fails in zipfile, zlib or numpy's header parser.
        raise errors.UserError(f"cannot read .npz file {path} (damaged or not an .npz): {error!r}") from None


def _read_npz(path):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise errors.UserError(f"cannot read .npz file {path}: {error}") from None
    with archive:
        keys = set(archive.files)
        if {"x_train", "x_test"} <= keys:
            splits = {}
            for split in ("train", "test"):
                images = _as_uint8_images(archive[f"x_{split}"], f"{path}[x_{split}]")
                labels = archive[f"y_{split}"] if f"y_{split}" in keys else None
                splits[split] = Split(images, _as_labels(labels, len(images), f"{path}[y_{split}]"))
            return splits
        if "x" not in keys:
            raise errors.UserError(
                f".npz file {path} has arrays {sorted(keys)}; expected 'x' (and optionally 'y'), "
                "or 'x_train' and 'x_test'"
            )
        images = _as_uint8_images(archive["x"], f"{path}[x]")
        labels = _as_labels(archive["y"] if "y" in keys else None, len(images), f"{path}[y]")
    return split_train_test(images, labels)


def read_svhn_mat(path):
    """Reads one of SVHN's cropped-digit .mat files: X is (32, 32, 3, N), y is (N, 1) with 10 for 0."""
    import scipy.io  # Imported here: only this format needs it.

    try:
        content = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several unrelated types for bad files.
        raise errors.UserError(f"cannot read SVHN .mat file {path}: {error}") from None
    if "X" not in content:
        raise errors.UserError(f"{path} has no array 'X'; expected SVHN's cropped-digit format (X, y)")
    images = np.asarray(content["X"])
    if images.ndim != 4 or images.shape[2] != 3:
        raise errors.UserError(f"'X' in {path} has shape {images.shape}; expected (32, 32, 3, N)")
    images = _as_uint8_images(np.transpose(images, (3, 0, 1, 2)), path)
    labels = content.get("y")
    if labels is not None:
        labels = _as_labels(labels, len(images), f"{path}[y]") % 10
    return Split(images, labels)


def read_svhn_folder(directory):
    paths = {split: os.path.join(directory, f"{split}_32x32.mat") for split in ("train", "test")}
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    if missing:
        raise errors.UserError(f"SVHN folder {directory} lacks {', '.join(missing)}")
    return {split: read_svhn_mat(path) for split, path in paths.items()}


def _list_images(directory):
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(root, name) for name in sorted(files) if name.lower().endswith(IMAGE_EXTENSIONS))
    return found


def decode_image(path, image_size):
    """(image, channels stored in the file): decoded, centre-cropped to a square and resized to
    image_size (uint8 HWC); transparency is composited over black."""
    import tensorflow as tf  # Heavy; only image folders need it here.

    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).numpy()
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", str(error))
        raise errors.UserError(f"cannot decode image {path}: {message}") from None
    stored = image.shape[-1]
    if stored in (2, 4):  # Grey or RGB with alpha.
        alpha = image[..., -1:].astype(np.float32) / 255.0
        image = np.round(image[..., :-1] * alpha).astype(np.uint8)
    return fit_to_size(image[np.newaxis], image_size)[0], stored


# An image folder's split before decoding: its files, their labels (or None) and the class names.
FolderSplit = collections.namedtuple("FolderSplit", ["paths", "labels", "class_names"])


def _plan_images(directory):
    """The FolderSplit of every image under `directory`, labelled by class sub-folder when every image sits in one."""
    paths = _list_images(directory)
    if not paths:
        raise errors.UserError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {directory}")
    class_dirs = [os.path.relpath(os.path.dirname(path), directory).split(os.sep)[0] for path in paths]
    if "." in class_dirs:
        return FolderSplit(paths, None, None)
    return _labelled_by_folder(paths, class_dirs, sorted(set(class_dirs)))


def _labelled_by_folder(paths, class_dirs, class_names):
    index = {name: label for label, name in enumerate(class_names)}
    return FolderSplit(paths, np.array([index[name] for name in class_dirs], dtype=np.int64), tuple(class_names))


def plan_image_folder(directory):
    """{"train", "test": FolderSplit} of an image folder, decoding nothing.

    `train/` and `test/` sub-folders, if both exist, are the splits; otherwise TEST_FRACTION of the
    images is held out as by `split_train_test`.
    """
    if all(os.path.isdir(os.path.join(directory, split)) for split in ("train", "test")):
        plans = {split: _plan_images(os.path.join(directory, split)) for split in ("train", "test")}
        train, test = plans["train"], plans["test"]
        if train.class_names and test.class_names and train.class_names != test.class_names:
            # Label i must be one class in both splits: number them over the union of both sets of folders.
            names = sorted(set(train.class_names) | set(test.class_names))
            plans = {
                split: _labelled_by_folder(plan.paths, [plan.class_names[label] for label in plan.labels], names)
                for split, plan in plans.items()
            }
        # Files are found folder by folder, so class by class: shuffled (the same way every time),
        # the first N test images (the sample-quality reference) are a sample of every class.
        return {split: _reordered(plan, fixed_permutation(len(plan.paths))) for split, plan in plans.items()}
    plan = _plan_images(directory)
    parts = dict(zip(("train", "test"), split_indices(len(plan.paths))))
    return {split: _reordered(plan, indices) for split, indices in parts.items()}


def _reordered(plan, indices):
    """The FolderSplit of `plan`'s files at `indices`, in that order."""
    labels = None if plan.labels is None else plan.labels[indices]
    return FolderSplit([plan.paths[i] for i in indices], labels, plan.class_names)


def choose_channels(plans, image_size, sample=256):
    """The channels (1 or 3) of an image folder's images, judged from the first `sample` files of each
    split: 3 if any is colour. For reading a folder file by file, where the whole cannot be seen first."""
    paths = [path for plan in plans.values() for path in plan.paths[:sample]]
    return 3 if any(decode_image(path, image_size)[0].shape[-1] == 3 for path in paths) else 1


def to_channels(image, channels):
    """A decoded uint8 image (H, W, C) with `channels` channels: grey repeated to RGB, RGB to grey by luminance."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    return np.round(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]


def harmonize_channels(images, stored, source):
    """Brings decoded images to the most channels among them (grey repeated to RGB), saying once what changed.

    `stored`: the channels each image's file held (2 and 4 mean transparency, composited by `decode_image`).
    """
    channels = max(image.shape[-1] for image in images)
    grey = sum(image.shape[-1] < channels for image in images)
    with_alpha = sum(count in (2, 4) for count in stored)
    if grey or with_alpha:
        # Converting loses nothing a model could use and keeps every image; refusing would make users
        # convert by hand. Said once, so nobody is surprised by the result.
        parts = [f"{grey} grey image(s) repeated to 3 channels"] if grey else []
        parts += [f"{with_alpha} with transparency composited over black"] if with_alpha else []
        print(f"note: {source} mixes image kinds: {', '.join(parts)}", file=sys.stderr)
    return [np.repeat(image, channels, axis=-1) if image.shape[-1] < channels else image for image in images]


def read_image_folder(directory, image_size):
    """Reads a folder of images into memory, split as `plan_image_folder` says."""
    plans = plan_image_folder(directory)
    decoded = {split: [decode_image(path, image_size) for path in plan.paths] for split, plan in plans.items()}
    # One channel count for both splits: a model trained on RGB is tested on RGB.
    every = harmonize_channels(
        [image for pairs in decoded.values() for image, _ in pairs],
        [stored for pairs in decoded.values() for _, stored in pairs],
        directory,
    )
    splits, start = {}, 0
    for split, plan in plans.items():
        images = np.stack(every[start : start + len(plan.paths)])
        start += len(plan.paths)
        splits[split] = Split(images, plan.labels, plan.class_names)
    return splits


def describe_formats():
    return (
        "IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]), an .npz with 'x' "
        "(and 'y') or 'x_train'/'x_test', SVHN's train_32x32.mat/test_32x32.mat, or image files "
        f"({', '.join(IMAGE_EXTENSIONS)})"
    )


def detect_format(path):
    """Names the local format found at `path` ("idx", "npz", "svhn_mat", "images"), or None."""
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return "npz"
        if path.endswith(".mat"):
            return "svhn_mat"
        return None
    if not os.path.isdir(path):
        return None
    if has_idx_files(path):
        return "idx"
    entries = os.listdir(path)
    npz_files = [entry for entry in entries if entry.endswith(".npz")]
    if len(npz_files) == 1:
        return "npz"
    if "train_32x32.mat" in entries:
        return "svhn_mat"
    if _list_images(path):
        return "images"
    return None


def read_local(path, image_size):
    """Reads the dataset at `path` in whichever supported format it is stored."""
    file_format = detect_format(path)
    if file_format == "idx":
        return read_idx_folder(path)
    if file_format == "npz":
        if os.path.isdir(path):
            path = os.path.join(path, next(entry for entry in os.listdir(path) if entry.endswith(".npz")))
        return read_npz(path)
    if file_format == "svhn_mat":
        if os.path.isfile(path):
            split = read_svhn_mat(path)
            return split_train_test(split.images, split.labels)
        return read_svhn_folder(path)
    if file_format == "images":
        return read_image_folder(path, image_size)
    raise errors.UserError(f"no dataset files found at {path}; expected {describe_formats()}")


def fit_to_size(images, image_size):
    """Brings uint8 images (N, H, W, C) to (N, image_size, image_size, C).

    Non-square images are centre-cropped to a square. Images at most image_size/8 pixels smaller
    than the target are zero-padded (MNIST's 28x28 becomes 32x32 with its 2-pixel border, as LeNet
    did, keeping strokes sharp); all others are resized with antialiasing (area averaging when
    shrinking, bilinear when enlarging).
    """
    height, width = images.shape[1:3]
    if height != width:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        images = images[:, top : top + side, left : left + side]
    side = images.shape[1]
    if side == image_size:
        return images
    if side < image_size and image_size - side <= image_size // 8:
        before = (image_size - side) // 2
        after = image_size - side - before
        return np.pad(images, ((0, 0), (before, after), (before, after), (0, 0)))
    import tensorflow as tf

    method = "area" if side > image_size else "bilinear"
    resized = []
    for start in range(0, len(images), 4096):  # Bounded memory for large datasets.
        chunk = tf.image.resize(images[start : start + 4096], (image_size, image_size), method=method, antialias=True)
        resized.append(np.clip(np.round(chunk.numpy()), 0, 255).astype(np.uint8))
    return np.concatenate(resized)
