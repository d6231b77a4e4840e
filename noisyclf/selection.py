"""Sample selection with a two-component Gaussian mixture (paper section 4.1, panel b1).

Deep networks fit clean labels before noisy ones (the memorisation effect),
so the per-sample loss of a correctly labelled sample tends to be small.  A
two-component GMM fitted to the distribution of per-sample losses separates
the two populations; the posterior probability of the low-mean component is
each sample's probability of being correctly labelled, ``w_i = p(k=0 | l_i)``.
"""

import numpy as np
from sklearn.mixture import GaussianMixture

__all__ = ["gmm_clean_probability", "label_issue_mask", "normalise_losses"]


def normalise_losses(losses):
    """Min-max normalise one epoch's per-sample losses to [0, 1].

    DivideMix (Li et al., 2020, ``eval_train``) and the authors' code
    (``eval_train_gmm``) normalise each epoch's losses this way before
    averaging epochs, so that the epochs weigh alike.  Constant losses map to
    zeros; non-finite entries (a diverged sample) map to 1, the worst loss.

    Examples
    --------
    >>> normalise_losses([1.0, 3.0, 2.0])
    array([0. , 1. , 0.5])
    """
    losses = np.asarray(losses, dtype=np.float64).ravel()
    finite = np.isfinite(losses)
    if not finite.any():
        return np.ones_like(losses)
    lo, hi = losses[finite].min(), losses[finite].max()
    out = np.ones_like(losses)
    out[finite] = (losses[finite] - lo) / (hi - lo) if hi - lo > 1e-12 else 0.0
    return out


def gmm_clean_probability(losses, *, random_state=None, max_iter=100, reg_covar=5e-4, tol=1e-3,
                          normalise=True):
    """Probability that each sample is correctly labelled, from its loss.

    The losses are min-max normalised to [0, 1] (unless ``normalise=False``:
    already normalised per epoch and averaged, as DivideMix feeds its GMM)
    and a 2-component :class:`~sklearn.mixture.GaussianMixture` is fitted to
    them, as in DivideMix (Li et al., 2020), which the paper follows.  The component with
    the lower mean is the clean one; its posterior is returned.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses against the given labels (e.g. averaged over the
        last training epochs).  Must be finite.
    random_state : int, RandomState instance or None, default=None
        Seeds the GMM's initialisation.
    max_iter, reg_covar, tol : GaussianMixture settings
        ``reg_covar=5e-4`` as in DivideMix keeps a collapsed component stable.
    normalise : bool, default=True
        Min-max normalise ``losses`` before fitting.

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        ``p(clean | loss)`` in [0, 1].  When all losses are equal (nothing to
        separate) every weight is 1.

    Examples
    --------
    >>> import numpy as np
    >>> losses = np.r_[np.full(8, 0.1), np.full(2, 2.0)]
    >>> np.round(gmm_clean_probability(losses, random_state=0), 2)
    array([1., 1., 1., 1., 1., 1., 1., 1., 0., 0.])
    """
    losses = np.asarray(losses, dtype=np.float64).ravel()
    if losses.size == 0:
        raise ValueError("losses must not be empty.")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses must be finite; got NaN or inf.")
    lo, hi = losses.min(), losses.max()
    if hi - lo <= 1e-12 or losses.size < 2:
        return np.ones_like(losses)
    normalised = ((losses - lo) / (hi - lo) if normalise else losses).reshape(-1, 1)
    gmm = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
        random_state=random_state,
    )
    gmm.fit(normalised)
    clean = int(np.argmin(gmm.means_.ravel()))
    return gmm.predict_proba(normalised)[:, clean]


def label_issue_mask(sample_weights, threshold=0.5):
    """Boolean mask of samples whose label is judged wrong (``weight < threshold``).

    Examples
    --------
    >>> label_issue_mask([0.9, 0.2, 0.5])
    array([False,  True, False])
    """
    return np.asarray(sample_weights) < threshold
