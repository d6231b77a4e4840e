"""Unlabeled samples (``y == -1``, scikit-learn's semi-supervised convention): a1 and
phase b use every sample, a2 (and bootstrapping) the labeled ones only.

The accuracy gained from unlabeled samples is measured by
``benchmarks/bench_unlabeled.py``; these tests check where each sample goes, what the
fitted attributes hold for unlabeled samples, and the errors.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from noisyclf import ContrastiveNoisyClassifier, _phases
from noisyclf.plotting import GMMSelectionDisplay

TINY = dict(image_shape=(1, 8, 8), pretrain_epochs=2, max_epochs=3, finetune_epochs=1,
            warmup_epochs=1, gmm_epochs=2, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240].astype(np.float32), y[:240]


@pytest.fixture(scope="module")
def partly(digits):
    """Every third sample unlabeled."""
    y = digits[1].copy()
    y[::3] = -1
    return y


@pytest.fixture()
def trained(monkeypatch):
    """Records the samples, labels and weights each supervised phase trains on."""
    seen = {}
    real_fit = _phases.fit_net

    def spy(run, net, phase, stream, data, y):
        seen[phase] = dict(n=len(data["index"]), y=y.numpy().copy(),
                           weight=data["sample_weight"].numpy().copy(),
                           x=np.asarray(data["x"]).copy())
        return real_fit(run, net, phase, stream, data, y)

    monkeypatch.setattr(_phases, "fit_net", spy)
    real_pretrain = _phases.pretrain

    def pretrain(run, X):
        seen["a1"] = dict(n=len(X))
        return real_pretrain(run, X)

    monkeypatch.setattr(_phases, "pretrain", pretrain)
    return seen


def _fit(X, y, **params):
    return ContrastiveNoisyClassifier(**{**TINY, **params}).fit(X, y)


def test_a2_trains_on_the_labeled_samples_and_phase_b_on_all(digits, partly, trained):
    X, _ = digits
    clf = _fit(X, partly, phases="full")
    labeled = partly != -1
    np.testing.assert_array_equal(clf.labeled_, labeled)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert trained["a1"]["n"] == len(X)
    assert trained["a2"]["n"] == labeled.sum()
    np.testing.assert_array_equal(trained["a2"]["y"], partly[labeled])
    np.testing.assert_array_equal(trained["a2"]["x"], X[labeled].reshape(-1, 1, 8, 8))
    for phase in ("b1", "b2", "b3"):
        assert trained[phase]["n"] == len(X), phase
    np.testing.assert_array_equal(trained["b3"]["y"],
                                  np.searchsorted(clf.classes_, clf.pseudo_labels_))


def test_fitted_attributes_cover_every_sample(digits, partly):
    X, _ = digits
    clf = _fit(X, partly, phases="full")
    labeled = partly != -1
    for name in ("pseudo_labels_", "sample_weights_", "label_quality_", "label_issues_"):
        assert len(getattr(clf, name)) == len(X), name
    assert np.isnan(clf.label_quality_[~labeled]).all()
    assert np.isfinite(clf.label_quality_[labeled]).all()
    assert not clf.label_issues_[~labeled].any()
    assert np.isfinite(clf.sample_weights_).all()
    assert set(clf.pseudo_labels_) <= set(clf.classes_)
    assert np.isnan(clf.gmm_losses_["given"][~labeled]).all()
    assert np.isfinite(clf.gmm_losses_["pseudo"]).all()
    assert np.isnan(clf.out_of_fold_proba_[~labeled]).all()
    np.testing.assert_allclose(clf.out_of_fold_proba_[labeled].sum(axis=1), 1.0)
    assert -1 not in clf.classes_


def test_auto_runs_phase_b_with_unlabeled_samples_and_says_why(digits, partly):
    clf = _fit(digits[0], partly)  # phases="auto"
    decision = clf.phase_b_decision_
    assert decision["run_phase_b"] is True
    assert f"{int((partly == -1).sum())} unlabeled samples" in decision["reason"]
    assert {"b2", "b3"} <= set(clf.history_)
    pretrain = _fit(digits[0], partly, phases="pretrain")
    assert pretrain.phase_b_decision_["run_phase_b"] is False
    assert "'auto' would run it" in pretrain.phase_b_decision_["reason"]
    assert pretrain.phase_b_decision_["auto_runs_phase_b"] is True


def test_the_noise_estimates_use_the_labeled_samples(digits, partly, monkeypatch):
    from noisyclf import confident_learning
    seen = {}
    real = confident_learning.estimate_label_noise

    def spy(labels, pred_probs, pseudo_labels=None, **kwargs):
        seen.update(labels=labels, pred_probs=pred_probs, features=kwargs["features"])
        return real(labels, pred_probs, pseudo_labels, **kwargs)

    monkeypatch.setattr(confident_learning, "estimate_label_noise", spy)
    clf = _fit(digits[0], partly, phases="pretrain")
    labeled = partly != -1
    np.testing.assert_array_equal(seen["labels"], partly[labeled])
    np.testing.assert_array_equal(seen["pred_probs"], clf.out_of_fold_proba_[labeled])
    assert len(seen["features"]) == labeled.sum()
    assert np.isnan(clf.out_of_fold_true_proba_[~labeled]).all()
    np.testing.assert_allclose(clf.out_of_fold_true_proba_[labeled].sum(axis=1), 1.0)


def test_noise_cv_folds_the_labeled_samples(digits, partly, trained):
    clf = _fit(digits[0], partly, phases="pretrain", noise_cv=2)
    labeled = partly != -1
    for fold in ("a2_fold1", "a2_fold2"):
        assert trained[fold]["n"] == labeled.sum()
    held_out = [trained[f]["weight"] == 0 for f in ("a2_fold1", "a2_fold2")]
    np.testing.assert_array_equal(held_out[0] ^ held_out[1], True)
    assert np.isnan(clf.out_of_fold_proba_[~labeled]).all()


@pytest.mark.parametrize("phases", ["baseline", "bootstrap"])
def test_baseline_and_bootstrap_train_on_the_labeled_samples(digits, partly, trained, phases):
    clf = _fit(digits[0], partly, phases=phases)
    labeled = partly != -1
    assert trained["a2"]["n"] == labeled.sum()
    assert trained["b1"]["n"] == len(partly)
    if phases == "bootstrap":
        assert trained["bootstrap"]["n"] == labeled.sum()
        np.testing.assert_array_equal(trained["bootstrap"]["y"], partly[labeled])
        assert np.isnan(clf.bootstrap_noise_prob_[~labeled]).all()
        assert np.isfinite(clf.bootstrap_noise_prob_[labeled]).all()
    assert len(clf.predict(digits[0])) == len(partly)


def test_sample_weight_follows_each_sample(digits, partly, trained):
    weight = np.linspace(0.5, 1.5, len(partly)).astype(np.float32)
    ContrastiveNoisyClassifier(**TINY, phases="full").fit(digits[0], partly,
                                                          sample_weight=weight)
    labeled = partly != -1
    np.testing.assert_allclose(trained["a2"]["weight"], weight[labeled])
    np.testing.assert_allclose(trained["b3"]["weight"], weight)


def test_a1_cache_ignores_which_samples_are_labeled(digits, partly, tmp_path, capsys):
    X, y = digits
    first = _fit(X, y, phases="pretrain", memory=str(tmp_path))
    capsys.readouterr()
    again = _fit(X, partly, phases="pretrain", memory=str(tmp_path), verbose=1)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("[noisyclf] a1 SimCLR pre-training: 2 epochs, loss")
    assert first_line.endswith("(loaded from memory)")
    for a, b in zip(first.encoder_net_.module_.parameters(),
                    again.encoder_net_.module_.parameters()):
        torch.testing.assert_close(a, b)
    assert first.pretrain_history_ == again.pretrain_history_


class _Items(torch.utils.data.Dataset):
    def __init__(self, X, y):
        self.X = torch.as_tensor(np.round(X * 255 / 16).astype(np.uint8)).reshape(-1, 1, 8, 8)
        self.y = y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], int(self.y[i])


def test_streamed_items_labelled_minus_one_are_unlabeled(digits, partly):
    X, _ = digits
    params = {**TINY, "image_shape": None, "phases": "pretrain"}
    stream = ContrastiveNoisyClassifier(**params).fit(_Items(X, partly))
    images = np.round(X * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    array = ContrastiveNoisyClassifier(**params).fit(images, partly)
    np.testing.assert_array_equal(stream.labeled_, partly != -1)
    np.testing.assert_allclose(stream.predict_proba(images), array.predict_proba(images),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(stream.label_quality_), partly == -1)


def test_noise_cv_on_a_streamed_dataset_as_on_arrays(digits, partly):
    X, _ = digits
    params = {**TINY, "image_shape": None, "phases": "pretrain", "noise_cv": 2}
    stream = ContrastiveNoisyClassifier(**params).fit(_Items(X, partly))
    images = np.round(X * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    array = ContrastiveNoisyClassifier(**params).fit(images, partly)
    assert {"a2_fold1", "a2_fold2"} <= set(stream.history_)
    np.testing.assert_allclose(stream.out_of_fold_proba_, array.out_of_fold_proba_,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stream.noise_matrix_, array.noise_matrix_, atol=1e-6)


def test_find_label_issues_marks_unlabeled_samples(digits, partly):
    clf = _fit(digits[0], partly, phases="pretrain")
    issues = clf.find_label_issues(partly)
    unlabeled = partly == -1
    assert list(issues.columns) == ["is_label_issue", "label_quality", "given_label",
                                    "predicted_label", "is_unlabeled"]
    np.testing.assert_array_equal(issues["is_unlabeled"], unlabeled)
    assert not issues["is_label_issue"][unlabeled].any()
    assert issues["label_quality"][unlabeled].isna().all()
    assert (issues["given_label"][unlabeled] == -1).all()
    np.testing.assert_array_equal(issues["given_label"][~unlabeled].astype(int),
                                  partly[~unlabeled])
    other = partly.copy()
    other[1] = -1
    with pytest.raises(ValueError, match="unlabeled"):
        clf.find_label_issues(other)
    labeled_fit = _fit(digits[0], digits[1], phases="pretrain")
    assert "is_unlabeled" not in labeled_fit.find_label_issues(digits[1]).columns


def test_gmm_display_of_the_given_labels_leaves_unlabeled_samples_out(digits, partly):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    clf = _fit(digits[0], partly, phases="pretrain")
    display = GMMSelectionDisplay.from_estimator(clf, which="given", y=partly,
                                                 y_true=np.where(partly == -1, 0, partly))
    assert len(display.losses) == int((partly != -1).sum())
    assert np.isfinite(display.losses).all()


def test_score_leaves_unlabeled_samples_out(digits, partly):
    X, y = digits
    clf = _fit(X, y, phases="pretrain")
    labeled = partly != -1
    assert clf.score(X, partly) == pytest.approx(clf.score(X[labeled], y[labeled]))
    weight = np.linspace(0.1, 1.0, len(y))
    assert clf.score(X, partly, sample_weight=weight) == pytest.approx(
        clf.score(X[labeled], y[labeled], sample_weight=weight[labeled]))
    with pytest.raises(ValueError, match="all 240 samples as unlabeled"):
        clf.score(X, np.full(len(y), -1))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X, y[:-1])


def test_no_labeled_sample_is_a_clear_error(digits):
    with pytest.raises(ValueError, match="all 240 samples as unlabeled.*unlabeled_label"):
        ContrastiveNoisyClassifier(**TINY).fit(digits[0], np.full(240, -1))


def test_one_labeled_class_is_a_clear_error(digits):
    y = np.full(240, -1)
    y[:10] = 3
    with pytest.raises(ValueError, match=r"at least 2 classes; got only \[3\].*230 more "
                                         r"samples are unlabeled.*unlabeled_label=None"):
        ContrastiveNoisyClassifier(**TINY).fit(digits[0], y)


def test_unlabeled_label_none_makes_minus_one_a_class(digits):
    X, y = digits
    y = np.where(y == 0, -1, y)
    clf = _fit(X, y, phases="pretrain", unlabeled_label=None)
    assert -1 in clf.classes_ and clf.labeled_.all()
    assert np.isfinite(clf.label_quality_).all()
    assert clf.score(X, y) == pytest.approx(np.mean(clf.predict(X) == y))


@pytest.mark.parametrize("make", [
    lambda y: np.array([str(v) if v >= 0 else -1 for v in y], dtype=object),  # int -1
    lambda y: np.array([str(v) if v >= 0 else "-1" for v in y]),              # "-1"
])
def test_string_labels_mark_unlabeled_samples_with_minus_one(digits, partly, make):
    labels = make(partly)
    clf = _fit(digits[0], labels, phases="pretrain")
    np.testing.assert_array_equal(clf.labeled_, partly != -1)
    assert sorted(clf.classes_) == [str(c) for c in range(10)]
    assert "-1" not in clf.classes_.tolist() and -1 not in clf.classes_.tolist()
    assert clf.score(digits[0], labels) == pytest.approx(
        np.mean(clf.predict(digits[0])[partly != -1] == labels[partly != -1]))


def test_a_label_of_ones_own_marks_unlabeled_samples(digits, partly):
    labels = np.array(["unknown" if v < 0 else f"d{v}" for v in partly], dtype=object)
    clf = _fit(digits[0], labels, phases="pretrain", unlabeled_label="unknown")
    np.testing.assert_array_equal(clf.labeled_, partly != -1)
    assert "unknown" not in clf.classes_.tolist()


def test_callers_labels_are_not_modified(digits, partly):
    y = partly.copy()
    _fit(digits[0], y, phases="pretrain")
    np.testing.assert_array_equal(y, partly)


def test_unlabeled_label_is_a_hyperparameter():
    from sklearn.base import clone
    clf = ContrastiveNoisyClassifier(unlabeled_label="?")
    assert clone(clf).unlabeled_label == "?"
    assert ContrastiveNoisyClassifier().unlabeled_label == -1
    with pytest.raises(ValueError, match="unlabeled_label"):
        ContrastiveNoisyClassifier(unlabeled_label=0.5).fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.parametrize("noise_cv", [None, 2])
def test_one_label_per_class_fits(digits, noise_cv):
    X, y = digits
    few = np.full(len(y), -1)
    first = [int(np.flatnonzero(y == c)[0]) for c in range(10)]
    few[first] = y[first]
    clf = _fit(X, few, noise_cv=noise_cv)
    assert clf.labeled_.sum() == 10
    np.testing.assert_allclose(clf.noise_matrix_.sum(axis=0), 1.0)
    assert clf.phase_b_decision_["run_phase_b"] is True
    assert np.isfinite(clf.out_of_fold_proba_[first]).all()


class _CountingItems(_Items):
    reads = 0

    def __getitem__(self, i):
        type(self).reads += 1
        return super().__getitem__(i)


def test_a_streamed_fit_checks_the_labels_before_reading_any_item(digits):
    X, y = digits
    items = _CountingItems(X, y)
    with pytest.raises(ValueError, match="all 240 samples as unlabeled"):
        ContrastiveNoisyClassifier(**{**TINY, "image_shape": None}).fit(
            items, np.full(len(y), -1))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ContrastiveNoisyClassifier(**{**TINY, "image_shape": None}).fit(
            items, np.where(np.arange(len(y)) < 5, 3, -1))
    assert _CountingItems.reads == 0


def test_a_failed_refit_keeps_the_earlier_fit(digits, partly):
    X, _ = digits
    clf = _fit(X, partly, phases="pretrain")
    labeled, quality = clf.labeled_.copy(), clf.label_quality_.copy()
    with pytest.raises(ValueError, match="unlabeled"):
        clf.fit(X, np.full(len(partly), -1))
    np.testing.assert_array_equal(clf.labeled_, labeled)
    np.testing.assert_array_equal(clf.label_quality_, quality)
    assert clf.find_label_issues(partly)["is_unlabeled"].sum() == (partly == -1).sum()


def test_score_reads_the_marker_fit_used(digits):
    X, y = digits
    y = np.where(y == 0, -1, y)
    clf = _fit(X, y, phases="pretrain", unlabeled_label=None)
    accuracy = clf.score(X, y)
    clf.set_params(unlabeled_label=-1)  # not refitted: -1 is still a class
    assert clf.score(X, y) == pytest.approx(accuracy)


def test_a_bool_marker_is_refused(digits, partly):
    with pytest.raises(ValueError, match="unlabeled_label.*bool"):
        ContrastiveNoisyClassifier(**TINY, unlabeled_label=True).fit(digits[0], partly)
