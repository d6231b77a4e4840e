"""Warnings and errors of noisyclf (as :mod:`sklearn.exceptions` holds scikit-learn's)."""

__all__ = ["DivergenceError", "DivergenceWarning"]


class DivergenceWarning(UserWarning):
    """A training phase produced a NaN/inf loss and was stopped early.

    The phase's weights are restored from the end of its last finished epoch
    and ``fit`` goes on with the next phase, so the estimator stays usable
    and a grid search scores the point instead of crashing.
    """


class DivergenceError(FloatingPointError):
    """Raised inside a training phase when the loss becomes NaN or infinite.

    The estimator catches it, restores the weights of the last finished epoch
    (:meth:`noisyclf.nets.ContrastiveNet.restore_last_finite`) and emits a
    :class:`DivergenceWarning`.
    """
