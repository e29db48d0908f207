"""Measuring trained models: likelihood bounds now, sample-quality metrics beside them."""
