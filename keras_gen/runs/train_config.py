"""TrainConfig, everything a training run depends on, and the run's config.json that records it."""

import dataclasses
import datetime
import os

from keras_gen import environment
from keras_gen import errors
from keras_gen import io_utils
from keras_gen import models
from keras_gen.runs import layout

NAN_POLICIES = ("stop", "skip")
# Fields that fix what a run trains; a resumed run must not change them.
# GAN/WGAN settings belong here too: critic_steps sets how many images a step consumes (the data
# stream), gan_loss, weight_clip and gradient_penalty_weight the objective.
IDENTITY_FIELDS = (
    "model",
    "dataset",
    "data_dir",
    "image_size",
    "latent_dim",
    "base_filters",
    "hidden_units",
    "decoder",
    "conv_padding",
    "encoder_dense_activation",
    "likelihood",
    "kl_weight",
    "reconstruction_weight",
    "gan_loss",
    "critic_steps",
    "weight_clip",
    "gradient_penalty_weight",
    # The critic's layers, what it is shown, and whether the checkpoint holds a weight average.
    "spectral_norm",
    "diffaugment",
    "ema_decay",
    "seed",
    # A float16 run's optimizers carry a loss scale in the checkpoint; the others do not.
    "mixed_precision",
    # Class-conditional networks take labels: another architecture.
    "conditional",
    "num_classes",
    "class_conditioning",
    # Streamed data comes in another order than data from memory (data.stream).
    "stream",
)
# Names config.json files of earlier versions used: {old name: current name}.
RENAMED = {"z_dim": "latent_dim", "gradient_penalty": "gradient_penalty_weight"}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; the CLI fills it from flags, tests and notebooks directly.

    The model's hyperparameters carry the names the model classes and `build_model` use; None means
    the model's own default (e.g. critic_steps: 1 for the GAN, 5 for the WGAN).
    """

    model: str = "vae"
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    image_size: int = 32
    latent_dim: int = 20
    batch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    out_dir: str | None = None
    resume: bool | str = False  # True or "latest": the newest checkpoint; "previous": the one before it.
    base_filters: int | None = None
    hidden_units: int | None = None
    decoder: str = "compact"
    conv_padding: str = "pytorch"
    encoder_dense_activation: str = "none"
    likelihood: str = "auto"
    kl_weight: float = 1.0
    reconstruction_weight: float = 1.0
    gan_loss: str = "non_saturating"
    critic_steps: int | None = None
    weight_clip: float = 0.01
    gradient_penalty_weight: float = 0.0
    spectral_norm: bool | None = None
    diffaugment: str | None = None  # A comma-separated subset of networks.augment.POLICIES.
    ema_decay: float | None = None
    # Class-conditional: the labels enter the networks. num_classes is the dataset's, set by the trainer.
    conditional: bool = False
    num_classes: int | None = None
    class_conditioning: str | None = None  # GAN/WGAN generators: networks.dcgan.CLASS_CONDITIONINGS.
    critic_learning_rate: float | None = None  # None: the generator's (learning_rate).
    # Sample quality (FID, KID) of quality_samples samples every quality_every epochs (0: never).
    quality_every: int = 1
    quality_samples: int = 5000
    # The largest share of the run's time the measurements may take (0: no limit): a measurement that
    # would exceed it waits for a later epoch; the last epoch is always measured.
    quality_budget: float = 0.1
    feature_nets_dir: str = layout.FEATURE_NETS
    grid_size: int = 64
    checkpoint_every: int | None = None  # Steps between checkpoints within an epoch; None: every 10 minutes.
    nan_policy: str = "stop"
    # Stream the train split (data.stream) from an image folder even where it fits in memory. Prepared
    # datasets always stream, folders too large for memory too; the trainer records what it did.
    stream: bool = False
    # A record of a prepared dataset that cannot be read or decoded: "stop" the run, or "skip" it (counted).
    corrupt_data: str = "stop"
    deterministic: bool = False
    distribute: str = "auto"
    # Multi-worker: seconds without a heartbeat after which a worker is given up as lost.
    peer_timeout: int = 120
    mixed_precision: str = "float32"  # models.precision.POLICIES
    profile_batches: str | None = None
    verbose: str | int = "auto"

    @classmethod
    def from_saved(cls, saved):
        """The TrainConfig of a config.json's "config", names of earlier versions translated."""
        return cls(**current_names(saved))

    def model_hyperparameters(self):
        """The hyperparameters `models.build` takes for this run's model (None: the model's default)."""
        accepted = models.hyperparameters(self.model)
        values = {"seed": self.seed, **{name: getattr(self, name) for name in accepted if hasattr(self, name)}}
        return {name: value for name, value in values.items() if name in accepted and value is not None}


