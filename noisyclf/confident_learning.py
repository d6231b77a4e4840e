"""How wrong are the given labels: the noise matrix by confident learning.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021; the ``cleanlab``
package) counts, for every pair (given label ``i``, true label ``j``), the
samples labelled ``i`` whose predicted probability of class ``j`` reaches
that class's threshold ``t_j`` (the mean predicted probability of ``j`` over
the samples labelled ``j``).  Calibrated to the given labels' class counts,
the counts give the joint distribution ``Q[i, j] = P(given = i, true = j)``;
its columns, normalised, give the noise matrix ``P(given = i | true = j)``
(cleanlab's convention: columns sum to 1) and ``1 - trace(Q)`` the share of
wrong given labels.

The functions follow ``cleanlab.count.compute_confident_joint``,
``calibrate_confident_joint`` (with its rounding of the calibrated counts to
integers that keep each row's total) and ``estimate_joint`` (single-label
case), and give their values.  The predicted
probabilities must be out-of-sample: a model that fits every given label
confirms them all and finds no noise.  :func:`out_of_fold_probabilities`
gives such probabilities from features cheaply (cross-validated logistic
regression, as cleanlab's ``estimate_cv_predicted_probabilities``).
"""

import dataclasses
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = ["LabelNoise", "confident_joint", "estimate_joint", "estimate_label_noise",
           "expected_accuracy", "noise_matrix_from_joint", "noise_rate",
           "out_of_fold_probabilities", "stratified_folds", "true_label_posterior"]


def _check(labels, pred_probs):
    labels = np.asarray(labels)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    if pred_probs.ndim != 2 or pred_probs.shape[1] < 2:
        raise ValueError(f"pred_probs must have shape (n_samples, n_classes >= 2); "
                         f"got shape {pred_probs.shape}.")
    if labels.shape != (len(pred_probs),):
        raise ValueError(f"labels must have shape ({len(pred_probs)},) to match pred_probs; "
                         f"got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) or (
            labels.size and (labels.min() < 0 or labels.max() >= pred_probs.shape[1])):
        raise ValueError(f"labels must be class indices in [0, {pred_probs.shape[1]}).")
    return labels, pred_probs


def confident_joint(labels, pred_probs):
    """Counts ``C[i, j]``: samples with given label ``i`` confidently of class ``j``.

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        Given labels as class indices ``0..K-1``.
    pred_probs : array-like of shape (n_samples, K)
        Predicted class probabilities (out-of-sample where possible).

    Returns
    -------
    ndarray of int, shape (K, K)
        A sample counts in row ``labels[n]``, column = its class above the
        class's threshold (the most probable such class when several are);
        samples above no threshold are not counted.  Every diagonal entry is
        at least 1 (as cleanlab's).
    """
    labels, pred_probs = _check(labels, pred_probs)
    n_classes = pred_probs.shape[1]
    thresholds = np.array([pred_probs[labels == k, k].mean() if np.any(labels == k) else 1.0
                           for k in range(n_classes)])
    above = pred_probs >= thresholds - 1e-6
    n_above = above.sum(axis=1)
    guess = np.where(n_above > 1, pred_probs.argmax(axis=1), above.argmax(axis=1))
    counted = n_above > 0
    joint = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    return joint


def _round_preserving_sum(values):
    """``values`` rounded to integers whose sum is ``values``' sum rounded: the entries
    nearest to the next integer in the direction of the deficit move first (cleanlab's
    ``round_preserving_sum``)."""
    ints = values.round()
    total = round(float(values.sum()))
    while abs(ints.sum() - total) > 1e-6:
        step = 1.0 if total > ints.sum() else -1.0
        changes = min(int(abs(total - ints.sum())), len(values))
        order = np.argsort(values - ints)[::-int(step)][:changes]
        ints[order] += step
    return ints


def estimate_joint(labels, pred_probs):
    """``Q[i, j] = P(given = i, true = j)``: the confident joint calibrated so that
    row ``i`` sums to the number of samples labelled ``i``, rounded to integer counts
    that keep each row's total (as cleanlab), over the number of samples.

    Returns
    -------
    ndarray of float, shape (K, K), summing to 1.
    """
    labels, pred_probs = _check(labels, pred_probs)
    counts = confident_joint(labels, pred_probs).astype(np.float64)
    label_counts = np.bincount(labels, minlength=pred_probs.shape[1]).astype(np.float64)
    rows = np.clip(counts.sum(axis=1, keepdims=True), 1e-12, None)
    calibrated = np.apply_along_axis(_round_preserving_sum, 1,
                                     counts / rows * label_counts[:, None])
    return calibrated / calibrated.sum()


def noise_matrix_from_joint(joint):
    """``N[i, j] = P(given = i | true = j)`` from a joint ``Q[i, j]``: columns sum to 1
    (a column with no mass is the identity's)."""
    joint = np.asarray(joint, dtype=np.float64)
    columns = joint.sum(axis=0, keepdims=True)
    eye = np.eye(len(joint))
    return np.where(columns > 0, joint / np.where(columns > 0, columns, 1.0), eye)


