"""Sample quality measured during training: FID and KID every few epochs, beside the losses.

GAN quality is not monotone in steps (the last checkpoint is often not the best), and a loss says
little about it; so every `quality_every` epochs the run draws `quality_samples` images from fixed
latents (the same ones each time: the curve shows the model changing, not the draw), embeds them
with the dataset's classifier (evaluation.feature_nets) and compares them with as many test
images. The test images' features are computed once per run and kept in the run directory
(runs.layout.QUALITY_REFERENCE), so a resumed run measures against the same reference.

`fid`, `kid` (with `kid_std`, its spread over subsets) and `quality_seconds` go into the epoch's
logs: metrics.csv, the curves and TensorBoard show them, and the Checkpointer keeps the checkpoint
of the lowest FID as the run's best. The measurements take at most `quality_budget` of the run's
time: where a measurement (priced at the last one's seconds) would exceed it, the epoch goes
unmeasured, and one line says so the first time; the last epoch is always measured. So on short
epochs or fast steps (a VAE's, a small dataset's) the cadence thins out by itself, and which epochs
are measured depends on the machine's speed, never the training. With a weight average
(--ema_decay) they measure its samples, and `fid_raw` those of the trained weights. A
class-conditional model draws its samples for every class equally often and adds
`conditional_accuracy` and `fid_within_class` (the mean over classes).
"""

import os
import sys
import time

import keras
import numpy as np

from keras_gen import errors
from keras_gen.evaluation import evaluate
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import sample_quality
from keras_gen.runs import layout

# KID of the in-training measurement: fewer subsets than --mode=eval's 100, for speed (its spread is reported).
KID_SUBSETS = 20


def monitor(config, test_images, run_dir, dataset_name, test_labels=None, stop_signals=None):
    """The SampleQuality callback of a run, or None (with one line saying why) when it cannot measure.

    `test_labels`: of `test_images`, for a conditional model's per-class measurements;
    `stop_signals`: the run's faults.StopSignals (an epoch ending after one is left unmeasured).
    """
    if not config.quality_every:
        return None
    try:
        net = feature_nets.load_classifier(dataset_name, config.feature_nets_dir)
    except errors.UserError as error:
        print(f"Sample quality will not be measured during training: {' '.join(str(error).split())}", file=sys.stderr)
        return None
    count = min(config.quality_samples, len(test_images))
    if count < 2:
        print(f"Sample quality will not be measured: the test split has {len(test_images)} image(s)", file=sys.stderr)
        return None
    reference = reference_features(net, test_images[:count], run_dir)
    labels = None if test_labels is None else np.asarray(test_labels)[:count]
    return SampleQuality(
        net, reference, config.quality_every, count, config.seed, labels, config.quality_budget, config.epochs,
        stop_signals,
    )  # fmt: skip


def network_key(net):
    """What identifies a feature network's features: the weights' hash where it has one (a network
    retrained to the same weights is a new file with a new file hash, and gives the same features)."""
    return net.identity.get("weights_sha256") or net.identity["sha256"]


def within_budget(measuring_seconds, next_cost, training_seconds, budget):
    """Whether one more measurement costing `next_cost` seconds keeps the measurements' share of the
    time (`measuring_seconds` of them beside `training_seconds` of training) at most `budget` (0: no limit)."""
    if not budget:
        return True
    measuring = measuring_seconds + next_cost
    return measuring <= budget * (training_seconds + measuring)


def reference_features(net, images, run_dir):
    """Features of the test images `images` (uint8): read from the run directory when computed before
    by the same network on as many images, else computed and written there."""
    path = layout.path(run_dir, layout.QUALITY_REFERENCE)
    key = network_key(net)
    if os.path.exists(path):
        with np.load(path) as saved:
            if str(saved["sha256"]) == key and len(saved["features"]) == len(images):
                return saved["features"]
    features, _ = net.extract(images.astype(np.float32) / 255.0)
    temporary = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(temporary, features=features, sha256=key)
    os.replace(temporary, path)
    return features


