"""float32 against 16-bit training: the same run under each `--policies` dtype policy, from one seed.

Prints images per second and the final losses of each, and draws their loss curves side by side
(`--plot`).
"""

import os
import statistics

from benchmarks import results
from keras_gen import plotting
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import train_config
from keras_gen.training import trainer

# metrics.csv columns that are not training curves.
NOT_CURVES = ("epoch", "epoch_seconds", "images_per_second", "skipped_updates", "val_skipped_updates")


def run(settings):
    fields = {"model": settings.model, "gradient_penalty_weight": settings.gradient_penalty_weight}
    if settings.model in ("vae", "lstm_vae"):
        fields.update(dataset="binarized_fashion_mnist", decoder=settings.decoder)
    steps_per_epoch = settings.steps_per_epoch or 50  # Points on the curves every 50 steps by default.
    curves_by_policy, rows, all_rows = {}, [], {}
    for policy in settings.policies:
        config = train_config.TrainConfig(
            out_dir=os.path.join(settings.out_dir, policy), image_size=32, batch_size=settings.batch_size,
            latent_dim=settings.latent_dim, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
            data_dir=settings.data_dir, verbose=0, mixed_precision=policy, **fields,
        )  # fmt: skip
        trainer.train(config)
        epochs = records.read_metrics_csv(layout.path(config.out_dir, layout.METRICS))
        all_rows[policy] = epochs
        losses = [key for key in epochs[0] if key.endswith("loss") and not key.startswith("val_")]
        finals = ", ".join(
            f"{name} {epochs[-1][name]:.3f} / {epochs[-1].get('val_' + name, float('nan')):.3f}" for name in losses
        )
        speed = statistics.median(row["images_per_second"] for row in epochs)
        skipped = sum(row.get("skipped_updates", 0) for row in epochs)
        rows.append([settings.model, policy, f"{speed:.0f}", finals, f"{skipped:.0f}"])
        print(rows[-1], flush=True)
        steps = [row["epoch"] * steps_per_epoch for row in epochs]
        curves = [{key: value for key, value in row.items() if key not in NOT_CURVES} for row in epochs]
        curves_by_policy[policy] = (steps, curves)
    if settings.plot:
        title = f"{settings.model}, 32x32, batch {settings.batch_size}: curves by dtype policy (test dashed)"
        plotting.plot_compared_curves(curves_by_policy, settings.plot, title)
        print(f"Wrote {settings.plot}")
    columns = ["model", "policy", "images/s (median epoch)", "final losses (train / test)", "skipped updates"]
    return results.make("precision", columns, rows, [all_rows], title="training by dtype policy")
