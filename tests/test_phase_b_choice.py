"""``phases="auto"``: phase b where the pseudo-labels are expected to beat the given labels,
and the estimates it decides by (``noise_matrix_``, ``noise_rate_``, ``phase_b_decision_``).

The decision is measured against the truth by ``benchmarks/bench_auto_mode.py``
(CIFAR-10 and digits); these tests check that the estimator does what the decision
says, that the estimates are what their formulas give, and that the noise matrix finds
a known corruption on a short digits fit.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from noisyclf import ContrastiveNoisyClassifier, _phases, confident_learning, make_noisy_labels
from noisyclf.confident_learning import (
    estimate_joint, expected_accuracy, noise_matrix_from_joint, noise_rate, true_label_posterior,
)

SHORT = dict(image_shape=(1, 8, 8), pretrain_epochs=30, max_epochs=10, finetune_epochs=3,
             warmup_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def a1_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("a1"))


@pytest.fixture(scope="module")
def flipped(digits):
    """30 % of every class flipped to the next class."""
    return make_noisy_labels(digits[1], "asymmetric", 0.3, random_state=0)


def _fit(X, y, memory, **params):
    return ContrastiveNoisyClassifier(**{**SHORT, **params}, memory=memory).fit(X, y)


def test_auto_is_the_default():
    assert ContrastiveNoisyClassifier().phases == "auto"


def test_auto_runs_phase_b_when_the_pseudo_labels_win_and_predicts_as_full(
        digits, flipped, a1_cache):
    X, _ = digits
    auto = _fit(X, flipped, a1_cache, phases="auto")
    decision = auto.phase_b_decision_
    assert decision["run_phase_b"] is True
    assert decision["expected_pseudo_accuracy"] > decision["expected_given_accuracy"]
    assert decision["reason"].startswith("ran phase b, b3 predicts")
    assert auto.classifier_net_ is not auto.pseudo_label_net_
    assert {"b2", "b3"} <= set(auto.history_)
    full = _fit(X, flipped, a1_cache, phases="full")
    np.testing.assert_array_equal(auto.predict_proba(X), full.predict_proba(X))


def test_auto_skips_phase_b_on_clean_labels_and_predicts_as_pretrain(digits, a1_cache):
    X, y = digits
    auto = _fit(X, y, a1_cache, phases="auto")
    decision = auto.phase_b_decision_
    assert decision["run_phase_b"] is False
    assert decision["expected_given_accuracy"] >= decision["expected_pseudo_accuracy"]
    assert decision["reason"].startswith("skipped phase b, a2 predicts")
    assert auto.classifier_net_ is auto.pseudo_label_net_
    assert "b2" not in auto.history_ and "b3" not in auto.history_
    pretrain = _fit(X, y, a1_cache, phases="pretrain")
    np.testing.assert_array_equal(auto.predict_proba(X), pretrain.predict_proba(X))


@pytest.mark.parametrize("phases, runs", [("full", True), ("pretrain", False),
                                          ("baseline", False)])
def test_every_mode_estimates_and_says_what_auto_would_do(digits, flipped, a1_cache, phases,
                                                          runs):
    clf = _fit(digits[0], flipped, a1_cache, phases=phases)
    decision = clf.phase_b_decision_
    assert decision["run_phase_b"] is runs
    would = "run" if decision["expected_pseudo_accuracy"] > decision[
        "expected_given_accuracy"] else "skip"
    assert f"'auto' would {would} it" in decision["reason"]
    assert decision["auto_runs_phase_b"] is (would == "run")
    assert clf.noise_matrix_.shape == (10, 10)
    assert 0.0 <= clf.noise_rate_ <= 1.0


def test_noise_matrix_finds_the_flips(digits, flipped, a1_cache):
    """Every column's largest off-diagonal entry is the class it was flipped to, and the
    diagonal and the noise rate are near 0.7 and 0.3 (a short fit: within 0.1; the
    benchmark measures the default fit against the truth)."""
    clf = _fit(digits[0], flipped, a1_cache, phases="pretrain")
    matrix = clf.noise_matrix_
    np.testing.assert_allclose(matrix.sum(axis=0), 1.0)
    off = matrix - np.diag(np.diag(matrix))
    np.testing.assert_array_equal(off.argmax(axis=0), (np.arange(10) + 1) % 10)
    assert np.mean(np.abs(np.diag(matrix) - 0.7)) <= 0.1
    assert clf.noise_rate_ == pytest.approx(np.mean(flipped != digits[1]), abs=0.1)
    clean = _fit(digits[0], digits[1], a1_cache, phases="pretrain")
    assert clean.noise_rate_ < 0.1 < clf.noise_rate_


def test_estimates_are_confident_learning_and_bayes_on_out_of_fold_probabilities(
        digits, flipped, a1_cache, monkeypatch):
    """The probabilities are a cross-validated logistic regression on a1's features of the
    training set; confident learning on them gives a noise matrix; the expected
    accuracies are Bayes' rule with that matrix and, as prior, the forward-corrected
    logistic regression on the same features and folds; ``noise_matrix_`` and
    ``noise_rate_`` are those of the joint that posterior implies."""
    seen = {}
    real = confident_learning.out_of_fold_probabilities

    def spy(features, labels, n_classes, **kwargs):
        seen.update(features=features, labels=labels, kwargs=kwargs,
                    probs=real(features, labels, n_classes, **kwargs))
        return seen["probs"]

    monkeypatch.setattr(confident_learning, "out_of_fold_probabilities", spy)
    clf = _fit(digits[0], flipped, a1_cache, phases="pretrain")
    # "pretrain": encoder_net_ is a1's net, which the features come from
    images = digits[0].reshape(-1, 1, 8, 8).astype(np.float32)
    np.testing.assert_allclose(seen["features"], _phases.embed(clf.encoder_net_, images),
                               rtol=1e-5, atol=1e-6)
    given = np.searchsorted(clf.classes_, flipped)
    np.testing.assert_array_equal(seen["labels"], given)
    probs = seen["probs"]
    np.testing.assert_array_equal(clf.out_of_fold_proba_, probs)
    matrix = noise_matrix_from_joint(estimate_joint(given, probs))
    true_probs = confident_learning.out_of_fold_true_probabilities(
        seen["features"], given, matrix, random_state=seen["kwargs"]["random_state"])
    np.testing.assert_allclose(clf.out_of_fold_true_proba_, true_probs)
    posterior = true_label_posterior(given, true_probs, matrix)
    joint = confident_learning.posterior_joint(given, posterior)
    np.testing.assert_allclose(clf.noise_matrix_, noise_matrix_from_joint(joint))
    assert clf.noise_rate_ == pytest.approx(noise_rate(joint))
    pseudo = np.searchsorted(clf.classes_, clf.pseudo_labels_)
    decision = clf.phase_b_decision_
    assert decision["expected_given_accuracy"] == pytest.approx(
        expected_accuracy(posterior, given))
    assert decision["expected_pseudo_accuracy"] == pytest.approx(
        expected_accuracy(posterior, pseudo))


def test_baseline_estimates_from_a2s_probabilities(digits, flipped, monkeypatch):
    """Without a1 there are no label-free features: a2's probabilities stand in."""
    monkeypatch.setattr(confident_learning, "out_of_fold_probabilities",
                        lambda *a, **k: pytest.fail("no a1 features in the baseline"))
    clf = _fit(digits[0], flipped, None, phases="baseline")
    given = np.searchsorted(clf.classes_, flipped)
    probs = clf.predict_proba(digits[0])
    np.testing.assert_allclose(clf.out_of_fold_proba_, probs, rtol=1e-6)
    matrix = noise_matrix_from_joint(estimate_joint(given, probs))
    np.testing.assert_allclose(clf.noise_matrix_, matrix)
    assert clf.out_of_fold_true_proba_ is None  # the prior is a2's probabilities
    posterior = true_label_posterior(given, clf.out_of_fold_proba_, matrix)
    assert clf.phase_b_decision_["expected_given_accuracy"] == pytest.approx(
        expected_accuracy(posterior, given))


