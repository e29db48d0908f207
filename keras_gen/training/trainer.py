"""Train any registered model on any registered dataset and leave a complete run directory.

The run directory's layout is runs.layout's. Training ends there: exporting the result is the
caller's decision (api.train and the command line export a finished run on the chief).
"""

import dataclasses
import os
import shutil
import sys
import tempfile
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_gen import environment
from keras_gen import errors
from keras_gen import losses
from keras_gen import models
from keras_gen.data import datasets
from keras_gen.data import pipeline
from keras_gen.data import shards
from keras_gen.data import stream
from keras_gen.data import tfds_files
from keras_gen.models import precision
from keras_gen.networks import augment
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import reopen
from keras_gen.runs import train_config
from keras_gen.training import callbacks
from keras_gen.training import distribute
from keras_gen.training import faults
from keras_gen.training import quality

# Checkpoints within an epoch when --checkpoint_every is not given: at most this much work is lost.
CHECKPOINT_SECONDS = 600.0


class Outcome(typing.NamedTuple):
    """What `run` leaves: the model, the run directory, and whether this process may publish the run.

    `finished`: every epoch asked for is trained (not stopped by a signal); `chief`: this process
    wrote the run directory (the other workers of a multi-worker run write to temporary ones).
    """

    model: object
    run_dir: str
    finished: bool
    chief: bool


def _prepare_run_dir(config):
    if config.resume:
        return
    if os.path.exists(config.out_dir) and not os.path.isdir(config.out_dir):
        raise errors.UserError(f"--out_dir {config.out_dir} is a file; expected a directory")
    if checkpoints.has_checkpoint(config.out_dir):
        raise errors.UserError(
            f"{config.out_dir} already holds a training run; pass --resume to continue it or choose another --out_dir"
        )
    os.makedirs(config.out_dir, exist_ok=True)


def _profile_batch(profile_batches):
    if not profile_batches:
        return 0
    try:
        start, stop = (int(part) for part in str(profile_batches).split(","))
    except ValueError:
        raise errors.UserError(f"--profile_batches={profile_batches}; expected START,STOP such as 10,20") from None
    return (start, stop)


def train(config, given_fields=(), extra_callbacks=()):
    """Trains `config.model` on `config.dataset`; returns (model, run directory). See `run`."""
    outcome = run(config, given_fields, extra_callbacks)
    return outcome.model, outcome.run_dir


def run(config, given_fields=(), extra_callbacks=()):
    """Trains `config.model` on `config.dataset`; returns an Outcome.

    Under `--distribute=multi_worker` every worker calls this with the same config: the chief writes
    the run directory, every other worker writes to a temporary directory that it deletes at the end.

    Args:
        config: a TrainConfig; it is not modified.
        given_fields: with `config.resume`, the fields set explicitly on the command line: they
            override the saved run's values (a new learning rate takes effect), except IDENTITY_FIELDS,
            which must match.
        extra_callbacks: Keras callbacks to run beside the run's own (they run first).
    """
    config = dataclasses.replace(config)
    previous = None
    if config.resume:
        if not config.out_dir or not checkpoints.has_checkpoint(config.out_dir):
            raise errors.UserError(
                f"--resume needs --out_dir of a run with checkpoints; {config.out_dir} has none "
                "(under --distribute=multi_worker every worker must be able to read the run directory)"
            )
        config, previous = train_config.config_for_resume(config, given_fields)
    _check_values(config)
    spec = datasets.lookup(config.dataset)
    models.MODELS.lookup(config.model)
    config.likelihood = train_config.resolve_likelihood(config.likelihood, spec)
    if config.likelihood not in losses.LIKELIHOODS:
        raise errors.UserError(
            f"--likelihood={config.likelihood}; expected auto or one of {', '.join(losses.LIKELIHOODS)}"
        )
    profile_batch = _profile_batch(config.profile_batches)
    warning = precision.speed_warning(config.mixed_precision)
    if warning:
        print(warning, file=sys.stderr)
    # Before any other TensorFlow work: a multi-worker strategy must be the first thing created.
    strategy = distribute.get_strategy(config.distribute, config.peer_timeout)
    distribute.check_global_batch(config.batch_size, strategy)
    chief, task = distribute.task_of(strategy)
    # Data and model before the run directory: a dataset that cannot be found or a model that does not
    # fit in memory leaves nothing behind.
    # A resumed run reads the data as it did (config.stream, recorded below), whatever memory it finds now.
    stream_train = "always" if config.stream else None if config.resume else "auto"
    splits = datasets.load(config.dataset, config.image_size, data_dir=config.data_dir, stream_train=stream_train)
    config.stream = splits["train"].streamed
    class_names = _classes(config, splits)
    keras.utils.set_random_seed(config.seed)
    model = _build(config, splits["train"].image_shape, strategy)
    if config.stream:
        steps = stream.steps_per_epoch(
            splits["train"], config.batch_size, distribute.num_workers(strategy), config.steps_per_epoch,
            model.batches_per_step,
        )  # fmt: skip
    else:
        steps = pipeline.steps_per_epoch(
            splits["train"].count, config.batch_size, config.steps_per_epoch, model.batches_per_step
        )
    if config.out_dir is None:
        config.out_dir = train_config.default_out_dir(config)
    if not chief:
        write_dir = tempfile.mkdtemp(prefix=f"keras_gen_{task.replace(' ', '_')}_")
        try:
            return _train(
                config, given_fields, previous, spec, splits, model, steps, strategy, profile_batch, write_dir,
                extra_callbacks, class_names,
            )  # fmt: skip
        finally:
            shutil.rmtree(write_dir, ignore_errors=True)
    # One run per directory: a second one (a typo'd --out_dir, two shells) would overwrite the first's files.
    with faults.run_lock(config.out_dir):
        _prepare_run_dir(config)
        return _train(
            config, given_fields, previous, spec, splits, model, steps, strategy, profile_batch, config.out_dir,
            extra_callbacks, class_names,
        )  # fmt: skip


