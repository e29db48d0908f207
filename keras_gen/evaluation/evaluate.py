"""`--mode=eval`: every metric that applies to a trained run, written to RUN/metrics.json."""

import datetime
import os

from keras_gen import errors
from keras_gen import io_utils
from keras_gen import runs
from keras_gen.evaluation import likelihood
from keras_gen.models import vae

METRICS_FILE = "metrics.json"


def evaluate_run(run_dir, num_samples=10_000, iw_samples=1000, seed=0):
    """Evaluates the newest checkpoint of `run_dir` on (the first `num_samples` images of) its test split.

    Returns:
        The record written to `<run_dir>/metrics.json`: what was measured (run, checkpoint, epochs,
        dataset, test images) and the metrics, in nats per image where they are likelihoods.
    """
    if num_samples < 1:
        raise errors.UserError(f"--num_samples={num_samples}; expected at least 1")
    if iw_samples < 1:
        raise errors.UserError(f"--iw_samples={iw_samples}; expected at least 1")
    run = runs.load_run(run_dir)
    if not isinstance(run.model, vae.VAE):
        raise errors.UserError(
            f"--mode=eval measures likelihoods of VAE runs; {run_dir} holds a {run.config.model} run"
        )
    batches, split = runs.eval_split(run, max_images=num_samples)
    record = {
        "run": os.path.abspath(run_dir),
        "model": run.config.model,
        "dataset": run.config.dataset,
        "checkpoint": os.path.basename(run.checkpoint),
        "epochs": run.epochs,
        "evaluated_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "data_source": split.source,
        "likelihood": run.model.likelihood,
        "units": "nats per image",
        "iw_samples": iw_samples,
        "seed": seed,
    }
    record.update(likelihood.evaluate_vae(run.model, batches, iw_samples=iw_samples, seed=seed))
    io_utils.write_json(os.path.join(run_dir, METRICS_FILE), record)
    return record
