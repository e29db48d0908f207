"""Latent-space studies of trained models (`--mode=explore --study=NAME`), after ../shared/seeds/000 and 001.

- reconstruct: test inputs beside their reconstructions, and decodes of z = mu + sigma * epsilon for
  a row of epsilon ~ N(0, I) around the first input's posterior.              (encoder models)
- traverse: one z, each chosen dimension shifted by epsilon in {-5, ..., 4} (rows are dimensions,
  columns epsilon; epsilon = 0 is the unperturbed decode).                    (every model)
- interpolate: (a) decodes along the straight line between two latents beside (b) the pixel-space
  cross-fade. With an encoder the ends are two test images (their posterior means, and the images
  themselves in (b)); a generator interpolates between two prior draws and their decodes.
- manifold: decodes over a grid of z through the prior's inverse CDF.         (2-latent models)
- scatter: posterior means of the test images coloured by class; PCA to 2-D beyond 2 latents.
                                                                              (encoder models)
- classes: rows are classes, columns latents: each column keeps its latent and changes only the
  class.                                                                      (conditional models)
- class_interpolate: one latent per row, decoded along the straight line between two classes'
  label embeddings (a row per pair of classes).                               (conditional GAN/WGAN)
- analogy: test images encoded with their own label, each decoded with every label: the style the
  latent holds drawn as every class (Sohn et al., 2015; Kingma et al., 2014).  (conditional VAEs)
A conditional model draws traverse and manifold as one class (`study_class`); its reconstructions,
interpolations and posterior means are of q(z|x, y) with the images' own labels.
Every study writes RUN/explore/<study>.png and the same image to TensorBoard (RUN/logs/explore).
"""

import statistics

import numpy as np
import tensorflow as tf

from keras_gen import errors
from keras_gen import plotting
from keras_gen.runs import layout
from keras_gen.runs import reopen

STUDIES = (
    "reconstruct",
    "traverse",
    "interpolate",
    "manifold",
    "scatter",
    "classes",
    "class_interpolate",
    "analogy",
)
CLASS_COLUMNS = 10
TRAVERSE_EPSILONS = tuple(range(-5, 5))
INTERPOLATION_STEPS = 10
RECONSTRUCT_COLUMNS = 10
MANIFOLD_SIZE = 15
# The manifold grid spans these prior quantiles: the central 90% of N(0, 1) on each axis.
MANIFOLD_QUANTILES = (0.05, 0.95)


def traverse(model, latent, dims, epsilons=TRAVERSE_EPSILONS, label=None):
    """Images (len(dims), len(epsilons), size, size, channels) for z + epsilon * e_dim (as class `label`)."""
    latent = np.asarray(latent, np.float32).reshape(-1)
    latents = np.repeat(latent[np.newaxis], len(dims) * len(epsilons), axis=0)
    for row, dim in enumerate(dims):
        for column, epsilon in enumerate(epsilons):
            latents[row * len(epsilons) + column, dim] += epsilon
    images = _decode(model, latents, label)
    return images.reshape((len(dims), len(epsilons)) + images.shape[1:])


def _decode(model, latents, label=None):
    """Images of `latents`; a conditional model draws them all as class `label`."""
    if label is None:
        return np.asarray(model.decode_to_images(latents))
    return np.asarray(model.decode_to_images(latents, np.full(len(latents), label, np.int32)))


def interpolate(model, start, end, num_steps=INTERPOLATION_STEPS, end_images=None, label=None):
    """(latent_path, crossfade), each (num_steps, size, size, channels), for weights 0 .. 1.

    Args:
        start, end: latents (latent_dim,).
        end_images: the two images (2, size, size, channels) in [0, 1] to cross-fade; by default
            the decodes of `start` and `end`.
        label: the class a conditional model decodes the path as.
    """
    weights = np.linspace(0.0, 1.0, num_steps, dtype=np.float32)[:, np.newaxis]
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    latent_path = _decode(model, (1.0 - weights) * start + weights * end, label)
    if end_images is None:
        end_images = _decode(model, np.stack([start, end]), label)
    fade = weights[:, :, np.newaxis, np.newaxis]
    crossfade = (1.0 - fade) * end_images[0] + fade * end_images[1]
    return latent_path, crossfade


def classes(model, latents):
    """Images (num_classes, len(latents), size, size, channels): row y renders every latent as class y."""
    latents = np.asarray(latents, np.float32)
    rows = model.num_classes
    labels = np.repeat(np.arange(rows, dtype=np.int32), len(latents))
    images = np.asarray(model.decode_to_images(np.tile(latents, (rows, 1)), labels))
    return images.reshape((rows, len(latents)) + images.shape[1:])


