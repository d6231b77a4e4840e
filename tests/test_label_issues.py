"""Tests of ContrastiveNoisyClassifier.find_label_issues (cleanlab-style DataFrame)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

pd = pytest.importorskip("pandas")

COLUMNS = ["is_label_issue", "label_quality", "given_label", "predicted_label"]


@pytest.fixture(scope="module")
def fitted():
    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    y_noisy = make_noisy_labels(y, "symmetric", 0.3, random_state=0)
    clf = ContrastiveNoisyClassifier(
        phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=3,
        warmup_epochs=1, gmm_epochs=2, random_state=0, device="cpu").fit(X, y_noisy)
    return clf, X, y_noisy, y


def test_columns_dtypes_and_values(fitted):
    clf, _, y_noisy, _ = fitted
    issues = clf.find_label_issues(y_noisy)
    assert isinstance(issues, pd.DataFrame)
    assert list(issues.columns) == COLUMNS
    assert issues.index.equals(pd.RangeIndex(200))
    assert issues["is_label_issue"].dtype == bool
    assert issues["label_quality"].dtype == np.float64
    assert issues["given_label"].dtype == clf.classes_.dtype
    assert issues["predicted_label"].dtype == clf.pseudo_labels_.dtype
    np.testing.assert_array_equal(issues["is_label_issue"], clf.label_issues_)
    np.testing.assert_array_equal(issues["label_quality"], clf.label_quality_)
    np.testing.assert_array_equal(issues["given_label"], y_noisy)
    np.testing.assert_array_equal(issues["predicted_label"], clf.pseudo_labels_)
    np.testing.assert_array_equal(issues["is_label_issue"], issues["label_quality"] < 0.5)
    # A fresh frame each call: editing it leaves the fitted attributes alone.
    issues.loc[:, "label_quality"] = -1.0
    assert (clf.label_quality_ >= 0).all()


def test_without_y_leaves_given_label_out(fitted):
    clf, _, _, _ = fitted
    issues = clf.find_label_issues()
    assert list(issues.columns) == ["is_label_issue", "label_quality", "predicted_label"]
    assert len(issues) == 200


def test_sorting_ranks_most_suspicious_first(fitted):
    clf, _, y_noisy, _ = fitted
    ranked = clf.find_label_issues(y_noisy).sort_values("label_quality")
    np.testing.assert_array_equal(ranked.index, np.argsort(clf.label_quality_, kind="stable"))
    n_issues = int(clf.label_issues_.sum())
    assert 0 < n_issues < 200
    assert ranked["is_label_issue"].iloc[:n_issues].all()
    assert not ranked["is_label_issue"].iloc[n_issues:].any()
    assert ranked["label_quality"].iloc[0] == clf.label_quality_.min()


@pytest.mark.parametrize("y_kind", [list, pd.Series])
def test_y_as_list_or_series(fitted, y_kind):
    clf, _, y_noisy, _ = fitted
    issues = clf.find_label_issues(y_kind(y_noisy))
    np.testing.assert_array_equal(issues["given_label"], y_noisy)
    assert issues["given_label"].dtype == clf.classes_.dtype


def test_given_label_takes_classes_dtype(fitted):
    clf, _, y_noisy, _ = fitted
    issues = clf.find_label_issues(y_noisy.astype(np.float64))
    assert issues["given_label"].dtype == clf.classes_.dtype
    np.testing.assert_array_equal(issues["given_label"], y_noisy)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(199, dtype=int), "y has 199 labels but fit saw 200 samples"),
    (np.zeros((200, 1), dtype=int), "y must be 1-D"),
    (np.r_[np.zeros(199, dtype=int), 42], r"labels not seen in fit: \[42\]"),
    (np.array(["a"] * 200), "labels not seen in fit"),
])
def test_bad_y(fitted, bad, match):
    clf, _, _, _ = fitted
    with pytest.raises(ValueError, match=match):
        clf.find_label_issues(bad)


def test_unfitted():
    with pytest.raises(NotFittedError):
        ContrastiveNoisyClassifier().find_label_issues()


def test_side_by_side_with_cleanlab(fitted):
    filter_ = pytest.importorskip("cleanlab.filter")
    clf, X, y_noisy, y = fitted
    issues = clf.find_label_issues(y_noisy)
    labels = np.searchsorted(clf.classes_, y_noisy)
    pred_probs = clf.predict_proba(X)  # in-sample: shape check only
    mask = filter_.find_label_issues(labels, pred_probs)
    assert mask.dtype == bool and mask.shape == issues["is_label_issue"].shape
    issues["cleanlab_issue"] = mask
    table = pd.crosstab(issues["is_label_issue"], issues["cleanlab_issue"])
    assert table.to_numpy().sum() == 200
    # Precision of each list against the true flips, as the example reports.
    truly_noisy = y_noisy != y
    for column in ("is_label_issue", "cleanlab_issue"):
        flagged = issues[column].to_numpy()
        if flagged.any():
            assert 0.0 <= truly_noisy[flagged].mean() <= 1.0