def noise_rate(joint):
    """Share of samples whose given label is not the true one: ``1 - trace(Q)``."""
    return float(1.0 - np.trace(np.asarray(joint, dtype=np.float64)))


def true_label_posterior(labels, pred_probs, noise_matrix):
    """``P(true = j | x_n, given = labels[n])`` proportional to
    ``noise_matrix[labels[n], j] * pred_probs[n, j]``: Bayes' rule with the
    classifier's probabilities as the prior of the true class and the noise
    matrix as the likelihood of the given label.

    Returns
    -------
    ndarray of shape (n_samples, K), rows summing to 1 (a row with no mass
    keeps ``pred_probs``' row).
    """
    labels, pred_probs = _check(labels, pred_probs)
    noise_matrix = np.asarray(noise_matrix, dtype=np.float64)
    post = noise_matrix[labels] * pred_probs
    total = post.sum(axis=1, keepdims=True)
    return np.where(total > 0, post / np.where(total > 0, total, 1.0), pred_probs)


def expected_accuracy(posterior, labels):
    """Expected share of ``labels`` that are the true class under ``posterior``."""
    posterior = np.asarray(posterior, dtype=np.float64)
    labels = np.asarray(labels)
    return float(np.mean(posterior[np.arange(len(labels)), labels]))


@dataclasses.dataclass
class LabelNoise:
    """What :func:`estimate_label_noise` finds.

    Attributes
    ----------
    noise_matrix : ndarray of shape (K, K)
        ``P(given = i | true = j)``, columns summing to 1.
    noise_rate : float
        Estimated share of wrong given labels.
    given_accuracy : float
        Expected share of the given labels that are the true class.
    pseudo_accuracy : float or None
        The same for the pseudo-labels (None when none were given).
    pred_probs : ndarray of shape (n_samples, K)
        The out-of-sample probabilities the estimates come from.
    """

    noise_matrix: np.ndarray
    noise_rate: float
    given_accuracy: float
    pseudo_accuracy: "float | None"
    pred_probs: np.ndarray


def estimate_label_noise(labels, pred_probs, pseudo_labels=None):
    """The noise matrix, the noise rate and the expected accuracy of the given labels (and
    of ``pseudo_labels``) from out-of-sample ``pred_probs``, in one call.

    The joint is :func:`estimate_joint`'s; the expected accuracies are the
    mean posterior probability (:func:`true_label_posterior` with the
    estimated noise matrix) that a label is the true class.

    Returns
    -------
    LabelNoise
    """
    labels, pred_probs = _check(labels, pred_probs)
    joint = estimate_joint(labels, pred_probs)
    matrix = noise_matrix_from_joint(joint)
    posterior = true_label_posterior(labels, pred_probs, matrix)
    pseudo = None if pseudo_labels is None else expected_accuracy(posterior, pseudo_labels)
    return LabelNoise(matrix, noise_rate(joint), expected_accuracy(posterior, labels), pseudo,
                      pred_probs)


def stratified_folds(labels, n_folds, random_state=None):
    """``(train, held_out)`` index pairs of a shuffled, stratified split of ``labels``
    into ``n_folds`` folds, shrunk to the smallest class count (at least 2).  A class
    with a single sample cannot be stratified: the folds are then shuffled only (that
    sample's class is missing from one training fold)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    smallest = counts[counts > 0].min()
    folds = int(max(2, min(n_folds, smallest, len(labels))))
    cv = (StratifiedKFold(folds, shuffle=True, random_state=random_state) if smallest >= 2
          else KFold(folds, shuffle=True, random_state=random_state))
    with warnings.catch_warnings():
        # A class rarer than the folds: sklearn warns.
        warnings.simplefilter("ignore", UserWarning)
        return list(cv.split(np.zeros((len(labels), 1)), labels))


def out_of_fold_probabilities(features, labels, n_classes, *, n_folds=5, C=0.1,
                              random_state=None):
    """Cross-validated class probabilities of a logistic regression on ``features``.

    Each sample's probabilities come from a model fitted on the other folds
    (stratified, shuffled with ``random_state``), on standardised features,
    with L2 penalty ``C`` (strong: noisy labels), on as many BLAS threads as
    torch uses.  ``n_folds`` shrinks to the
    smallest class count (at least 2); classes absent from a training fold
    get probability 0.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=n_classes)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
    cv = stratified_folds(labels, n_folds, random_state)
    # As many BLAS/OpenMP threads as torch uses: more spin against the fit's other work.
    with warnings.catch_warnings(), threadpool_limits(torch.get_num_threads()):
        # A class rarer than the folds: sklearn warns (UserWarning, RuntimeWarning).
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        probs = cross_val_predict(model, features, labels, cv=cv, method="predict_proba")
    present = np.flatnonzero(counts > 0)
    out = np.zeros((len(labels), n_classes))
    out[:, present] = probs
    return out
