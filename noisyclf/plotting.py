"""Visualisations of a fitted :class:`~noisyclf.ContrastiveNoisyClassifier`.

Display objects in scikit-learn's style (as
:class:`~sklearn.metrics.ConfusionMatrixDisplay`): the constructor stores
the data, :meth:`plot` draws it and keeps the matplotlib artists as
attributes (``ax_``, ``figure_``, ...), and the ``from_estimator``
classmethod computes the data from a fitted estimator and plots it.
matplotlib is imported only when something is drawn.

* :class:`GMMSelectionDisplay`: the per-sample losses a two-component GMM
  separated (section 4.1 and Figure 4 of the paper), with the two fitted
  component densities and the loss at which ``p(clean) = 0.5``.
* :class:`TrainingCurvesDisplay`: the training loss per epoch of every
  phase that ``fit`` ran.
"""

import numbers

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.validation import check_is_fitted

from ._input import check_training_labels

__all__ = ["GMMSelectionDisplay", "TrainingCurvesDisplay"]

_WHICH = {
    "given": ("label_quality_", "normalised loss against the given labels"),
    "pseudo": ("sample_weights_", "normalised loss against the pseudo-labels"),
}
_PHASES = {
    "a1": "a1 SimCLR pre-training",
    "a2": "a2 classifier",
    "b1": "b1 pseudo-label head",
    "b2": "b2 weighted SupCon",
    "b3": "b3 final classifier",
}
_CLEAN_COLOR, _NOISY_COLOR = "tab:blue", "tab:red"


def _check_which(which):
    if which not in _WHICH:
        raise ValueError(f"which must be 'given' or 'pseudo'; got {which!r}.")