@pytest.mark.parametrize("phases", ["pretrain", "baseline"])
def test_noise_cv_cross_fits_a2_with_weight_zero_on_each_fold(digits, flipped, a1_cache,
                                                              monkeypatch, phases):
    """``noise_cv=k``: k more a2 fits ("a2_fold<k>"), from the encoder a2 started from, each
    with sample weight 0 on one fold of a stratified partition; the fold's probabilities
    are that net's, and the estimates are confident learning on them."""
    X = digits[0][:300]
    y = flipped[:300]
    calls = []
    real = _phases.train_classifier

    def spy(run, phase, encoder, data, labels, **kwargs):
        start = {k: v.clone() for k, v in encoder.state_dict().items()}
        net = real(run, phase, encoder, data, labels, **kwargs)
        calls.append(dict(phase=phase, start=start, weight=data["sample_weight"].numpy(),
                          probs=_phases.predict_probabilities(net, data["x"])))
        return net

    monkeypatch.setattr(_phases, "train_classifier", spy)
    clf = _fit(X, y, a1_cache, phases=phases, noise_cv=3, max_epochs=3)
    a2, *folds = calls
    assert [c["phase"] for c in calls] == ["a2", "a2_fold1", "a2_fold2", "a2_fold3"]
    assert {"a2_fold1", "a2_fold2", "a2_fold3"} <= set(clf.history_)
    held_out = [np.flatnonzero(c["weight"] == 0) for c in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(held_out)), np.arange(len(y)))
    given = np.searchsorted(clf.classes_, y)
    for fold, rows in zip(folds, held_out):
        for name, value in a2["start"].items():  # same starting encoder as a2
            np.testing.assert_array_equal(fold["start"][name], value)
        np.testing.assert_array_equal(fold["weight"][np.setdiff1d(np.arange(len(y)), rows)],
                                      1.0)
        # stratified: every class's share of the fold is a third of it, to one sample
        counts = np.bincount(given[rows], minlength=10)
        assert np.all(np.abs(counts - np.bincount(given, minlength=10) / 3) <= 1)
        np.testing.assert_allclose(clf.out_of_fold_proba_[rows], fold["probs"][rows])
    np.testing.assert_allclose(clf.out_of_fold_proba_.sum(axis=1), 1.0)
    matrix = noise_matrix_from_joint(estimate_joint(given, clf.out_of_fold_proba_))
    # the prior: a1's features corrected for that matrix; the baseline (no a1) the folds'
    prior = clf.out_of_fold_proba_ if phases == "baseline" else clf.out_of_fold_true_proba_
    posterior = true_label_posterior(given, prior, matrix)
    assert clf.phase_b_decision_["expected_given_accuracy"] == pytest.approx(
        expected_accuracy(posterior, given))
    if phases == "baseline":  # confident learning's matrix
        np.testing.assert_allclose(clf.noise_matrix_, matrix)
    else:  # the joint that the posterior implies
        np.testing.assert_allclose(clf.noise_matrix_, noise_matrix_from_joint(
            confident_learning.posterior_joint(given, posterior)))


