"""Export a trained run as a SavedModel version in TF Serving's layout.

    saved_models/<name>/<version>/
        saved_model.pb, variables/            the signatures of serving.signatures
        assets.extra/tf_serving_warmup_requests   one request per signature, replayed by TF Serving on load
        requests/<signature>.json             REST request bodies, for curl and tests
        model_card.json                       what was exported: run, flags, training, metrics, signatures
        batching_parameters.txt               TF Serving's batching settings, measured on this model
    saved_models/models.config, saved_models/batching_parameters.txt   server-wide (server_config)

Versions are increasing integers. A version is written in a temporary directory beside the others
(which TF Serving ignores: its name is not a number) and renamed into place only when complete, so
no version is ever half-written or overwritten, and a server watching the folder never sees one
being written. Before it is published, every request of its warm-up file is replayed the way TF
Serving replays it when it loads the version (serving.session): an export the server could not load
is never published. Published versions are readable by whoever the user's umask lets read new files.
"""

import datetime
import os
import shutil
import sys
import tempfile

import keras
import tensorflow as tf

from keras_gen import errors
from keras_gen import io_utils
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import reopen
from keras_gen.serving import requests
from keras_gen.serving import server_config
from keras_gen.serving import session
from keras_gen.serving import signatures

DEFAULT_ROOT = "saved_models"
CARD_FILE = "model_card.json"
_STAGING_PREFIX = ".tmp-export-"


def default_export_dir(run_dir):
    """saved_models/<the run directory's name>."""
    return os.path.join(DEFAULT_ROOT, os.path.basename(os.path.normpath(run_dir)))


