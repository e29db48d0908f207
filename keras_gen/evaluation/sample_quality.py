"""Sample-quality metrics on features of real and generated images: pure numpy functions.

- Fréchet distance (FID when the features are Inception's; Heusel et al., 2017) between Gaussians
  fit to the two feature sets.
- Kernel distance (KID; Binkowski et al., 2018): the unbiased MMD^2 estimate with the cubic
  polynomial kernel k(x, y) = (x.y / d + 1)^3, mean and standard deviation over random subsets.
- Inception-style score (Salimans et al., 2016): exp E_x KL(p(y|x) || p(y)) on a classifier's
  softmax, mean and standard deviation over splits.
- Precision and recall (Kynkäänniemi et al., 2019): the share of generated samples inside the real
  features' k-NN balls, and of real samples inside the generated ones'.
- For class-conditional models: conditional accuracy (the share of samples drawn for class y that
  the classifier labels y) and the FID within each class (samples of y against real images of y).

Numbers are comparable only between runs measured with the same feature network.
"""

import numpy as np

# The fewest samples (and real images) `compare` is defined for: the score's 10 splits of at least
# two, precision and recall's k=3 neighbours, KID's subsets of at least two.
MIN_SAMPLES = 20


def gaussian_statistics(features):
    """(mean (d,), covariance (d, d)) of features (num, d), in float64."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix):
    """Square root of a symmetric positive semi-definite matrix through its eigendecomposition.

    Rounding can leave tiny negative eigenvalues in a covariance of fewer samples than dimensions;
    they are set to 0 rather than producing NaN or complex values.
    """
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b):
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the squared 2-Wasserstein distance of two Gaussians.

    tr((S_a S_b)^(1/2)) is computed as tr((A S_b A)^(1/2)) with A = S_a^(1/2): the same eigenvalues
    (S_a S_b is similar to A S_b A), but A S_b A is symmetric PSD, so the square root is real and
    stable where scipy's general sqrtm on S_a S_b can return complex values or fail to converge.
    """
    root_a = _symmetric_sqrt(np.asarray(covariance_a, np.float64))
    middle = root_a @ np.asarray(covariance_b, np.float64) @ root_a
    eigenvalues = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)
    difference = np.asarray(mean_a, np.float64) - np.asarray(mean_b, np.float64)
    value = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * np.sqrt(eigenvalues).sum()
    return float(max(value, 0.0))


def fid(features_a, features_b):
    """Fréchet distance between Gaussians fit to two feature sets (num, d)."""
    return frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


def polynomial_mmd2_unbiased(features_a, features_b):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 between two sets of features."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    dim = a.shape[1]
    k_aa = (a @ a.T / dim + 1.0) ** 3
    k_bb = (b @ b.T / dim + 1.0) ** 3
    k_ab = (a @ b.T / dim + 1.0) ** 3
    m, n = len(a), len(b)
    # Diagonal terms k(x, x) are left out: they make the plain estimate biased.
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kid(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """(mean, standard deviation) of the unbiased MMD^2 over `num_subsets` random subsets of each set."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set; got {len(features_a)} and {len(features_b)}")
    estimates = [
        polynomial_mmd2_unbiased(
            features_a[rng.choice(len(features_a), size, replace=False)],
            features_b[rng.choice(len(features_b), size, replace=False)],
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probabilities, splits=10):
    """(mean, standard deviation) over `splits` of exp(mean_x KL(p(y|x) || p(y))); between 1 and the class count."""
    probabilities = np.asarray(probabilities, np.float64)
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0: the tiny offset only guards the logarithm.
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def conditional_accuracy(probabilities, labels):
    """The share of samples whose most probable class (num, classes) is the one they were drawn for."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if len(probabilities) != len(labels) or not len(labels):
        raise ValueError(f"{len(probabilities)} predictions for {len(labels)} labels; expected one per label")
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def fid_by_class(real_features, real_labels, fake_features, fake_labels, num_classes):
    """[FID of class y's samples against class y's real images, for y = 0 .. num_classes - 1];
    None for a class with fewer than 2 images on either side (a covariance needs two)."""
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    values = []
    for label in range(num_classes):
        real, fake = real_features[real_labels == label], fake_features[fake_labels == label]
        values.append(fid(real, fake) if min(len(real), len(fake)) >= 2 else None)
    return values


def _squared_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _knn_radii(features, k, batch_size):
    """Squared distance of each point to its k-th nearest neighbour within the set (itself excluded)."""
    radii = np.empty(len(features))
    for start in range(0, len(features), batch_size):
        distances = _squared_distances(features[start : start + batch_size], features)
        # Column 0 of the sorted row is the point itself (distance 0).
        radii[start : start + batch_size] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _coverage(manifold, radii, queries, batch_size):
    """Share of `queries` within the k-NN ball of at least one point of `manifold`."""
    inside = 0
    for start in range(0, len(queries), batch_size):
        distances = _squared_distances(queries[start : start + batch_size], manifold)
        inside += int((distances <= radii[None, :]).any(axis=1).sum())
    return inside / len(queries)


def precision_recall(real_features, fake_features, k=3, batch_size=1000):
    """(precision, recall) of the k-NN manifold estimate; memory bounded by `batch_size` rows at a time."""
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    precision = _coverage(real, _knn_radii(real, k, batch_size), fake, batch_size)
    recall = _coverage(fake, _knn_radii(fake, k, batch_size), real, batch_size)
    return precision, recall


def compare(real, fake, seed=0):
    """Every metric for two feature sets, each (features (num, d), class probabilities (num, classes)).

    Returns:
        {"fid", "kid_mean", "kid_std", "inception_score_mean", "inception_score_std", "precision", "recall"};
        the score is of the `fake` set's probabilities.
    """
    (real_features, _), (fake_features, fake_probabilities) = real, fake
    kid_mean, kid_std = kid(real_features, fake_features, seed=seed)
    score_mean, score_std = inception_score(fake_probabilities)
    precision, recall = precision_recall(real_features, fake_features)
    return {
        "fid": fid(real_features, fake_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "inception_score_mean": score_mean,
        "inception_score_std": score_std,
        "precision": precision,
        "recall": recall,
    }
