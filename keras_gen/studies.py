"""Latent-space studies of any trained generator (VAE decoder, GAN/WGAN generator).

- traverse: one sampled z, each chosen dimension shifted by epsilon in {-5, ..., 4} (rows are
  dimensions, columns epsilon; epsilon = 0 is the unperturbed sample), as in ../shared/seeds/000.
- interpolate: between two sampled latents, (a) decodes along the straight line in latent space
  beside (b) the pixel-space cross-fade of the two end images (figures (a) and (b) of seeds/000).
"""

import os

import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen import plotting

STUDIES = ("traverse", "interpolate")
TRAVERSE_EPSILONS = tuple(range(-5, 5))


def traverse(model, latent, dims, epsilons=TRAVERSE_EPSILONS):
    """Images (len(dims), len(epsilons), size, size, channels) for z + epsilon * e_dim."""
    latent = np.asarray(latent, np.float32).reshape(-1)
    latents = np.repeat(latent[np.newaxis], len(dims) * len(epsilons), axis=0)
    for row, dim in enumerate(dims):
        for column, epsilon in enumerate(epsilons):
            latents[row * len(epsilons) + column, dim] += epsilon
    images = np.asarray(model.decode_to_images(latents))
    return images.reshape((len(dims), len(epsilons)) + images.shape[1:])


def interpolate(model, start, end, num_steps=10):
    """(latent_path, crossfade), each (num_steps, size, size, channels), for weights 0 .. 1."""
    weights = np.linspace(0.0, 1.0, num_steps, dtype=np.float32)[:, np.newaxis]
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    latent_path = np.asarray(model.decode_to_images((1.0 - weights) * start + weights * end))
    ends = np.asarray(model.decode_to_images(np.stack([start, end])))
    fade = weights[:, :, np.newaxis, np.newaxis]
    crossfade = (1.0 - fade) * ends[0] + fade * ends[1]
    return latent_path, crossfade


def run_study(model, study, out_dir, dims=None, seed=0, title=""):
    """Runs one study on `model`; writes `<out_dir>/explore/<study>.png` and a TensorBoard image.

    Returns:
        (path of the PNG, the tiles (rows, columns, size, size, channels)).
    """
    rng = np.random.default_rng(seed)
    path = f"{out_dir}/explore/{study}.png"
    if study == "traverse":
        dims = list(dims) if dims else list(range(min(model.latent_dim, 10)))
        bad = [dim for dim in dims if not 0 <= dim < model.latent_dim]
        if bad:
            raise errors.UserError(f"--dims={bad} outside the latent dimensions 0..{model.latent_dim - 1}")
        tiles = traverse(model, rng.standard_normal(model.latent_dim), dims)
        plotting.save_labelled_grid(
            tiles,
            path,
            row_labels=[f"z[{dim}]" for dim in dims],
            column_labels=[str(e) for e in TRAVERSE_EPSILONS],
            xlabel="ε added to the dimension (0 = the sample itself)",
            title=f"{title}: each latent dimension perturbed",
        )
    elif study == "interpolate":
        latent_path, crossfade = interpolate(
            model, rng.standard_normal(model.latent_dim), rng.standard_normal(model.latent_dim)
        )
        tiles = np.stack([latent_path, crossfade])
        weights = np.linspace(0.0, 1.0, latent_path.shape[0])
        plotting.save_labelled_grid(
            tiles,
            path,
            row_labels=["(a) latent", "(b) pixels"],
            column_labels=[f"{w:.2f}" for w in weights],
            xlabel="interpolation weight from z₀ to z₁",
            title=f"{title}: latent-space path vs pixel-space cross-fade",
        )
    else:
        raise ValueError(f"study {study!r}; expected one of {STUDIES}")
    writer = tf.summary.create_file_writer(os.path.join(out_dir, "logs", "explore"))
    with writer.as_default():
        grid = plotting.tile_images(tiles.reshape((-1,) + tiles.shape[2:]), columns=tiles.shape[1])
        tf.summary.image(study, grid[np.newaxis], step=0)
    writer.close()
    return path, tiles
