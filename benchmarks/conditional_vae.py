"""The conditional VAE against the unconditional one at equal steps: test bounds on log p(x|y) and log p(x).

For each seed of `--seeds` both VAEs of peer_elbo's budget train (`--model=vae --decoder=report`, z
`--latent_dim`, Bernoulli on dynamically binarized Fashion-MNIST at 32x32, batch 64, `--epochs` x
`--steps_per_epoch` steps), one with `--conditional`. Both are scored on all 10,000 test images,
binarized once with peer_elbo's seed, with `--iw_samples` posterior draws per image: the negative
ELBO and the IWAE bound, of -log p(x|y) for the conditional model (each image with its own label)
and of -log p(x) for the other. A label is worth at most log 10 = 2.3 nats on Fashion-MNIST's ten
balanced classes (-log p(x|y) = -log p(x) - log p(y|x) + log p(y)): the gain measures how much of
that the conditional model turns into likelihood.

With `--dataset` (and `--data_dir`), the same two VAEs train on that dataset with its default
likelihood (the continuous Bernoulli for colour images) and are scored on its test split as
`--mode=eval` reads it.

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
from keras_gen.runs import reopen

# peer_elbo's data: the test images binarized once with its seed, as the PyTorch peer scores them.
PEER_DATASET = "binarized_fashion_mnist"


def bounds(model, images, labels, iw_samples):
    data = (images, labels) if model.num_classes else images
    return likelihood.evaluate_vae(model, tf.data.Dataset.from_tensor_slices(data).batch(500), iw_samples=iw_samples)


def run(settings):
    dataset = settings.dataset if "dataset" in settings.present else PEER_DATASET
    if dataset == PEER_DATASET:
        images = peer_elbo.binarized_test_images()
        labels = datasets.load("fashion_mnist", 32)["test"].labels
    rows, measured = [], []
    for seed in (int(seed) for seed in settings.seeds):
        record = {"seed": seed, "iw_samples": settings.iw_samples}
        for name, conditional in (("unconditional", False), ("conditional", True)):
            run_dir = os.path.join(settings.out_dir, f"{'conditional' if conditional else 'keras_gen'}_seed{seed}")
            model = peer_elbo.train_vae(settings, seed, run_dir, conditional=conditional, dataset=dataset)
            if dataset == PEER_DATASET:
                record[name] = bounds(model, images, labels, settings.iw_samples)
            else:  # The test split as --mode=eval reads it: the same pixel noise for both runs (one seed).
                batches, _ = reopen.eval_split(reopen.load_run(run_dir))
                record[name] = likelihood.evaluate_vae(model, batches, iw_samples=settings.iw_samples)
            record["steps"] = int(model.optimizer.iterations.numpy())  # Both train as many (one budget).
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
        "dataset": dataset,
        "elbo_gain_mean": statistics.mean(r["elbo_gain"] for r in measured),
        "iwae_gain_mean": statistics.mean(r["iwae_gain"] for r in measured),
    }
    columns = ["seed", "−log p(x): −ELBO / IWAE", "−log p(x|y): −ELBO / IWAE", "gain of the label (nats)"]
    return results.make(
        "conditional_vae", columns, rows, measured, summary, title="Conditional VAE beside the unconditional one"
    )
