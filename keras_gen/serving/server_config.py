"""TF Serving's server-wide files, written beside the exports at every export.

    saved_models/models.config              --model_config_file: every export under saved_models/
    saved_models/batching_parameters.txt    --batching_parameters_file: measured on the newest export

and each version's own `batching_parameters.txt`, measured on that model. The batching parameters
come from timing the version's default signature in TF Serving's execution path (serving.session) at
batch sizes 1 to 64 on the exporting machine:
    max_batch_size        the smallest batch that reaches 90% of the best images per second: larger
                          batches only add latency;
    batch_timeout_micros  half the latency of a batch of one: a lone request waits at most that long
                          for company;
    num_batch_threads     the machine's cores;
    max_enqueued_batches  about a second of queued work; beyond it TF Serving refuses requests at once
                          (UNAVAILABLE) instead of letting them wait;
    allowed_batch_sizes   the measured sizes up to max_batch_size (merged batches are padded up to one).
"""

import os
import statistics
import time

import numpy as np
from google.protobuf import text_format

from keras_gen import environment
from keras_gen import io_utils

MODELS_CONFIG = "models.config"
BATCHING_FILE = "batching_parameters.txt"
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
_GENERATED = "# Written by keras_gen at every export (keras_gen.serving.server_config); edits are overwritten.\n"


def served_models(root):
    """{model name: absolute base path} of every folder under `root` holding a SavedModel version."""
    found = {}
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        folder = os.path.join(root, name)
        if os.path.isdir(folder) and any(
            entry.isdigit() and os.path.exists(os.path.join(folder, entry, "saved_model.pb"))
            for entry in os.listdir(folder)
        ):
            found[name] = os.path.abspath(folder)
    return found


def write_models_config(root):
    """Writes `root`/models.config: TF Serving's model_config_list of every export under `root`."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name, path in served_models(root).items():
        entry = config.model_config_list.config.add()
        entry.name, entry.base_path, entry.model_platform = name, path, "tensorflow"
    path = os.path.join(root, MODELS_CONFIG)
    io_utils.write_text(path, _GENERATED + text_format.MessageToString(config))
    return path


def tile_rows(inputs, rows):
    """Example inputs repeated along the batch axis to `rows` rows."""
    return {name: np.resize(value, (rows,) + np.shape(value)[1:]) for name, value in inputs.items()}


def measure_latency(session, signature, inputs, batch_sizes=BATCH_SIZES, repeats=5):
    """{batch size: median seconds} of `signature` run in `session` on `inputs` tiled to each size."""
    latencies = {}
    for rows in batch_sizes:
        batch = tile_rows(inputs, rows)
        session.run(signature, batch)  # The first run of a shape allocates.
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(signature, batch)
            times.append(time.perf_counter() - started)
        latencies[rows] = statistics.median(times)
    return latencies


def batching_parameters(latencies, cores=None):
    """TF Serving's BatchingParameters from measured latencies (see the module docstring)."""
    cores = cores or os.cpu_count() or 1
    throughput = {rows: rows / seconds for rows, seconds in latencies.items()}
    best = max(throughput.values())
    max_batch = min(rows for rows, value in throughput.items() if value >= 0.9 * best)
    timeout = int(round(latencies[min(latencies)] / 2 * 1e6, -2)) or 100
    return {
        "max_batch_size": max_batch,
        "batch_timeout_micros": timeout,
        "num_batch_threads": cores,
        "max_enqueued_batches": max(cores, int(round(1.0 / latencies[max_batch])) * cores),
        "allowed_batch_sizes": [rows for rows in sorted(latencies) if rows <= max_batch],
    }


def batching_text(parameters, latencies, model):
    """The batching parameters in TF Serving's text format, with the measurement they came from."""
    measured = ", ".join(f"{rows}: {seconds * 1000:.2f} ms" for rows, seconds in sorted(latencies.items()))
    lines = [
        _GENERATED.rstrip(),
        f"# Measured on {model} ({time.strftime('%Y-%m-%d')}; {environment.machine_description()}):",
        f"#   latency of its default signature by batch size, median: {measured}.",
        "# Serve with: tensorflow_model_server --enable_batching --batching_parameters_file=<this file>",
    ]
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        lines.append(f"{name} {{ value: {parameters[name]} }}")
    lines.extend(f"allowed_batch_sizes: {rows}" for rows in parameters["allowed_batch_sizes"])
    lines.append("pad_variable_length_inputs: false")
    return "\n".join(lines) + "\n"
