"""Tests of noisyclf.plotting (GMMSelectionDisplay, TrainingCurvesDisplay)."""

import copy

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels  # noqa: E402
from noisyclf.plotting import GMMSelectionDisplay, TrainingCurvesDisplay  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    y_noisy = make_noisy_labels(y, "symmetric", 0.3, random_state=0)
    clf = ContrastiveNoisyClassifier(
        phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=3,
        warmup_epochs=1, gmm_epochs=2, random_state=0, device="cpu").fit(X, y_noisy)
    return clf, y_noisy, y


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _heights(container):
    return np.array([patch.get_height() for patch in container])


def _refit(losses):
    gmm = GaussianMixture(n_components=2, reg_covar=5e-4, random_state=0)
    gmm.fit(np.asarray(losses).reshape(-1, 1))
    return gmm, int(np.argmin(gmm.means_.ravel()))


@pytest.mark.parametrize("which", ["given", "pseudo"])
def test_gmm_display_artists(fitted, which):
    clf, _, _ = fitted
    disp = GMMSelectionDisplay.from_estimator(clf, which=which, bins=20)
    ax = disp.ax_
    assert disp.figure_ is ax.figure
    assert len(disp.bars_) == 1
    assert len(ax.patches) == 20
    assert _heights(disp.bars_[0]).sum() == len(clf.gmm_losses_[which])
    np.testing.assert_array_equal(
        _heights(disp.bars_[0]), np.histogram(clf.gmm_losses_[which], bins=20)[0])
    assert len(disp.component_lines_) == 2
    assert disp.threshold_line_ is not None
    assert len(ax.lines) == 3  # two component densities + the threshold
    np.testing.assert_array_equal(disp.losses, clf.gmm_losses_[which])
    posterior = clf.label_quality_ if which == "given" else clf.sample_weights_
    np.testing.assert_array_equal(disp.posterior, posterior)
    flagged = int(np.sum(posterior < 0.5))
    assert f"({flagged} of 200 flagged)" in disp.threshold_line_.get_label()
    assert "pseudo" in ax.get_xlabel() if which == "pseudo" else "given" in ax.get_xlabel()


@pytest.mark.parametrize("which", ["given", "pseudo"])
def test_gmm_display_threshold_is_where_posterior_crosses_half(fitted, which):
    clf, _, _ = fitted
    losses = clf.gmm_losses_[which]
    disp = GMMSelectionDisplay.from_estimator(clf, which=which)
    gmm, clean = _refit(losses)
    t = disp.threshold
    assert losses.min() <= t <= losses.max()
    assert gmm.predict_proba([[t]])[0, clean] == pytest.approx(0.5, abs=1e-6)
    assert gmm.predict_proba([[t - 1e-3]])[0, clean] > 0.5
    assert gmm.predict_proba([[t + 1e-3]])[0, clean] < 0.5
    assert disp.threshold_line_.get_xdata()[0] == pytest.approx(t)
    # The refitted GMM and the estimator's (another seed) split alike.
    posterior = clf.label_quality_ if which == "given" else clf.sample_weights_
    assert np.mean((losses < t) == (posterior >= 0.5)) > 0.9


def test_gmm_display_component_densities_scaled_to_histogram(fitted):
    clf, _, _ = fitted
    losses = clf.gmm_losses_["given"]
    disp = GMMSelectionDisplay.from_estimator(clf, bins=25)
    gmm, clean = _refit(losses)
    order = [clean, 1 - clean]
    np.testing.assert_allclose(disp.gmm_means, gmm.means_.ravel()[order])
    bin_width = np.ptp(losses) / 25
    for line, k in zip(disp.component_lines_, order):
        x, dens = line.get_xdata(), line.get_ydata()
        expected = len(losses) * bin_width * gmm.weights_[k] * np.exp(
            gmm._estimate_log_prob(x.reshape(-1, 1))[:, k])
        np.testing.assert_allclose(dens, expected, rtol=1e-8)
    assert disp.component_lines_[0].get_color() != disp.component_lines_[1].get_color()


def test_gmm_display_given_split_by_truth(fitted):
    clf, y_noisy, y = fitted
    disp = GMMSelectionDisplay.from_estimator(clf, which="given", y=y_noisy, y_true=y, bins=10)
    clean = y_noisy == y
    losses = clf.gmm_losses_["given"]
    assert len(disp.bars_) == 2
    assert len(disp.ax_.patches) == 20
    edges = np.histogram_bin_edges(losses, bins=10)
    np.testing.assert_array_equal(_heights(disp.bars_[0]), np.histogram(losses[clean], edges)[0])
    np.testing.assert_array_equal(_heights(disp.bars_[1]), np.histogram(losses[~clean], edges)[0])
    assert _heights(disp.bars_[0]).sum() == clean.sum()
    assert _heights(disp.bars_[1]).sum() == (~clean).sum()
    np.testing.assert_array_equal(disp.is_clean, clean)
    labels = disp.ax_.get_legend_handles_labels()[1]
    assert f"truly clean ({clean.sum()})" in labels
    assert f"truly noisy ({(~clean).sum()})" in labels


def test_gmm_display_pseudo_split_by_truth(fitted):
    clf, _, y = fitted
    disp = GMMSelectionDisplay.from_estimator(clf, which="pseudo", y_true=y)
    clean = clf.pseudo_labels_ == y
    assert _heights(disp.bars_[0]).sum() == clean.sum()
    assert _heights(disp.bars_[1]).sum() == (~clean).sum()


