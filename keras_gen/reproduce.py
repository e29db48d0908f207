"""One command per experiment of the original material (../shared/seeds), ending in its report.

    python run.py --mode=reproduce --experiment=wgan_latents                  # this machine's budget
    python run.py --mode=reproduce --experiment=wgan_latents --budget=full    # the original budget (a GPU)

An experiment is a list of ordinary keras_gen commands (train from a preset in flags/, then eval,
explore, divergence), run one after the other as separate processes, exactly as a user would type
them; then `--mode=report` gathers the runs into `<out_dir>/report.md`. Run again after an
interruption, it resumes the training runs where they stopped (`--resume`) and redoes the rest.

`dataset_args` (e.g. `--dataset=fashion_mnist`) replace an experiment's own dataset where that one
cannot be had: every training command gets them after its preset, so they win.
"""

import dataclasses
import os
import shlex
import subprocess
import sys

from keras_gen import _startup
from keras_gen import errors
from keras_gen import report
from keras_gen.runs import layout

BUDGETS = ("cpu", "full")
FLAGS_DIR = "flags"


@dataclasses.dataclass(frozen=True)
class Step:
    """One command: `mode` on run `run` (a folder name inside the experiment's directory)."""

    mode: str  # train, eval, explore, divergence or train_classifier
    run: str
    args: tuple = ()  # for train: the preset's name first, then flags
    cpu_args: tuple = ()  # added at the cpu budget only
    budgets: tuple = BUDGETS  # the budgets that run this step


@dataclasses.dataclass(frozen=True)
class Experiment:
    source: str  # the file of ../shared/seeds it reproduces
    finding: str  # what the original material reports, in one line
    steps: tuple


# The report's grid at the cpu budget: every cell, with steps scaled down as the image grows so that
# each run takes a few minutes on 2 cores (49 minutes for the 28 runs on Fashion-MNIST). The
# WGAN's step consumes critic_steps + 1 batches, so it gets half the steps. 16 samples per grid keep
# the report's figures small.
_GRID_CPU_STEPS = {16: (4, 100), 32: (4, 60), 64: (3, 30)}  # image size: (epochs, steps per epoch)


def _grid_cpu(model, size):
    epochs, steps = _GRID_CPU_STEPS[size]
    steps = steps // 2 if model == "wgan" else steps
    return (f"--epochs={epochs}", f"--steps_per_epoch={steps}", "--grid_size=16")


def _train(run, preset, *args, cpu):
    return Step("train", run, (preset, *args), tuple(cpu))


# The report's GAN uses its MSE loss without an EMA, and the grid keeps it so that the findings are
# tested as published. Where that GAN collapses at this budget (32x32 z 100, 64x64 z 20 and z 100,
# K = 3: the discriminator wins and the samples freeze on one texture), the findings about those
# cells are undecided, so the grid trains them a second time with the non-saturating loss and an EMA
# (0.99), the recipe measured best on Fashion-MNIST when the grid's second line was made: a second
# line. flags/gan_best_fashion_mnist.cfg has since doubled the learning rate as well, measured at
# 32x32 z 20 only; the grid's cells keep the second line as measured.
_RECIPE = ("--gan_loss=non_saturating", "--ema_decay=0.99")
_RECIPE_CELLS = ((32, 100), (64, 20), (64, 100))


