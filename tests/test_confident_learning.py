"""Confident learning (noise matrix, noise rate) against direct loops and cleanlab."""

import numpy as np
import pytest

from noisyclf.confident_learning import (
    confident_joint, estimate_joint, estimate_label_noise, expected_accuracy,
    noise_matrix_from_joint, noise_rate, stratified_folds, true_label_posterior,
)


def _slow_confident_joint(labels, probs):
    """Northcutt et al. (2021), eq. 1-2, one sample at a time."""
    n, k = probs.shape
    thresholds = [np.mean([probs[m, j] for m in range(n) if labels[m] == j]) for j in range(k)]
    joint = np.zeros((k, k), dtype=int)
    for m in range(n):
        above = [j for j in range(k) if probs[m, j] >= thresholds[j] - 1e-6]
        if not above:
            continue
        best = max(above, key=lambda j: probs[m, j]) if len(above) > 1 else above[0]
        joint[labels[m], best] += 1
    for j in range(k):
        joint[j, j] = max(joint[j, j], 1)
    return joint


def _random_problem(seed, n=300, k=4):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class given at least once
    return labels, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_joint_matches_direct_loop(seed):
    labels, probs = _random_problem(seed)
    np.testing.assert_array_equal(confident_joint(labels, probs),
                                  _slow_confident_joint(labels, probs))


@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_joint_calibrates_rows_to_given_label_counts_in_whole_samples(seed):
    labels, probs = _random_problem(seed)
    probs[::3] = 0.01  # rows below every threshold: not counted
    counts = _slow_confident_joint(labels, probs).astype(float)
    n_labelled = np.bincount(labels, minlength=4)
    assert np.any(counts.sum(axis=1) != n_labelled)  # the calibration has work to do
    calibrated = counts / counts.sum(axis=1, keepdims=True) * n_labelled[:, None]
    joint = estimate_joint(labels, probs) * len(labels)
    np.testing.assert_allclose(joint, np.round(joint), atol=1e-9)  # whole samples
    np.testing.assert_allclose(joint.sum(axis=1), n_labelled, atol=1e-9)
    assert np.abs(joint - calibrated).max() < 1  # each count rounded up or down
    # the rounding moves the entries nearest to the next whole number first
    for row, cal in zip(joint, calibrated):
        up = row > cal
        if up.any() and (~up).any():
            assert (cal[up] - np.floor(cal[up])).min() >= (cal[~up] - np.floor(cal[~up])).max()


def test_matches_cleanlab_when_installed():
    count = pytest.importorskip("cleanlab.count")
    labels, probs = _random_problem(3, n=500, k=10)
    labels[:10] = np.arange(10)
    np.testing.assert_array_equal(confident_joint(labels, probs),
                                  count.compute_confident_joint(labels, probs, calibrate=False))
    np.testing.assert_allclose(estimate_joint(labels, probs),
                               count.estimate_joint(labels, probs), rtol=0, atol=1e-15)
    # the noise matrix: cleanlab's estimate_latent of its calibrated confident joint
    _, latent, _ = count.estimate_latent(count.compute_confident_joint(labels, probs), labels)
    np.testing.assert_allclose(noise_matrix_from_joint(estimate_joint(labels, probs)), latent,
                               rtol=0, atol=1e-12)


def test_noise_matrix_columns_sum_to_one_and_noise_rate_is_off_diagonal_mass():
    joint = np.array([[0.3, 0.1, 0.0], [0.1, 0.2, 0.0], [0.0, 0.0, 0.3]])
    matrix = noise_matrix_from_joint(joint)
    np.testing.assert_allclose(matrix.sum(axis=0), 1.0)
    np.testing.assert_allclose(matrix[:, 0], [0.75, 0.25, 0.0])
    assert noise_rate(joint) == pytest.approx(0.2)
    empty = noise_matrix_from_joint(np.zeros((2, 2)))
    np.testing.assert_array_equal(empty, np.eye(2))


