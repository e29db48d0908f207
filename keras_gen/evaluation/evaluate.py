"""`--mode=eval`: the metrics that apply to a trained run, written to RUN/metrics.json.

metrics.json holds what was evaluated (run, checkpoint, epochs, data) and one group per metric
family below. Groups of an earlier evaluation of the same checkpoint that a later one does not
recompute are kept, so `--metrics=likelihood` then `--metrics=sample_quality` leaves both.

- "likelihood" (VAE runs): test-set negative ELBO, its terms and the IWAE bound (likelihood.py).
- "sample_quality" (every run): FID, KID, Inception-style score and precision/recall of N generated
  samples against N test images (sample_quality.py), on the features of a feature network
  (feature_nets.py) whose identity is recorded, next to the same metrics for N training images
  against the test images: the floor a perfect model would reach.
"""

import datetime
import os
import sys

import numpy as np

from keras_gen import errors
from keras_gen import io_utils
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import likelihood
from keras_gen.evaluation import sample_quality
from keras_gen.models import base
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import reopen

METRICS = records.EVALUATION_GROUPS


def generate(model, num_samples, seed=0, batch_size=500, decode=None):
    """`num_samples` images in [0, 1] decoded from latents drawn from the prior with `seed`.

    `decode`: (latents[, labels]) -> images; default the model's `decode_to_images` (a GAN's EMA when
    it keeps one). A class-conditional model draws sample i as class `sample_labels(...)[i]`.
    """
    decode = decode or model.decode_to_images
    latents = np.random.default_rng(seed).standard_normal((num_samples, model.latent_dim)).astype(np.float32)
    labels = sample_labels(model, num_samples)
    rows = [slice(start, start + batch_size) for start in range(0, num_samples, batch_size)]
    if labels is None:
        return np.concatenate([np.asarray(decode(latents[part])) for part in rows])
    return np.concatenate([np.asarray(decode(latents[part], labels[part])) for part in rows])


def sample_labels(model, num_samples):
    """The classes `generate` draws a conditional model's samples for (each class equally often); None otherwise."""
    classes = getattr(model, "num_classes", 0)
    return base.cycled_labels(num_samples, classes).numpy() if classes else None


def conditional_metrics(model, real_features, real_labels, fake, class_names=None, accuracy=True):
    """The FID within each class of samples from `generate` (and their mean) and, with `accuracy`
    (a classifier of the dataset's own classes), the conditional accuracy.

    Args:
        real_features: of the real images, whose classes are `real_labels`.
        fake: (features, probabilities) of `generate`'s samples.
    """
    fake_labels = sample_labels(model, len(fake[0]))
    by_class = sample_quality.fid_by_class(real_features, real_labels, fake[0], fake_labels, model.num_classes)
    names = class_names or [str(label) for label in range(model.num_classes)]
    measured = [value for value in by_class if value is not None]
    result = {
        "fid_within_class_mean": float(np.mean(measured)) if measured else None,
        "fid_by_class": dict(zip(names, by_class)),
    }
    if accuracy:
        result["conditional_accuracy"] = sample_quality.conditional_accuracy(fake[1], fake_labels)
    return result


def sample_quality_metrics(model, splits, feature_net, num_samples, seed=0, class_names=None):
    """Metrics of generated samples and of the real training images, each against the test images.

    A class-conditional model's samples are drawn for every class equally often, and its record adds
    conditional_metrics and, on the dataset's classifier, that classifier's accuracy on the real test
    images: about what a perfect conditional model reaches.
    """
    test = splits["test"].images[:num_samples].astype(np.float32) / 255.0
    # As many as the test images: FID's and KID's bias depend on the count, so the floor of a perfect
    # model is measured at the model's own.
    train = splits["train"].head(len(test)).astype(np.float32) / 255.0
    real = feature_net.extract(test)
    result = {
        "feature_net": feature_net.identity,
        "num_real": int(len(test)),
        "num_generated": int(len(test)),
    }
    fake = feature_net.extract(generate(model, len(test), seed))
    result.update(sample_quality.compare(real, fake, seed=seed))
    if getattr(model, "num_classes", 0):
        test_labels = splits["test"].labels[: len(test)]
        # Inception's probabilities are over ImageNet's classes, not the dataset's: no accuracy from them.
        classifier = feature_net.identity.get("kind") == "classifier"
        result.update(conditional_metrics(model, real[0], test_labels, fake, class_names, accuracy=classifier))
        if classifier:
            result["real_test_accuracy"] = sample_quality.conditional_accuracy(real[1], test_labels)
    result["real_train_vs_test"] = sample_quality.compare(real, feature_net.extract(train), seed=seed)
    return result


