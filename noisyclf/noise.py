"""Simulated label noise: symmetric, asymmetric (class-pair flips) and transition-matrix noise.

The symmetric and asymmetric settings follow the heuristic of Ma et al. (2020) used by
Ciortan, Dupuis & Peel (Section 4, "CIFAR10 and CIFAR100"): symmetric noise corrupts the
same fraction of labels in every class, each corrupted label going to another class chosen
uniformly; asymmetric noise flips labels between predetermined classes (for CIFAR-10 the
truck -> automobile, bird -> airplane, cat <-> dog, deer -> horse pairs; for CIFAR-100 a
circular shift within each super-class of 5 consecutive classes).

All functions are seeded through ``random_state`` and never touch NumPy's global random
state; the caller's arrays are never modified.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "CIFAR10_ASYMMETRIC_MAPPING",
    "actual_noise_rate",
    "asymmetric_mapping",
    "make_noisy_labels",
    "transition_matrix_from_labels",
]

#: Asymmetric CIFAR-10 flips: truck -> automobile, bird -> airplane, cat <-> dog,
#: deer -> horse (Patrini et al. 2017; Ma et al. 2020).
CIFAR10_ASYMMETRIC_MAPPING = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}

_NOISE_TYPES = ("symmetric", "asymmetric", "matrix")
_NAMED_MAPPINGS = ("cifar10", "cifar100")


def _check_random_state(random_state):
    """Return a ``np.random.RandomState`` that does not share NumPy's global state.

    ``None`` gives a fresh, OS-seeded ``RandomState`` (not the global singleton that
    :func:`sklearn.utils.check_random_state` would return); an int seeds a new one; a
    ``RandomState`` is used as is; a ``np.random.Generator`` is wrapped around its bit
    generator, so drawing from the result advances the caller's generator.
    """
    if random_state is None:
        return np.random.RandomState()
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(random_state.bit_generator)
    if isinstance(random_state, (bool, np.bool_)):
        raise ValueError(f"random_state must be None, an int, a RandomState or a Generator; "
                         f"got {random_state!r}.")
    if random_state is np.random or random_state is np.random.mtrand._rand:
        raise ValueError("random_state must not be NumPy's global random state "
                         "(np.random); pass an int or a RandomState instance.")
    return check_random_state(random_state)


def _check_labels(y, name="y"):
    """Validate a 1-D array of non-negative integer class ids; return it as an ndarray."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of class ids; got an array of "
                         f"shape {y.shape}.")
    if y.shape[0] == 0:
        raise ValueError(f"`{name}` must not be empty.")
    if y.dtype.kind in "iu":
        pass
    elif y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"`{name}` must contain integer class ids 0..K-1; got "
                             f"non-integer values (dtype {y.dtype}).")
    else:
        raise ValueError(f"`{name}` must contain integer class ids 0..K-1; got dtype "
                         f"{y.dtype}. Encode labels first, e.g. with "
                         f"sklearn.preprocessing.LabelEncoder.")
    if np.any(y < 0):
        raise ValueError(f"`{name}` must contain non-negative class ids; got minimum "
                         f"{y.min()}.")
    return y


def _check_n_classes(n_classes, y, name="y"):
    """Return K, checking ``n_classes`` against the largest label in ``y``."""
    y_max = int(y.max())
    if n_classes is None:
        return y_max + 1
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"`n_classes` must be an int or None; got {type(n_classes).__name__}.")
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ValueError(f"`n_classes` must be >= 1; got {n_classes}.")
    if y_max >= n_classes:
        raise ValueError(f"`{name}` contains class id {y_max}, which is >= "
                         f"n_classes={n_classes}.")
    return n_classes


def _check_noise_rate(noise_rate):
    if isinstance(noise_rate, (bool, np.bool_)) or not isinstance(noise_rate, numbers.Real):
        raise TypeError(f"`noise_rate` must be a real number in [0, 1); got "
                        f"{type(noise_rate).__name__}.")
    noise_rate = float(noise_rate)
    if not 0.0 <= noise_rate < 1.0:  # also rejects NaN
        raise ValueError(f"`noise_rate` must be in [0, 1); got {noise_rate!r}.")
    return noise_rate