def _log_component_densities(x, weights, means, variances):
    """log(w_k N(x; m_k, v_k)) for each component k, shape (len(x), n_components)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    return (np.log(weights) - 0.5 * np.log(2 * np.pi * variances)
            - (x - means) ** 2 / (2 * variances))


def _clean_posterior(x, weights, means, variances):
    """p(component 0 | x) of a 2-component 1-D mixture (component 0: clean)."""
    log_dens = _log_component_densities(x, weights, means, variances)
    return 1.0 / (1.0 + np.exp(np.clip(log_dens[:, 1] - log_dens[:, 0], -700, 700)))


def _posterior_threshold(weights, means, variances, low, high):
    """Smallest loss in [means[0], high] (else [low, high]) where p(clean) falls to 0.5.

    Component 0 is the clean (lower-mean) one.  None when the posterior does
    not cross 0.5 there.
    """
    from scipy.optimize import brentq

    def gap(x):
        return _clean_posterior([x], weights, means, variances)[0] - 0.5

    for start in (max(low, min(means[0], high)), low):
        grid = np.linspace(start, high, 513)
        sign = _clean_posterior(grid, weights, means, variances) >= 0.5
        crossings = np.flatnonzero(sign[:-1] & ~sign[1:])
        if crossings.size:
            i = crossings[0]
            return float(brentq(gap, grid[i], grid[i + 1], xtol=1e-10))
    return None


class GMMSelectionDisplay:
    """Per-sample losses, the two-component GMM fitted to them and its threshold.

    Phase a2's losses against the given labels (``which="given"``) give the
    estimator's ``label_quality_`` and ``label_issues_``; phase b1's losses
    against the pseudo-labels (``which="pseudo"``) give ``sample_weights_``.
    In both, a 2-component Gaussian mixture on the per-sample losses splits
    the small-loss (clean) samples from the large-loss (noisy) ones
    (DivideMix; Figure 4 of the paper).  This display draws the histogram of
    those losses, the two component densities ``n * bin_width * w_k *
    N(loss; mu_k, sigma_k^2)`` on the histogram's count scale and a vertical
    line at the loss where the GMM's ``p(clean | loss)`` falls to 0.5.  When
    the samples' truth is known (``is_clean``), the histogram is stacked:
    truly clean samples below, truly noisy ones above.

    Build it with :meth:`from_estimator`; the constructor only stores data.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        The per-sample losses the GMM was fitted to.
    posterior : array-like of shape (n_samples,) or None, default=None
        The estimator's ``p(clean | loss)`` for each sample; when given, the
        threshold line's legend entry counts the samples below 0.5.
    gmm_weights, gmm_means, gmm_variances : array-like of shape (2,) or None, default=None
        Mixing weights, means and variances of the two components, the clean
        (lower-mean) one first.  None draws no component densities.
    threshold : float or None, default=None
        Loss at which ``p(clean | loss) = 0.5``; None draws no line.
    is_clean : array-like of bool, shape (n_samples,), or None, default=None
        Whether each sample's label is truly correct; None draws a single
        histogram.
    which : {"given", "pseudo"} or None, default=None
        Which labels the losses are against (labels the x axis).

    Attributes
    ----------
    bars_ : list of matplotlib BarContainer
        The histogram: one container, or two (truly clean, truly noisy) when
        ``is_clean`` is given.
    component_lines_ : list of matplotlib Line2D or None
        The clean and the noisy component's scaled density.
    threshold_line_ : matplotlib Line2D or None
        The vertical line at ``threshold``.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    noisyclf.selection.gmm_clean_probability : The GMM the estimator fits.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
    >>> from noisyclf.plotting import GMMSelectionDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:200], y[:200]
    >>> y_noisy = make_noisy_labels(y, "symmetric", 0.3, random_state=0)
    >>> clf = ContrastiveNoisyClassifier(
    ...     phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=3,
    ...     warmup_epochs=1, gmm_epochs=2, random_state=0).fit(X, y_noisy)
    >>> disp = GMMSelectionDisplay.from_estimator(clf, which="given", y=y_noisy, y_true=y)
    >>> len(disp.bars_), len(disp.component_lines_)
    (2, 2)
    >>> plt.close(disp.figure_)
    """

    def __init__(self, losses, posterior=None, *, gmm_weights=None, gmm_means=None,
                 gmm_variances=None, threshold=None, is_clean=None, which=None):
        self.losses = losses
        self.posterior = posterior
        self.gmm_weights = gmm_weights
        self.gmm_means = gmm_means
        self.gmm_variances = gmm_variances
        self.threshold = threshold
        self.is_clean = is_clean
        self.which = which

    def plot(self, ax=None, *, bins=50):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        bins : int, default=50
            Number of equal-width histogram bins over the range of the losses.

        Returns
        -------
        display : GMMSelectionDisplay
        """
        check_matplotlib_support("GMMSelectionDisplay.plot")
        import matplotlib.pyplot as plt

        if not isinstance(bins, numbers.Integral) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"bins must be a positive integer; got {bins!r}.")
        if self.which is not None:
            _check_which(self.which)
        losses = np.asarray(self.losses, dtype=np.float64).ravel()
        n_samples = len(losses)
        if ax is None:
            _, ax = plt.subplots()
        edges = np.histogram_bin_edges(losses, bins=int(bins))

        if self.is_clean is None:
            *_, bars = ax.hist(losses, bins=edges, color="0.7", label=f"samples ({n_samples})")
            self.bars_ = [bars]
        else:
            is_clean = np.asarray(self.is_clean, dtype=bool).ravel()
            if len(is_clean) != n_samples:
                raise ValueError(
                    f"is_clean has {len(is_clean)} entries for {n_samples} losses.")
            groups = [losses[is_clean], losses[~is_clean]]
            *_, bars = ax.hist(
                groups, bins=edges, stacked=True, color=[_CLEAN_COLOR, _NOISY_COLOR],
                alpha=0.45, label=[f"truly clean ({len(groups[0])})",
                                   f"truly noisy ({len(groups[1])})"])
            self.bars_ = list(bars)

        self.component_lines_ = None
        if self.gmm_means is not None:
            weights = np.asarray(self.gmm_weights, dtype=np.float64).ravel()
            means = np.asarray(self.gmm_means, dtype=np.float64).ravel()
            variances = np.asarray(self.gmm_variances, dtype=np.float64).ravel()
            grid = np.linspace(edges[0], edges[-1], 400)
            scale = n_samples * (edges[-1] - edges[0]) / int(bins)
            densities = np.exp(_log_component_densities(grid, weights, means, variances)) * scale
            self.component_lines_ = [
                ax.plot(grid, densities[:, k], color=color, lw=2,
                        label=f"{name} component (mean {means[k]:.2f})")[0]
                for k, (name, color) in enumerate([("clean", _CLEAN_COLOR),
                                                    ("noisy", _NOISY_COLOR)])
            ]

        self.threshold_line_ = None
        if self.threshold is not None:
            label = f"p(clean) = 0.5 at {self.threshold:.3f}"
            if self.posterior is not None:
                flagged = int(np.sum(np.asarray(self.posterior) < 0.5))
                label += f" ({flagged} of {n_samples} flagged)"
            self.threshold_line_ = ax.axvline(self.threshold, color="k", ls="--", lw=1.5,
                                              label=label)

        ax.set_xlabel(_WHICH[self.which][1] if self.which else "normalised loss")
        ax.set_ylabel("samples")
        ax.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, which="given", y=None, y_true=None, bins=50,
                       ax=None):
        """Draw the losses one of a fitted estimator's GMMs separated.

        A 2-component :class:`~sklearn.mixture.GaussianMixture` (``reg_covar=5e-4``,
        ``random_state=0``) is refitted to ``estimator.gmm_losses_[which]``
        for the component densities and the threshold; with the estimator's
        settings, its split is the estimator's up to the initialisation seed.

        Parameters
        ----------
        estimator : ContrastiveNoisyClassifier
            A fitted estimator.
        which : {"given", "pseudo"}, default="given"
            ``"given"``: a2's losses against the labels passed to ``fit``,
            the GMM of ``label_quality_``; ``"pseudo"``: b1's losses against
            ``pseudo_labels_``, the GMM of ``sample_weights_``.
        y : array-like of shape (n_samples,), default=None
            The labels passed to ``fit``.  Needed with ``which="given"`` and
            ``y_true``, to tell which given labels are truly correct; not used
            otherwise.
        y_true : array-like of shape (n_samples,), default=None
            The true labels of the training samples.  When given, the
            histogram is stacked into truly clean and truly noisy samples:
            ``y == y_true`` for ``which="given"``, ``pseudo_labels_ ==
            y_true`` for ``which="pseudo"``.
        bins : int, default=50
            Number of histogram bins.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.

        Returns
        -------
        display : GMMSelectionDisplay
        """
        check_matplotlib_support("GMMSelectionDisplay.from_estimator")
        _check_which(which)
        check_is_fitted(estimator, "label_quality_")
        posterior_attr = _WHICH[which][0]
        gmm_losses = getattr(estimator, "gmm_losses_", {})
        if which not in gmm_losses or not hasattr(estimator, posterior_attr):
            raise ValueError(
                f"The estimator has no {posterior_attr} (its fit stopped before that GMM, "
                f"interrupted in phase {getattr(estimator, 'interrupted_phase_', None)}); "
                f"which={which!r} cannot be drawn."
            )
        losses = np.asarray(gmm_losses[which], dtype=np.float64).ravel()
        n_samples = len(losses)
        if y is not None:
            y = check_training_labels(y, "y", n_samples)
        is_clean = None
        if y_true is not None:
            y_true = check_training_labels(y_true, "y_true", n_samples)
            if which == "given":
                if y is None:
                    raise ValueError(
                        "which='given' with y_true also needs y, the labels passed to fit, "
                        "to tell which given labels are truly correct.")
                is_clean = y == y_true
            else:
                is_clean = np.asarray(estimator.pseudo_labels_) == y_true

        posterior = np.asarray(getattr(estimator, posterior_attr))
        # which="given": the unlabeled samples (fit's y = unlabeled_label) have no loss
        labeled = estimator.labeled_ if which == "given" else np.ones(n_samples, bool)
        if not labeled.all():
            losses, posterior = losses[labeled], posterior[labeled]
            is_clean = None if is_clean is None else is_clean[labeled]
            n_samples = len(losses)
        params = dict(gmm_weights=None, gmm_means=None, gmm_variances=None, threshold=None)
        if np.ptp(losses) > 1e-12 and n_samples >= 2:
            gmm = GaussianMixture(n_components=2, reg_covar=5e-4, random_state=0)
            gmm.fit(losses.reshape(-1, 1))
            order = np.argsort(gmm.means_.ravel())
            weights = gmm.weights_[order]
            means = gmm.means_.ravel()[order]
            variances = gmm.covariances_.ravel()[order]
            params = dict(
                gmm_weights=weights, gmm_means=means, gmm_variances=variances,
                threshold=_posterior_threshold(weights, means, variances,
                                               losses.min(), losses.max()),
            )
        display = cls(losses, posterior, is_clean=is_clean,
                      which=which, **params)
        return display.plot(ax=ax, bins=bins)


