"""Figures a person looks at: image grids and training curves (PNG, written atomically)."""

import math

import matplotlib

matplotlib.use("Agg")  # Runs on machines without a display; figures are only ever saved.

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from keras_gen import io_utils  # noqa: E402


NATS_METRICS = {"loss", "neg_elbo", "reconstruction", "kl"}


def tile_images(images, columns=None, padding=1):
    """Tiles images (num, height, width, channels) in [0, 1] into one (H, W, channels) array.

    Missing tiles in the last row stay blank (white), and `padding` pixels of white separate tiles.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    num, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(num))
    rows = math.ceil(num / columns)
    grid = np.ones((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def show_grid(axes, grid):
    if grid.shape[-1] == 1:
        axes.imshow(grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        axes.imshow(grid, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])


def save_image_grid(images, path, title=None, columns=None):
    """Saves images in [0, 1] as one titled grid; returns the tiled array (for TensorBoard)."""
    grid = tile_images(images, columns)
    scale = 6.0 / max(grid.shape[:2])
    figure, axes = plt.subplots(figsize=(grid.shape[1] * scale + 0.4, grid.shape[0] * scale + 0.6))
    show_grid(axes, grid)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)
    return grid


def _panels(count, columns, panel_width, min_width=0.0):
    """(figure, panels) for `count` metric panels, `columns` to a row."""
    columns = min(count, columns)
    rows = math.ceil(count / columns)
    width = max(panel_width * columns, min_width)
    return plt.subplots(rows, columns, figsize=(width, 3.2 * rows), squeeze=False)


def _save_panels(figure, panels, used, path, title):
    """Blanks the panels after the first `used`, titles the figure and saves it to `path`."""
    for panel in list(panels.flat)[used:]:
        panel.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)


# Metrics of generated samples (training.quality), measured against the test images: not "train" curves.
SAMPLE_METRICS = ("fid", "fid_raw", "kid")


def plot_training_curves(rows, path, title=None):
    """One panel per metric: training and validation values against the epoch.

    Args:
        rows: list of dicts with "epoch" and metric values; "val_<name>" pairs with "<name>".
    """
    # Every metric of any row: sample quality may be measured only every few epochs.
    names = list(dict.fromkeys(key for row in rows for key in row if key != "epoch" and not key.startswith("val_")))
    epochs = [row["epoch"] for row in rows]
    figure, panels = _panels(len(names), columns=3, panel_width=4.2)
    for panel, name in zip(panels.flat, names):
        label = "samples" if name in SAMPLE_METRICS else "train"
        panel.plot(epochs, [row.get(name, np.nan) for row in rows], marker="o", label=label)
        if any(f"val_{name}" in row for row in rows):
            panel.plot(epochs, [row.get(f"val_{name}", np.nan) for row in rows], marker="s", label="test")
        panel.set_title(name)
        panel.set_xlabel("epoch")
        panel.set_ylabel("nats per image" if name in NATS_METRICS else name)
        panel.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        panel.legend()
    _save_panels(figure, panels, len(names), path, title)


def plot_compared_curves(runs, path, title=None, xlabel="training step"):
    """One panel per metric, one colour per run: training values solid, test values dashed.

    Args:
        runs: {label: (x values, [{metric: value}, ...])}; "val_<name>" pairs with "<name>".
    """
    names = [key for key in next(iter(runs.values()))[1][0] if not key.startswith("val_")]
    # At least 8 inches wide, so the title fits over a single panel.
    figure, panels = _panels(len(names), columns=4, panel_width=3.8, min_width=8.0)
    for panel, name in zip(panels.flat, names):
        for index, (label, (steps, rows)) in enumerate(runs.items()):
            colour = f"C{index}"
            panel.plot(steps, [row.get(name, np.nan) for row in rows], color=colour, label=f"{label} train")
            if any(f"val_{name}" in row for row in rows):
                test_values = [row.get(f"val_{name}", np.nan) for row in rows]
                panel.plot(steps, test_values, color=colour, linestyle="--", label=f"{label} test")
        panel.set_title(name)
        panel.set_xlabel(xlabel)
        panel.set_ylabel("nats per image" if name in NATS_METRICS else name)
        panel.grid(alpha=0.3)
    panels.flat[0].legend(fontsize=7)
    _save_panels(figure, panels, len(names), path, title)


def plot_divergence_study(results, path):
    """Estimated vs exact squared Hellinger and Wasserstein-1 distances against theta."""
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    thetas = results["theta"]
    styles = {"squared_hellinger": ("tab:red", "squared Hellinger"), "wasserstein": ("tab:blue", "Wasserstein-1")}
    for kind, (color, label) in styles.items():
        axes.plot(thetas, results[kind], "o", color=color, label=f"{label}: critic estimate")
        # The squared Hellinger distance jumps at 0: marks, not a line that would invent a slope.
        style = "_" if kind == "squared_hellinger" else "-"
        axes.plot(
            thetas,
            results[f"{kind}_closed_form"],
            style,
            color=color,
            alpha=0.6,
            markersize=14,
            label=f"{label}: exact",
        )
    axes.set_xlabel("θ  (q = (θ, U[0, 1]),  p = (0, U[0, 1]))")
    axes.set_ylabel("distance")
    axes.set_title("Critic estimates of two distances between parallel lines")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)


def save_labelled_grid(tiles, path, row_labels, column_labels, xlabel, title, ylabel=None):
    """Saves tiles (rows, columns, size, size, channels) in [0, 1] with a label per row and column."""
    rows, columns, size = tiles.shape[:3]
    grid = tile_images(tiles.reshape((-1,) + tiles.shape[2:]), columns=columns)
    figure, axes = plt.subplots(figsize=(1.0 + 0.75 * columns, 0.9 + 0.75 * rows))
    show_grid(axes, grid)

    def centres(count):  # Of the tiles, in grid pixels (1-pixel padding before each tile).
        return [1 + index * (size + 1) + size / 2 for index in range(count)]

    axes.set_xticks(centres(columns), column_labels)
    axes.set_yticks(centres(rows), row_labels)
    axes.set_xlabel(xlabel)
    if ylabel:
        axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)


def scatter_by_class(points, labels, class_names, path, axes_names, title):
    """Scatter plot of 2-D points, one colour per class (one colour when `labels` is None)."""
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    if labels is None:
        axes.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5, color="tab:blue", label="unlabelled")
    else:
        count = int(labels.max()) + 1
        # Qualitative maps while they have a colour per class; past 20 classes, evenly spaced hues.
        colours = plt.get_cmap("tab10" if count <= 10 else "tab20" if count <= 20 else "turbo")
        for label in np.unique(labels):
            chosen = labels == label
            name = class_names[label] if class_names and label < len(class_names) else str(label)
            colour = colours(label) if count <= 20 else colours(label / (count - 1))
            axes.scatter(points[chosen, 0], points[chosen, 1], s=3, alpha=0.5, color=colour, label=name)
    axes.set_xlabel(axes_names[0])
    axes.set_ylabel(axes_names[1])
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    legend = axes.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)


def plot_grid_curves(series, path, ylabel, title):
    """One panel per image size, one line per latent size: a metric against the epoch.

    Args:
        series: {image_size: {latent_dim: (epochs, values)}}.
    """
    sizes = sorted(series)
    figure, panels = plt.subplots(1, len(sizes), figsize=(max(4.2 * len(sizes), 6.0), 3.4), squeeze=False)
    for panel, size in zip(panels.flat, sizes):
        for latent_dim, (epochs, values) in sorted(series[size].items()):
            panel.plot(epochs, values, marker="o", label=f"z {latent_dim}")
        panel.set_title(f"{size}×{size}")
        panel.set_xlabel("epoch")
        panel.set_ylabel(ylabel)
        panel.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)


def mosaic_of_figures(figures, path, row_labels, column_labels, title):
    """Saved figures (PNG paths) side by side, figures[row][column] (None leaves a blank panel)."""
    import PIL.Image

    rows, columns = len(row_labels), len(column_labels)
    figure, panels = plt.subplots(rows, columns, figsize=(2.8 * columns, 2.8 * rows + 0.4), squeeze=False)
    for row in range(rows):
        for column in range(columns):
            panel = panels[row][column]
            panel.set_xticks([])
            panel.set_yticks([])
            for side in panel.spines.values():
                side.set_visible(False)
            if figures[row][column] is not None:
                with PIL.Image.open(figures[row][column]) as image:
                    panel.imshow(np.asarray(image.convert("RGB")), interpolation="lanczos")
            if row == 0:
                panel.set_title(column_labels[column])
            if column == 0:
                panel.set_ylabel(row_labels[row])
    figure.suptitle(title)
    figure.tight_layout()
    io_utils.save_figure(figure, path, dpi=100)
    plt.close(figure)