def test_noise_cv_epochs_shortens_the_folds_not_a2(digits, flipped, a1_cache):
    """``noise_cv_epochs``: each cross-fitted a2 trains that many epochs; a2 keeps
    ``max_epochs``, so the pseudo-labels are those of a fit without cross-fitting."""
    X, y = digits[0][:300], flipped[:300]
    short = _fit(X, y, a1_cache, phases="pretrain", noise_cv=2, noise_cv_epochs=3)
    plain = _fit(X, y, a1_cache, phases="pretrain", noise_cv=2)
    assert [len(short.history_[f"a2_fold{k}"]) for k in (1, 2)] == [3, 3]
    assert len(short.history_["a2"]) == SHORT["max_epochs"]
    assert len(plain.history_["a2_fold1"]) == SHORT["max_epochs"]
    np.testing.assert_array_equal(short.pseudo_labels_, plain.pseudo_labels_)
    assert not np.allclose(short.out_of_fold_proba_, plain.out_of_fold_proba_)


def test_noise_cv_must_be_at_least_two(digits):
    with pytest.raises(ValueError, match="noise_cv"):
        ContrastiveNoisyClassifier(noise_cv=1).fit(*digits)


@pytest.mark.parametrize("given, pseudo, runs", [(0.7, 0.8, True), (0.8, 0.7, False),
                                                 (0.75, 0.75, False)])
