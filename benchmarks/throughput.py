"""Training images per second against the PyTorch peer (../shared/peer), one model at a time.

Images per second in steady state inside one `fit`, through the trainer a user runs with its
defaults (`--steps` timed steps after `--warmup` untimed ones), then, with `--peer`, the peer's over
the same number of steps right after, with the same model, channels, batch and threads; `--rounds`
alternating pairs, and the medians over them with each ratio taken within its own round. The VAEs
train as the peer's does: the report's decoder and a Bernoulli likelihood on dynamically binarized
pixels (1 channel); 3 channels read the CIFAR-10 subset. WGAN-GP and the LSTM-VAE, which the peer
lacks, run on its harness through torch_peer_extra.py.
"""

import json
import os
import resource
import statistics
import subprocess
import tempfile

import keras
import tensorflow as tf

from benchmarks import results
from benchmarks import timing
from keras_gen import environment
from keras_gen.data import datasets
from keras_gen.runs import train_config
from keras_gen.training import trainer

CIFAR10_SUBSET = "../shared/data/cifar10-subset"
PEER_SCRIPT = "../shared/peer/torch_peer.py"
PEER_EXTRA_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_peer_extra.py")
# The peer's latent size; throughput measures at it unless --latent_dim says otherwise.
PEER_LATENT_DIM = 100
VARIATIONAL_MODELS = ("vae", "lstm_vae")
# Models the peer lacks, written on its harness in torch_peer_extra.py.
EXTRA_PEER_MODELS = ("wgan_gp", "lstm_vae")


def peer_model(settings):
    """The peer's name for the model measured: a registered model, or wgan_gp for a penalised WGAN."""
    return "wgan_gp" if settings.model == "wgan" and settings.gradient_penalty_weight > 0 else settings.model


def step_definition(config):
    """What one training step of `config` does, in the peer's terms."""
    steps = config.critic_steps or (1 if config.model == "gan" else 5)
    if config.model == "gan":
        return f"{steps} discriminator update(s) + 1 generator update; images = {steps} x batch"
    if config.model == "wgan":
        weight = config.gradient_penalty_weight
        constraint = f"gradient penalty {weight}" if weight else "clipping"
        return f"{steps} critic updates ({constraint}) + 1 generator update; images = {steps} x batch"
    return "one Adam update on one batch; images = batch"


def throughput_config(settings, out_dir, steps):
    """The TrainConfig of a measurement: the defaults a user gets, at the peer's sizes."""
    fields = {"model": settings.model, "gradient_penalty_weight": settings.gradient_penalty_weight}
    variational = settings.model in VARIATIONAL_MODELS
    if settings.channels == 3:
        fields.update(dataset="cifar10", data_dir=settings.data_dir or CIFAR10_SUBSET)
    else:
        # The peer's VAE: Bernoulli likelihood on dynamically binarized pixels.
        fields.update(dataset="binarized_fashion_mnist" if variational else "fashion_mnist", data_dir=settings.data_dir)
    if variational:
        fields.update(decoder=settings.decoder)
    return train_config.TrainConfig(
        out_dir=out_dir, image_size=32, batch_size=settings.batch_size, latent_dim=settings.latent_dim, epochs=1,
        steps_per_epoch=steps, verbose=0, grid_size=16, mixed_precision=settings.mixed_precision, **fields,
    )  # fmt: skip


def measure(settings):
    """One measurement: images/second over `--steps` steps after `--warmup`, inside one fit."""
    timer = timing.StepTimer()
    config = throughput_config(settings, tempfile.mkdtemp(prefix="bench_throughput_"), settings.warmup + settings.steps)
    model, _ = trainer.train(config, extra_callbacks=[timer])
    per_step = config.batch_size * (model.batches_per_step or 1)
    variational = config.model in VARIATIONAL_MODELS
    # A small dataset (the CIFAR-10 subset holds 15 WGAN steps) ends the epoch early: count what ran.
    timed = len(timer.ends) - settings.warmup
    if timed < 1:
        raise ValueError(f"the epoch held {len(timer.ends)} steps, no more than --warmup={settings.warmup}")
    seconds = timer.ends[-1] - timer.ends[settings.warmup - 1]
    return {
        "framework": f"keras_gen (TensorFlow {tf.__version__}, Keras {keras.__version__})",
        "model": peer_model(settings),
        "channels": settings.channels,
        "batch_size": config.batch_size,
        "latent_dim": config.latent_dim,
        "images_per_second": round(timed * per_step / seconds, 1),
        "steps_per_second": round(timed / seconds, 3),
        "timed_steps": timed,
        "first_step_seconds": round(timer.ends[0] - timer.started, 2),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "step_definition": step_definition(config),
        "decoder": config.decoder if variational else None,
        "dataset": config.dataset,
        "likelihood": (
            train_config.resolve_likelihood(config.likelihood, datasets.lookup(config.dataset)) if variational else None
        ),
        "jit_compile": bool(model.jit_compile),
        "mixed_precision": config.mixed_precision,
        "device": environment.machine_description(),
    }