def _classes(config, splits):
    """A conditional run's class names (setting config.num_classes), from the dataset; None otherwise."""
    if not config.conditional:
        config.num_classes = None
        return None
    train, test = splits["train"], splits["test"]
    source = train.source.rsplit(" [", 1)[0]
    if not train.has_labels or not test.has_labels:
        raise errors.UserError(
            f"--conditional needs labelled images; {source} has none (an .npz needs 'y', an image folder "
            "one sub-folder per class)"
        )
    (train_low, train_high), (test_low, test_high) = train.label_range, test.label_range
    highest = max(train_high, test_high)
    if min(train_low, test_low) < 0:
        raise errors.UserError(f"--conditional: {source} holds negative labels; expected class indices 0, 1, ...")
    names = train.class_names or tuple(str(label) for label in range(highest + 1))
    if highest >= len(names):
        raise errors.UserError(f"--conditional: {source} holds label {highest} but names {len(names)} classes")
    if config.num_classes is not None and config.num_classes != len(names):
        raise errors.UserError(
            f"--conditional: {source} now has {len(names)} classes; the run was trained with {config.num_classes}"
        )
    config.num_classes = len(names)
    return names


def _check_values(config):
    """Values the flags' own bounds cannot express; one line each, before anything is written."""
    if config.epochs < 1:
        raise errors.UserError(f"--epochs={config.epochs}; expected at least 1")
    if not 0 <= config.seed < 2**31:
        raise errors.UserError(f"--seed={config.seed}; expected an integer from 0 to {2**31 - 1}")
    errors.check_choice("corrupt_data", config.corrupt_data, stream.CORRUPT_POLICIES)
    if config.nan_policy not in train_config.NAN_POLICIES:
        raise errors.UserError(
            f"--nan_policy={config.nan_policy}; expected one of {', '.join(train_config.NAN_POLICIES)}"
        )
    accepted = models.hyperparameters(config.model)
    if config.conditional and "num_classes" not in accepted:
        raise errors.UserError(f"--conditional: the {config.model} model has no class-conditional form")
    for name in ("spectral_norm", "diffaugment", "ema_decay", "critic_learning_rate", "class_conditioning"):
        # The critic's learning rate is the optimizer's, not the model's; models with critic_steps have one.
        takes = name in accepted or (name == "critic_learning_rate" and "critic_steps" in accepted)
        if getattr(config, name) is not None and not takes:
            raise errors.UserError(
                f"--{name}={getattr(config, name)} applies to the GAN and WGAN; the {config.model} model has no critic"
            )
    if config.ema_decay is not None and not 0.0 <= config.ema_decay < 1.0:
        raise errors.UserError(f"--ema_decay={config.ema_decay}; expected 0 (off) or a decay in (0, 1) such as 0.999")
    try:
        augment.parse_policy(config.diffaugment)
    except ValueError as error:
        raise errors.UserError(f"--{error}") from None
    if config.quality_every < 0 or config.quality_samples < 2:
        raise errors.UserError(
            f"--quality_every={config.quality_every}, --quality_samples={config.quality_samples}; "
            "expected 0 (never) or more epochs, and at least 2 samples"
        )
    if not 0.0 <= config.quality_budget < 1.0:
        raise errors.UserError(
            f"--quality_budget={config.quality_budget}; expected a share of training time in [0, 1), such as 0.1"
        )
    if config.checkpoint_every is not None and config.checkpoint_every < 0:
        raise errors.UserError(f"--checkpoint_every={config.checkpoint_every}; expected 0 (epoch ends only) or more")
    precision.check(config.mixed_precision)


