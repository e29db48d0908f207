"""The conditional VAE against the unconditional one at equal steps: test bounds on log p(x|y) and log p(x).

For each seed of `--seeds` both VAEs of peer_elbo's budget train (`--model=vae --decoder=report`, z
`--latent_dim`, Bernoulli on dynamically binarized Fashion-MNIST at 32x32, batch 64, `--epochs` x
`--steps_per_epoch` steps), one with `--conditional`. Both are scored on all 10,000 test images,
binarized once with peer_elbo's seed, with `--iw_samples` posterior draws per image: the negative
ELBO and the IWAE bound, of -log p(x|y) for the conditional model (each image with its own label)
and of -log p(x) for the other. A label is worth at most log 10 = 2.3 nats on Fashion-MNIST's ten
balanced classes (-log p(x|y) = -log p(x) - log p(y|x) + log p(y)): the gain measures how much of
that the conditional model turns into likelihood.

Rerun, the command reuses the runs it finished (the unconditional one is peer_elbo's keras_gen run
when --out_dir is peer_elbo's).
"""

import os
import statistics

import tensorflow as tf

from benchmarks import peer_elbo
from benchmarks import results
from keras_gen.data import datasets
from keras_gen.evaluation import likelihood


def bounds(model, images, labels, iw_samples):
    data = (images, labels) if model.num_classes else images
    return likelihood.evaluate_vae(model, tf.data.Dataset.from_tensor_slices(data).batch(500), iw_samples=iw_samples)


def run(settings):
    images = peer_elbo.binarized_test_images()
    labels = datasets.load("fashion_mnist", 32)["test"].labels
    rows, measured = [], []
    for seed in (int(seed) for seed in settings.seeds):
        record = {"seed": seed, "steps": settings.epochs * settings.steps_per_epoch, "iw_samples": settings.iw_samples}
        for name, conditional in (("unconditional", False), ("conditional", True)):
            run_dir = os.path.join(settings.out_dir, f"{'conditional' if conditional else 'keras_gen'}_seed{seed}")
            model = peer_elbo.train_vae(settings, seed, run_dir, conditional=conditional)
            record[name] = bounds(model, images, labels, settings.iw_samples)
        unconditional, conditional = record["unconditional"], record["conditional"]
        record["elbo_gain"] = unconditional["neg_elbo"] - conditional["neg_elbo"]
        record["iwae_gain"] = unconditional["iwae_nll"] - conditional["iwae_nll"]
        measured.append(record)
        rows.append([
            seed, f"{unconditional['neg_elbo']:.1f} / {unconditional['iwae_nll']:.1f}",
            f"{conditional['neg_elbo']:.1f} / {conditional['iwae_nll']:.1f}",
            f"{record['elbo_gain']:+.2f} / {record['iwae_gain']:+.2f}",
        ])  # fmt: skip
        print(rows[-1], flush=True)
    summary = {
        "elbo_gain_mean": statistics.mean(r["elbo_gain"] for r in measured),
        "iwae_gain_mean": statistics.mean(r["iwae_gain"] for r in measured),
    }
    columns = ["seed", "−log p(x): −ELBO / IWAE", "−log p(x|y): −ELBO / IWAE", "gain of the label (nats)"]
    return results.make(
        "conditional_vae", columns, rows, measured, summary, title="Conditional VAE beside the unconditional one"
    )