def run_peer(settings, steps):
    """The PyTorch peer's JSON record for the same model, channels, batch and steps (channels-last, all cores)."""
    name = peer_model(settings)
    program = (
        [PEER_EXTRA_SCRIPT, "--peer_script", settings.peer_script]
        if name in EXTRA_PEER_MODELS
        else [settings.peer_script]
    )
    command = [
        settings.peer_python, *program, "--model", name, "--channels", str(settings.channels),
        "--batch_size", str(settings.batch_size), "--steps", str(steps), "--warmup", str(settings.warmup),
        "--repeats", "1", "--threads", str(os.cpu_count()), "--channels_last", "--data", "fmnist",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"error": " ".join(completed.stderr.split())[-300:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def round_ratio(ours, peer):
    """keras_gen's images/s over the peer's in one round, or None where the peer did not run."""
    return round(ours["images_per_second"] / peer["images_per_sec"], 2) if "images_per_sec" in peer else None


def summary(ours, peers):
    """Medians over the rounds: keras_gen's images/s, the peer's and the per-round ratios (None if no peer ran).

    The ratio's median is taken over rounds, each ratio from one alternating pair, because a shared
    host drifts between rounds: a median of each side's rates would pair measurements minutes apart.
    """
    ratios = [ratio for ratio in map(round_ratio, ours, peers) if ratio is not None]
    peer_rates = [peer["images_per_sec"] for peer in peers if "images_per_sec" in peer]
    return {
        "rounds": len(ours),
        "images_per_second": statistics.median(mine["images_per_second"] for mine in ours),
        "peer_images_per_sec": statistics.median(peer_rates) if peer_rates else None,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
    }


def run(settings):
    """Alternates keras_gen and (with --peer) the peer `--rounds` times; one record per measurement."""
    if "latent_dim" not in settings.present:
        settings.latent_dim = PEER_LATENT_DIM
    ours, peers = [], []
    for round_index in range(settings.rounds):
        ours.append(measure(settings))
        print(json.dumps({"round": round_index + 1, **ours[-1]}), flush=True)
        if settings.peer:
            peer = run_peer(settings, steps=ours[-1]["timed_steps"])
            ratio = round_ratio(ours[-1], peer)
            if ratio is not None:
                peer["ratio"] = ratio
            peers.append(peer)
            print(json.dumps({"round": round_index + 1, "peer": peer}), flush=True)
    medians = {"model": peer_model(settings), "channels": settings.channels, **summary(ours, peers)}
    print(json.dumps({"summary": medians}), flush=True)

    def joined(values):
        return " / ".join(f"{value:g}" if value is not None else "–" for value in values)

    row = [
        medians["model"], settings.channels, joined(mine["images_per_second"] for mine in ours),
        joined(peer.get("images_per_sec") for peer in peers) if peers else "–",
        joined(map(round_ratio, ours, peers)) if peers else "–",
        f"**{medians['median_ratio']:.2f}**" if medians["median_ratio"] is not None else "–",
        ours[0]["first_step_seconds"], f"{max(mine['peak_memory_mb'] for mine in ours):,}",
    ]  # fmt: skip
    columns = ["model", "channels", "keras_gen images/s (rounds)", "peer images/s (rounds)", "ratio (rounds)",
               "median ratio", "first step (s)", "peak RSS (MB)"]  # fmt: skip
    records = [{"round": index + 1, "keras_gen": mine, "peer": peer}
               for index, (mine, peer) in enumerate(zip(ours, peers or [None] * len(ours)))]  # fmt: skip
    return results.make("throughput", columns, [row], records, medians, title="training throughput against the peer")
