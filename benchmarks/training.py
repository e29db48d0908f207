"""Training runs measured end to end: an epoch table of one model, and the VAE likelihood table.

`training` trains `--model` on `--dataset` as run.py does and tabulates every epoch: seconds,
training images per second, test metrics. `likelihoods` trains (or finishes: rerunning continues
unfinished runs) every VAE of LIKELIHOOD_RUNS and evaluates it as `run.py --mode=eval` does.
"""

import os
import statistics

from benchmarks import results
from keras_gen.evaluation import evaluate
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import train_config
from keras_gen.training import trainer

# The likelihood table: model x latent size on Fashion-MNIST 32x32 (continuous Bernoulli, dequantized).
LIKELIHOOD_RUNS = {
    "vae_z2": dict(model="vae", latent_dim=2),
    "vae_z20": dict(model="vae", latent_dim=20),
    "vae_z100": dict(model="vae", latent_dim=100),
    "mlp_vae_z2": dict(model="mlp_vae", latent_dim=2),
    "mlp_vae_z20": dict(model="mlp_vae", latent_dim=20),
    "lstm_vae_z20": dict(model="lstm_vae", latent_dim=20),
    "mlp_vae_z2_no_kl": dict(model="mlp_vae", latent_dim=2, kl_weight=0.0),
    "mlp_vae_z2_no_reconstruction": dict(model="mlp_vae", latent_dim=2, reconstruction_weight=0.0),
    # The two decoder stacks at issue 12's budget: z 100, Bernoulli on dynamically binarized pixels,
    # batch 64, Adam 1e-3, 1,800 steps (--epochs=2 --steps_per_epoch=900).
    "vae_z100_binarized_compact": dict(
        model="vae", latent_dim=100, dataset="binarized_fashion_mnist", decoder="compact"
    ),
    "vae_z100_binarized_report": dict(model="vae", latent_dim=100, dataset="binarized_fashion_mnist", decoder="report"),
}


def epochs(settings):
    """One row per epoch of a run of `--model` on `--dataset`: seconds, images/s, test metrics."""
    config = train_config.TrainConfig(
        model=settings.model, dataset=settings.dataset, data_dir=settings.data_dir, image_size=settings.image_size,
        latent_dim=settings.latent_dim, batch_size=settings.batch_size, epochs=settings.epochs,
        steps_per_epoch=settings.steps_per_epoch, out_dir=settings.out_dir, decoder=settings.decoder,
        critic_steps=settings.critic_steps, gradient_penalty_weight=settings.gradient_penalty_weight, verbose=2,
    )  # fmt: skip
    trainer.train(config)
    rows = records.read_metrics_csv(layout.path(settings.out_dir, layout.METRICS))
    test_metrics = [key for key in rows[0] if key.startswith("val_") and key != "val_skipped_updates"]
    table = [
        [row["epoch"], f"{row['epoch_seconds']:.1f}", f"{row['images_per_second']:.0f}",
         *(f"{row[key]:.2f}" for key in test_metrics)]
        for row in rows
    ]  # fmt: skip
    columns = ["epoch", "seconds", "train images/s", *(f"test {key[4:]}" for key in test_metrics)]
    return results.make("training", columns, table, rows, title=f"{settings.model} on {settings.dataset}, by epoch")


def likelihoods(settings):
    """Trains (or finishes) each run of LIKELIHOOD_RUNS (or `--only`), evaluates it, one row per run."""
    rows, measured = [], []
    for name in settings.only or list(LIKELIHOOD_RUNS):
        run_dir = os.path.join(settings.out_dir, name)
        fields = {"dataset": "fashion_mnist", **LIKELIHOOD_RUNS[name]}
        config = train_config.TrainConfig(
            out_dir=run_dir, image_size=32, batch_size=64, epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch, verbose=2, data_dir=settings.data_dir,
            resume=checkpoints.has_checkpoint(run_dir), **fields,
        )  # fmt: skip
        trainer.train(config, given_fields=("epochs",))
        epochs_done = records.training_rows(run_dir)
        seconds = [row["epoch_seconds"] for row in epochs_done]
        speed = statistics.median(row["images_per_second"] for row in epochs_done)
        record = evaluate.evaluate_run(
            run_dir, num_samples=settings.num_samples, iw_samples=settings.iw_samples, metrics=["likelihood"]
        )
        bounds = dict(record["likelihood"], epochs=record["epochs"])
        measured.append({"run": name, "seconds_per_epoch": seconds, "images_per_second": speed, **bounds})
        rows.append([
            name, bounds["epochs"], f"{sum(seconds) / len(seconds):.0f}",
            f"{bounds['neg_elbo']:.1f} ± {bounds['neg_elbo_stderr']:.1f}",
            f"{bounds['iwae_nll']:.1f} ± {bounds['iwae_nll_stderr']:.1f}",
            f"{bounds['reconstruction']:.1f}", f"{bounds['kl']:.1f}", f"{speed:.0f}",
        ])  # fmt: skip
        print(rows[-1], flush=True)
    columns = ["run", "epochs", "s/epoch", "test neg. ELBO", f"IWAE NLL (k = {settings.iw_samples})",
               "reconstruction", "KL", "train images/s"]  # fmt: skip
    summary = {"test_images": settings.num_samples, "iw_samples": settings.iw_samples}
    return results.make("likelihoods", columns, rows, measured, summary, title="VAE test likelihoods")
