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

Which labels are more accurate, the given ones or another set (phase b's
pseudo-labels), is a posterior question: ``P(true = j | x, given = i)`` is
proportional to ``N[i, j] * P(true = j | x)``.  The probabilities above
estimate ``P(given | x)``, not ``P(true | x)``; under heavy noise they are
nearly flat.  :func:`out_of_fold_true_probabilities` estimates ``P(true | x)``
itself, by a logistic regression whose probabilities, passed through the noise
matrix, explain the given labels (forward loss correction, Patrini et al.,
"Making Deep Neural Networks Robust to Label Noise: a Loss Correction
Approach", CVPR 2017).
"""

import dataclasses
import warnings

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

__all__ = ["ForwardCorrectedLogisticRegression", "LabelNoise", "confident_joint",
           "estimate_joint", "estimate_label_noise", "expected_accuracy",
           "noise_matrix_from_joint", "noise_rate", "out_of_fold_probabilities",
           "out_of_fold_true_probabilities", "posterior_joint", "stratified_folds",
           "true_label_posterior"]


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


def posterior_joint(labels, posterior):
    """``Q[i, j]``: the mean over all samples of ``[labels[n] = i] * posterior[n, j]``, the
    joint distribution of given and true label that a posterior of the true class
    implies (the M-step for the noise matrix of the EM algorithm of Dawid and Skene,
    1979, for a label-noise model)."""
    posterior = np.asarray(posterior, dtype=np.float64)
    joint = np.zeros((posterior.shape[1],) * 2)
    np.add.at(joint, np.asarray(labels), posterior)
    return joint / len(posterior)


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
    true_probs : ndarray of shape (n_samples, K) or None
        The out-of-fold ``P(true | x)`` that was the posterior's prior (None: the prior
        was ``pred_probs``).
    posterior : ndarray of shape (n_samples, K) or None
        ``P(true | given, x)`` of every sample (:func:`true_label_posterior`), from
        which the expected accuracy of any other labels follows
        (:func:`expected_accuracy`).
    """

    noise_matrix: np.ndarray
    noise_rate: float
    given_accuracy: float
    pseudo_accuracy: "float | None"
    pred_probs: np.ndarray
    true_probs: "np.ndarray | None" = None
    posterior: "np.ndarray | None" = None


def estimate_label_noise(labels, pred_probs, pseudo_labels=None, *, features=None,
                         random_state=None):
    """The noise matrix, the noise rate and the expected accuracy of the given labels (and
    of ``pseudo_labels``) from out-of-sample ``pred_probs``, in one call.

    Confident learning (:func:`estimate_joint`) gives a first joint and noise
    matrix.  The expected accuracies are the mean posterior probability
    (:func:`true_label_posterior`, with that noise matrix as likelihood) that
    a label is the true class.  The posterior's prior is, with ``features``,
    the out-of-fold ``P(true | x)`` of :func:`out_of_fold_true_probabilities`
    on them (folds of ``random_state``) with that noise matrix; without,
    ``pred_probs`` itself, an estimate of ``P(given | x)`` that heavy noise
    flattens, so that the given labels then win against more accurate ones.

    With ``features`` the returned joint is the one the posterior implies
    (:func:`posterior_joint`: one EM step for the noise matrix from
    confident learning's), and the returned noise matrix and rate are that
    joint's, so that ``noise_rate = 1 - given_accuracy``; without, they are
    confident learning's.

    Returns
    -------
    LabelNoise
    """
    labels, pred_probs = _check(labels, pred_probs)
    joint = estimate_joint(labels, pred_probs)
    matrix = noise_matrix_from_joint(joint)
    true_probs = None if features is None else out_of_fold_true_probabilities(
        features, labels, matrix, random_state=random_state)
    posterior = true_label_posterior(labels, pred_probs if true_probs is None else true_probs,
                                     matrix)
    if true_probs is not None:  # the joint that the posterior implies
        joint = posterior_joint(labels, posterior)
        matrix = noise_matrix_from_joint(joint)
    pseudo = None if pseudo_labels is None else expected_accuracy(posterior, pseudo_labels)
    return LabelNoise(matrix, noise_rate(joint), expected_accuracy(posterior, labels), pseudo,
                      pred_probs, true_probs, posterior)


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


class ForwardCorrectedLogisticRegression(BaseEstimator):
    """Multinomial logistic regression of the *true* class from noisy labels with a
    known noise matrix (forward loss correction, Patrini et al., CVPR 2017).

    The model's probabilities ``p(true = j | x) = softmax(x W + b)_j`` reach the
    given labels through the noise matrix, ``p(given = i | x) = sum_j
    noise_matrix[i, j] p(true = j | x)``, and the fit maximises the likelihood
    of the given labels under it, with scikit-learn's L2 penalty: it minimises
    ``C * sum_n -log p(given = y_n | x_n) + ||W||^2 / 2`` (the intercept is not
    penalised) by L-BFGS from zero weights.  With the identity as noise matrix
    it is scikit-learn's ``LogisticRegression(C=C)``.  It has no ``score``: its
    predictions are true classes, which noisy labels cannot score.

    Parameters
    ----------
    noise_matrix : array-like of shape (n_classes, n_classes)
        ``P(given = i | true = j)`` (columns sum to 1), as :func:`noise_matrix_from_joint`.
    C : float, default=0.1
        Inverse strength of the L2 penalty.
    max_iter : int, default=500
        Most L-BFGS iterations.
    tol : float, default=1e-5
        L-BFGS stops when no entry of the gradient of the mean loss (the objective
        over ``C`` times the number of samples) exceeds ``tol / C``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        ``0..n_classes-1``: the labels are class indices, the noise matrix's rows and
        columns (a class may have no label).
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    n_iter_ : int
        L-BFGS iterations run.
    """

    def __init__(self, noise_matrix, C=0.1, max_iter=500, tol=1e-5):
        self.noise_matrix = noise_matrix
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _matrix(self):
        matrix = np.asarray(self.noise_matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
            raise ValueError(f"noise_matrix must be square with at least 2 classes; got shape "
                             f"{matrix.shape}.")
        if np.any(matrix < 0) or not np.allclose(matrix.sum(axis=0), 1.0):
            raise ValueError("noise_matrix must be non-negative with columns summing to 1.")
        return matrix

    def _objective(self, params, X, labels, matrix):
        """The penalised negative log-likelihood and its gradient at ``params`` (W, then b)."""
        n_features, n_classes = X.shape[1], len(matrix)
        weights = params[:-n_classes].reshape(n_features, n_classes)
        p_true = softmax(X @ weights + params[-n_classes:], axis=1)
        rows = matrix[labels]                       # noise_matrix[y_n, j]
        p_given = np.maximum(np.einsum("nk,nk->n", rows, p_true), 1e-300)
        value = -self.C * np.sum(np.log(p_given)) + 0.5 * np.sum(weights ** 2)
        d_p = -self.C * rows / p_given[:, None]     # d value / d p_true
        d_logits = p_true * (d_p - np.sum(d_p * p_true, axis=1, keepdims=True))
        grad = np.concatenate([(X.T @ d_logits + weights).ravel(), d_logits.sum(axis=0)])
        return value, grad

    def fit(self, X, y):
        """Fit to features ``X`` and given labels ``y`` (class indices)."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        matrix = self._matrix()
        n_classes = len(matrix)
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"y must be class indices in [0, {n_classes}) (the rows of "
                             f"noise_matrix).")
        self.classes_ = np.arange(n_classes)
        start = np.zeros((X.shape[1] + 1) * n_classes)
        result = minimize(self._objective, start, args=(X, y, matrix), jac=True,
                          method="L-BFGS-B",
                          options=dict(maxiter=self.max_iter, gtol=self.tol * len(y),
                                       ftol=np.finfo(np.float64).eps))
        if not result.success:
            warnings.warn(f"ForwardCorrectedLogisticRegression did not converge in "
                          f"{self.max_iter} iterations: {result.message}", ConvergenceWarning)
        self.n_iter_ = int(result.nit)
        self.coef_ = result.x[:-n_classes].reshape(X.shape[1], n_classes).T.copy()
        self.intercept_ = result.x[-n_classes:].copy()
        return self

    def predict_proba(self, X):
        """``P(true = classes_[j] | x)`` for each row of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return softmax(X @ self.coef_.T + self.intercept_, axis=1)

    def predict(self, X):
        """The most probable true class of each row of ``X``."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def out_of_fold_true_probabilities(features, labels, noise_matrix, *, n_folds=5, C=0.1,
                                   random_state=None):
    """Cross-validated ``P(true = j | x)``: a :class:`ForwardCorrectedLogisticRegression`
    with ``noise_matrix`` and penalty ``C`` on standardised ``features``, fitted to the
    given ``labels`` of the other folds (the folds of :func:`out_of_fold_probabilities`
    with the same ``n_folds`` and ``random_state``), on as many BLAS threads as torch
    uses.

    Where the labels are noisy, the logistic regression of
    :func:`out_of_fold_probabilities` estimates ``P(given | x)``, which heavy
    noise flattens towards the class frequencies; this one corrects for the
    noise, so that a sample's most probable class can be another than its
    given label even where most labels are wrong.

    Returns
    -------
    ndarray of shape (n_samples, n_classes), ``n_classes = len(noise_matrix)``
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.zeros((len(labels), len(noise_matrix)))
    with threadpool_limits(torch.get_num_threads()):
        for train, held_out in stratified_folds(labels, n_folds, random_state):
            model = make_pipeline(StandardScaler(),
                                  ForwardCorrectedLogisticRegression(noise_matrix, C=C))
            model.fit(features[train], labels[train])
            out[held_out] = model.predict_proba(features[held_out])
    return out
