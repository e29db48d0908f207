"""`--mode=report`: finished runs gathered into one self-contained Markdown report.

    python run.py --mode=report --runs=runs/vae_a,runs/wgan_b --report_file=reports/study.md
    python -m keras_gen.report --runs=runs/vae_a,runs/wgan_b        # the same

The report holds, for every run directory: the command that reproduces it, the machine and library
versions it ran on, its final metrics, its training curves, its sample grids over training, its
latent-space studies and its `--mode=eval` metrics (likelihoods; FID/KID/precision/recall with the
feature network named). Divergence studies (`--mode=divergence` directories) add their figure and
their estimates beside the closed forms. Figures are copied, as 256-colour PNGs, into a folder beside
the Markdown file, so the report moves as one piece.

Every number in the report is read from the run directories. Hand-written conclusions come only from
`--verdicts=FILE`, included under a heading that says so.
"""

import csv
import dataclasses
import datetime
import math
import os
import re
import shlex
import tempfile

import PIL.Image

from keras_gen import errors
from keras_gen import io_utils
from keras_gen import plotting
from keras_gen.runs import layout
from keras_gen.runs import records
from keras_gen.runs import train_config

# Sample grids shown per run: the first epoch, the last, and evenly spaced ones between.
GRIDS_SHOWN = 4
DEFAULT_TITLE = "keras_gen report"
# Training settings that are not flags of a reproduction (where it writes, how it shows progress).
_NOT_IN_COMMAND = ("resume", "verbose")
_LIKELIHOOD_COLUMNS = (("neg_elbo", "negative ELBO"), ("iwae_nll", "IWAE NLL"), ("kl", "KL"))
_QUALITY_COLUMNS = (
    ("fid", "FID"),
    ("kid_mean", "KID"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("inception_score_mean", "IS"),
)
# A grid: runs that differ only in image size and latent size (the report's 004 layout), compared by
# the first of these metrics they log: what the original says of each family.
_GRID_METRICS = (
    ("neg_elbo", "negative ELBO (nats per image)"),
    ("wasserstein", "Wasserstein estimate"),
    ("critic_loss", "discriminator loss"),
)
# Settings that do not make two runs different experiments: the grid's axes, the budget, the paths.
_NOT_AN_EXPERIMENT_SETTING = {
    "image_size",
    "latent_dim",
    "epochs",
    "steps_per_epoch",
    "grid_size",
    "out_dir",
    "data_dir",
    "resume",
    "verbose",
    "checkpoint_every",
    "export",
    "export_dir",
    "profile_batches",
    # What sample quality is measured with, and how often: measuring changes nothing in training.
    "quality_every",
    "quality_samples",
    "quality_budget",
    "feature_nets_dir",
}


@dataclasses.dataclass
class _Run:
    directory: str
    name: str
    kind: str  # "training" or "divergence"
    record: dict = dataclasses.field(default_factory=dict)  # config.json
    rows: list = dataclasses.field(default_factory=list)  # metrics.csv
    evaluation: dict | None = None  # metrics.json
    divergence: dict | None = None  # divergence.json


def _read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(stream)]


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _read_run(directory, name):
    if not os.path.isdir(directory):
        raise errors.UserError(f"--runs: {directory} is not a directory; expected a keras_gen run directory")
    if os.path.exists(layout.path(directory, layout.CONFIG)):
        return _Run(
            directory,
            name,
            "training",
            record=_current_record(io_utils.read_json(layout.path(directory, layout.CONFIG))),
            rows=_read_rows(layout.path(directory, layout.METRICS)),
            evaluation=records.evaluation(directory),
        )
    if os.path.exists(layout.path(directory, layout.DIVERGENCE)):
        return _Run(
            directory, name, "divergence", divergence=io_utils.read_json(layout.path(directory, layout.DIVERGENCE))
        )
    raise errors.UserError(
        f"--runs: {directory} holds neither {layout.CONFIG} (a training run) nor {layout.DIVERGENCE} "
        "(a --mode=divergence study); expected a keras_gen run directory"
    )


def _current_record(record):
    """config.json with today's field names (a run of an earlier version says z_dim for latent_dim)."""
    return dict(record, config=train_config.current_names(record.get("config", {})))


