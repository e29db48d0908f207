"""The command line: the only module that defines or reads flags.

`python run.py --model=vae --dataset=fashion_mnist` and the `keras-gen` console script both land in
`main`, which turns flags into plain configs and hands off to the library.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from keras_gen import api
from keras_gen import divergences
from keras_gen import errors
from keras_gen import losses
from keras_gen import models
from keras_gen import report
from keras_gen import reproduce
from keras_gen import studies
from keras_gen.data import datasets
from keras_gen.data import prepare
from keras_gen.data import stream
from keras_gen.evaluation import evaluate
from keras_gen.evaluation import feature_nets
from keras_gen.models import precision
from keras_gen.networks import augment
from keras_gen.networks import dcgan
from keras_gen.networks import convolutional
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import reopen
from keras_gen.runs import train_config
from keras_gen.serving import saved_model
from keras_gen.serving import signatures
from keras_gen.training import distribute

MODES = ("train", "eval", "explore", "export", "divergence", "train_classifier", "report", "reproduce", "prepare")
_DEFAULTS = train_config.TrainConfig()

flags.DEFINE_enum("mode", "train", MODES, "What to do.")
flags.DEFINE_enum("model", _DEFAULTS.model, models.MODELS.names(), "Model family.")
flags.DEFINE_string(
    "dataset",
    _DEFAULTS.dataset,
    f"Dataset: one of {', '.join(datasets.DATASETS.names())} ('custom' reads --data_dir), or tfds:NAME for any "
    "TensorFlow Datasets image dataset (streamed from tfds' files).",
)
flags.DEFINE_string(
    "data_dir",
    None,
    "Local dataset files (IDX folder, .npz, SVHN .mat, image folder) or a tfds data directory. "
    "Tried first and only; without it: /usr/share/datasets/<name>, then tfds.",
)
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Image side; sets the network depth (16, 32 or 64).")
flags.DEFINE_integer("latent_dim", _DEFAULTS.latent_dim, "Latent dimension (z).", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Global batch size (split over replicas).", lower_bound=1)
flags.DEFINE_integer(
    "epochs", _DEFAULTS.epochs, "Epochs to train in total (a resumed run counts its earlier ones).", lower_bound=1
)
flags.DEFINE_integer("steps_per_epoch", None, "Cap on training batches per epoch (and on test batches).", lower_bound=1)
flags.DEFINE_float(
    "learning_rate",
    None,
    "Learning rate of the model's optimizer(s); default per model: VAE 1e-3, GAN 2e-4, "
    "WGAN 5e-5 (clipping) or 1e-4 (gradient penalty).",
    lower_bound=0.0,
)
flags.DEFINE_integer(
    "seed",
    _DEFAULTS.seed,
    "Seed of weights, data order, binarization and model noise.",
    lower_bound=0,
    upper_bound=2**31 - 1,
)
flags.DEFINE_string(
    "out_dir", None, "Run directory; default runs/<model>_<dataset>_<time>. --mode=prepare: where the shards go."
)


class _ResumeParser(flags.ArgumentParser):
    """--resume (the newest checkpoint), --resume=previous (the one before it), --noresume."""

    syntactic_help = "true, latest, previous or false"

    def parse(self, argument):
        if isinstance(argument, bool):
            return "latest" if argument else False
        value = str(argument).strip().lower()
        if value in ("true", "t", "1", "latest"):
            return "latest"
        if value in ("false", "f", "0"):
            return False
        if value == "previous":
            return "previous"
        raise ValueError(f"{argument!r}; expected {self.syntactic_help}")

    def flag_type(self):
        return "bool"


flags.DEFINE_flag(
    flags.Flag(
        _ResumeParser(),
        flags.ArgumentSerializer(),
        "resume",
        _DEFAULTS.resume,
        "Continue the run in --out_dir from its newest checkpoint; --resume=previous: from the one before "
        "(when the newest is damaged).",
        boolean=True,
    )
)
flags.DEFINE_integer(
    "checkpoint_every",
    None,
    "Steps between checkpoints within an epoch (default: one every 10 minutes; 0: at epoch ends only).",
    lower_bound=0,
)
flags.DEFINE_enum(
    "nan_policy",
    _DEFAULTS.nan_policy,
    train_config.NAN_POLICIES,
    "A non-finite loss: stop (at that step; the last good checkpoint stays the newest) or skip (the update).",
)
flags.DEFINE_bool(
    "stream",
    _DEFAULTS.stream,
    "Stream the training images of an image folder from their files instead of decoding them into memory "
    "(automatic when they would take more than half the available memory; prepared datasets always stream).",
)
flags.DEFINE_enum(
    "corrupt_data",
    _DEFAULTS.corrupt_data,
    stream.CORRUPT_POLICIES,
    "A record of a prepared dataset that cannot be read or decoded: stop (naming the damaged shard) or skip "
    "it (counted in metrics.csv as corrupt_records_skipped).",
)
flags.DEFINE_integer(
    "num_shards",
    None,
    "--mode=prepare: shards per split (default: about 20,000 images each, and at least "
    f"{prepare.MIN_TRAIN_SHARDS} for the train split so as many workers can each read their own).",
    lower_bound=1,
)
flags.DEFINE_bool(
    "deterministic", _DEFAULTS.deterministic, "Deterministic ops (tf.config.experimental.enable_op_determinism)."
)
flags.DEFINE_integer(
    "base_filters",
    None,
    "Filters of the first conv stage, doubled per stage; default per model: VAE 32, GAN/WGAN 64.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "hidden_units",
    None,
    "Width of the MLP VAE's hidden layers (default 400) and of the LSTM-VAE encoder's state (default 256).",
    lower_bound=1,
)
flags.DEFINE_enum(
    "decoder",
    _DEFAULTS.decoder,
    convolutional.DECODER_STACKS,
    "Transposed-conv decoder of the vae and lstm_vae: compact (stops at the image size) or report (the "
    "report's stack: one stage further, to twice the size, and back with a stride-2 conv).",
)
flags.DEFINE_enum(
    "conv_padding",
    _DEFAULTS.conv_padding,
    convolutional.PADDINGS,
    "Where the vae's and lstm_vae's stride-2 3x3 convolutions pad: pytorch (a row and column before the "
    "map, PyTorch's padding=1) or same (after it, Keras' \"same\"; runs saved without this setting).",
)
flags.DEFINE_enum(
    "encoder_dense_activation",
    _DEFAULTS.encoder_dense_activation,
    convolutional.DENSE_ACTIVATIONS,
    "What follows the vae encoder's dense layer: none (the posterior's heads read it, as PyTorch's peer) or "
    "leaky_relu (0.2; runs saved without this setting).",
)
flags.DEFINE_enum(
    "likelihood",
    _DEFAULTS.likelihood,
    ("auto",) + losses.LIKELIHOODS,
    "VAE decoder likelihood; auto: bernoulli on binarized data, else continuous_bernoulli.",
)
flags.DEFINE_float(
    "kl_weight", _DEFAULTS.kl_weight, "Weight of the KL term (the report's KL factor, beta).", lower_bound=0.0
)
flags.DEFINE_float(
    "reconstruction_weight", _DEFAULTS.reconstruction_weight, "Weight of the reconstruction term.", lower_bound=0.0
)
flags.DEFINE_enum(
    "gan_loss",
    _DEFAULTS.gan_loss,
    losses.GAN_LOSSES,
    "GAN losses: binary cross-entropy, the report's MSE form, or the hinge loss (with --spectral_norm: SNGAN).",
)
flags.DEFINE_integer(
    "critic_steps",
    _DEFAULTS.critic_steps,
    "Critic (discriminator) updates per generator update; default per model: GAN 1 (the report's K), WGAN 5.",
    lower_bound=1,
)
flags.DEFINE_float(
    "weight_clip", _DEFAULTS.weight_clip, "WGAN weight clipping c (unused with a gradient penalty).", lower_bound=0.0
)
flags.DEFINE_float(
    "gradient_penalty_weight",
    _DEFAULTS.gradient_penalty_weight,
    "WGAN-GP penalty weight lambda (10 in the paper); > 0 replaces weight clipping.",
    lower_bound=0.0,
)
flags.DEFINE_bool(
    "spectral_norm",
    _DEFAULTS.spectral_norm,
    "GAN/WGAN: spectrally normalized critic layers, without batch or layer norm (Miyato et al., 2018).",
)
flags.DEFINE_string(
    "diffaugment",
    _DEFAULTS.diffaugment,
    f"GAN/WGAN: DiffAugment, the same random augmentations of real and fake images before the critic in "
    f"both updates: a comma-separated subset of {','.join(augment.POLICIES)} (Zhao et al., 2020).",
)
flags.DEFINE_float(
    "ema_decay",
    _DEFAULTS.ema_decay,
    "GAN/WGAN: decay of an exponential moving average of the generator's weights, which samples, "
    "evaluation, studies and exports then use (0 or unset: none; 0.99 in gan_best_fashion_mnist, "
    "0.999 in gan_best_cifar10).",
    lower_bound=0.0,
)
flags.DEFINE_bool(
    "conditional",
    _DEFAULTS.conditional,
    "Class-conditional, trained on the dataset's labels; samples are drawn for a class (VAEs: the label "
    "joins encoder and decoder; GAN/WGAN: the generator embeds it, the critic projects it).",
)
flags.DEFINE_enum(
    "class_conditioning",
    _DEFAULTS.class_conditioning,
    dcgan.CLASS_CONDITIONINGS,
    "GAN/WGAN with --conditional: the generator joins a label embedding to z (default), or takes the label "
    "through conditional batch norm, a scale and shift per class at every stage.",
)
flags.DEFINE_float(
    "critic_learning_rate",
    _DEFAULTS.critic_learning_rate,
    "GAN/WGAN: the critic's own learning rate (two time-scale updates, Heusel et al., 2017); default --learning_rate.",
    lower_bound=0.0,
)
flags.DEFINE_integer(
    "quality_every",
    _DEFAULTS.quality_every,
    "Epochs between measurements of sample quality (FID, KID) during training, on the dataset's "
    "classifier; the best checkpoint by FID is kept. 0: never.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "quality_samples",
    _DEFAULTS.quality_samples,
    "Samples (and test images) of each measurement of --quality_every.",
    lower_bound=2,
)
flags.DEFINE_float(
    "quality_budget",
    _DEFAULTS.quality_budget,
    "The largest share of training time the --quality_every measurements may take: one that would "
    "exceed it waits for a later epoch (the last epoch is always measured). 0: no limit.",
    lower_bound=0.0,
)
flags.DEFINE_enum(
    "checkpoint",
    "auto",
    checkpoints.CHOICES,
    "--mode=eval/explore/export: which checkpoint of the run: newest, best (by FID during training), or "
    "auto (best when the run kept one, else newest).",
)
flags.DEFINE_integer("divergence_steps", 1000, "--mode=divergence: critic updates per estimate.", lower_bound=1)
flags.DEFINE_list("thetas", None, "--mode=divergence: offsets theta to estimate at (default -1 to 1 in steps of 0.1).")
flags.DEFINE_enum("study", "traverse", studies.STUDIES, "--mode=explore: which latent-space study.")
flags.DEFINE_integer(
    "study_class",
    0,
    "--mode=explore of a conditional model: the class traverse, manifold and a GAN's interpolation draw.",
    lower_bound=0,
)
flags.DEFINE_list("dims", None, "--mode=explore --study=traverse: latent dimensions to perturb (default: first 10).")
flags.DEFINE_integer("grid_size", _DEFAULTS.grid_size, "Images in each epoch's sample grid.", lower_bound=1)
flags.DEFINE_integer(
    "num_samples",
    10_000,
    "--mode=eval: test images (and as many generated samples) to evaluate; --study=scatter: test images "
    "to place (the first N of the test split).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "iw_samples", 1000, "--mode=eval: posterior samples per image of the importance-weighted bound.", lower_bound=1
)
flags.DEFINE_list(
    "metrics", None, "--mode=eval: likelihood, sample_quality (default: every one that applies to the model)."
)
flags.DEFINE_enum(
    "features",
    "classifier",
    feature_nets.FEATURES,
    "--mode=eval: feature network of the sample-quality metrics: the dataset's own classifier "
    "(--mode=train_classifier) or InceptionV3 with ImageNet weights.",
)
flags.DEFINE_string(
    "feature_nets_dir",
    feature_nets.DEFAULT_ROOT,
    "Where --mode=train_classifier saves, and --mode=eval finds, classifiers.",
)
flags.DEFINE_bool("export", True, "Export a SavedModel version at the end of training (--noexport: do not).")
flags.DEFINE_string(
    "export_dir",
    None,
    f"Where exports go (TF Serving's --model_base_path): versions 1, 2, ... inside; default "
    f"{saved_model.DEFAULT_ROOT}/<run directory name>.",
)
flags.DEFINE_integer(
    "export_iw_samples",
    signatures.DEFAULT_LOG_LIKELIHOOD_SAMPLES,
    "Posterior samples per image of an exported VAE's log_likelihood signature (fixed per export, so "
    "requests can be batched; recorded in the model card).",
    lower_bound=1,
    upper_bound=signatures.MAX_POSTERIOR_SAMPLES_PER_REQUEST,
)
flags.DEFINE_list("runs", None, "--mode=report: run directories (training runs, divergence studies) to gather.")
flags.DEFINE_string(
    "report_file",
    None,
    "--mode=report: the Markdown file to write, figures in <name>_figures/ beside it; default "
    "reports/report_<time>.md.",
)
flags.DEFINE_string("verdicts", None, "--mode=report: a Markdown file of hand-written conclusions to include.")
flags.DEFINE_string("report_title", report.DEFAULT_TITLE, "--mode=report: the report's first heading.")
flags.DEFINE_enum(
    "experiment", None, list(reproduce.EXPERIMENTS), "--mode=reproduce: which experiment of ../shared/seeds."
)
flags.DEFINE_enum(
    "budget", "cpu", reproduce.BUDGETS, "--mode=reproduce: cpu (minutes on 2 cores) or full (the original budget)."
)
flags.DEFINE_enum("distribute", _DEFAULTS.distribute, distribute.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_integer(
    "peer_timeout",
    _DEFAULTS.peer_timeout,
    "--distribute=multi_worker: seconds without a heartbeat after which a worker is given up as lost; the "
    "others then stop with one line saying which and how to resume.",
    lower_bound=1,
)
flags.DEFINE_enum(
    "mixed_precision",
    _DEFAULTS.mixed_precision,
    precision.POLICIES,
    "Training compute dtype: float32, or 16-bit with float32 weights (for GPUs and AMX CPUs; slower on other CPUs).",
)
flags.DEFINE_string("profile_batches", None, "Profile training batches START,STOP into TensorBoard.")
# The names earlier versions gave these flags, still accepted so their commands and presets run.
flags.DEFINE_alias("z_dim", "latent_dim")
flags.DEFINE_alias("d_steps", "critic_steps")
flags.DEFINE_alias("gradient_penalty", "gradient_penalty_weight")
flags.register_validator(
    "dataset",
    datasets.is_known,
    message=f"expected one of {', '.join(datasets.DATASETS.names())}, or tfds:NAME",
)
flags.register_validator(
    "image_size",
    lambda size: size in convolutional.IMAGE_SIZES,
    message=f"expected one of {', '.join(map(str, convolutional.IMAGE_SIZES))}",
)

FLAGS = flags.FLAGS


def program_name():
    """run.py, or the package of `python -m PACKAGE` (keras_gen, benchmarks)."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else "keras_gen"
    if os.path.basename(path) == "__main__.py":
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return os.path.basename(path)


