"""Warnings and errors of noisyclf (as :mod:`sklearn.exceptions` holds scikit-learn's)."""

__all__ = ["CollectiveError", "DivergenceError", "DivergenceWarning", "UnreadableItemError",
           "UnreadableItemWarning"]


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


class UnreadableItemError(OSError, ValueError):
    """An item of a Dataset ``X`` could not be read.

    Its ``__getitem__`` raised (e.g. PIL on a truncated or corrupt image
    file), or the PIL image it returned could not be decoded.  The message
    names the item; the original exception is ``__cause__`` (from a
    DataLoader worker: a copy, with the worker's traceback as a note).
    An ``OSError``, as a file that cannot be read, and a ``ValueError``, as
    bad input data.

    Attributes
    ----------
    index : int or None
        The item's index in the Dataset ``X``.
    path : str or None
        The item's file, where the Dataset lists its files
        (``ImageFolder.samples[index][0]``).
    """

    def __init__(self, message, *, index=None, path=None):
        super().__init__(message)
        self.index = index
        self.path = path


class UnreadableItemWarning(UserWarning):
    """``fit`` left out the items of a Dataset ``X`` that could not be read
    (``on_bad_item="skip"``); the warning lists them."""


class CollectiveError(RuntimeError):
    """A collective of a data-parallel fit failed: another process failed or stopped
    responding (it closed its connections, or the collective timed out).  The message
    names the failed process and its error where that process could record it."""
