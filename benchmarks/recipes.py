"""GAN recipes at equal generator steps: today's default against each quality technique and combinations.

Each recipe trains `--model` on `--dataset` for `--epochs` x `--steps_per_epoch` generator steps per
seed of `--seeds`, with the in-training sample quality (training.quality) measured after every
epoch on the dataset's classifier, and a weight average of the generator (`--ema_decay`, 0.999
unless given): every run reports the FID of its trained weights ("raw") and of their average
("EMA"), so "default" raw is today's default GAN and "default" EMA is the EMA alone. The EMA never
changes the training itself (it draws no noise and feeds nothing back).

Recipes are names of RECIPES, or several joined by "+" (their flags together). Run again, the
command reuses the runs it finished and resumes the others.

"FID raw" and "FID EMA" are measured on each run's newest checkpoint as `--mode=eval` reopens it,
by the in-training measurement's code (the same latents, the same reference): for a run trained
now they equal its last row of metrics.csv, and a run reused from an earlier version of the
measurement (or of the average's batch norm statistics) is measured as a new one would be. The
FID curves in the result file are the ones measured during training.
"""

import os
import statistics

from benchmarks import results
from benchmarks import trained
from keras_gen.runs import checkpoints
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import reopen
from keras_gen.runs import train_config
from keras_gen.training import quality
from keras_gen.training import trainer

RECIPES = {
    "default": {},
    "hinge_sn": {"gan_loss": "hinge", "spectral_norm": True},
    # The spectral norm alone, for the WGAN-GP (whose loss is its own): its critic then has no layer norm.
    "sn": {"spectral_norm": True},
    "diffaugment": {"diffaugment": "color,translation,cutout"},
    "ttur": {"learning_rate": 1e-4, "critic_learning_rate": 4e-4},
    # The discriminator faster than the generator without slowing the generator (ttur halves its steps).
    "ttur_d4e-4": {"critic_learning_rate": 4e-4},
    # Both networks at twice DCGAN's steps: at 2,000 steps the FID is still falling steeply.
    "lr4e-4": {"learning_rate": 4e-4},
    # For WGAN-GP (default 1e-4 for both networks): the GAN's learning rate, twice the steps' size.
    "lr2e-4": {"learning_rate": 2e-4},
    # With --model=wgan: WGAN-GP (the penalty replaces the clipping; Adam 1e-4, layer-normalized critic).
    "gp": {"gradient_penalty_weight": 10.0},
    # Not a technique for the same task: the class-conditional model (issue "class-conditional models"),
    # measured at the same steps for its conditional accuracy and its FID beside the unconditional one's.
    "conditional": {"conditional": True},
    # The same with conditional batch norm in the generator instead of a label embedding joined to z.
    "conditional_bn": {"conditional": True, "class_conditioning": "batch_norm"},
}
DEFAULT_EMA_DECAY = 0.999


def recipe_flags(name):
    """The TrainConfig fields of a recipe name such as "hinge_sn+ttur"."""
    fields = {}
    for part in name.split("+"):
        if part not in RECIPES:
            raise ValueError(f"recipe {part!r}; expected names of {', '.join(RECIPES)} joined by +")
        fields.update(RECIPES[part])
    return fields


