"""The conv VAE's first step beside the PyTorch peer's, from one start: loss and gradients against float64.

The peer (`--peer_script`, run by `--peer_python`) makes its VAE with `--seeds`' first seed, draws one
dynamically binarized Fashion-MNIST batch of `--batch_size` and the reparameterisation noise, and
computes the loss and every parameter's gradient in float32 and in float64. keras_gen's conv VAE
(`--decoder=report`, PyTorch's padding, no activation after the encoder's dense layer: the peer's
network) takes the peer's weights, batch and noise and computes the same loss and gradients, once
through its fused batch norm (networks.normalization, what training runs) and once through Keras'
own. Each row is a parameter: the largest error of each gradient against the peer's float64 one,
relative to the largest float64 value. Equal networks compute equal gradients up to float32
round-off, amplified through the layers; a larger error says where a computation differs.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from benchmarks import peer_elbo
from benchmarks import results
from keras_gen.models import vae

# Run by the peer's Python: argv = script, out, data_dir, seed, batch_size.
PEER_STEP = (
    peer_elbo.LOAD_PEER
    + """
out, data_dir, seed, batch_size = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(seed)
model = peer.VAE(1)
start = {name: value.numpy().copy() for name, value in model.state_dict().items()}
images = torch.bernoulli(peer.load_fmnist(data_dir, "train", 1)[:batch_size])
noise = torch.randn(batch_size, peer.Z_DIM)
record = {"images": images.numpy().astype(np.uint8), "noise": noise.numpy()}
record.update({"start/" + name: value for name, value in start.items()})
for dtype, tag in ((torch.float64, "float64"), (torch.float32, "float32")):
    model = peer.VAE(1).to(dtype)
    model.load_state_dict({name: torch.from_numpy(value) for name, value in start.items()})
    x = images.to(dtype)
    mean, log_variance = model.encode(x)
    logits = model.decode(mean + noise.to(dtype) * torch.exp(0.5 * log_variance))
    reconstruction, kl = peer.vae_neg_elbo(logits, x, mean, log_variance)
    loss = (reconstruction + kl).mean()
    loss.backward()
    record["loss/" + tag] = loss.item()
    record.update({tag + "/" + name: p.grad.double().numpy() for name, p in model.named_parameters()})
