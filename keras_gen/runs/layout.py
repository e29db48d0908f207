"""Every name inside a run directory, in one place.

    <run>/
        config.json            CONFIG: the resolved configuration, data source, machine, versions
        metrics.csv            METRICS: one row per epoch, train and test metrics
        training_curves.png    CURVES
        samples/epoch_NNNN.png SAMPLES: decodes of the same latents after every epoch
        checkpoints/           CHECKPOINTS: tf.train checkpoints, the newest 3
        checkpoints/best/      BEST: the checkpoint of the lowest FID measured in training, and
                               BEST_RECORD (best.json) naming it, its epoch and its metrics
        quality_reference.npz  QUALITY_REFERENCE: the test images' features that FID is measured against
        logs/                  LOGS: TensorBoard (train/, validation/, samples/, explore/)
        metrics.json           EVALUATION: the record of --mode=eval
        explore/<study>.png    EXPLORE: the latent-space studies
        .lock                  LOCK: held while a run trains here

A divergence study (--mode=divergence) leaves DIVERGENCE and its plot instead. One name is of a place
outside runs: FEATURE_NETS, where the datasets' classifiers are kept by default.
"""

import os

# Outside any run: where the datasets' feature classifiers live by default (evaluation.feature_nets).
FEATURE_NETS = os.path.join("saved_models", "feature_nets")

CONFIG = "config.json"
METRICS = "metrics.csv"
CURVES = "training_curves.png"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
BEST = "best"
BEST_RECORD = "best.json"
QUALITY_REFERENCE = "quality_reference.npz"
LOGS = "logs"
EVALUATION = "metrics.json"
EXPLORE = "explore"
LOCK = ".lock"
DIVERGENCE = "divergence.json"
DIVERGENCE_PLOT = "divergence.png"


def path(run_dir, *names):
    """The path of `names` inside `run_dir`, e.g. path(run, SAMPLES, "epoch_0001.png")."""
    return os.path.join(run_dir, *names)


def sample_grid(run_dir, epoch):
    """samples/epoch_NNNN.png of `epoch` (1-based)."""
    return path(run_dir, SAMPLES, f"epoch_{epoch:04d}.png")


def study_figure(run_dir, study):
    """explore/<study>.png."""
    return path(run_dir, EXPLORE, f"{study}.png")