def run(settings):
    ema_decay = settings.ema_decay if "ema_decay" in settings.present else DEFAULT_EMA_DECAY
    rows, measured = [], []
    for recipe in settings.recipes:
        for seed in (int(seed) for seed in settings.seeds):
            run_dir = os.path.join(settings.out_dir, f"{recipe}_seed{seed}")
            config = train_config.TrainConfig(
                model=settings.model, dataset=settings.dataset, data_dir=settings.data_dir,
                image_size=settings.image_size, latent_dim=settings.latent_dim, batch_size=settings.batch_size,
                epochs=settings.epochs, steps_per_epoch=settings.steps_per_epoch, seed=seed, out_dir=run_dir,
                ema_decay=ema_decay, quality_every=1, quality_budget=0, quality_samples=settings.quality_samples,
                feature_nets_dir=settings.feature_nets_dir, verbose=2, **recipe_flags(recipe),
                resume=checkpoints.has_checkpoint(run_dir),  # Rerun, the command finishes what it had not.
            )  # fmt: skip
            trainer.train(config, given_fields=("epochs",))
            epochs = records.read_metrics_csv(layout.path(run_dir, layout.METRICS))
            trained.check_finished(run_dir, len(epochs), settings.epochs)
            final = reopen.load_run(run_dir, checkpoint="newest")
            model = final.model
            test = reopen.load_splits(final)["test"]
            measure = quality.monitor(
                final.config, test.images, run_dir, config.dataset, test.labels if final.config.conditional else None
            )
            if measure is None:  # monitor() said why.
                raise SystemExit("recipes: FID needs the dataset's classifier (--feature_nets_dir)")
            measure.set_model(model)
            last = measure.measure(model.decode_to_images)
            raw = measure.measure(model.decode_with_raw_weights)
            last["fid_raw"] = raw["fid"]
            _, quality_seconds, total_seconds = trained.quality_share(epochs)
            record = {
                "recipe": recipe, "seed": seed, "flags": recipe_flags(recipe), "ema_decay": ema_decay,
                "generator_steps": int(model.generator_optimizer.iterations.numpy()),
                "fid_raw": last["fid_raw"], "fid_ema": last["fid"], "kid_ema": last["kid"],
                "best_fid_ema_in_training": min(row["fid"] for row in epochs),
                "fid_curve_ema": [row["fid"] for row in epochs],
                "fid_curve_raw": [row["fid_raw"] for row in epochs], "seconds": total_seconds,
                "quality_seconds": quality_seconds, "seconds_per_quality": quality_seconds / len(epochs),
                # FIDs compare only on the same network: the same weights hash (a retrained file has
                # another file hash even when its weights are the same).
                "feature_net": {
                    key: measure.feature_net.identity[key] for key in ("sha256", "weights_sha256", "test_accuracy")
                },
                **{name: last[name] for name in ("conditional_accuracy", "fid_within_class") if name in last},
                **({"conditional_accuracy_raw": raw["conditional_accuracy"]} if "conditional_accuracy" in raw else {}),
            }  # fmt: skip
            measured.append(record)
            rows.append([
                recipe, seed, f"{record['fid_raw']:.1f}", f"{record['fid_ema']:.1f}", f"{record['kid_ema']:.2f}",
                f"{total_seconds / 60:.1f}",
                f"{record['conditional_accuracy']:.1%} / {record['conditional_accuracy_raw']:.1%}"
                if "conditional_accuracy" in record else "–",
            ])  # fmt: skip
            print(rows[-1], flush=True)
    summary = _summary(measured, settings)
    columns = ["recipe", "seed", "FID raw", "FID EMA", "KID EMA", "minutes", "class accuracy (EMA / raw)"]
    return results.make("recipes", columns, rows, measured, summary, title="GAN recipes at equal generator steps")


def _summary(measured, settings):
    """Each recipe's mean FIDs over seeds, against the default's raw FID; the quality measurement's cost."""
    by_recipe = {}
    for record in measured:
        by_recipe.setdefault(record["recipe"], []).append(record)
    baseline = by_recipe.get("default")
    base_fid = statistics.mean(r["fid_raw"] for r in baseline) if baseline else None
    summary = {"dataset": settings.dataset, "model": settings.model, "quality_samples": settings.quality_samples}
    for recipe, runs in by_recipe.items():
        raw, ema = statistics.mean(r["fid_raw"] for r in runs), statistics.mean(r["fid_ema"] for r in runs)
        summary[recipe] = {
            "fid_raw": raw, "fid_ema": ema,
            "raw_vs_default": raw / base_fid if base_fid else None,
            "ema_vs_default": ema / base_fid if base_fid else None,
            "ema_better_in_every_run": all(r["fid_ema"] < r["fid_raw"] for r in runs),
        }  # fmt: skip
    # At the defaults one measurement follows each full epoch: its cost against an epoch's training.
    per_step = [(r["seconds"] - r["quality_seconds"]) / r["generator_steps"] for r in measured]
    summary["seconds_per_quality_measurement"] = statistics.median(r["seconds_per_quality"] for r in measured)
    summary["seconds_per_generator_step"] = statistics.median(per_step)
    return summary
