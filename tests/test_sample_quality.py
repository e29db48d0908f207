"""Sample-quality metrics against closed forms and limiting cases."""

import numpy as np
import pytest
import scipy.linalg

from keras_gen.evaluation import sample_quality


def random_covariance(rng, dim):
    factor = rng.standard_normal((dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)


def test_fid_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((500, 16))
    assert sample_quality.fid(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    variances_a, variances_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # Commuting covariances: tr(S_a + S_b - 2 (S_a S_b)^(1/2)) = sum (sqrt(a) - sqrt(b))^2.
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(variances_a) - np.sqrt(variances_b)) ** 2)
    value = sample_quality.frechet_distance(mean_a, np.diag(variances_a), mean_b, np.diag(variances_b))
    assert value == pytest.approx(expected, rel=1e-10)
    assert expected == pytest.approx(10.0 + 4.0 + 1.0)


def test_frechet_distance_of_general_gaussians_matches_the_textbook_formula_and_is_symmetric():
    rng = np.random.default_rng(1)
    mean_a, mean_b = rng.standard_normal(8), rng.standard_normal(8)
    cov_a, cov_b = random_covariance(rng, 8), random_covariance(rng, 8)
    textbook = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * scipy.linalg.sqrtm(cov_a @ cov_b).real)
    forward = sample_quality.frechet_distance(mean_a, cov_a, mean_b, cov_b)
    assert forward == pytest.approx(textbook, rel=1e-8)
    assert sample_quality.frechet_distance(mean_b, cov_b, mean_a, cov_a) == pytest.approx(forward, rel=1e-10)


def test_fid_from_samples_converges_to_the_gaussians_distance():
    rng = np.random.default_rng(2)
    cov = random_covariance(rng, 4)
    a = rng.multivariate_normal(np.zeros(4), cov, 40_000)
    b = rng.multivariate_normal(np.ones(4), 2.0 * cov, 40_000)
    exact = sample_quality.frechet_distance(np.zeros(4), cov, np.ones(4), 2.0 * cov)
    assert sample_quality.fid(a, b) == pytest.approx(exact, rel=0.03)
    assert sample_quality.fid(a, b) == pytest.approx(sample_quality.fid(b, a), rel=1e-9)


def test_matrix_square_root_is_stable_for_rank_deficient_covariances():
    # 20 samples in 64 dimensions: singular covariances, where sqrtm(S_a S_b) goes complex.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((20, 64)) + 0.5
    value = sample_quality.fid(a, b)
    assert np.isfinite(value) and value > 0
    assert sample_quality.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_is_unbiased_on_equal_distributions_and_positive_on_different_ones():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    mean, std = sample_quality.kid(a, b, num_subsets=200, subset_size=200)
    # Mean of 200 subset estimates: within 4 standard errors of 0.
    assert abs(mean) < 4 * std / np.sqrt(200), (mean, std)
    shifted_mean, _ = sample_quality.kid(a, b + 1.0, num_subsets=20, subset_size=200)
    assert shifted_mean > 20 * std


def test_inception_score_limits():
    uniform = np.full((100, 10), 0.1)
    assert sample_quality.inception_score(uniform)[0] == pytest.approx(1.0)
    confident_and_diverse = np.eye(10)[np.arange(1000) % 10]
    assert sample_quality.inception_score(confident_and_diverse)[0] == pytest.approx(10.0, rel=1e-6)
    one_class = np.eye(10)[np.zeros(1000, int)]
    assert sample_quality.inception_score(one_class)[0] == pytest.approx(1.0, rel=1e-6)


def test_precision_and_recall_are_one_for_identical_sets_and_drop_for_disjoint_ones():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((300, 4))
    assert sample_quality.precision_recall(real, real.copy(), batch_size=64) == (1.0, 1.0)
    far = rng.standard_normal((300, 4)) + 100.0
    assert sample_quality.precision_recall(real, far) == (0.0, 0.0)
    # Generated samples covering half the real modes: high precision, recall about one half.
    modes = np.concatenate([rng.standard_normal((300, 4)) * 0.1, rng.standard_normal((300, 4)) * 0.1 + 10.0])
    half = rng.standard_normal((300, 4)) * 0.1
    precision, recall = sample_quality.precision_recall(modes, half)
    assert precision > 0.9 and 0.4 < recall < 0.6, (precision, recall)


def test_compare_reports_every_metric_with_its_value():
    rng = np.random.default_rng(6)
    features, probabilities = rng.standard_normal((50, 4)), rng.dirichlet(np.ones(3), 50)
    result = sample_quality.compare((features, probabilities), (features + 0.1, probabilities))
    expected = {"fid", "kid_mean", "kid_std", "inception_score_mean", "inception_score_std", "precision", "recall"}
    assert set(result) == expected
    # A shift by 0.1 in each of 4 dimensions keeps the covariance: FID = |shift|^2 = 4 * 0.01.
    assert result["fid"] == pytest.approx(0.04, abs=1e-6)
    # The score is of the generated probabilities, here the real ones: the formula on 10 splits.
    splits = [
        np.exp(np.mean(np.sum(part * (np.log(part) - np.log(part.mean(axis=0))), axis=1)))
        for part in np.array_split(probabilities, 10)
    ]
    assert result["inception_score_mean"] == pytest.approx(np.mean(splits), rel=1e-6)
    assert result["inception_score_std"] == pytest.approx(np.std(splits), rel=1e-6)
    # A small shift of the same points: nearly every sample lies in the real k-NN balls and vice versa.
    assert result["precision"] > 0.8 and result["recall"] > 0.8
    # KID of a 0.1 shift is small next to that of an unrelated set.
    unrelated = sample_quality.compare((features, probabilities), (features * 3.0 + 2.0, probabilities))
    assert abs(result["kid_mean"]) < 0.05 * unrelated["kid_mean"] and unrelated["fid"] > 100 * result["fid"]