def _build(config, image_shape, strategy):
    """The compiled model; one that does not fit in memory is a one-line error, not a traceback."""
    too_big = (
        f"the {config.model} with --latent_dim={config.latent_dim}, --base_filters={config.base_filters} at "
        f"{config.image_size}x{config.image_size} does not fit in memory"
    )
    available = environment.available_memory()
    if available is not None and not tf.config.list_logical_devices("GPU"):
        # Weights, their gradients and Adam's two slots, float32: a floor on what training needs.
        needed = 16 * models.parameter_count(config.model, image_shape, **config.model_hyperparameters())
        if needed > available:
            raise errors.UserError(
                f"{too_big} (at least {needed / 2**30:.1f} GiB for weights, gradients and optimizer state; "
                f"{available / 2**30:.1f} GiB available); make it smaller"
            )
    try:
        with strategy.scope():
            with precision.policy_scope(config.mixed_precision):
                model = models.build(config.model, image_shape, **config.model_hyperparameters())
            if config.learning_rate is None:
                config.learning_rate = model.default_learning_rate
            model.nan_policy = config.nan_policy
            reopen.compile_for_run(model, config)
            return model
    except (tf.errors.ResourceExhaustedError, MemoryError) as error:
        raise errors.UserError(f"{too_big} ({type(error).__name__}); make it smaller") from None