def asymmetric_mapping(mapping=None, n_classes=None):
    """Return the class-flip mapping used by asymmetric noise as a dict.

    Parameters
    ----------
    mapping : {"cifar10", "cifar100"}, dict or None, default=None
        ``"cifar10"``: :data:`CIFAR10_ASYMMETRIC_MAPPING` (requires ``n_classes >= 10``).
        ``"cifar100"``: circular shift within blocks of 5 consecutive classes,
        ``c -> start + (c - start + 1) % 5`` with ``start = 5 * (c // 5)`` (requires
        ``n_classes`` divisible by 5). A dict ``{source: target}`` is validated and
        copied. ``None``: ``c -> (c + 1) % n_classes``.
    n_classes : int
        Number of classes K; every source and target must lie in ``0..K-1``.

    Returns
    -------
    mapping : dict of int to int
        Only the classes whose labels are flipped, i.e. ``target != source``.

    Examples
    --------
    >>> from noisyclf.noise import asymmetric_mapping
    >>> asymmetric_mapping(None, n_classes=3)
    {0: 1, 1: 2, 2: 0}
    >>> asymmetric_mapping("cifar100", n_classes=5)
    {0: 1, 1: 2, 2: 3, 3: 4, 4: 0}
    """
    if n_classes is None:
        raise ValueError("`n_classes` is required to build an asymmetric mapping.")
    K = int(n_classes)
    if mapping is None:
        out = {c: (c + 1) % K for c in range(K)}
    elif isinstance(mapping, str):
        if mapping == "cifar10":
            if K < 10:
                raise ValueError(f"`mapping`='cifar10' needs n_classes >= 10; got {K} "
                                 f"(pass n_classes=10 when y lacks the last classes).")
            out = dict(CIFAR10_ASYMMETRIC_MAPPING)
        elif mapping == "cifar100":
            if K % 5 != 0:
                raise ValueError(f"`mapping`='cifar100' needs n_classes divisible by 5; "
                                 f"got {K} (pass n_classes=100 when y lacks the last "
                                 f"classes).")
            out = {c: 5 * (c // 5) + (c % 5 + 1) % 5 for c in range(K)}
        else:
            raise ValueError(f"`mapping` must be one of {_NAMED_MAPPINGS}, a dict or None; "
                             f"got {mapping!r}.")
    elif isinstance(mapping, dict):
        out = {}
        for src, dst in mapping.items():
            for v in (src, dst):
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                    raise ValueError(f"`mapping` keys and values must be int class ids; "
                                     f"got {v!r}.")
                if not 0 <= v < K:
                    raise ValueError(f"`mapping` refers to class {v}, outside 0..{K - 1} "
                                     f"(n_classes={K}).")
            out[int(src)] = int(dst)
    else:
        raise ValueError(f"`mapping` must be one of {_NAMED_MAPPINGS}, a dict or None; got "
                         f"{type(mapping).__name__}.")
    return {s: t for s, t in sorted(out.items()) if s != t}


def _check_transition_matrix(transition_matrix, n_classes):
    T = np.asarray(transition_matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"`transition_matrix` must be a square (K, K) array; got shape "
                         f"{T.shape}.")
    if n_classes is not None and T.shape[0] != n_classes:
        raise ValueError(f"`transition_matrix` has shape {T.shape} but n_classes="
                         f"{n_classes}.")
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("`transition_matrix` must contain finite, non-negative "
                         "probabilities.")
    row_sums = T.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(f"`transition_matrix` rows must sum to 1 (within 1e-6); got row "
                         f"sums {np.round(row_sums, 6).tolist()}.")
    return T


def make_noisy_labels(y, noise_type="symmetric", noise_rate=0.2, *, n_classes=None,
                      mapping=None, transition_matrix=None, random_state=None):
    """Corrupt integer class labels with simulated label noise.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Clean labels: integer class ids ``0..K-1`` (integral floats are accepted).
    noise_type : {"symmetric", "asymmetric", "matrix"}, default="symmetric"
        - ``"symmetric"``: in every class ``c`` with ``n_c`` samples, exactly
          ``round(noise_rate * n_c)`` samples, chosen uniformly without replacement,
          are flipped, each to one of the other ``K - 1`` classes chosen uniformly.
        - ``"asymmetric"``: in every class ``c`` with a target ``m(c) != c`` under
          ``mapping``, exactly ``round(noise_rate * n_c)`` samples, chosen uniformly
          without replacement, are flipped to ``m(c)``; other classes are unchanged.
        - ``"matrix"``: the noisy label of each sample of true class ``i`` is drawn
          independently from row ``T[i]`` of ``transition_matrix``.
    noise_rate : float, default=0.2
        Fraction of each class to corrupt, in ``[0, 1)``. ``round`` is Python's (half to
        even). Ignored (though still validated) for ``noise_type="matrix"``, where the
        expected noise rate is set by the off-diagonal mass of ``transition_matrix``.
    n_classes : int, default=None
        Number of classes K. Defaults to ``y.max() + 1``, or to the size of
        ``transition_matrix`` for ``noise_type="matrix"``. Pass it when ``y`` may lack the
        highest class ids (e.g. a subset of CIFAR-10 with ``mapping="cifar10"``).
    mapping : {"cifar10", "cifar100"}, dict or None, default=None
        Class flips for ``noise_type="asymmetric"`` (an error with the other types):
        ``"cifar10"`` is ``{9: 1, 2: 0, 3: 5, 5: 3, 4: 7}`` (truck -> automobile,
        bird -> airplane, cat <-> dog, deer -> horse); ``"cifar100"`` shifts circularly
        within blocks of 5 consecutive classes (the 20 super-classes; K must be divisible
        by 5); a dict ``{source: target}`` gives explicit flips; ``None`` maps
        ``c -> (c + 1) % K``.
    transition_matrix : array-like of shape (K, K), default=None
        Row-stochastic matrix with ``T[i, j] = P(noisy = j | true = i)``; required for
        (and only accepted with) ``noise_type="matrix"``. Entries must be non-negative
        and every row must sum to 1 within 1e-6.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed for the draws. ``None`` uses fresh OS entropy; a ``np.random.Generator`` is
        advanced. NumPy's global random state is never used.

    Returns
    -------
    y_noisy : ndarray of shape (n_samples,)
        A new array with the same dtype as ``y``; ``y`` itself is never modified.

    Raises
    ------
    ValueError
        If ``y`` is not a non-empty 1-D array of non-negative integers below
        ``n_classes``, if ``noise_rate`` is outside ``[0, 1)``, if ``noise_type`` is
        unknown, or if ``mapping`` / ``transition_matrix`` are invalid or given with the
        wrong ``noise_type``.
    TypeError
        If ``noise_rate`` is not a real number.

    See Also
    --------
    transition_matrix_from_labels : Empirical transition matrix of a corruption.
    actual_noise_rate : Fraction of labels that differ.

    Examples
    --------
    >>> import numpy as np
    >>> from noisyclf.noise import make_noisy_labels, actual_noise_rate
    >>> y = np.repeat(np.arange(4), 10)
    >>> y_sym = make_noisy_labels(y, "symmetric", 0.2, random_state=0)
    >>> actual_noise_rate(y, y_sym)
    0.2
    >>> [int(np.sum(y_sym[y == c] != c)) for c in range(4)]
    [2, 2, 2, 2]
    >>> y_asym = make_noisy_labels(y, "asymmetric", 0.3, random_state=0)
    >>> np.unique(y_asym[y == 3]).tolist()  # class 3 flips to (3 + 1) % 4 = 0
    [0, 3]
    >>> T = np.eye(4)
    >>> np.array_equal(make_noisy_labels(y, "matrix", transition_matrix=T), y)
    True
    """
    y = _check_labels(y)
    noise_rate = _check_noise_rate(noise_rate)
    if not isinstance(noise_type, str) or noise_type not in _NOISE_TYPES:
        raise ValueError(f"`noise_type` must be one of {_NOISE_TYPES}; got {noise_type!r}.")
    if mapping is not None and noise_type != "asymmetric":
        raise ValueError(f"`mapping` is only used with noise_type='asymmetric'; got "
                         f"noise_type={noise_type!r}.")
    if transition_matrix is not None and noise_type != "matrix":
        raise ValueError(f"`transition_matrix` is only used with noise_type='matrix'; got "
                         f"noise_type={noise_type!r}.")

    if noise_type == "matrix":
        if transition_matrix is None:
            raise ValueError("`transition_matrix` is required for noise_type='matrix'.")
        if n_classes is not None:
            n_classes = _check_n_classes(n_classes, y)
        T = _check_transition_matrix(transition_matrix, n_classes)
        K = _check_n_classes(T.shape[0], y)
    else:
        K = _check_n_classes(n_classes, y)
    rng = _check_random_state(random_state)

    y_noisy = y.copy()  # same dtype, writeable, independent of the input
    y_int = y.astype(np.int64, copy=False)
    if noise_type == "symmetric":
        if K < 2 and noise_rate > 0:
            raise ValueError(f"symmetric noise needs at least 2 classes; got n_classes={K}.")
        for c in range(K):
            idx = np.flatnonzero(y_int == c)
            n_flip = round(noise_rate * idx.size)
            if n_flip == 0:
                continue
            chosen = rng.permutation(idx)[:n_flip]
            # uniform over the K-1 other classes: draw 0..K-2 and skip c
            r = rng.randint(0, K - 1, size=n_flip)
            y_noisy[chosen] = r + (r >= c)
    elif noise_type == "asymmetric":
        flips = asymmetric_mapping(mapping, K)
        for c, target in flips.items():
            idx = np.flatnonzero(y_int == c)
            n_flip = round(noise_rate * idx.size)
            if n_flip == 0:
                continue
            y_noisy[rng.permutation(idx)[:n_flip]] = target
    else:  # matrix
        cdf = np.cumsum(T, axis=1)
        cdf /= cdf[:, -1:]
        for c in range(K):
            idx = np.flatnonzero(y_int == c)
            if idx.size == 0:
                continue
            u = rng.random_sample(idx.size)
            # side="right" never selects a zero-probability class
            y_noisy[idx] = np.minimum(np.searchsorted(cdf[c], u, side="right"), K - 1)
    return y_noisy


def _check_pair(y_true, y_noisy):
    y_true = _check_labels(y_true, "y_true")
    y_noisy = _check_labels(y_noisy, "y_noisy")
    if y_true.shape != y_noisy.shape:
        raise ValueError(f"`y_true` and `y_noisy` must have the same length; got "
                         f"{y_true.shape[0]} and {y_noisy.shape[0]}.")
    return y_true, y_noisy


def transition_matrix_from_labels(y_true, y_noisy, n_classes=None):
    """Empirical noise transition matrix ``T[i, j] = P(noisy = j | true = i)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Clean integer class ids.
    y_noisy : array-like of shape (n_samples,)
        Noisy integer class ids, aligned with ``y_true``.
    n_classes : int, default=None
        Number of classes K; defaults to ``max(y_true.max(), y_noisy.max()) + 1``.

    Returns
    -------
    T : ndarray of shape (K, K)
        Row-normalised counts. A class absent from ``y_true`` gets a row of zeros.

    Examples
    --------
    >>> from noisyclf.noise import transition_matrix_from_labels
    >>> transition_matrix_from_labels([0, 0, 1, 1], [0, 1, 1, 1])
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    y_true, y_noisy = _check_pair(y_true, y_noisy)
    K = _check_n_classes(n_classes, np.array([y_true.max(), y_noisy.max()]),
                         name="y_true/y_noisy")
    counts = np.zeros((K, K), dtype=float)
    np.add.at(counts, (y_true.astype(np.int64), y_noisy.astype(np.int64)), 1.0)
    row = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, row, out=np.zeros_like(counts), where=row > 0)


def actual_noise_rate(y_true, y_noisy):
    """Fraction of samples whose noisy label differs from the clean one.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Clean integer class ids.
    y_noisy : array-like of shape (n_samples,)
        Noisy integer class ids, aligned with ``y_true``.

    Returns
    -------
    rate : float
        ``mean(y_true != y_noisy)``.

    Examples
    --------
    >>> from noisyclf.noise import actual_noise_rate
    >>> actual_noise_rate([0, 1, 2, 3], [0, 1, 2, 0])
    0.25
    """
    y_true, y_noisy = _check_pair(y_true, y_noisy)
    return float(np.mean(y_true != y_noisy))