def test_auto_runs_phase_b_only_when_the_pseudo_labels_are_expected_to_win(given, pseudo,
                                                                          runs):
    noise = confident_learning.LabelNoise(np.eye(2), 0.0, given, pseudo, np.eye(2))
    assert _phases.phase_b_decision("auto", noise)["run_phase_b"] is runs
    assert _phases.phase_b_decision("full", noise)["run_phase_b"] is True
    assert _phases.phase_b_decision("pretrain", noise)["run_phase_b"] is False
    for phases in ("auto", "full", "pretrain", "baseline"):
        assert _phases.phase_b_decision(phases, noise)["auto_runs_phase_b"] is runs
    assert _phases.phase_b_decision("full", noise, n_unlabeled=3)["auto_runs_phase_b"] is True


def _label_setting(noise, pseudo_correct, n=4000, n_classes=10, n_features=16, seed=0):
    """Features of ``n`` samples (Gaussian around a random mean per true class), their
    true labels, given labels with symmetric ``noise`` and pseudo-labels correct at rate
    ``pseudo_correct``, and a cross-validated logistic regression's p(given | x)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_classes, n)
    features = rng.normal(size=(n_classes, n_features))[true] + rng.normal(size=(n, n_features))

    def flip(keep):
        other = (true + rng.integers(1, n_classes, n)) % n_classes
        return np.where(rng.random(n) < keep, true, other)

    given = flip(1 - noise)
    p_given = confident_learning.out_of_fold_probabilities(features, given, n_classes,
                                                           random_state=0)
    return features, given, flip(pseudo_correct), p_given


@pytest.mark.parametrize("noise, given_wins", [(0.2, True), (0.8, False)])
def test_expected_accuracies_rank_the_labels(noise, given_wins):
    """Given labels 80 % or 20 % correct against pseudo-labels 64 % correct: the
    expected accuracies, with the forward-corrected P(true | x) as prior, rank them as
    the truth does."""
    features, given, pseudo, p_given = _label_setting(noise, pseudo_correct=0.64)
    found = confident_learning.estimate_label_noise(given, p_given, pseudo,
                                                    features=features, random_state=0)
    assert (found.given_accuracy > found.pseudo_accuracy) is given_wins


def test_p_given_as_prior_favours_the_given_labels_at_high_noise():
    """Why the prior is P(true | x): at 80 % symmetric noise p(given | x) is nearly flat,
    and with it as prior the given labels (20 % correct) win against pseudo-labels
    64 % correct."""
    features, given, pseudo, p_given = _label_setting(0.8, pseudo_correct=0.64)
    found = confident_learning.estimate_label_noise(given, p_given, pseudo)
    assert found.given_accuracy > found.pseudo_accuracy


def test_auto_warmup_freezes_half_of_a2_where_most_given_labels_look_wrong(digits, a1_cache):
    """``warmup_epochs="auto"``: a2's encoder stays frozen for 5 epochs, or for half of
    ``max_epochs`` where a1's features say most given labels are wrong
    (that estimate is ``noise_rate_`` when ``noise_cv=None``); b3, on the
    pseudo-labels, keeps 5."""
    heavy = make_noisy_labels(digits[1], "symmetric", 0.8, random_state=0)
    for labels, phases, a2_warmup in [(digits[1], "pretrain", 5), (heavy, "full", 6)]:
        clf = _fit(digits[0], labels, a1_cache, phases=phases, warmup_epochs="auto",
                   max_epochs=12)
        assert (clf.noise_rate_ >= _phases.HEAVY_NOISE_RATE) == (a2_warmup == 6)
        assert clf.warmup_epochs_ == a2_warmup and clf.warmup_epochs == "auto"
        a2 = dict(clf.pseudo_label_net_.callbacks)
        assert _unfreezes_at(a2) == a2_warmup + 1
        assert [row["epoch"] for row in clf.history_["a2"]] == list(range(1, 13))
    assert _unfreezes_at(dict(clf.classifier_net_.callbacks)) == _phases.WARMUP_EPOCHS + 1


def _unfreezes_at(callbacks):
    """The epoch at which skorch's Unfreezer of a net's encoder fires (it keeps an integer
    ``at`` as a partial of its epoch test)."""
    return callbacks["unfreeze_encoder"].at.keywords["epoch"]