def test_perfect_predictions_recover_the_true_corruption():
    """Confident one-hot predictions of the true class: the joint is the empirical
    (given, true) table, so the noise matrix is the corruption that was applied."""
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(3), 200)
    given = true.copy()
    flip = rng.random(len(true)) < 0.3
    given[flip] = (true[flip] + 1) % 3
    probs = np.full((len(true), 3), 0.05)
    probs[np.arange(len(true)), true] = 0.9
    table = np.zeros((3, 3))
    np.add.at(table, (given, true), 1)
    np.testing.assert_allclose(estimate_joint(given, probs), table / table.sum(), atol=1e-12)
    assert noise_rate(estimate_joint(given, probs)) == pytest.approx(flip.mean())


def test_posterior_is_bayes_rule_and_expected_accuracy_its_mean():
    labels = np.array([0, 1, 1])
    probs = np.array([[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]])
    matrix = np.array([[0.8, 0.3], [0.2, 0.7]])
    post = true_label_posterior(labels, probs, matrix)
    for n in range(3):
        unnorm = [matrix[labels[n], j] * probs[n, j] for j in range(2)]
        np.testing.assert_allclose(post[n], np.array(unnorm) / sum(unnorm))
    assert expected_accuracy(post, labels) == pytest.approx(np.mean(post[[0, 1, 2], labels]))


@pytest.mark.parametrize("bad, match", [
    (dict(pred_probs=np.ones(5)), "pred_probs must have shape"),
    (dict(labels=np.zeros(4, dtype=int)), "labels must have shape"),
    (dict(labels=np.full(5, 3)), "labels must be class indices"),
    (dict(labels=np.zeros(5)), "labels must be class indices"),
])
def test_bad_input_names_the_argument(bad, match):
    args = dict(labels=np.zeros(5, dtype=int), pred_probs=np.full((5, 2), 0.5))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        confident_joint(**args)


@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_label_noise_is_the_formulas_in_one_call(seed):
    labels, probs = _random_problem(seed)
    pseudo = np.random.default_rng(seed).integers(0, probs.shape[1], len(labels))
    found = estimate_label_noise(labels, probs, pseudo)
    joint = estimate_joint(labels, probs)
    matrix = noise_matrix_from_joint(joint)
    posterior = true_label_posterior(labels, probs, matrix)
    np.testing.assert_allclose(found.noise_matrix, matrix)
    assert found.noise_rate == pytest.approx(noise_rate(joint))
    assert found.given_accuracy == pytest.approx(expected_accuracy(posterior, labels))
    assert found.pseudo_accuracy == pytest.approx(expected_accuracy(posterior, pseudo))
    np.testing.assert_array_equal(found.pred_probs, probs)
    assert estimate_label_noise(labels, probs).pseudo_accuracy is None


def test_stratified_folds_partition_by_class_and_shrink_to_the_rarest_class():
    labels = np.repeat([0, 1, 2], [30, 30, 3])
    folds = stratified_folds(labels, 5, random_state=0)
    assert len(folds) == 3  # class 2 has 3 samples
    held_out = [test for _, test in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(held_out)), np.arange(len(labels)))
    for train, test in folds:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])),
                                      np.arange(len(labels)))
        np.testing.assert_array_equal(np.bincount(labels[test]), [10, 10, 1])
    again = stratified_folds(labels, 5, random_state=0)
    for (_, a), (_, b) in zip(folds, again):
        np.testing.assert_array_equal(a, b)
    assert len(stratified_folds(np.repeat([0, 1], [50, 1]), 5, random_state=0)) == 2


def test_a_class_of_one_sample_gets_shuffled_folds():
    labels = np.repeat([0, 1, 2], [20, 20, 1])
    folds = stratified_folds(labels, 5, random_state=0)
    assert len(folds) == 2  # shrunk to the smallest class count, at least 2
    np.testing.assert_array_equal(np.sort(np.concatenate([t for _, t in folds])),
                                  np.arange(len(labels)))
    assert sum(2 in labels[test] for _, test in folds) == 1
