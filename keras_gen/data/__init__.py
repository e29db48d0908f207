"""Datasets: named sources, local file readers and tf.data pipelines."""
