"""The conv VAE trained on the peer's own training run: its start, its batches and its noise, step by step.

For each seed of `--seeds`, the peer's Python trains the peer's VAE as `torch_peer.py --model vae`
trains it (Adam 1e-3, dynamic binarization, batch `--batch_size`, `--epochs` x `--steps_per_epoch`
steps, channels-last, one thread so that it can run beside other work) and records its start, every
binarized batch, every draw of the reparameterisation noise and every step's loss; then it scores
itself with its own estimator (`evaluate_and_save`: the one-sample ELBO of its test set, binarized
once). keras_gen's conv VAE (`--decoder=report`, z of the peer's size) takes the peer's start
(peer_gradients.peer_names), trains through its own `train_step` on the recorded batches and noise,
through the fused batch norm as run.py trains (`--batch_norm=keras`: Keras' own), and is scored on
the peer's test set as peer_elbo scores. The two runs share every random draw; what differs is the
computation alone, over the whole run (peer_gradients compares one step).

Rerun, the command reuses the peer's recordings in `--out_dir`.
"""

import contextlib
import os
import time

import numpy as np
import tensorflow as tf

from benchmarks import peer_elbo
from benchmarks import peer_gradients
from benchmarks import results
from keras_gen.models import vae

# Run by the peer's Python: argv = script, record, out_dir, data_dir, seed, batch_size, steps.
PEER_RUN = (
    peer_elbo.LOAD_PEER
    + """
record, out_dir, data_dir = sys.argv[2], sys.argv[3], sys.argv[4]
seed, batch_size, steps = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
torch.set_num_threads(1)
torch.manual_seed(seed)
generator = torch.Generator().manual_seed(seed)
trainer = peer.VAETrainer(1, batch_size)
source = peer.make_source(type("Args", (), dict(data="fmnist", data_dir=data_dir, channels=1, batch_size=batch_size,
                                                 model="vae"))(), generator)
model, optimizer = trainer.model, trainer.opt
model.to(memory_format=torch.channels_last)
source.data = source.data.contiguous(memory_format=torch.channels_last)
start = {"start/" + name: value.detach().numpy().copy() for name, value in model.state_dict().items()}
images, noises, losses = [], [], []
for step in range(steps):  # VAETrainer.step, with the noise drawn where it can be kept.
    x = torch.bernoulli(source.next())
    noise = torch.randn(batch_size, peer.Z_DIM)
    mean, log_variance = model.encode(x)
    reconstruction, kl = peer.vae_neg_elbo(model.decode(mean + noise * torch.exp(0.5 * log_variance)), x, mean,
                                           log_variance)
    loss = (reconstruction + kl).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    images.append(x.numpy().astype(np.uint8))
    noises.append(noise.numpy())
    losses.append(loss.item())
np.savez(record, images=np.stack(images), noise=np.stack(noises), loss=np.array(losses), **start)
peer.evaluate_and_save(type("Args", (), dict(model="vae", out=out_dir, channels=1, data_dir=data_dir))(), trainer,
                       {"steps": steps})
"""
)
RECORD = "peer_run.npz"


def peer_run(settings, seed, steps, out_dir):
    """(the recording, the peer's test record) of the peer's run for `seed`, recorded now or earlier."""
    record, scored = os.path.join(out_dir, RECORD), os.path.join(out_dir, peer_elbo.PEER_RESULT)
    if not (os.path.exists(record) and os.path.exists(scored)):
        os.makedirs(out_dir, exist_ok=True)
        peer_elbo.run_in_peer(
            settings, "peer_replay: the peer's run", PEER_RUN, record + ".tmp.npz", out_dir, peer_elbo.PEER_DATA,
            seed, settings.batch_size, steps,
        )  # fmt: skip
        os.replace(record + ".tmp.npz", record)
    with np.load(record) as saved:
        recording = dict(saved)
    if len(recording["loss"]) != steps:
        raise SystemExit(f"peer_replay: {record} holds {len(recording['loss'])} steps, not {steps}; remove it")
    with np.load(scored) as saved:
        peer = {name: saved[name].item() for name in saved.files if saved[name].ndim == 0}
    return recording, peer


def replay(recording, learning_rate):
    """keras_gen's conv VAE trained from the recording's start on its batches and noise."""
    model = vae.build_conv((32, 32, 1), recording["noise"].shape[-1], decoder="report")
    model.compile(**model.default_optimizers(learning_rate or model.default_learning_rate))  # The peer's 1e-3.
    for variable, name, layout in peer_gradients.peer_names(model):
        variable.assign(layout(recording["start/" + name]))
    noise = tf.Variable(tf.zeros(recording["noise"].shape[1:]))
    model.normal_noise = lambda shape: tf.identity(noise)
    step = tf.function(model.train_step)  # What fit runs: the same weights to the bit (checked against trainer.train).
    for images, draw in zip(recording["images"], recording["noise"]):
        noise.assign(draw)
        step(tf.constant(images.transpose(0, 2, 3, 1), tf.float32))
    return model


def run(settings):
    test = peer_elbo.peer_test_images(settings, settings.out_dir)
    steps = settings.epochs * settings.steps_per_epoch
    rows, measured = [], []
    for seed in (int(seed) for seed in settings.seeds):
        recording, peer = peer_run(settings, seed, steps, os.path.join(settings.out_dir, f"peer_seed{seed}"))
        started = time.perf_counter()
        with peer_elbo.keras_batch_norm() if settings.batch_norm == "keras" else contextlib.nullcontext():
            model = replay(recording, settings.learning_rate)
        ours = peer_elbo.test_bounds(model, test)
        record = peer_elbo.side_by_side(
            seed, steps, ours, peer, batch_norm=settings.batch_norm, replay_seconds=time.perf_counter() - started
        )
        measured.append(record)
        rows.append(peer_elbo.row(record, digits=2))
        print(rows[-1], flush=True)
    differences = [r["keras_gen"]["mean"] - r["peer"] for r in measured]
    summary = {"mean_difference": float(np.mean(differences)), "batch_norm": settings.batch_norm}
    return results.make(
        "peer_replay",
        peer_elbo.COLUMNS,
        rows,
        measured,
        summary,
        title="VAE test negative ELBO, trained on the peer's run",
    )
