"""Confident learning (noise matrix, noise rate) against direct loops and cleanlab; the
forward-corrected logistic regression against its formula and scikit-learn's."""

import numpy as np
import pytest

from scipy.optimize import approx_fprime
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from noisyclf.confident_learning import (
    ForwardCorrectedLogisticRegression, confident_joint, estimate_joint, estimate_label_noise,
    expected_accuracy, noise_matrix_from_joint, noise_rate, out_of_fold_probabilities,
    out_of_fold_true_probabilities, posterior_joint, stratified_folds, true_label_posterior,
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


def _noisy_features(noise, n=1500, n_classes=4, n_features=6, seed=0):
    """Gaussian features around a mean per true class; given labels with symmetric
    ``noise``; the noise matrix of that corruption."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_classes, n)
    X = 1.5 * rng.normal(size=(n_classes, n_features))[true] + rng.normal(size=(n, n_features))
    other = (true + rng.integers(1, n_classes, n)) % n_classes
    given = np.where(rng.random(n) < noise, other, true)
    matrix = np.full((n_classes, n_classes), noise / (n_classes - 1))
    np.fill_diagonal(matrix, 1 - noise)
    return X, true, given, matrix


def _slow_forward_objective(weights, intercept, X, labels, matrix, C):
    """Patrini et al. (2017), forward correction, one sample at a time, with
    scikit-learn's penalty: C * sum_n -log sum_j T[y_n, j] softmax(x_n W + b)_j
    + ||W||^2 / 2."""
    total = 0.0
    for x, label in zip(X, labels):
        logits = x @ weights + intercept
        p_true = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        total -= np.log(sum(matrix[label, j] * p_true[j] for j in range(len(p_true))))
    return C * total + 0.5 * np.sum(weights ** 2)


def test_forward_objective_and_gradient_match_the_formula():
    X, _, given, matrix = _noisy_features(0.4, n=60)
    model = ForwardCorrectedLogisticRegression(matrix, C=0.7)
    params = np.random.default_rng(1).normal(size=(X.shape[1] + 1) * len(matrix))
    value, grad = model._objective(params, X, given, matrix)
    weights = params[:-len(matrix)].reshape(X.shape[1], len(matrix))
    assert value == pytest.approx(_slow_forward_objective(
        weights, params[-len(matrix):], X, given, matrix, 0.7), rel=1e-10)
    numeric = approx_fprime(params, lambda p: model._objective(p, X, given, matrix)[0], 1e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_with_the_identity_it_is_scikit_learns_logistic_regression():
    X, _, given, _ = _noisy_features(0.3)
    ours = ForwardCorrectedLogisticRegression(np.eye(4), C=0.1, tol=1e-10).fit(X, given)
    theirs = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(X, given)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(ours.coef_, theirs.coef_ - theirs.coef_.mean(axis=0), atol=1e-3)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("noise", [0.5, 0.7])
def test_forward_correction_recovers_the_true_class_where_most_labels_are_wrong(noise):
    """Symmetric noise on 4 classes: a plain logistic regression's out-of-fold
    probabilities of the given label are nearly flat; the corrected ones are those of
    the true class (lower log-loss against the true labels)."""
    X, true, given, matrix = _noisy_features(noise, n=4000)
    plain = out_of_fold_probabilities(X, given, 4, random_state=0)
    forward = out_of_fold_true_probabilities(X, given, matrix, random_state=0)

    def log_loss(proba):
        return -np.mean(np.log(proba[np.arange(len(true)), true]))

    assert log_loss(forward) < log_loss(plain) - 0.2


def test_forward_regression_is_a_scikit_learn_estimator():
    X, _, given, matrix = _noisy_features(0.2, n=200)
    model = ForwardCorrectedLogisticRegression(matrix, C=0.5)
    copy = clone(model)
    np.testing.assert_array_equal(copy.noise_matrix, matrix)
    assert copy.C == 0.5 and not hasattr(copy, "coef_")
    proba = model.fit(X, given).predict_proba(X)
    np.testing.assert_array_equal(model.classes_, np.arange(4))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.n_features_in_ == X.shape[1] and model.n_iter_ > 0


@pytest.mark.parametrize("matrix, labels, match", [
    (np.ones((2, 3)) / 2, None, "noise_matrix must be square"),
    (np.array([[0.9, 0.2], [0.2, 0.8]]), None, "columns summing to 1"),
    (np.eye(2), np.array([0, 1, 2] * 5), "y must be class indices"),
])
def test_forward_regression_bad_input_names_the_argument(matrix, labels, match):
    X = np.random.default_rng(0).normal(size=(15, 3))
    labels = np.array([0, 1, 1] * 5) if labels is None else labels
    with pytest.raises(ValueError, match=match):
        ForwardCorrectedLogisticRegression(matrix).fit(X, labels)


def test_out_of_fold_true_probabilities_fit_on_the_other_folds():
    X, _, given, matrix = _noisy_features(0.3, n=300)
    found = out_of_fold_true_probabilities(X, given, matrix, n_folds=3, C=0.3,
                                           random_state=4)
    for train, held_out in stratified_folds(given, 3, random_state=4):
        model = make_pipeline(StandardScaler(),
                              ForwardCorrectedLogisticRegression(matrix, C=0.3))
        model.fit(X[train], given[train])
        np.testing.assert_allclose(found[held_out], model.predict_proba(X[held_out]))


def test_estimate_label_noise_with_features_takes_the_true_class_prior():
    X, _, given, _ = _noisy_features(0.5, n=400)
    probs = out_of_fold_probabilities(X, given, 4, random_state=2)
    pseudo = np.random.default_rng(3).integers(0, 4, len(given))
    found = estimate_label_noise(given, probs, pseudo, features=X, random_state=2)
    matrix = noise_matrix_from_joint(estimate_joint(given, probs))
    prior = out_of_fold_true_probabilities(X, given, matrix, random_state=2)
    np.testing.assert_allclose(found.true_probs, prior)
    posterior = true_label_posterior(given, prior, matrix)
    assert found.given_accuracy == pytest.approx(expected_accuracy(posterior, given))
    assert found.pseudo_accuracy == pytest.approx(expected_accuracy(posterior, pseudo))
    joint = posterior_joint(given, posterior)  # the noise estimates: the posterior's joint
    np.testing.assert_allclose(found.noise_matrix, noise_matrix_from_joint(joint))
    assert found.noise_rate == pytest.approx(1 - found.given_accuracy)
    assert estimate_label_noise(given, probs, pseudo).true_probs is None


def test_posterior_joint_is_the_mean_posterior_per_given_label():
    labels = np.array([0, 1, 1, 2])
    posterior = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.5, 0.0],
                          [0.0, 0.1, 0.9]])
    joint = posterior_joint(labels, posterior)
    for i in range(3):
        for j in range(3):
            assert joint[i, j] == pytest.approx(
                sum(posterior[n, j] for n in range(4) if labels[n] == i) / 4)
    assert noise_rate(joint) == pytest.approx(1 - expected_accuracy(posterior, labels))


def test_the_posterior_step_finds_an_asymmetric_corruption_closer_than_confident_learning():
    """Classes flipped to the next one at rate 0.4 on features a linear model separates:
    the noise matrix of the posterior's joint is closer to the corruption than
    confident learning's, and finds every flip target."""
    rng = np.random.default_rng(0)
    n, k = 3000, 5
    true = rng.integers(0, k, n)
    X = 2.0 * rng.normal(size=(k, 8))[true] + rng.normal(size=(n, 8))
    given = np.where(rng.random(n) < 0.4, (true + 1) % k, true)
    table = np.zeros((k, k))
    np.add.at(table, (given, true), 1)
    truth = noise_matrix_from_joint(table / n)
    probs = out_of_fold_probabilities(X, given, k, random_state=0)
    cl = noise_matrix_from_joint(estimate_joint(given, probs))
    found = estimate_label_noise(given, probs, features=X, random_state=0).noise_matrix
    assert np.abs(found - truth).mean() < np.abs(cl - truth).mean()
    off = found - np.diag(np.diag(found))
    np.testing.assert_array_equal(off.argmax(axis=0), (np.arange(k) + 1) % k)