EXPERIMENTS = {
    "report_grid": Experiment(
        "004_d7c2cb6154adfa33.txt",
        "VAE, GAN and WGAN at 16/32/64 pixels and z 2/20/100: samples improve over training; the WGAN's "
        "Wasserstein estimate falls while the GAN's discriminator loss hovers; K = 3 discriminator steps at 64x64",
        (
            *(
                _train(f"{model}_x{size}_z{z}", f"{model}_x{size}_z{z}", cpu=_grid_cpu(model, size))
                for model in ("vae", "gan", "wgan")
                for size in (16, 32, 64)
                for z in (2, 20, 100)
            ),
            _train("gan_x64_z100_k3", "gan_x64_z100", "--critic_steps=3", cpu=_grid_cpu("gan", 64)),
            *(
                _train(f"gan_x{size}_z{z}_recipe", f"gan_x{size}_z{z}", *_RECIPE, cpu=_grid_cpu("gan", size))
                for size, z in _RECIPE_CELLS
            ),
            _train("gan_x64_z100_k3_recipe", "gan_x64_z100", "--critic_steps=3", *_RECIPE, cpu=_grid_cpu("gan", 64)),
        ),
    ),
    "binarized_mnist_vae": Experiment(
        "000_e4f9fb568d21cdc1.txt",
        "a VAE with a Bernoulli decoder on binarized MNIST: the negative ELBO falls; test ELBO and IWAE NLL in nats",
        (
            _train("vae_binarized", "vae_binarized_mnist", cpu=("--epochs=5", "--steps_per_epoch=300")),
            Step("eval", "vae_binarized", ("--metrics=likelihood",), ("--num_samples=500", "--iw_samples=1000")),
        ),
    ),
    "divergences": Experiment(
        "000_e4f9fb568d21cdc1.txt",
        "critic estimates of the squared Hellinger and Wasserstein distances between two parallel lines follow "
        "the closed forms against theta",
        (Step("divergence", "parallel_lines"),),
    ),
    "wgan_latents": Experiment(
        "000_e4f9fb568d21cdc1.txt",
        "a WGAN on SVHN: perturbing one latent dimension (epsilon -5 to 4) changes one aspect of the image; "
        "latent interpolation moves between images, pixel interpolation cross-fades",
        (
            # On the CIFAR-10 subset an epoch is 15 steps (5 critic batches each): 40 epochs are 600 steps.
            _train("wgan", "wgan_svhn", cpu=("--epochs=40", "--steps_per_epoch=100", "--grid_size=36")),
            Step("explore", "wgan", ("--study=traverse", "--dims=0,1,2,3,4,5")),
            Step("explore", "wgan", ("--study=interpolate",)),
            # FID/KID/precision/recall need the dataset's own feature classifier (the data as the run's).
            Step("train_classifier", "wgan", ("--dataset=svhn",)),
            Step("eval", "wgan", ("--metrics=sample_quality",), ("--num_samples=2000",)),
        ),
    ),
    "vae_ablations": Experiment(
        "001_835853c7f2d16869.txt",
        "vanilla, 2-latent, convolutional, no-KL and no-reconstruction VAEs: posterior samples, "
        "single-dimension changes, mixing two digits, 2-D transitions, scatter plots by class; "
        "more latents give noisier samples",
        tuple(
            step
            for run, preset, *args in (
                ("mlp_vae_z20", "mlp_vae_z20"),
                ("mlp_vae_z2", "mlp_vae_z2"),
                ("conv_vae_z20", "vae_x32_z20"),
                ("no_kl_z2", "vae_no_kl_z2"),
                ("no_reconstruction_z2", "vae_no_reconstruction_z2"),
                # A conditional line beside the class-aware studies: with the label given, does the 2-D
                # latent still sort the classes (scatter), and what does it hold instead (manifold, analogy)?
                ("conditional_mlp_vae_z2", "mlp_vae_z2", "--conditional"),
            )
            for step in (
                _train(run, preset, *args, cpu=("--epochs=5", "--steps_per_epoch=200", "--grid_size=36")),
                Step("explore", run, ("--study=reconstruct",)),
                Step("explore", run, ("--study=scatter",), ("--num_samples=2000",)),
                *((Step("explore", run, ("--study=manifold",)),) if run.endswith("z2") else ()),
                *(
                    (Step("explore", run, ("--study=interpolate",)), Step("explore", run, ("--study=traverse",)))
                    if run == "mlp_vae_z20"
                    else ()
                ),  # fmt: skip
                *((Step("explore", run, ("--study=analogy",)),) if args else ()),
            )
        ),
    ),
    "lstm_vae": Experiment(
        "002_a6845304329e9d40.txt",
        "a VAE with an LSTM encoder over image rows: 100 generated images, the ELBO and KL curves",
        (
            _train("lstm_vae", "lstm_vae_mnist", "--grid_size=100", cpu=("--epochs=5", "--steps_per_epoch=150")),
            Step("eval", "lstm_vae", ("--metrics=likelihood",), ("--num_samples=1000", "--iw_samples=200")),
        ),
    ),
}


def command(step, run_dir, budget, dataset_args=()):
    """The argument list (after `python run.py`) of one step."""
    if step.mode == "train_classifier":  # Saved by dataset under saved_models/feature_nets, not in the run.
        return [f"--mode={step.mode}", *step.args, *dataset_args]
    args = [f"--mode={step.mode}", f"--out_dir={run_dir}"]
    if step.mode == "train":
        preset, *rest = step.args
        args += [f"--flagfile={os.path.join(FLAGS_DIR, preset + '.cfg')}", *rest, *dataset_args, "--noexport"]
        if os.path.exists(layout.path(run_dir, layout.CONFIG)):
            args.append("--resume")
    else:
        args += list(step.args)
        if step.mode in ("eval", "explore"):
            # The original material reports on the weights training ended with, not on the best by FID.
            args.append("--checkpoint=newest")
    if budget == "cpu":
        args += list(step.cpu_args)
    return args


def _child_environment():
    return {name: value for name, value in os.environ.items() if name not in _startup.ENVIRONMENT_SET_HERE}


def reproduce(experiment, out_dir=None, budget="cpu", dataset_args=()):
    """Runs every step of `experiment` and writes its report; returns the report's path."""
    if experiment not in EXPERIMENTS:
        raise errors.UserError(f"--experiment={experiment}; expected one of {', '.join(EXPERIMENTS)}")
    if budget not in BUDGETS:
        raise errors.UserError(f"--budget={budget}; expected one of {', '.join(BUDGETS)}")
    if not os.path.isdir(FLAGS_DIR):
        raise errors.UserError(f"no {FLAGS_DIR}/ folder here ({os.getcwd()}); run from keras_gen's checkout")
    spec = EXPERIMENTS[experiment]
    out_dir = out_dir or os.path.join("runs", "reproduce", experiment)
    run_dirs = []
    for step in (step for step in spec.steps if budget in step.budgets):
        run_dir = os.path.join(out_dir, step.run)
        if run_dir not in run_dirs:
            run_dirs.append(run_dir)
        args = command(step, run_dir, budget, dataset_args)
        print(f"[{experiment}] python run.py {shlex.join(args)}", flush=True)
        finished = subprocess.run([sys.executable, "-m", "keras_gen", *args], check=False, env=_child_environment())
        if finished.returncode != 0:
            raise errors.TrainingError(
                f"[{experiment}] `python run.py {shlex.join(args)}` failed (exit {finished.returncode}); "
                "fix it and run the same --mode=reproduce command again: finished steps are resumed"
            )
    return report.build_report(
        run_dirs,
        os.path.join(out_dir, "report.md"),
        title=f"Reproduction: {experiment} ({spec.source})",
        claim=spec.finding,
    )