def class_interpolate(model, latents, pairs, num_steps=INTERPOLATION_STEPS):
    """Images (len(pairs), num_steps, ...): row i decodes latents[i] along the line between the
    embeddings of classes pairs[i][0] and pairs[i][1] (weights 0 .. 1)."""
    table = model.class_embeddings()
    weights = np.linspace(0.0, 1.0, num_steps, dtype=np.float32)[:, np.newaxis]
    rows = []
    for latent, (first, second) in zip(np.asarray(latents, np.float32), pairs):
        path = (1.0 - weights) * table[first] + weights * table[second]
        rows.append(np.asarray(model.decode_embedded(np.repeat(latent[np.newaxis], num_steps, axis=0), path)))
    return np.stack(rows)


def analogy(model, images, labels):
    """Images (len(images), 1 + num_classes, ...): each input, then its posterior mean under its own
    label decoded as class 0, 1, ... (a conditional VAE)."""
    mean = np.asarray(model.encode(images, labels)[0])
    rows = [np.asarray(images, np.float32)]
    rows += [_decode(model, mean, label) for label in range(model.num_classes)]
    return np.stack(rows, axis=1)


def reconstruct(model, images, epsilons, labels=None):
    """Tiles (3, columns, size, size, channels) for `columns` = len(images) = len(epsilons).

    Rows: the inputs; their reconstructions E[x | z = mu(x)]; decodes of mu + sigma * epsilon_j
    for the first input. A conditional VAE encodes and decodes each image with its `labels`.
    """
    mean, log_variance = (np.asarray(value) for value in model.encode(images, labels))
    reconstructions = np.asarray(model.decode_to_images(mean, labels))
    around = mean[0] + np.exp(0.5 * log_variance[0]) * np.asarray(epsilons, np.float32)
    samples = _decode(model, around, None if labels is None else labels[0])
    return np.stack([np.asarray(images, np.float32), reconstructions, samples])


def manifold_axis(size=MANIFOLD_SIZE):
    """Latent values of the manifold grid: the prior's quantiles, evenly spaced in probability."""
    # The standard library's inverse CDF: scipy.stats would add 0.6 s to every import of keras_gen.
    quantile = statistics.NormalDist().inv_cdf
    axis = np.array([quantile(p) for p in np.linspace(*MANIFOLD_QUANTILES, size)], np.float32)
    axis[np.abs(axis) < 1e-6] = 0.0  # The median is 0, not a rounding error's -0.00 on the plot.
    return axis


def manifold(model, size=MANIFOLD_SIZE, label=None):
    """Tiles (size, size, ...): row r, column c decodes z = (axis[c], axis[size - 1 - r]) (z[1] up)."""
    if model.latent_dim != 2:
        raise errors.UserError(
            f"--study=manifold draws the decoder over a 2-D grid of z; this run has latent_dim={model.latent_dim} "
            "(train with --latent_dim=2)"
        )
    axis = manifold_axis(size)
    z0, z1 = np.meshgrid(axis, axis[::-1])
    images = _decode(model, np.stack([z0.ravel(), z1.ravel()], axis=1), label)
    return images.reshape((size, size) + images.shape[1:])


def posterior_means(model, batches):
    """Posterior means mu(x), (num_images, latent_dim), of every image of `batches` (with its label,
    for a conditional model)."""
    return np.concatenate(
        [np.asarray(model.encode(model.images_of(batch), model.labels_of(batch))[0]) for batch in batches]
    )


def project_2d(points):
    """(projection (num, 2), fraction of variance kept): the points themselves for 2 dims, else PCA."""
    if points.shape[1] <= 2:
        return points, 1.0
    centred = points - points.mean(axis=0)
    _, singular_values, components = np.linalg.svd(centred, full_matrices=False)
    variance = np.square(singular_values)
    return centred @ components[:2].T, float(variance[:2].sum() / variance.sum())


def _needs_encoder(model, study):
    if not hasattr(model, "encode"):
        raise errors.UserError(f"--study={study} needs a model with an encoder (a VAE); this run's model has none")


def _needs_classes(model, study, run):
    if not getattr(model, "num_classes", 0):
        raise errors.UserError(
            f"--study={study} needs a class-conditional model; {run.directory} was trained without --conditional"
        )


def _class_names(run):
    """The names of the run's classes, as its config.json recorded them."""
    return run.record.get("class_names") or [str(label) for label in range(run.model.num_classes)]


def _first_images(run, count, at_least=None):
    """(images, labels) of the first `count` test images of the run (at least `at_least`, default
    `count`), as its model sees them; labels only for a conditional model (else None)."""
    batches, _ = reopen.eval_split(run, max_images=count)
    batches = list(batches.as_numpy_iterator())
    labels = None
    if getattr(run.model, "num_classes", 0):
        batches, labels = [images for images, _ in batches], np.concatenate([labels for _, labels in batches])
    images = np.concatenate(batches)
    if len(images) < (at_least or count):
        raise errors.UserError(f"the test split holds {len(images)} images; this study needs {at_least or count}")
    return images, labels