class SampleQuality(keras.callbacks.Callback):
    """Adds `fid`, `kid` (and `fid_raw` beside a weight average) to the logs of every `every`-th epoch.

    The run's last epoch (`epochs`, the run's count: a resumed run may fit in two parts) is measured
    whatever `every` and the budget say, so a run always ends with the quality of what it trained.
    Put it before the callbacks that read the logs (metrics, TensorBoard, checkpoints).
    """

    def __init__(
        self, feature_net, reference, every, num_samples, seed=0, reference_labels=None, budget=0.0, epochs=None,
        stop_signals=None,
    ):  # fmt: skip
        super().__init__()
        self.feature_net = feature_net
        self.reference = reference
        self.reference_labels = reference_labels
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.budget = budget
        self.epochs = epochs
        self.stop_signals = stop_signals
        # FIDs compare only between measurements of as many samples on the same network (FID's bias
        # falls with the sample count): the best checkpoint's record names both.
        self.identity = {"samples": int(num_samples), "feature_net": network_key(feature_net)}
        self._started = None
        self._measuring_seconds = 0.0
        self._last_cost = None  # Unknown until the first measurement, which always runs.
        self._said_skipping = False

    def on_train_begin(self, logs=None):
        if self._started is None:  # A run resumed mid-epoch fits twice; the budget spans both.
            self._started = time.perf_counter()

    def measure(self, decode):
        """{"fid", "kid", "kid_std"} of `num_samples` images that `decode` makes from the fixed latents."""
        images = evaluate.generate(self.model, self.num_samples, seed=self.seed, decode=decode)
        features, probabilities = self.feature_net.extract(images)
        # Subsets of at most half the samples, so that they differ and their spread means something.
        subset_size = max(2, min(1000, self.num_samples // 2))
        kid, kid_std = sample_quality.kid(
            self.reference, features, num_subsets=KID_SUBSETS, subset_size=subset_size, seed=self.seed
        )
        measured = {"fid": sample_quality.fid(self.reference, features), "kid": kid, "kid_std": kid_std}
        if getattr(self.model, "num_classes", 0) and self.reference_labels is not None:
            conditional = evaluate.conditional_metrics(
                self.model, self.reference, self.reference_labels, (features, probabilities)
            )
            measured["conditional_accuracy"] = conditional["conditional_accuracy"]
            # None when no class has two real and two generated images (few --quality_samples): not logged.
            if conditional["fid_within_class_mean"] is not None:
                measured["fid_within_class"] = conditional["fid_within_class_mean"]
        return measured

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        last_epoch = epoch + 1 == (self.epochs or (self.params or {}).get("epochs"))
        if (epoch + 1) % self.every and not last_epoch:
            return
        if self.stop_signals is not None and self.stop_signals.received:
            # A stop (a preemption's SIGTERM) leaves seconds to save in: the checkpoint comes first.
            print(
                f"Sample quality: epoch {epoch + 1} unmeasured: stopping on {self.stop_signals.received}",
                file=sys.stderr,
            )
            return
        started = time.perf_counter()
        if not last_epoch and self._last_cost is not None:
            training_seconds = started - self._started - self._measuring_seconds
            if not within_budget(self._measuring_seconds, self._last_cost, training_seconds, self.budget):
                if not self._said_skipping:
                    print(
                        f"Sample quality: epoch {epoch + 1} unmeasured, and others later, to keep the measurements "
                        f"within {self.budget:.0%} of training time (--quality_budget; 0: no limit)",
                        file=sys.stderr,
                    )
                    self._said_skipping = True
                return
        logs.update(self.measure(self.model.decode_to_images))
        if getattr(self.model, "ema_generator", None) is not None:
            logs["fid_raw"] = self.measure(self.model.decode_with_raw_weights)["fid"]
        self._last_cost = time.perf_counter() - started
        self._measuring_seconds += self._last_cost
        logs["quality_seconds"] = self._last_cost  # Part of the epoch's seconds: its cost shows.