def _train(
    config,
    given_fields,
    previous,
    spec,
    splits,
    model,
    steps,
    strategy,
    profile_batch,
    write_dir,
    extra_callbacks=(),
    class_names=None,
):
    """The training run proper; everything is written under `write_dir` (the run directory on the chief)."""
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    train_split, test_split = splits["train"], splits["test"]
    image_shape = train_split.image_shape
    streamed = config.stream
    with strategy.scope():
        checkpoint = checkpoints.Checkpoint(model, write_dir)
    initial_epoch, initial_step, restored = 0, 0, None
    if config.resume:
        # Every worker restores the chief's checkpoint (in a multi-worker run, from shared storage).
        resume_from = "latest" if config.resume is True else config.resume
        restored = checkpoints.choose(config.out_dir, resume_from)
        initial_epoch, initial_step = checkpoint.restore(restored)
        # The checkpoint holds the old rates; the user asked for new ones.
        if "learning_rate" in given_fields or "critic_learning_rate" in given_fields:
            for name, optimizer in model.optimizers().items():
                critic = name == "critic_optimizer" and config.critic_learning_rate is not None
                optimizer.learning_rate = config.critic_learning_rate if critic else config.learning_rate
        print(f"Resuming {restored} ({callbacks.describe_position(initial_epoch, initial_step)}).")
    if initial_epoch >= config.epochs:
        print(f"{config.out_dir} has already trained {initial_epoch} of {config.epochs} epochs; nothing to do.")
        return Outcome(model, config.out_dir, True, write_dir == config.out_dir)
    pipelines = distribute.num_workers(strategy)
    if initial_step:
        _check_mid_epoch(config, previous, initial_epoch, initial_step, steps, streamed, pipelines)
    data_source = train_split.source.rsplit(" [", 1)[0]
    if config.resume:
        changed = [name for name in given_fields if name not in ("resume", "out_dir", "verbose")]
        train_config.write_record(
            write_dir, config, data_source, image_shape, previous, initial_epoch, changed, input_pipelines=pipelines
        )
    else:
        train_config.write_record(
            write_dir, config, data_source, image_shape, class_names=class_names, input_pipelines=pipelines
        )

    pixel_noise = model.pixel_noise(spec.binarize)
    test_batches = pipeline.eval_dataset(
        test_split.images,
        config.batch_size,
        model.value_range,
        pixel_noise,
        seed=config.seed,
        max_steps=config.steps_per_epoch,
        labels=test_split.labels if config.conditional else None,
    )
    log_dir = layout.path(write_dir, layout.LOGS)
    title = f"{config.model} on {config.dataset} ({config.image_size}x{config.image_size}, z={config.latent_dim})"
    # Fixed by the seed, so grids of every epoch (and of a resumed run) show the same latents.
    latents = np.random.default_rng(config.seed).standard_normal((config.grid_size, config.latent_dim))
    latents = latents.astype(np.float32)
    # Before the callbacks that read an epoch's logs: it adds the sample-quality metrics to them.
    stop_signals = faults.StopSignals()
    sample_quality = quality.monitor(
        config, test_split.images, write_dir, config.dataset, test_split.labels if config.conditional else None,
        stop_signals,
    )  # fmt: skip
    skipped_records = None
    if streamed and config.corrupt_data == "skip":
        skipped_records = stream.skipped_records_counter(train_split)
    run_callbacks = [
        *extra_callbacks,
        callbacks.SamplingStatistics(),
        *([callbacks.SkippedRecords(skipped_records)] if skipped_records is not None else []),
        *([sample_quality] if sample_quality else []),
        keras.callbacks.TensorBoard(log_dir=log_dir, profile_batch=profile_batch),
        callbacks.SampleGrid(latents, write_dir, os.path.join(log_dir, layout.SAMPLES), title),
        callbacks.MetricsLog(
            layout.path(write_dir, layout.METRICS),
            layout.path(write_dir, layout.CURVES),
            initial_epoch=initial_epoch,
            images_per_step=config.batch_size * (model.batches_per_step or 1),
            title=title,
        ),
    ]
    checkpointer = callbacks.Checkpointer(
        checkpoint,
        start=(initial_epoch, initial_step),
        every_steps=config.checkpoint_every,
        every_seconds=0 if config.checkpoint_every is not None else CHECKPOINT_SECONDS,
        stop_signals=stop_signals,
        nan_policy=config.nan_policy,
        out_dir=config.out_dir,
        restored=restored,
        steps_per_epoch=steps,
        mixed_precision=config.mixed_precision,
        measurement=sample_quality.identity if sample_quality else None,
    )
    # Last, so an epoch's records are on disk before its checkpoint says it is done; the progress bar
    # after it, where Keras puts its own, and only where Keras would add one (verbose != 0).
    run_callbacks += [checkpointer, *([callbacks.Progress(config.epochs)] if config.verbose else [])]
    # A run resumed in the middle of an epoch finishes that epoch in a fit of its own (Keras gives every
    # epoch of one fit the same number of steps), then trains the rest.
    phases = [(initial_epoch, config.epochs, steps, initial_step)]
    if initial_step:
        phases = [(initial_epoch, initial_epoch + 1, steps, initial_step), (initial_epoch + 1, config.epochs, steps, 0)]
    try:
        with stop_signals:
            for first_epoch, end_epoch, epoch_steps, skipped in phases:
                if first_epoch >= end_epoch:
                    continue
                if streamed:
                    batches = stream.train_dataset(
                        train_split, config.batch_size, model.value_range, pixel_noise, config.seed, first_epoch,
                        end_epoch, epoch_steps, strategy, batches_per_step=model.batches_per_step,
                        initial_step=skipped, labels=config.conditional, corrupt=config.corrupt_data,
                        skipped=skipped_records,
                    )  # fmt: skip
                else:
                    batches = pipeline.train_dataset(
                        train_split.images, config.batch_size, model.value_range, pixel_noise, config.seed,
                        first_epoch, end_epoch, epoch_steps, batches_per_step=model.batches_per_step,
                        initial_step=skipped, labels=train_split.labels if config.conditional else None,
                    )  # fmt: skip
                model.fit(
                    batches,
                    epochs=end_epoch,
                    initial_epoch=first_epoch,
                    steps_per_epoch=epoch_steps - skipped if skipped else epoch_steps,
                    validation_data=test_batches,
                    callbacks=run_callbacks,
                    verbose=config.verbose,
                    shuffle=False,  # The stream is already shuffled per epoch, reproducibly.
                )
    except faults.TrainingStopped as stopped:
        path, where = checkpointer.saved
        print(
            # On a line of its own: the progress bar leaves its line open.
            f"{chr(10) if config.verbose else ''}Stopped by {stopped} at {where}; saved {path}. "
            f"Continue with: python run.py --resume --out_dir={config.out_dir}"
        )
        return Outcome(model, config.out_dir, False, write_dir == config.out_dir)
    except tf.errors.ResourceExhaustedError:
        raise errors.UserError(
            f"a training step with --batch_size={config.batch_size} does not fit in memory; use a smaller batch"
        ) from None
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
        peer = distribute.lost_peer(error) if distribute.num_workers(strategy) > 1 else None
        if peer is None:
            raise
        kept = "no checkpoint yet"
        if checkpointer.saved:
            kept = f"the newest checkpoint ({checkpointer.saved[1]}) is intact"
        raise errors.TrainingError(
            f"lost {peer} (no heartbeat for {config.peer_timeout} s, or it failed); {kept}. Restart every worker "
            f"with: python run.py --resume --out_dir={config.out_dir} --distribute=multi_worker"
        ) from None
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        problem = _corrupt_data(train_split, error) if streamed else None
        if problem is None:
            raise
        kept = f"the last checkpoint ({checkpointer.saved[1]}) is intact: " if checkpointer.saved else ""
        again = ", or prepare the dataset again" if isinstance(train_split, shards.StreamedSplit) else ""
        raise errors.UserError(
            f"{problem}; {kept}rerun with --corrupt_data=skip to leave such images out (with --resume to continue)"
            f"{again}"
        ) from None
    return Outcome(model, config.out_dir, True, write_dir == config.out_dir)