def test_gmm_display_draws_on_given_ax(fitted):
    clf, _, _ = fitted
    fig, (ax0, ax1) = plt.subplots(1, 2)
    disp = GMMSelectionDisplay.from_estimator(clf, which="pseudo", ax=ax1, bins=7)
    assert disp.ax_ is ax1 and disp.figure_ is fig
    assert len(ax1.patches) == 7 and len(ax0.patches) == 0
    assert len(plt.get_fignums()) == 1


def test_gmm_display_constructor_without_gmm():
    disp = GMMSelectionDisplay(np.zeros(10)).plot(bins=3)
    assert disp.component_lines_ is None and disp.threshold_line_ is None
    assert _heights(disp.bars_[0]).sum() == 10
    assert disp.ax_.get_xlabel() == "normalised loss"


def test_gmm_display_constant_losses_draws_histogram_only(fitted):
    clf, _, _ = fitted
    flat = copy.copy(clf)
    flat.gmm_losses_ = dict(clf.gmm_losses_, given=np.full(200, 0.3))
    disp = GMMSelectionDisplay.from_estimator(flat)
    assert disp.component_lines_ is None and disp.threshold is None
    assert _heights(disp.bars_[0]).sum() == 200


@pytest.mark.parametrize("kwargs, match", [
    (dict(which="clean"), "which must be 'given' or 'pseudo'"),
    (dict(y_true=np.zeros(199)), "y_true has 199 labels"),
    (dict(which="pseudo", y_true=np.zeros(201)), "y_true has 201 labels"),
    (dict(y=np.zeros(3), y_true=np.zeros(200)), "y has 3 labels"),
    (dict(y_true=np.zeros((200, 1))), "y_true must be 1-D"),
    (dict(which="given", y_true=np.zeros(200)), "also needs y"),
    (dict(bins=0), "bins must be a positive integer"),
])
def test_gmm_display_bad_arguments(fitted, kwargs, match):
    clf, _, _ = fitted
    with pytest.raises(ValueError, match=match):
        GMMSelectionDisplay.from_estimator(clf, **kwargs)


def test_gmm_display_pseudo_missing_after_interrupted_fit(fitted):
    clf, _, _ = fitted
    partial = copy.copy(clf)
    del partial.sample_weights_
    partial.gmm_losses_ = {"given": clf.gmm_losses_["given"]}
    partial.interrupted_phase_ = "b1"
    with pytest.raises(ValueError, match="no sample_weights_.*phase b1"):
        GMMSelectionDisplay.from_estimator(partial, which="pseudo")
    GMMSelectionDisplay.from_estimator(partial, which="given")  # still drawable


@pytest.mark.parametrize("display", [GMMSelectionDisplay, TrainingCurvesDisplay])
def test_displays_unfitted(display):
    with pytest.raises(NotFittedError):
        display.from_estimator(ContrastiveNoisyClassifier())


def test_training_curves_one_line_per_phase_end_to_end(fitted):
    clf, _, _ = fitted
    disp = TrainingCurvesDisplay.from_estimator(clf)
    assert list(disp.lines_) == ["a1", "a2", "b1"]
    assert len(disp.ax_.lines) == 3
    assert disp.figure_ is disp.ax_.figure
    offset = 0
    for phase, line in disp.lines_.items():
        losses = [row["train_loss"] for row in clf.history_[phase]]
        np.testing.assert_allclose(line.get_ydata(), losses)
        np.testing.assert_array_equal(line.get_xdata(),
                                      offset + np.arange(1, len(losses) + 1))
        offset += len(losses)
    assert offset == 1 + 3 + 2  # pretrain_epochs + max_epochs + gmm_epochs
    labels = disp.ax_.get_legend_handles_labels()[1]
    assert labels[0].startswith("a1") and labels[2].startswith("b1")


def test_training_curves_phase_selection_and_ax(fitted):
    clf, _, _ = fitted
    fig, ax = plt.subplots()
    disp = TrainingCurvesDisplay.from_estimator(clf, phases=["b1", "a2"], ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert list(disp.lines_) == ["a2", "b1"]  # fit order
    assert len(ax.lines) == 2
    assert list(TrainingCurvesDisplay.from_estimator(clf, phases="a1").lines_) == ["a1"]


@pytest.mark.parametrize("phases, match", [
    (["a2", "c1"], r"Unknown phases \['c1'\]"),
    ("b3", r"Phases \['b3'\] did not run"),
])
def test_training_curves_bad_phases(fitted, phases, match):
    clf, _, _ = fitted
    with pytest.raises(ValueError, match=match):
        TrainingCurvesDisplay.from_estimator(clf, phases=phases)


def test_training_curves_constructor():
    disp = TrainingCurvesDisplay({"mine": [3.0, 2.0], "b2": [5.0, np.nan, 4.0]}).plot()
    np.testing.assert_array_equal(disp.lines_["b2"].get_xdata(), [3, 4, 5])
    assert disp.ax_.get_legend_handles_labels()[1] == ["mine", "b2 weighted SupCon"]
    with pytest.raises(ValueError, match="empty"):
        TrainingCurvesDisplay({}).plot()