def evaluate_run(
    run_dir,
    num_samples=10_000,
    iw_samples=1000,
    seed=0,
    metrics=None,
    features="classifier",
    feature_nets_root=feature_nets.DEFAULT_ROOT,
    verbose=1,
    checkpoint="auto",
):
    """Evaluates a checkpoint of `run_dir`; returns the record written to `<run_dir>/metrics.json`.

    Args:
        num_samples: test images (and generated samples) to use: the first N of the test split.
        iw_samples: posterior samples per image of the IWAE bound.
        metrics: names from METRICS; default every one that applies to the run's model.
        features: the feature network of the sample-quality metrics, one of feature_nets.FEATURES.
        verbose: 1 shows progress (the likelihood bounds can take an hour on a CPU), 0 nothing.
        checkpoint: runs.checkpoints.CHOICES; "auto" is the best by FID when the run kept one, else the newest.
    """
    if num_samples < 1:
        raise errors.UserError(f"--num_samples={num_samples}; expected at least 1")
    if iw_samples < 1:
        raise errors.UserError(f"--iw_samples={iw_samples}; expected at least 1")
    unknown = [name for name in metrics or () if name not in METRICS]
    if unknown:
        raise errors.UserError(f"--metrics={','.join(unknown)}; expected some of {', '.join(METRICS)}")
    run = reopen.load_run(run_dir, checkpoint)
    has_likelihood = hasattr(run.model, "importance_samples")
    requested = metrics is not None
    if metrics is None:
        metrics = METRICS if has_likelihood else ("sample_quality",)
    metrics = list(metrics)
    if "likelihood" in metrics and not has_likelihood:
        raise errors.UserError(
            f"--metrics=likelihood measures VAE runs; {run_dir} holds a {run.config.model} run "
            "(use --metrics=sample_quality)"
        )
    skipped = {}
    feature_net = None
    if "sample_quality" in metrics:
        # Before any long computation: a missing feature network is known now, not after the likelihoods.
        try:
            feature_net = feature_nets.load(features, run.config.dataset, feature_nets_root)
        except errors.UserError as error:
            if requested or metrics == ["sample_quality"]:
                raise  # Asked for explicitly, or nothing else to compute: the error is the answer.
            metrics.remove("sample_quality")
            skipped["sample_quality"] = " ".join(str(error).split())
            print(
                f"Skipping sample_quality: no {features} feature network for {run.config.dataset}; "
                f"`python run.py --mode=train_classifier --dataset={run.config.dataset}` enables it.",
                file=sys.stderr,
            )
    splits = reopen.load_splits(run)
    record = {
        "run": os.path.abspath(run_dir),
        "model": run.config.model,
        "dataset": run.config.dataset,
        "checkpoint": os.path.basename(run.checkpoint),
        "epochs": run.epochs,
        "data_source": splits["test"].source,
        "seed": seed,
    }
    record.update(_kept_groups(layout.path(run_dir, layout.EVALUATION), record, metrics))
    if skipped:
        record["skipped"] = skipped
    count = min(num_samples, len(splits["test"].images))
    if "sample_quality" in metrics and count < sample_quality.MIN_SAMPLES:
        raise errors.UserError(
            f"--num_samples={num_samples} with {len(splits['test'].images)} test images: sample quality needs at "
            f"least {sample_quality.MIN_SAMPLES} (the Inception score over 10 splits, precision and recall with "
            "k=3, KID's subsets); pass --metrics=likelihood to bound the likelihood of fewer"
        )
    evaluated_at = datetime.datetime.now().isoformat(timespec="seconds")
    if "likelihood" in metrics:
        batches, _ = reopen.eval_split(run, max_images=num_samples, splits=splits)
        group = {
            "decoder_likelihood": run.model.likelihood,
            "units": "nats per image",
            "iw_samples": iw_samples,
            "seed": seed,
            "evaluated_at": evaluated_at,
        }
        if verbose:
            print(f"Likelihood bounds on {count} test images, {iw_samples} posterior samples each:")
        group.update(
            likelihood.evaluate_vae(
                run.model, batches, iw_samples=iw_samples, seed=seed, num_images=count, verbose=verbose
            )
        )
        record["likelihood"] = group
    if "sample_quality" in metrics:
        if verbose:
            described = ", ".join(
                f"{key} {str(value)[:12] if key.endswith('sha256') else value}"
                for key, value in feature_net.identity.items()
            )
            print(f"Sample quality of {count} samples against as many test images; features of {described}")
        record["sample_quality"] = sample_quality_metrics(
            run.model, splits, feature_net, num_samples, seed, run.record.get("class_names")
        )
        # Each group names its seed: a group kept from an earlier evaluation may have had another.
        record["sample_quality"].update(seed=seed, evaluated_at=evaluated_at)
    io_utils.write_json(layout.path(run_dir, layout.EVALUATION), record)
    return record


def _kept_groups(path, record, recomputed):
    """Metric groups of an earlier evaluation of the same checkpoint that this one does not recompute."""
    if not os.path.exists(path):
        return {}
    try:
        earlier = io_utils.read_json(path)
    except (OSError, ValueError):
        return {}  # An unreadable file is replaced, not merged.
    if any(earlier.get(key) != record[key] for key in ("checkpoint", "epochs", "dataset")):
        return {}
    return {name: earlier[name] for name in METRICS if name in earlier and name not in recomputed}
