"""What `import keras_gen` does before anything else: the environment TensorFlow must load in.

Runs once, from keras_gen/__init__.py, before TensorFlow is imported (when the user has not imported
it already): environment variables TensorFlow reads only at load time must be set before it loads.
"""

import importlib
import os
import sys

# TensorFlow's C++ start-up lines (oneDNN notices, "Could not find cuda drivers", an alarming
# "failed call to cuInit ... UNKNOWN ERROR" on every machine without a GPU) are printed while it is
# imported and finds its devices, before its logging reads TF_CPP_MIN_LOG_LEVEL: none concerns a
# user. They stay visible when the user set TF_CPP_MIN_LOG_LEVEL or asks for --verbosity.
_QUIET_START = "TF_CPP_MIN_LOG_LEVEL" not in os.environ and not any(
    argument == "-v" or argument.startswith(("--verbosity", "-v=")) for argument in sys.argv[1:]
)
# What keras_gen sets in the environment itself; a child process it starts (--mode=reproduce) must not
# take these for the user's own settings.
ENVIRONMENT_SET_HERE = tuple(
    name for name in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL") if name not in os.environ
)
_USER_CHOSE_ONEDNN = "TF_ENABLE_ONEDNN_OPTS" in os.environ
_TENSORFLOW_FIRST = "tensorflow" in sys.modules
# oneDNN is off by default on AMD CPUs; turning it on made tf.function training steps 2.1-2.5x
# faster on our reference machine (../shared/STACK_NOTES.md). It only takes effect if set before
# TensorFlow is first imported, and a user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ INFO lines say nothing a user can act on; warnings stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

ONEDNN_WARNING = (
    "keras_gen: warning: TensorFlow was imported before keras_gen, with oneDNN off (its default on "
    "this CPU): training runs up to 2x slower. Import keras_gen before tensorflow, or set "
    "TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported."
)


def onednn_enabled():
    """Whether the TensorFlow loaded in this process runs oneDNN's kernels (decided when it loaded).

    TensorFlow's own answer, from a private module (tests/test_keras_internals.py checks it is still
    there); None where this TensorFlow does not offer it.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def _import_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with file descriptor 2 pointing to /dev/null."""
    if not _QUIET_START or "tensorflow" in sys.modules:
        importlib.import_module("tensorflow")
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 2)
            importlib.import_module("tensorflow").config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


_import_tensorflow_quietly()
# Too late to turn oneDNN on: say so once, where it costs speed, unless the user chose the setting.
if _TENSORFLOW_FIRST and not _USER_CHOSE_ONEDNN and onednn_enabled() is False:
    print(ONEDNN_WARNING, file=sys.stderr)