def _unique_names(directories):
    names, seen = [], {}
    for directory in directories:
        base = os.path.basename(os.path.normpath(directory)) or "run"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def anchor(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _format(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def reproduction_command(config):
    """`python run.py ...` with every setting of `config` (a config.json "config") that is not the default."""
    defaults = dataclasses.asdict(train_config.TrainConfig())
    parts = ["python run.py"]
    for name, value in config.items():
        if name in _NOT_IN_COMMAND or name not in defaults or value == defaults[name]:
            continue
        if isinstance(value, bool):
            parts.append(f"--{'' if value else 'no'}{name}")
        else:
            parts.append(f"--{name}={value}")
    return " ".join(parts)


class _Figures:
    """Copies figures into the report's folder; returns their paths relative to the Markdown file."""

    def __init__(self, report_file):
        self.root = os.path.dirname(os.path.abspath(report_file))
        self.folder = os.path.splitext(os.path.basename(report_file))[0].lower() + "_figures"

    def add(self, source, run_name, name):
        relative = f"{self.folder}/{run_name}/{name}"
        destination = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        # 256-colour PNGs: a third of the size of matplotlib's RGBA, so a report with a hundred figures
        # can live in a repository; grey figures lose nothing, colour samples a little depth.
        image = PIL.Image.open(source).convert("RGB").quantize(256)
        with io_utils.atomic_open(destination, "wb") as copy:
            image.save(copy, format="PNG", optimize=True)
        return relative

    def make(self, run_name, name, draw):
        """A figure drawn by `draw(path)` into the report's folder (as 256 colours, like the copies)."""
        with tempfile.TemporaryDirectory() as scratch:
            drawn = os.path.join(scratch, name)
            draw(drawn)
            return self.add(drawn, run_name, name)


def _epochs_to_show(paths):
    if len(paths) <= GRIDS_SHOWN:
        return paths
    picks = sorted({round(index * (len(paths) - 1) / (GRIDS_SHOWN - 1)) for index in range(GRIDS_SHOWN)})
    return [paths[index] for index in picks]


def _training_facts(run):
    config = run.record.get("config", {})
    rows = run.rows
    speeds = sorted(row["images_per_second"] for row in rows if isinstance(row.get("images_per_second"), float))
    return {
        "model": config.get("model"),
        "dataset": config.get("dataset"),
        "image_size": config.get("image_size"),
        "latent_dim": config.get("latent_dim"),
        "epochs": len(rows),
        "seconds": sum(row.get("epoch_seconds", 0.0) for row in rows if isinstance(row.get("epoch_seconds"), float)),
        "images_per_second": speeds[len(speeds) // 2] if speeds else None,
    }


def _link(run):
    return f"[{run.name}](#{anchor(run.name)})"


def _describe_feature_net(net):
    accuracy = net.get("test_accuracy")
    return (
        f"{net.get('kind', '?')} ({net.get('dataset', '?')}"
        + (f", test accuracy {accuracy:.3f}" if isinstance(accuracy, float) else "")
        # The weights' hash where known: unlike the file's, it is the same for the same weights saved twice.
        + (
            f", weights sha256 {net['weights_sha256'][:12]})"
            if net.get("weights_sha256")
            else f", sha256 {str(net.get('sha256', ''))[:12]})"
        )
    )


def _summary_section(runs):
    """The tables across runs: what each trained, then test likelihoods and sample quality where evaluated."""
    training = [run for run in runs if run.kind == "training"]
    lines = ["## Runs", ""]
    for section in (_runs_table, _likelihood_table, _quality_table):
        lines += section(training)
    return lines


def _runs_table(training):
    if not training:
        return []
    rows = []
    for run in training:
        facts = _training_facts(run)
        rows.append(
            [
                _link(run),
                facts["model"],
                facts["dataset"],
                f"{facts['image_size']}×{facts['image_size']}",
                facts["latent_dim"],
                facts["epochs"],
                _format(facts["seconds"] / 60.0, 3),
                _format(facts["images_per_second"], 3),
            ]
        )
    header = ["run", "model", "dataset", "image size", "z", "epochs", "minutes", "images/s (median epoch)"]
    return [_table(header, rows), ""]


def _evaluated(training, group):
    """(run, its metrics.json group) for the runs evaluated for `group`."""
    return [(run, run.evaluation[group]) for run in training if run.evaluation and group in run.evaluation]


def _likelihood_table(training):
    evaluated = _evaluated(training, "likelihood")
    if not evaluated:
        return []
    rows = []
    for run, group in evaluated:
        cells = [_link(run), run.evaluation.get("dataset"), _format(group.get("num_images"))]
        for key, _ in _LIKELIHOOD_COLUMNS:
            error = group.get(f"{key}_stderr")
            cells.append(_format(group.get(key)) + (f" ± {error:.2g}" if error is not None else ""))
        rows.append(cells + [_format(group.get("iw_samples")), group.get("decoder_likelihood", "—")])
    header = ["run", "dataset", "test images", *(title for _, title in _LIKELIHOOD_COLUMNS), "k", "likelihood"]
    return ["### Test likelihoods (nats per image, ± standard error)", "", _table(header, rows), ""]


def _quality_table(training):
    evaluated = _evaluated(training, "sample_quality")
    if not evaluated:
        return []
    rows = []
    for run, group in evaluated:
        network = _describe_feature_net(group.get("feature_net", {}))
        for label, values in (("generated", group), ("floor", group.get("real_train_vs_test", {}))):
            rows.append(
                [_link(run), label]
                + [_format(values.get(key)) for key, _ in _QUALITY_COLUMNS]
                + [_format(group.get("num_generated")), network]
            )
    header = ["run", "images", *(title for _, title in _QUALITY_COLUMNS), "N", "feature network"]
    title = "### Sample quality (generated vs test images; the floor: training vs test images)"
    return [title, "", _table(header, rows), ""]


def _final_metrics(rows):
    last = rows[-1]
    names = [
        key for key in last if key not in ("epoch", "epoch_seconds", "images_per_second") and not key.startswith("val_")
    ]
    table = [[name, _format(last.get(name)), _format(last.get(f"val_{name}"))] for name in names]
    return _table(["metric", "train (last epoch)", "test (last epoch)"], table)


def _sample_grids(run):
    """The run's sample grid files, epoch_NNNN.png, in epoch order."""
    samples_dir = layout.path(run.directory, layout.SAMPLES)
    names = sorted(os.listdir(samples_dir)) if os.path.isdir(samples_dir) else []
    return [os.path.join(samples_dir, name) for name in names if re.fullmatch(r"epoch_\d+\.png", name)]


def _grids(training):
    """Runs alike but for image size and z, as {(image_size, latent_dim): run}; only those of 2 cells or more."""
    groups = {}
    for run in training:
        config = run.record.get("config", {})
        if not run.rows or "image_size" not in config or "latent_dim" not in config:
            continue
        key = tuple(
            sorted((name, repr(value)) for name, value in config.items() if name not in _NOT_AN_EXPERIMENT_SETTING)
        )
        groups.setdefault(key, {}).setdefault((config["image_size"], config["latent_dim"]), run)
    return [cells for cells in groups.values() if len(cells) >= 2]


def _grid_titles(grids):
    """ "model on dataset", followed, where grids share that, by the settings in which each differs from them."""
    configs = [next(iter(cells.values())).record["config"] for cells in grids]
    bases = [f"{config['model']} on {config['dataset']}" for config in configs]
    titles = []
    for base, config in zip(bases, configs):
        others = [other for other_base, other in zip(bases, configs) if other_base == base and other is not config]
        differing = sorted(
            name
            for name, value in config.items()
            if name not in _NOT_AN_EXPERIMENT_SETTING and any(other.get(name) != value for other in others)
        )
        titles.append(", ".join([base, *(f"{name}={config[name]}" for name in differing)]))
    return _unique_names(titles)


def _grid_section(training, figures):
    """Per grid: the last epoch's samples as a mosaic, one curve per run, the last values in a table."""
    grids = _grids(training)
    if not grids:
        return []
    lines = [
        "## Grids",
        "",
        "Runs alike but for the image size and the latent size, side by side: each one's last sample grid, "
        "its curve of the metric the original discusses, and that metric's last value (train / test), "
        "linked to the run's own section.",
        "",
    ]
    titles = _grid_titles(grids)
    for title, cells in zip(titles, grids):
        sizes = sorted({size for size, _ in cells})
        z_dims = sorted({latent_dim for _, latent_dim in cells})
        metric, label = next(
            ((name, label) for name, label in _GRID_METRICS if any(name in run.rows[0] for run in cells.values())),
            (None, None),
        )
        folder = "grid_" + anchor(title).replace("-", "_")
        lines += [f"### {title}", ""]
        if metric:
            rows = []
            for size in sizes:
                row = [f"{size}×{size}"]
                for latent_dim in z_dims:
                    run = cells.get((size, latent_dim))
                    last = run.rows[-1] if run else {}
                    values = f"{_format(last.get(metric))} / {_format(last.get('val_' + metric))}"
                    row.append(f"[{values}](#{anchor(run.name)})" if run else "—")
                rows.append(row)
            lines += [
                f"Last epoch's {label}, train / test:",
                "",
                _table(["image size", *(f"z {z}" for z in z_dims)], rows),
                "",
            ]
            series = {
                size: {
                    latent_dim: ([row["epoch"] for row in run.rows], [row.get(metric, math.nan) for row in run.rows])
                    for (run_size, latent_dim), run in cells.items()
                    if run_size == size
                }
                for size in sizes
            }
            curves = figures.make(
                folder, "curves.png", lambda path: plotting.plot_grid_curves(series, path, label, title)
            )
            lines += [f"![{label} of each run of {title}]({curves})", ""]
        finals = [
            [(_sample_grids(cells[(size, z)]) or [None])[-1] if (size, z) in cells else None for z in z_dims]
            for size in sizes
        ]
        if any(path for row in finals for path in row):
            mosaic = figures.make(
                folder,
                "last_samples.png",
                lambda path: plotting.mosaic_of_figures(
                    finals,
                    path,
                    [f"{size}×{size}" for size in sizes],
                    [f"z {z}" for z in z_dims],
                    f"{title}: samples after the last epoch",
                ),
            )
            lines += [f"![last samples of each run of {title}]({mosaic})", ""]
    return lines


def _training_section(run, figures):
    record, config = run.record, run.record.get("config", {})
    lines = [f"### {run.name}", "", f"`{run.directory}`", "", "```", reproduction_command(config), "```", ""]
    facts = _training_facts(run)
    lines.append(
        f"Data: {record.get('data_source', '?')}. Trained {facts['epochs']} epoch(s) in "
        f"{_format(facts['seconds'] / 60.0, 3)} minutes on {record.get('machine', 'an unrecorded machine')}."
    )
    for resume in record.get("resumes", []):
        changed = ", ".join(f"--{key}={value}" for key, value in resume.get("changed", {}).items()) or "no flags"
        lines.append(f"Resumed at epoch {resume.get('at_epoch')} ({resume.get('time')}), changing {changed}.")
    lines.append("")
    if not run.rows:
        lines += ["No epoch has finished in this run yet.", ""]
    else:
        lines += [_final_metrics(run.rows), ""]
    curves = layout.path(run.directory, layout.CURVES)
    if os.path.exists(curves):
        lines += [f"![training curves of {run.name}]({figures.add(curves, run.name, layout.CURVES)})", ""]
    grids = _epochs_to_show(_sample_grids(run))
    if grids:
        names = [os.path.basename(path) for path in grids]
        epochs = [str(int(name[len("epoch_") : -len(".png")])) for name in names]
        images = [f"![samples after epoch {epoch}]({figures.add(path, run.name, name)})"
                  for epoch, path, name in zip(epochs, grids, names)]  # fmt: skip
        lines += ["Samples of the same latents over training:", ""]
        lines += [_table([f"epoch {epoch}" for epoch in epochs], [images]), ""]
    explore_dir = layout.path(run.directory, layout.EXPLORE)
    studies = (
        sorted(name for name in os.listdir(explore_dir) if name.endswith(".png")) if os.path.isdir(explore_dir) else []
    )
    for name in studies:
        study = name[: -len(".png")]
        lines += [
            f"Study `{study}`:",
            "",
            f"![{study} study of {run.name}]"
            f"({figures.add(os.path.join(explore_dir, name), run.name, 'explore_' + name)})",
            "",
        ]
    if run.evaluation:
        evaluated = run.evaluation
        lines.append(
            f"Evaluated (`--mode=eval`) at checkpoint {evaluated.get('checkpoint')} after {evaluated.get('epochs')} "
            f"epoch(s), on {evaluated.get('data_source', '?')}; see the tables above."
        )
        net = evaluated.get("sample_quality", {}).get("feature_net", {})
        if net.get("data_source"):
            lines.append(f"Its feature network ({_describe_feature_net(net)}) was trained on {net['data_source']}.")
        for metric, reason in evaluated.get("skipped", {}).items():
            lines.append(f"Not evaluated: {metric} ({reason}).")
        lines.append("")
    return lines


def _divergence_section(run, figures):
    results = run.divergence
    lines = [f"### {run.name}", "", f"`{run.directory}`", ""]
    figure = layout.path(run.directory, layout.DIVERGENCE_PLOT)
    if os.path.exists(figure):
        lines += [f"![divergence estimates of {run.name}]({figures.add(figure, run.name, layout.DIVERGENCE_PLOT)})", ""]
    kinds = [key for key in results if key != "theta" and not key.endswith("_closed_form")]
    header = ["θ"] + [title for kind in kinds for title in (f"{kind} (critic)", f"{kind} (closed form)")]
    rows = []
    for index, theta in enumerate(results["theta"]):
        row = [_format(theta, 2)]
        for kind in kinds:
            row += [
                _format(results[kind][index], 3),
                _format(results.get(f"{kind}_closed_form", [None] * (index + 1))[index], 3),
            ]
        rows.append(row)
    lines += [_table(header, rows), ""]
    return lines


def build_report(run_dirs, report_file, verdicts=None, title=DEFAULT_TITLE, claim=None):
    """Writes the report of `run_dirs` to `report_file` (figures in a folder beside it); returns its path.

    Args:
        run_dirs: training run directories and/or `--mode=divergence` output directories.
        report_file: the Markdown file to write.
        verdicts: optional Markdown file of hand-written conclusions, included under its own heading.
        title: the report's first heading.
        claim: what the reproduced material reports, quoted under the title (--mode=reproduce).
    """
    if not run_dirs:
        raise errors.UserError("--runs is empty; expected run directories separated by commas")
    if verdicts is not None and not os.path.isfile(verdicts):
        raise errors.UserError(f"--verdicts={verdicts} does not exist; expected a Markdown file")
    runs = [_read_run(directory, name) for directory, name in zip(run_dirs, _unique_names(run_dirs))]
    command = ["python", "run.py", "--mode=report", f"--runs={','.join(run_dirs)}", f"--report_file={report_file}"]
    command += [f"--verdicts={verdicts}"] if verdicts else []
    command += [f"--report_title={title}"] if title != DEFAULT_TITLE else []
    figures = _Figures(report_file)
    lines = [
        f"# {title}",
        "",
        f"Generated on {datetime.datetime.now().isoformat(timespec='minutes')} by `{shlex.join(command)}`. "
        "Every number and figure below is read from the run directories"
        + (", except the section [Verdicts](#verdicts), which is written by hand." if verdicts else "."),
        "",
    ]
    if claim:
        lines += [f"The original reports: {claim}.", ""]
    machines = sorted({run.record.get("machine") for run in runs if run.record.get("machine")})
    versions = [run.record.get("versions") for run in runs if run.record.get("versions")]
    if machines:
        lines += ["Machine: " + "; ".join(machines) + ".", ""]
    if versions:
        lines += ["Libraries: " + ", ".join(f"{name} {value}" for name, value in sorted(versions[0].items())) + ".", ""]
    lines += _summary_section(runs)
    lines += _grid_section([run for run in runs if run.kind == "training"], figures)
    lines += ["## Each run", ""]
    for run in runs:
        lines += _training_section(run, figures) if run.kind == "training" else _divergence_section(run, figures)
    if verdicts:
        with open(verdicts, encoding="utf-8") as stream:
            text = stream.read().strip()
        lines += ["## Verdicts", "", "*Written by hand from the evidence above; not generated.*", "", text, ""]
    io_utils.write_text(report_file, "\n".join(lines).rstrip() + "\n")
    return report_file