def _interpolation_ends(rng, labels, count):
    """Two different test images; for a conditional VAE two of one class (decoded as it all along)."""
    if labels is None:
        first, second = rng.choice(count, 2, replace=False)
        return int(first), int(second)
    repeated = [index for index in range(count) if np.count_nonzero(labels == labels[index]) > 1]
    if not repeated:
        raise errors.UserError(f"--study=interpolate: no two of the first {count} test images share a class")
    first = int(rng.choice(repeated))
    same_class = np.flatnonzero(labels == labels[first])
    same_class = same_class[same_class != first]
    if not len(same_class):
        raise errors.UserError(f"--study=interpolate: no second test image of test image {first}'s class")
    return first, int(rng.choice(same_class))


def _study_class(run, study_class, used=True):
    """The class a conditional model draws traverse, manifold and generator interpolations as; None
    otherwise (and for studies that do not draw one class: `used` False)."""
    classes = getattr(run.model, "num_classes", 0)
    if not classes or not used:
        return None
    if not 0 <= study_class < classes:
        raise errors.UserError(f"--study_class={study_class}; expected a class index from 0 to {classes - 1}")
    return study_class


def _tensorboard_image(png_path, out_dir, study):
    """Writes the saved figure itself to TensorBoard, so both show the same picture."""
    figure = tf.io.decode_png(tf.io.read_file(png_path), channels=3)
    writer = tf.summary.create_file_writer(layout.path(out_dir, layout.LOGS, layout.EXPLORE))
    with writer.as_default():
        tf.summary.image(study, figure[tf.newaxis], step=0)
    writer.close()