def versions(export_dir):
    """The published versions under `export_dir`, ascending."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(name) for name in os.listdir(export_dir) if name.isdigit())


def export_run(
    run_dir, export_dir=None, verbose=1, log_likelihood_samples=signatures.DEFAULT_LOG_LIKELIHOOD_SAMPLES,
    checkpoint="auto",
):  # fmt: skip
    """Exports a checkpoint of `run_dir` as the next version under `export_dir`.

    Args:
        run_dir: a keras_gen run directory with at least one checkpoint.
        export_dir: the model's folder (TF Serving's --model_base_path); default saved_models/<run name>.
        log_likelihood_samples: posterior samples per image of a VAE's `log_likelihood` signature.
        checkpoint: which one (runs.checkpoints.CHOICES): "auto" is the best by FID during training
            when the run kept one, else the newest. The model card names it.

    Returns:
        The path of the new version, e.g. saved_models/wgan_svhn/3.
    """
    # A missing run or checkpoint fails here, before anything is written.
    run = reopen.load_run(run_dir, checkpoint)
    export_dir = export_dir or default_export_dir(run_dir)
    model_name = os.path.basename(os.path.normpath(export_dir))
    staging = _staging_directory(export_dir)
    try:
        module = signatures.serving_module(run.model, log_likelihood_samples)
        functions = module.signatures()
        tf.saved_model.save(module, staging, signatures=functions)
        described = {name: describe(function) for name, function in functions.items()}
        examples = requests.example_inputs(module)
        requests.write_rest_requests(staging, examples)
        dtypes = {name: {key: tf.as_dtype(spec["dtype"]) for key, spec in described[name]["inputs"].items()}
                  for name in examples}  # fmt: skip
        requests.write_warmup(staging, examples, model_name, dtypes)
        batching = _check_and_measure(staging, module.default_signature, examples[module.default_signature])
        io_utils.write_text(
            os.path.join(staging, server_config.BATCHING_FILE),
            server_config.batching_text(
                batching["parameters"], batching["latencies"], f"{model_name} ({run.config.model})"
            ),
        )
        card = model_card(run, described, module.default_signature)
        card.update(module.card())
        card["batching"] = {
            "signature": module.default_signature,
            "latency_ms": {str(rows): round(seconds * 1000, 3) for rows, seconds in batching["latencies"].items()},
            "parameters": batching["parameters"],
        }
        path = _publish(staging, export_dir, card)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_server_files(path, os.path.dirname(os.path.abspath(export_dir)))
    if verbose:
        print(f"Exported {run.checkpoint} to {path}")
    return path


def _write_server_files(version_dir, root):
    """models.config and batching_parameters.txt beside the model folders; the version stands without them."""
    try:
        server_config.write_models_config(root)
        with open(os.path.join(version_dir, server_config.BATCHING_FILE), encoding="utf-8") as stream:
            io_utils.write_text(os.path.join(root, server_config.BATCHING_FILE), stream.read())
    except OSError as error:
        print(f"warning: {root} cannot be written ({error.strerror or error}): no models.config there", file=sys.stderr)


def _check_and_measure(version_dir, default_signature, example):
    """Replays every warm-up request as TF Serving does on load, then times the default signature.

    Returns {"latencies": {batch size: seconds}, "parameters": TF Serving's batching parameters}.
    """
    with session.ServingSession(version_dir) as served:
        for signature, inputs in requests.read_warmup(os.path.join(version_dir, requests.WARMUP_FILE)):
            served.run(signature, inputs)
        latencies = server_config.measure_latency(served, default_signature, example)
    return {"latencies": latencies, "parameters": server_config.batching_parameters(latencies)}


def _staging_directory(export_dir):
    """A fresh temporary directory inside `export_dir`; a one-line error if it cannot be written."""
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise errors.UserError(f"--export_dir {export_dir} is a file; expected a directory")
    try:
        os.makedirs(export_dir, exist_ok=True)
        staging = tempfile.mkdtemp(dir=export_dir, prefix=_STAGING_PREFIX)
        # mkdtemp's folder is private (0700): once renamed into a version, a server running as another
        # user could not read it. It gets the permissions any new folder would.
        os.chmod(staging, 0o777 & ~io_utils.umask())
        return staging
    except OSError as error:
        raise errors.UserError(f"--export_dir {export_dir} cannot be written: {error.strerror or error}") from None


def _publish(staging, export_dir, card, attempts=5):
    """Renames the complete export to the next free version; returns its path.

    rename() onto an existing non-empty directory fails, so two exports racing for one number never
    overwrite each other: the loser takes the next number.
    """
    for _ in range(attempts):
        version = max(versions(export_dir), default=0) + 1
        card["version"] = version
        io_utils.write_json(os.path.join(staging, CARD_FILE), card)
        target = os.path.join(export_dir, str(version))
        try:
            os.rename(staging, target)
            return target
        except OSError:
            if not os.path.exists(target):
                raise
    raise OSError(f"could not claim a new version under {export_dir} after {attempts} attempts")


def describe(function):
    """{"inputs", "outputs": {name: {"dtype", "shape"}}} of a concrete function; None is a dynamic size."""

    def spec(value):
        return {"dtype": value.dtype.name, "shape": value.shape.as_list() if value.shape.rank is not None else None}

    arguments = function.structured_input_signature[0]
    return {
        "inputs": {argument.name: spec(argument) for argument in arguments},
        "outputs": {name: spec(value) for name, value in sorted(function.structured_outputs.items())},
    }


def _classes(run):
    """{"num_classes", "class_names"} of a class-conditional model, whose signatures take `labels`; else {}.

    The names are the run's (config.json: the dataset's, or the image folder's sub-folders), so a
    client can find the index of "Sneaker" without the training data.
    """
    num_classes = run.model.num_classes
    if not num_classes:
        return {}
    names = run.record.get("class_names") or [str(label) for label in range(num_classes)]
    return {"num_classes": num_classes, "class_names": list(names)}


def model_card(run, described, default_signature):
    """What a version holds and where it came from, for model_card.json."""
    config = run.config
    rows = records.training_rows(run.directory)
    training = next((row for row in reversed(rows) if row["epoch"] == run.epochs), None)
    evaluation = {}
    record = records.evaluation(run.directory)
    if record and record.get("checkpoint") == os.path.basename(run.checkpoint):
        evaluation = {name: record[name] for name in records.EVALUATION_GROUPS if name in record}
    return {
        "model": config.model,
        "dataset": config.dataset,
        "image_shape": list(run.record["image_shape"]),
        "latent_dim": config.latent_dim,
        "flags": run.record["config"],
        "source_run": os.path.abspath(run.directory),
        "checkpoint": os.path.basename(run.checkpoint),
        "checkpoint_kind": "best" if os.path.basename(os.path.dirname(run.checkpoint)) == layout.BEST else "newest",
        # Which generator weights the signatures hold: the trained ones or their moving average.
        "generator_weights": (
            f"exponential moving average (decay {run.model.ema_decay})"
            if getattr(run.model, "ema_generator", None) is not None
            else "trained"
        ),
        "epochs_trained": run.epochs,
        "steps_trained": {
            name: int(optimizer.iterations.numpy()) for name, optimizer in run.model.optimizers().items()
        },
        "metrics": {"last_epoch": training, "evaluation": evaluation},
        "signatures": described,
        "serving_default": default_signature,
        **_classes(run),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
    }
