"""The machine: what a number was measured on (the CPU: TensorFlow's speed depends on it; the
library versions), and the memory a process could have now."""

import os
import platform

from keras_gen import _startup


def available_memory():
    """Bytes the kernel could give this process now (MemAvailable), or None where that is unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_model_and_flags():
    """(CPU model name, set of /proc/cpuinfo flags); the machine type and no flags where that is unknown."""
    model, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def machine_description():
    """CPU model, cores and the vector extensions TensorFlow's speed depends on, e.g. for BENCHMARKS.md."""
    import tensorflow as tf

    model, flags = cpu_model_and_flags()
    extensions = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if name in flags]
    # What TensorFlow runs, not what the environment asked for: the variable counts only if it was set
    # before TensorFlow loaded.
    onednn = {True: "on", False: "off", None: "unknown"}[_startup.onednn_enabled()]
    gpus = len(tf.config.list_physical_devices("GPU"))
    return (
        f"{model}, {os.cpu_count()} cores ({', '.join(extensions) or 'no AVX2'}), "
        f"{gpus} GPU{'' if gpus == 1 else 's'}, TensorFlow {tf.__version__}, oneDNN {onednn}"
    )


def library_versions():
    """{library: version} of Python and the libraries a run's numbers depend on."""
    from importlib import metadata

    import keras
    import numpy
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        # From the installed package's metadata: importing TFP takes 1.7 s, which a GAN run, which
        # never uses it, would pay for its config record alone.
        "tensorflow_probability": metadata.version("tensorflow-probability"),
        "numpy": numpy.__version__,
    }