def run_study(run, study, out_dir=None, dims=None, seed=0, num_images=10_000, study_class=0):
    """Runs one study on a reopen.LoadedRun; writes `<out_dir>/explore/<study>.png` and a TensorBoard image.

    Args:
        run: the run whose model to study (its test split feeds the encoder studies).
        study: one of STUDIES.
        out_dir: where to write; default the run's own directory.
        dims: `traverse`: the latent dimensions to perturb (default the first 10).
        seed: picks the latents, test images and epsilons.
        num_images: `scatter`: how many test images to place.
        study_class: the class a conditional model draws traverse, manifold and a GAN's interpolation as.

    Returns:
        (path of the PNG, the figure's data: tiles (rows, columns, size, size, channels), or for
        `scatter` the plotted points (num_images, 2)).
    """
    model, config = run.model, run.config
    out_dir = out_dir or run.directory
    rng = np.random.default_rng(seed)
    path = layout.study_figure(out_dir, study)
    title = f"{config.model} on {config.dataset} (z={model.latent_dim}, epoch {run.epochs})"
    drawn_as_one_class = study in ("traverse", "manifold") or (study == "interpolate" and not hasattr(model, "encode"))
    label = _study_class(run, study_class, used=drawn_as_one_class)
    if label is not None:
        title = f"{title}, class {_class_names(run)[label]}"
    if study == "traverse":
        dims = list(dims) if dims else list(range(min(model.latent_dim, 10)))
        bad = [dim for dim in dims if not 0 <= dim < model.latent_dim]
        if bad:
            raise errors.UserError(f"--dims={bad} outside the latent dimensions 0..{model.latent_dim - 1}")
        data = traverse(model, rng.standard_normal(model.latent_dim), dims, label=label)
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=[f"z[{dim}]" for dim in dims],
            column_labels=[str(e) for e in TRAVERSE_EPSILONS],
            xlabel="ε added to the dimension (0 = the sample itself)",
            title=f"{title}\neach latent dimension of one sampled z perturbed",
        )
    elif study == "interpolate":
        if hasattr(model, "encode"):
            # Two images; for a conditional VAE two of a class, found among a few batches' worth.
            images, labels = _first_images(run, 2 * config.batch_size, at_least=2)
            first, second = _interpolation_ends(rng, labels, len(images))
            ends = images[[first, second]]
            end_label = None if labels is None else int(labels[first])
            means = np.asarray(model.encode(ends, None if labels is None else labels[[first, second]])[0])
            data = np.stack(interpolate(model, means[0], means[1], end_images=ends, label=end_label))
            ends_name = f"test images {first} and {second} (posterior means)"
            if end_label is not None:
                ends_name += f", both {_class_names(run)[end_label]}"
        else:
            start, end = rng.standard_normal((2, model.latent_dim))
            data = np.stack(interpolate(model, start, end, label=label))
            ends_name = "two latents drawn from the prior"
        weights = np.linspace(0.0, 1.0, INTERPOLATION_STEPS)
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=["(a) latent", "(b) pixels"],
            column_labels=[f"{w:.2f}" for w in weights],
            xlabel=f"interpolation weight between {ends_name}",
            title=f"{title}\n(a) decodes along the latent line vs (b) pixel-space cross-fade",
        )
    elif study == "reconstruct":
        _needs_encoder(model, study)
        images, labels = _first_images(run, RECONSTRUCT_COLUMNS)
        epsilons = rng.standard_normal((RECONSTRUCT_COLUMNS, model.latent_dim))
        data = reconstruct(model, images, epsilons, labels)
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=["input", "reconstruction", "z = μ₁ + σ₁ε"],
            column_labels=[str(column + 1) for column in range(RECONSTRUCT_COLUMNS)],
            xlabel="test image (rows 1-2) / draw of ε ~ N(0, I) around image 1's posterior (row 3)",
            title=f"{title}\ninputs, reconstructions from μ(x), and samples around one posterior",
        )
    elif study == "manifold":
        data = manifold(model, label=label)
        axis = manifold_axis()
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=[f"{value:.2f}" for value in axis[::-1]],
            column_labels=[f"{value:.2f}" for value in axis],
            xlabel="z[0]  (grid evenly spaced in prior probability, 5%-95%)",
            ylabel="z[1]",
            title=f"{title}\ndecoder over a grid of the 2-D latent space",
        )
    elif study == "scatter":
        _needs_encoder(model, study)
        if model.latent_dim < 2:
            raise errors.UserError(
                f"--study=scatter plots two latent dimensions; this run has latent_dim={model.latent_dim} "
                "(--study=traverse shows it)"
            )
        batches, split = reopen.eval_split(run, max_images=num_images)
        means = posterior_means(model, batches)
        if model.latent_dim > 2 and len(means) < 2:
            raise errors.UserError(f"--num_samples={num_images}: a PCA of the posterior means needs at least 2 images")
        data, kept = project_2d(means)
        if model.latent_dim > 2:
            axes_names = ("principal component 1", "principal component 2")
            what = f"PCA of {model.latent_dim}-D posterior means ({kept:.0%} of their variance)"
        else:
            axes_names, what = ("μ[0]", "μ[1]"), "posterior means"
        plotting.scatter_by_class(
            data,
            split.labels,
            split.class_names,
            path,
            axes_names=axes_names,
            title=f"{title}\n{what} of {len(data)} test images",
        )
    elif study == "classes":
        _needs_classes(model, study, run)
        data = classes(model, rng.standard_normal((CLASS_COLUMNS, model.latent_dim)))
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=_class_names(run),
            column_labels=[str(column + 1) for column in range(CLASS_COLUMNS)],
            xlabel="latent z drawn from the prior (one per column, the same down the column)",
            title=f"{title}\neach latent rendered as every class",
        )
    elif study == "analogy":
        _needs_classes(model, study, run)
        _needs_encoder(model, study)
        images, labels = _first_images(run, RECONSTRUCT_COLUMNS)
        data = analogy(model, images, labels)
        names = _class_names(run)
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=[names[label] for label in labels],
            column_labels=["input", *names],
            xlabel="the input's posterior mean (under its own label) decoded as each class",
            title=f"{title}\nanalogies: one test image's style drawn as every class",
        )
    elif study == "class_interpolate":
        _needs_classes(model, study, run)
        if not hasattr(model, "class_embeddings"):
            raise errors.UserError(
                f"--study=class_interpolate walks between a GAN's or WGAN's label embeddings; {run.directory} holds "
                f"a conditional {config.model} (--study=analogy draws one image as every class)"
            )
        names = _class_names(run)
        # Neighbouring classes, and as many rows as there are classes (at most 10).
        pairs = [(row % model.num_classes, (row + 1) % model.num_classes) for row in range(min(model.num_classes, 10))]
        data = class_interpolate(model, rng.standard_normal((len(pairs), model.latent_dim)), pairs)
        weights = np.linspace(0.0, 1.0, INTERPOLATION_STEPS)
        plotting.save_labelled_grid(
            data,
            path,
            row_labels=[f"{names[first]} → {names[second]}" for first, second in pairs],
            column_labels=[f"{w:.2f}" for w in weights],
            xlabel="interpolation weight between the two classes' label embeddings (one latent per row)",
            title=f"{title}\none latent decoded between two classes",
        )
    else:
        raise errors.UserError(f"--study={study}; expected one of {', '.join(STUDIES)}")
    _tensorboard_image(path, out_dir, study)
    return path, data