def fail(message):
    """One line on stderr, exit status 2: the convention for every usage error."""
    sys.stderr.write(f"{program_name()}: error: {message}\n")
    sys.exit(2)


def parse_flags(argv):
    """absl's parser, but a bad flag is a one-line error with exit status 2 instead of a usage dump."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        fail(" ".join(str(error).split()))


def train_config_from_flags():
    """(TrainConfig, names of the fields given explicitly on the command line)."""
    names = [field.name for field in dataclasses.fields(train_config.TrainConfig) if field.name in FLAGS]
    config = train_config.TrainConfig(**{name: FLAGS[name].value for name in names})
    return config, [name for name in names if FLAGS[name].present]


def classifier_config_from_flags():
    """ClassifierConfig: flags given on the command line override the classifier's own defaults."""
    names = [field.name for field in dataclasses.fields(feature_nets.ClassifierConfig) if field.name in FLAGS]
    config = feature_nets.ClassifierConfig(**{name: FLAGS[name].value for name in names if FLAGS[name].present})
    config.root = FLAGS.feature_nets_dir
    return config


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {' '.join(argv[1:])}; every option is a --flag")
    if not FLAGS["verbosity"].present:
        # absl would print TensorFlow's INFO lines (checkpoint sharding...) between progress bars.
        logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.mode == "train":
            config, given = train_config_from_flags()
            _, run_dir = api.train_and_export(config, given, FLAGS.export, FLAGS.export_dir, FLAGS.export_iw_samples)
            print(f"Run directory: {run_dir}")
        elif FLAGS.mode == "eval":
            # Progress goes to stderr: stdout carries only the record, one JSON line for scripts.
            with contextlib.redirect_stdout(sys.stderr):
                record = evaluate.evaluate_run(
                    FLAGS.out_dir,
                    num_samples=FLAGS.num_samples,
                    iw_samples=FLAGS.iw_samples,
                    seed=FLAGS.seed,
                    metrics=FLAGS.metrics,
                    features=FLAGS.features,
                    feature_nets_root=FLAGS.feature_nets_dir,
                    checkpoint=FLAGS.checkpoint,
                )
            print(json.dumps(record, sort_keys=True))
        elif FLAGS.mode == "train_classifier":
            metadata = feature_nets.train_classifier(classifier_config_from_flags())
            print(json.dumps(metadata, sort_keys=True))
        elif FLAGS.mode == "explore":
            run = reopen.load_run(FLAGS.out_dir, FLAGS.checkpoint)
            try:
                dims = [int(dim) for dim in FLAGS.dims] if FLAGS.dims else None
            except ValueError:
                fail(f"--dims={','.join(FLAGS.dims)}; expected comma-separated integers")
            path, _ = studies.run_study(
                run, FLAGS.study, dims=dims, seed=FLAGS.seed, num_images=FLAGS.num_samples,
                study_class=FLAGS.study_class,
            )  # fmt: skip
            print(f"Wrote {path}")
        elif FLAGS.mode == "export":
            saved_model.export_run(
                FLAGS.out_dir, FLAGS.export_dir, log_likelihood_samples=FLAGS.export_iw_samples,
                checkpoint=FLAGS.checkpoint,
            )  # fmt: skip
        elif FLAGS.mode == "divergence":
            out_dir = FLAGS.out_dir or train_config.default_out_dir(
                train_config.TrainConfig(model="divergence", dataset="lines")
            )
            os.makedirs(out_dir, exist_ok=True)
            try:
                thetas = [float(theta) for theta in FLAGS.thetas] if FLAGS.thetas else None
            except ValueError:
                fail(f"--thetas={','.join(FLAGS.thetas)}; expected comma-separated numbers")
            divergences.parallel_lines_study(out_dir, thetas=thetas, steps=FLAGS.divergence_steps, seed=FLAGS.seed)
            print(f"Wrote {layout.path(out_dir, layout.DIVERGENCE_PLOT)} and {layout.DIVERGENCE}")
        elif FLAGS.mode == "report":
            report_file = FLAGS.report_file or os.path.join(
                "reports", f"report_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
            )
            report.build_report(FLAGS.runs or [], report_file, verdicts=FLAGS.verdicts, title=FLAGS.report_title)
            print(f"Wrote {report_file}")
        elif FLAGS.mode == "prepare":
            index = prepare.prepare(
                FLAGS.dataset, FLAGS.image_size, FLAGS.out_dir, data_dir=FLAGS.data_dir, num_shards=FLAGS.num_shards
            )
            counts = ", ".join(
                f"{split} {entry['count']} images in {len(entry['shards'])} shards"
                for split, entry in index["splits"].items()
            )
            print(
                f"Prepared {FLAGS.out_dir}: {counts}. "
                f"Train on it with --dataset={FLAGS.dataset} --data_dir={FLAGS.out_dir}"
            )
        elif FLAGS.mode == "reproduce":
            if FLAGS.experiment is None:
                fail(f"--mode=reproduce needs --experiment, one of {', '.join(reproduce.EXPERIMENTS)}")
            # The data may be replaced where the original cannot be had (e.g. no MNIST offline).
            dataset_args = [f"--{name}={FLAGS[name].value}" for name in ("dataset", "data_dir") if FLAGS[name].present]
            path = reproduce.reproduce(FLAGS.experiment, FLAGS.out_dir, FLAGS.budget, dataset_args)
            print(f"Wrote {path}")
    except errors.UserError as error:
        fail(" ".join(str(error).split()))
    except errors.TrainingError as error:
        sys.stderr.write(f"{program_name()}: {' '.join(str(error).split())}\n")
        sys.exit(1)


def run():
    """Entry point of `python run.py`, `python -m keras_gen` and the `keras-gen` console script."""
    app.run(main, flags_parser=parse_flags)