def current_names(saved):
    """A saved config dict with today's field names; fields no longer known are dropped.

    Earlier versions called latent_dim z_dim, gradient_penalty_weight gradient_penalty, and the GAN's
    critic_steps d_steps (beside a WGAN-only critic_steps); their conv VAEs padded as Keras' "same"
    and had a LeakyReLU after the encoder's dense layer.
    """
    saved = {"conv_padding": "same", "encoder_dense_activation": "leaky_relu", **saved}
    if "d_steps" in saved:
        steps = saved.pop("d_steps")
        if saved.get("model") == "gan":
            saved["critic_steps"] = steps
    renamed = {RENAMED.get(name, name): value for name, value in saved.items()}
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    return {name: value for name, value in renamed.items() if name in known}


def resolve_likelihood(likelihood, dataset_spec):
    """ "auto" means Bernoulli for binarized datasets and the continuous Bernoulli for the rest."""
    if likelihood != "auto":
        return likelihood
    return "bernoulli" if dataset_spec.binarize else "continuous_bernoulli"


def default_out_dir(config):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.model}_{config.dataset}_{stamp}")


def read_record(run_dir, what="--out_dir"):
    """config.json of a run directory; a one-line error naming `what` when there is none."""
    path = layout.path(run_dir or "", layout.CONFIG)
    if not run_dir or not os.path.exists(path):
        raise errors.UserError(f"{what} {run_dir} holds no {layout.CONFIG}; expected a keras_gen run directory")
    return io_utils.read_json(path)


def config_for_resume(config, given_fields):
    """(the saved run's config with the fields given on this command line applied, config.json's record).

    Args:
        config: the TrainConfig from this command line (`resume=True`, `out_dir` set).
        given_fields: names of the fields the user set explicitly; the others come from the saved run.
    """
    record = read_record(config.out_dir, what="--resume: --out_dir")
    saved = current_names(record["config"])
    merged = TrainConfig(**saved)
    for name in given_fields:
        value = getattr(config, name)
        if name in IDENTITY_FIELDS and value != saved.get(name):
            raise errors.UserError(
                f"--{name}={value} differs from the run being resumed ({name}={saved.get(name)!r}); "
                "drop the flag or start a new --out_dir"
            )
        setattr(merged, name, value)
    merged.out_dir, merged.resume = config.out_dir, config.resume
    return merged, record


def write_record(
    directory,
    config,
    data_source,
    image_shape,
    previous=None,
    resumed_at=None,
    changed=(),
    class_names=None,
    input_pipelines=1,
):
    """Writes config.json; a resumed run keeps the original record, updates its config and appends
    when it resumed and which flags it changed. `class_names`: of a conditional model's labels 0, 1, ...;
    `input_pipelines`: the workers reading the data (a streamed epoch's order depends on it)."""
    record = previous or {
        "data_source": data_source,
        "image_shape": list(image_shape),
        "machine": environment.machine_description(),
        "versions": environment.library_versions(),
        **({"class_names": list(class_names)} if class_names else {}),
    }
    record["config"] = dataclasses.asdict(config)
    record["input_pipelines"] = input_pipelines
    if resumed_at is not None:
        record.setdefault("resumes", []).append(
            {
                "at_epoch": resumed_at,
                "changed": {name: getattr(config, name) for name in changed},
                "machine": environment.machine_description(),
                "time": datetime.datetime.now().isoformat(timespec="seconds"),
            }
        )
    io_utils.write_json(layout.path(directory, layout.CONFIG), record)