np.savez(out, **record)
"""
)


def _same(value):
    return value


def _conv(weight):  # PyTorch's (out, in, k, k) and ConvTranspose's (in, out, k, k) -> Keras' (k, k, ., .)
    return weight.transpose(2, 3, 1, 0)


def peer_names(model):
    """[(keras_gen variable, the peer's parameter name, layout change)] for the peer's conv VAE (trainable only)."""
    encoder, decoder = model.encoder, model.decoder
    dense = next(layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense))  # Before the heads.
    projection = next(layer for layer in decoder.layers if isinstance(layer, keras.layers.Dense))
    (flat, hidden), (latent_dim, projected) = dense.kernel.shape, projection.kernel.shape

    def encoder_dense(weight):  # Rows in PyTorch's (channel, row, column) flattening -> Keras' (row, column, channel).
        return weight.reshape(hidden, flat // 4, 2, 2).transpose(2, 3, 1, 0).reshape(flat, hidden)

    def decoder_dense(weight):  # Columns likewise, into the 2x2 map.
        return weight.reshape(projected // 4, 2, 2, latent_dim).transpose(1, 2, 0, 3).reshape(projected, latent_dim).T

    def decoder_bias(bias):
        return bias.reshape(projected // 4, 2, 2).transpose(1, 2, 0).reshape(-1)

    names = []
    for network, prefix, kind in (
        (encoder, "encoder", keras.layers.Conv2D),
        (decoder, "decoder", keras.layers.Conv2DTranspose),
    ):
        stages = zip(
            [layer for layer in network.layers if isinstance(layer, kind) and layer.name != "logits"],
            [layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)],
        )
        for stage, (convolution, norm) in enumerate(stages):  # The peer's Sequential: conv, batch norm, activation.
            names += [
                (convolution.kernel, f"{prefix}.{3 * stage}.weight", _conv),
                (norm.gamma, f"{prefix}.{3 * stage + 1}.weight", _same),
                (norm.beta, f"{prefix}.{3 * stage + 1}.bias", _same),
            ]
    names += [(dense.kernel, "encoder.13.weight", encoder_dense), (dense.bias, "encoder.13.bias", _same)]
    for layer, peer_name in (("mean", "mu"), ("log_variance", "logvar")):
        head = encoder.get_layer(layer)
        names += [(head.kernel, f"{peer_name}.weight", np.transpose), (head.bias, f"{peer_name}.bias", _same)]
    names += [(projection.kernel, "fc_dec.weight", decoder_dense), (projection.bias, "fc_dec.bias", decoder_bias)]
    logits = decoder.get_layer("logits")
    return names + [(logits.kernel, "decoder.15.weight", _conv), (logits.bias, "decoder.15.bias", _same)]


def keras_gen_step(record):
    """keras_gen's loss and gradients {peer parameter name: array in the peer's layout} from the peer's start."""
    # z of the peer's size (its Z_DIM), whatever --latent_dim says.
    model = vae.build_conv((32, 32, 1), record["noise"].shape[1], decoder="report")
    names = peer_names(model)
    for variable, name, layout in names:
        variable.assign(layout(record["start/" + name]))
    noise = tf.constant(record["noise"])
    model.normal_noise = lambda shape: noise
    images = tf.constant(record["images"].transpose(0, 2, 3, 1).astype(np.float32))
    with tf.GradientTape() as tape:
        reconstruction, kl = model.per_example_terms(images, training=True)
        loss = tf.reduce_mean(reconstruction + kl)
    gradients = tape.gradient(loss, [variable for variable, _, _ in names])
    return float(loss), {name: (gradient.numpy(), layout) for (_, name, layout), gradient in zip(names, gradients)}


def run(settings):
    seed = int(settings.seeds[0])
    out = os.path.join(settings.out_dir, f"peer_step_seed{seed}.npz")
    os.makedirs(settings.out_dir, exist_ok=True)
    peer_elbo.run_in_peer(
        settings, "peer_gradients: the peer's step", PEER_STEP, out, peer_elbo.PEER_DATA, seed, settings.batch_size
    )
    with np.load(out) as saved:
        record = dict(saved)
    fused_loss, fused = keras_gen_step(record)
    with peer_elbo.keras_batch_norm():
        plain_loss, plain = keras_gen_step(record)
    rows, measured = [], []
    for name, (gradient, layout) in fused.items():
        exact = layout(record["float64/" + name])
        scale = np.abs(exact).max()
        errors = [
            float(np.abs(value - exact).max() / scale)
            for value in (gradient, plain[name][0], layout(record["float32/" + name]))
        ]
        measured.append({"parameter": name, "fused": errors[0], "keras": errors[1], "peer_float32": errors[2]})
        rows.append([name] + [f"{error:.1e}" for error in errors])
    summary = {
        "loss_float64": float(record["loss/float64"]), "loss_peer_float32": float(record["loss/float32"]),
        "loss_keras_gen_fused": fused_loss, "loss_keras_gen_keras_batch_norm": plain_loss,
        "median_error_fused": float(np.median([m["fused"] for m in measured])),
        "median_error_keras": float(np.median([m["keras"] for m in measured])),
        "median_error_peer_float32": float(np.median([m["peer_float32"] for m in measured])),
    }  # fmt: skip
    columns = ["parameter (the peer's name)", "keras_gen, fused batch norm", "keras_gen, Keras' batch norm",
               "peer, float32"]  # fmt: skip
    return results.make(
        "peer_gradients", columns, rows, measured, summary, title="First-step gradients against float64"
    )
