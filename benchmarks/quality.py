"""The sample-quality metrics' cost: N test images against N training images with the dataset's classifier.

Feature extraction and each metric (FID, KID, Inception-style score, precision/recall) timed alone.
"""

import time

import numpy as np

from benchmarks import results
from keras_gen.data import datasets
from keras_gen.evaluation import feature_nets
from keras_gen.evaluation import sample_quality


def run(settings):
    net = feature_nets.load_classifier(settings.dataset, settings.feature_nets_dir)
    splits = datasets.load(settings.dataset, net.image_shape[0], data_dir=settings.data_dir)
    count = settings.num_samples
    test = splits["test"].images[:count].astype(np.float32) / 255.0
    train = splits["train"].images[:count].astype(np.float32) / 255.0
    net.extract(test[:500])  # Traces the network once, outside the timing.
    timings = {}
    started = time.time()
    real, other = net.extract(test), net.extract(train)
    timings[f"feature extraction, both sets ({2 * count:,} images)"] = time.time() - started
    steps = {
        "FID": lambda: sample_quality.fid(real[0], other[0]),
        "KID (100 subsets of 1,000)": lambda: sample_quality.kid(real[0], other[0]),
        "Inception-style score (10 splits)": lambda: sample_quality.inception_score(other[1]),
        "precision/recall (k = 3)": lambda: sample_quality.precision_recall(real[0], other[0]),
    }
    for name, step in steps.items():
        started = time.time()
        step()
        timings[name] = time.time() - started
    rows = [[name, f"{seconds:.1f}"] for name, seconds in timings.items()]
    rows.append(["**total**", f"**{sum(timings.values()):.1f}**"])
    summary = {"images": count, "dataset": settings.dataset, "classifier": net.identity}
    return results.make("quality", ["step", "seconds"], rows, [timings], summary, title="sample-quality metrics' cost")
