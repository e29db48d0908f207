"""The two keras_gen models the PyTorch peer lacks, WGAN-GP and the LSTM-VAE, written in PyTorch on its harness.

Run by `python -m benchmarks throughput --model=lstm_vae --peer` (or `--model=wgan
--gradient_penalty_weight=10`) with the peer's Python (torch installed as ../shared/peer/README.md
says); never imported by keras_gen or the benchmarks. It loads the peer
(`--peer_script`, default ../shared/peer/torch_peer.py), adds these trainers to its own, and runs
the peer's `main` with the remaining arguments, so data, timing, threads and channels-last handling
are the peer's, and the JSON line has the same fields.

The networks are keras_gen's, written as a careful PyTorch user would:
- WGAN-GP (Gulrajani et al., 2017): the peer's generator; its critic with layer norm over the
  channels at each position instead of batch norm (keras_gen's `dcgan.critic(normalization="layer")`:
  the penalty is per example), biases kept; Adam(1e-4, betas (0.5, 0.9)) for both; 5 critic
  updates, each on a fresh real and fake batch, with the penalty 10 (||grad f(x_hat)|| - 1)^2 on
  random interpolates; then one generator update on fresh z.
- LSTM-VAE: one LSTM of 256 units reads the image as a sequence of rows (32 steps of 32 x channels
  values), its last hidden state gives the posterior mean and log-variance; the peer's VAE decoder
  (the report's, as keras_gen's `--decoder=report`); Bernoulli likelihood on dynamically binarized
  pixels; Adam(1e-3).
"""

import argparse
import importlib.util
import sys

import torch
import torch.nn as nn


def load_peer(path):
    spec = importlib.util.spec_from_file_location("torch_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def define_trainers(peer):
    class ChannelLayerNorm(nn.Module):
        """LayerNorm over the channels at every position (Keras' LayerNormalization(axis=-1) on NHWC)."""

        def __init__(self, channels):
            super().__init__()
            self.norm = nn.LayerNorm(channels, eps=1e-5)

        def forward(self, x):  # With channels-last memory the permutes are views.
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class LayerNormCritic(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(channels, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
                nn.Conv2d(64, 128, 4, 2, 1), ChannelLayerNorm(128), nn.LeakyReLU(0.2, True),
                nn.Conv2d(128, 256, 4, 2, 1), ChannelLayerNorm(256), nn.LeakyReLU(0.2, True),
            )  # fmt: skip
            self.fc = nn.Linear(256 * 4 * 4, 1)

        def forward(self, x):
            return self.fc(self.features(x).flatten(1)).squeeze(1)

    class WGANGPTrainer:
        n_critic, penalty_weight = 5, 10.0
        step_definition = (
            "5 critic updates (each: fresh real batch + fresh fake batch, gradient penalty 10 on interpolates, "
            "Adam(1e-4, betas=(0.5, 0.9))) + 1 generator update on fresh z; images = 5 * batch_size real"
        )

        def __init__(self, channels, batch_size):
            self.G, self.D = peer.Generator(channels), LayerNormCritic(channels)
            self.optG = torch.optim.Adam(self.G.parameters(), lr=1e-4, betas=(0.5, 0.9))
            self.optD = torch.optim.Adam(self.D.parameters(), lr=1e-4, betas=(0.5, 0.9))
            self.bs = batch_size
            self.images_per_step = self.n_critic * batch_size
            self.batches_per_step = self.n_critic

        def penalty(self, real, fake):
            weights = torch.rand(real.size(0), 1, 1, 1)
            interpolates = (weights * real + (1 - weights) * fake).requires_grad_(True)
            (grads,) = torch.autograd.grad(self.D(interpolates).sum(), interpolates, create_graph=True)
            return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

        def step(self, batches):
            for real in batches:
                with torch.no_grad():
                    fake = self.G(torch.randn(self.bs, peer.Z_DIM))
                d_loss = self.D(fake).mean() - self.D(real).mean() + self.penalty_weight * self.penalty(real, fake)
                self.optD.zero_grad(set_to_none=True)
                d_loss.backward()
                self.optD.step()
            g_loss = -self.D(self.G(torch.randn(self.bs, peer.Z_DIM))).mean()
            self.optG.zero_grad(set_to_none=True)
            g_loss.backward()
            self.optG.step()
            return g_loss

    class LSTMVAE(peer.VAE):
        def __init__(self, channels, units=256):
            super().__init__(channels)
            del self.encoder  # The conv encoder is replaced; the decoder is the peer's.
            self.lstm = nn.LSTM(32 * channels, units, batch_first=True)
            self.mu, self.logvar = nn.Linear(units, peer.Z_DIM), nn.Linear(units, peer.Z_DIM)

        def encode(self, x):
            rows = x.permute(0, 2, 3, 1).reshape(x.size(0), x.size(2), -1)  # (batch, rows, width * channels)
            _, (hidden, _) = self.lstm(rows)
            return self.mu(hidden[-1]), self.logvar(hidden[-1])

    class LSTMVAETrainer(peer.VAETrainer):
        step_definition = "one Adam(1e-3) update on one batch (LSTM encoder over rows); images = batch_size"

        def __init__(self, channels, batch_size):
            super().__init__(channels, batch_size)
            self.model = LSTMVAE(channels)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    return {"wgan_gp": WGANGPTrainer, "lstm_vae": LSTMVAETrainer}


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--peer_script", default="../shared/peer/torch_peer.py")
    known, rest = parser.parse_known_args()
    peer = load_peer(known.peer_script)
    peer.TRAINERS.update(define_trainers(peer))
    make_source = peer.make_source

    def source_in_unit_range_for_vaes(args, generator):
        # The peer scales every model but "vae" to [-1, 1]; the LSTM-VAE binarizes [0, 1] pixels too.
        if args.model == "lstm_vae":
            args = argparse.Namespace(**{**vars(args), "model": "vae"})
        return make_source(args, generator)

    peer.make_source = source_in_unit_range_for_vaes
    sys.argv = [sys.argv[0], *rest]
    peer.main()


if __name__ == "__main__":
    main()
