"""What the benchmarks that train (recipes, quality_cost) read back from a run's metrics.csv."""

from keras_gen import errors


def check_finished(run_dir, epochs_done, epochs):
    """A run that stopped early (SIGTERM, preemption: the trainer checkpoints and returns) is refused,
    not reported at a budget it did not train."""
    if epochs_done < epochs:
        raise errors.UserError(
            f"{run_dir} stopped after {epochs_done} of {epochs} epochs; run the command again to finish it"
        )


def quality_share(epochs):
    """(epochs measured, seconds measuring, seconds in all) of metrics.csv's rows: an epoch the
    in-training quality measurement skipped (--quality_budget) has no quality_seconds."""
    measured = [row["epoch"] for row in epochs if row.get("quality_seconds") is not None]
    quality_seconds = sum(row.get("quality_seconds", 0.0) for row in epochs)
    return measured, quality_seconds, sum(row["epoch_seconds"] for row in epochs)
