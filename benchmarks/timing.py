"""Timers: medians and percentiles of repeated calls, and steps stamped inside one `fit`."""

import statistics
import time

import keras
import numpy as np


def median_milliseconds(call, repeats=20, warmup=3):
    """Median of `repeats` timed calls after `warmup` untimed ones, in milliseconds."""
    return percentile_milliseconds(call, repeats, warmup, quantiles=(50,))[0]


def percentile_milliseconds(call, repeats, warmup=2, quantiles=(50, 99)):
    """The `quantiles` of `repeats` timed calls after `warmup` untimed ones, in milliseconds."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    if quantiles == (50,):
        return [1000 * statistics.median(times)]
    return [1000 * float(np.percentile(times, quantile)) for quantile in quantiles]


class StepTimer(keras.callbacks.Callback):
    """Stamps the end of every training step; reading a logged value waits until the step has run.

    Timing several short `fit` calls in a row misleads here (each call's start and stop costs about
    4 s, at random): time steps inside one `fit` instead.
    """

    def __init__(self):
        super().__init__()
        self.started = None
        self.ends = []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(next(iter(logs.values())))
        self.ends.append(time.perf_counter())
