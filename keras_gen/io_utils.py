"""Atomic file writes (a reader, or a resumed run, never sees a half-written file), and file digests."""

import contextlib
import hashlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Opens a temporary file beside `path` and renames it over `path` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        # mkstemp makes the file private (0600); the result gets the permissions any new file would.
        os.chmod(temporary_path, 0o666 & ~umask())
        with os.fdopen(handle, mode, **kwargs) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary_path)
        raise


def umask():
    """The process's file mode creation mask (reading it means setting it: set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    with atomic_open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def read_json(path):
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def write_json(path, value):
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def save_figure(figure, path, **kwargs):
    """Saves a matplotlib figure atomically; the format comes from the extension of `path`."""
    extension = os.path.splitext(path)[1].lstrip(".") or "png"
    with atomic_open(path, "wb") as stream:
        figure.savefig(stream, format=extension, **kwargs)


def sha256_of(path):
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
