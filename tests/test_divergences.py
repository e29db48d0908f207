"""Divergence estimates against the closed forms of the parallel-lines experiment."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_gen import divergences


def test_bounds_on_fixed_scores():
    # Critic outputs v = ln 2 on p and -ln 2 on q: (1 - 1/2) - (1/2 - 1) = 1.
    bound = divergences.squared_hellinger_bound(tf.fill([4], math.log(2.0)), tf.fill([4], -math.log(2.0)))
    assert math.isclose(float(bound), 1.0, rel_tol=1e-6)
    # A critic that outputs 0 everywhere bounds both distances by 0.
    assert float(divergences.squared_hellinger_bound(tf.zeros(3), tf.zeros(3))) == 0.0
    assert float(divergences.wasserstein_estimate(tf.constant([3.0, 1.0]), tf.constant([0.0, 2.0]))) == 1.0


def test_wasserstein_of_two_point_masses_is_their_distance_for_the_optimal_critic():
    # f(x) = x is 1-Lipschitz and optimal for point masses at 0.7 and 0.2.
    assert math.isclose(
        float(divergences.wasserstein_estimate(tf.constant([0.7]), tf.constant([0.2]))), 0.5, rel_tol=1e-6
    )


def test_closed_forms():
    assert divergences.closed_form("wasserstein", -0.3) == 0.3
    assert divergences.closed_form("squared_hellinger", 0.0) == 0.0
    assert divergences.closed_form("squared_hellinger", 0.1) == 2.0
    with pytest.raises(ValueError, match="kind 'kl'"):
        divergences.closed_form("kl", 0.1)


@pytest.mark.parametrize("theta", [0.0, 0.5, 1.0])
def test_wasserstein_estimate_is_within_a_tenth_of_abs_theta(theta):
    estimate = divergences.estimate(
        "wasserstein", divergences.lines_sampler(0.0), divergences.lines_sampler(theta), steps=600, seed=1
    )
    assert abs(estimate - abs(theta)) < 0.1, estimate


def test_squared_hellinger_is_near_its_maximum_for_disjoint_supports_and_near_zero_for_identical_ones():
    disjoint = divergences.estimate(
        "squared_hellinger", divergences.lines_sampler(0.0), divergences.lines_sampler(1.0), steps=600, seed=1
    )
    identical = divergences.estimate(
        "squared_hellinger", divergences.lines_sampler(0.0), divergences.lines_sampler(0.0), steps=600, seed=1
    )
    assert disjoint > 1.8, disjoint
    assert abs(identical) < 0.1, identical


def test_parallel_lines_samples():
    points = divergences.parallel_lines(0.4, 1000, np.random.default_rng(0))
    assert points.shape == (1000, 2) and np.all(points[:, 0] == np.float32(0.4))
    assert 0 <= points[:, 1].min() and points[:, 1].max() <= 1