class TrainingCurvesDisplay:
    """Training loss per epoch of every phase of a fit.

    One axes, one line per phase, the phases laid end to end in the order
    ``fit`` ran them (a1, a2, b1, b2, b3): the x axis counts epochs over the
    whole fit, so each phase occupies its own stretch.  The phases minimise
    different losses (NT-Xent in a1, the supervised ``loss`` in a2, b1 and
    b3, weighted SupCon in b2), so their levels are not comparable; each
    curve shows whether its own phase converged.  ELR's loss can be negative.

    Build it with :meth:`from_estimator`; the constructor only stores data.

    Parameters
    ----------
    curves : dict of str to array-like of shape (n_epochs,)
        Training loss per epoch of each phase, in the order to draw; the
        keys label the lines (the phase names "a1".."b3" get a description).

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        One line per phase.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from noisyclf import ContrastiveNoisyClassifier
    >>> from noisyclf.plotting import TrainingCurvesDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ContrastiveNoisyClassifier(
    ...     phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=3,
    ...     warmup_epochs=1, gmm_epochs=2, random_state=0).fit(X[:200], y[:200])
    >>> disp = TrainingCurvesDisplay.from_estimator(clf)
    >>> list(disp.lines_)
    ['a1', 'a2', 'b1']
    >>> plt.close(disp.figure_)
    """

    def __init__(self, curves):
        self.curves = curves

    def plot(self, ax=None):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.

        Returns
        -------
        display : TrainingCurvesDisplay
        """
        check_matplotlib_support("TrainingCurvesDisplay.plot")
        import matplotlib.pyplot as plt

        if not self.curves:
            raise ValueError("curves is empty: there is no phase to draw.")
        if ax is None:
            _, ax = plt.subplots()
        self.lines_ = {}
        offset = 0
        for name, losses in self.curves.items():
            losses = np.asarray(losses, dtype=np.float64).ravel()
            epochs = offset + np.arange(1, len(losses) + 1)
            self.lines_[name] = ax.plot(epochs, losses, marker="o", ms=3,
                                        label=_PHASES.get(name, str(name)))[0]
            offset += len(losses)
        ax.set_xlabel("epoch (phases end to end, in fit order)")
        ax.set_ylabel("training loss")
        ax.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, phases=None, ax=None):
        """Draw the training loss per epoch of a fitted estimator's phases.

        Parameters
        ----------
        estimator : ContrastiveNoisyClassifier
            A fitted estimator (its ``history_``).
        phases : str or list of str, default=None
            Phases to draw, among "a1", "a2", "b1", "b2", "b3"; they are drawn
            in fit order whatever the order given.  None draws every phase
            that ran.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.

        Returns
        -------
        display : TrainingCurvesDisplay
        """
        check_matplotlib_support("TrainingCurvesDisplay.from_estimator")
        check_is_fitted(estimator, "history_")
        history = estimator.history_
        ran = [name for name in _PHASES if history.get(name)]
        if phases is None:
            phases = ran
        else:
            phases = [phases] if isinstance(phases, str) else list(phases)
            unknown = [p for p in phases if p not in _PHASES]
            if unknown:
                raise ValueError(
                    f"Unknown phases {unknown}; choose among {list(_PHASES)}.")
            missing = [p for p in phases if p not in ran]
            if missing:
                raise ValueError(
                    f"Phases {missing} did not run in this fit; it ran {ran}.")
            phases = [p for p in _PHASES if p in phases]
        if not phases:
            raise ValueError("The estimator's history_ has no epoch to draw.")
        curves = {p: [row.get("train_loss", np.nan) for row in history[p]] for p in phases}
        return cls(curves).plot(ax=ax)