def _check_mid_epoch(config, previous, epoch, step, steps, streamed, pipelines):
    """A checkpoint `step` steps into epoch `epoch` resumes by skipping that many batches of the epoch's
    stream: a one-line error where this run's stream would differ from the one the steps were taken from."""
    where = f"the checkpoint is at step {step} of epoch {epoch + 1}"
    saved_batch = (previous or {}).get("config", {}).get("batch_size", config.batch_size)
    if config.batch_size != saved_batch:
        raise errors.UserError(
            f"--batch_size={config.batch_size}: {where}, {step} batches of {saved_batch}; finish the epoch with "
            f"--batch_size={saved_batch} (a new batch size can start at an epoch's end)"
        )
    read_by = (previous or {}).get("input_pipelines", pipelines)
    if streamed and read_by != pipelines:  # Each worker reads its own shards in its own order.
        raise errors.UserError(
            f"{where} of data streamed to {read_by} worker(s); this run has {pipelines}. Finish the epoch on "
            f"{read_by} (a checkpoint at an epoch's end resumes on any number)"
        )
    if step >= steps:
        raise errors.UserError(
            f"{where}, but an epoch now has {steps} steps; resume with the run's --steps_per_epoch and --batch_size"
        )


# Words (lower case) of TensorFlow's errors for an image or record that cannot be decoded or parsed.
DECODING = ("png", "jpeg", "decode", "corrupt", "parse")


def _corrupt_data(split, error):
    """What a streamed split's error says is wrong with the data, naming what it can; None if it is not the data."""
    message = " ".join(error.message.split())[:160]
    if isinstance(split, shards.StreamedSplit):
        damaged = shards.verify(split.directory)
        if not damaged and not isinstance(error, tf.errors.DataLossError) and "PNG" not in error.message:
            return None
        what = f"{', '.join(damaged)} differ from the index" if damaged else message
        return f"corrupt record in the prepared dataset {split.directory} ({what})"
    if isinstance(split, tfds_files.TfdsSplit):
        # A record tfds cannot parse, or an image it cannot decode; other errors are the model's own.
        decoding = any(word in error.message.lower() for word in DECODING)
        if not (decoding or isinstance(error, tf.errors.DataLossError)):
            return None
        return f"corrupt record in {split.source} ({message}); prepare the dataset again with tfds"
    if isinstance(error, tf.errors.NotFoundError) or "image" in error.message.lower():
        return f"an image file under {split.directory} cannot be read or decoded ({message})"
    return None
