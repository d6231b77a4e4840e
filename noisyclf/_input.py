"""Input layout and value-scale helpers of ContrastiveNoisyClassifier (private).

``estimator.py`` tells the phase story; this module turns what the user passes
as ``X`` into what the nets see, and refuses to guess quietly:

* **kind** -- clear errors, naming ``X``, for strings, complex numbers, object
  arrays of non-numbers, 1-D input and (in ``fit``) no samples
  (:func:`check_X_kind`, :func:`check_same_n_samples`).
* **layout** -- 2-D features stay ``(n, D)``; images become ``(n, C, H, W)``
  from 2-D rows flattened with ``image_shape=(C, H, W)``, 3-D ``(n, H, W)`` or
  4-D arrays, as ``data_format`` says.  ``data_format="auto"`` reads 4-D
  shapes by :func:`infer_4d_layout` (a warning when it had to guess, an error
  when it cannot) and checks flattened multi-channel rows for the
  channels-last scrambling (:func:`flat_layout_scores`).
* **value scale** -- uint8 images are pixel values 0..255 and are scaled to
  [0, 1] (they stay uint8 here; the nets scale each batch on the training
  device, bit for bit as :func:`_scaled` does); what ``fit`` saw
  (:class:`InputSpec`) decides how ``predict`` reads a batch of another dtype
  (:func:`predict_scale`).  Tabular input is taken as it is, whatever its
  dtype: its values are features.
* **fit and predict input** -- :func:`prepare_fit_input` validates ``fit``'s
  ``X`` and ``y`` (an array, or a torch Dataset streamed by
  :mod:`noisyclf._streaming`) and computes the standardisation statistics;
  :func:`predict_input` reads inference input the way ``fit`` chose;
  :func:`net_data` is the nets' dict input.

Everything here works on copies: the caller's arrays are never modified.
"""

import dataclasses
import warnings

import numpy as np
import torch
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from . import _streaming

__all__ = [
    "DATA_FORMATS", "FitInput", "InputSpec", "check_X_kind", "check_same_n_samples",
    "fit_layout", "flat_layout_scores", "infer_4d_layout", "net_data", "predict_input",
    "predict_layout", "predict_scale", "prepare_fit_input", "score_labels", "standardization",
    "value_range",
]

#: Values of the ``data_format`` hyperparameter.
DATA_FORMATS = ("auto", "channels_first", "channels_last")
#: Channel counts of common images (grey, RGB, RGBA).
CHANNEL_COUNTS = (1, 3, 4)
#: Float images with values in [-TOL, 1 + TOL] are on the [0, 1] scale.
TOL = 0.01
#: A float image batch whose values reach above this (and stay within
#: [0, 255]) is on the 0..255 scale.  Values in (1 + TOL, CLEARLY_RAW] are
#: ambiguous: slightly-overshooting [0, 1] images or nearly black 0..255 ones.
CLEARLY_RAW = 2.0
#: Rows sampled (evenly spaced, no RNG) by the flattened-layout check.
FLAT_CHECK_ROWS = 256
#: The channels-last reading must beat the (C, H, W) one by this much mean
#: adjacent-pixel correlation (and by 4 standard errors) to count as clearly
#: more coherent, and reach at least FLAT_MIN_COHERENCE itself.
FLAT_MARGIN = 0.1
FLAT_MIN_COHERENCE = 0.3


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What ``fit`` saw and chose; ``predict`` reads its input the same way.

    Attributes
    ----------
    is_image : bool
        Image input (2-D with ``image_shape``, 3-D or 4-D) rather than tabular.
    ndim : int
        ``X.ndim`` in ``fit``.
    data_format : str
        The ``data_format`` hyperparameter at fit time.
    layout : {"channels_first", "channels_last"} or None
        Layout used for 4-D and flattened images (None for 3-D and tabular).
    image_shape : tuple of int or None
        (C, H, W) of flattened 2-D images.
    dtype : {"uint8", "float"} or None
        Value kind of image input (None for tabular).
    value_range : tuple of float or None
        (min, max) of the training images as passed (before any scaling).
    domain : {"unit", "raw", "other"} or None
        Scale the model was trained on: "unit" for [0, 1] (uint8 input scaled
        by 1/255, or floats within [0, CLEARLY_RAW]), "raw" for floats on a
        0..255-like scale (max above CLEARLY_RAW, at most 255), "other" for
        anything else (negative values, values above 255).
    """

    is_image: bool
    ndim: int
    data_format: str = "auto"
    layout: str = None
    image_shape: tuple = None
    dtype: str = None
    value_range: tuple = None
    domain: str = None


# ------------------------------------------------------------------------ kind
def check_X_kind(X, *, fitting):
    """Clear errors, naming ``X``, for inputs sklearn rejects cryptically or accepts silently.

    Strings (even numeric ones), complex numbers, object arrays with
    non-numbers, fewer than 2 dimensions and (in ``fit``) no samples.
    pandas and sparse input is left to ``validate_data``.
    """
    if hasattr(X, "dtypes") or hasattr(X, "tocsr"):
        return
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):
        return  # e.g. ragged lists: validate_data explains
    kind = arr.dtype.kind
    if kind in "USV":
        raise ValueError(
            f"X must be numeric; got strings or bytes (dtype {arr.dtype}). Convert X to "
            f"numbers first, e.g. X.astype(np.float32)."
        )
    if kind == "c":
        raise ValueError(f"Complex data not supported: X has dtype {arr.dtype}; pass real "
                         f"numbers.")
    if kind == "O":
        try:
            arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"X must contain only numbers; converting its object-dtype entries to "
                f"float failed: {exc}"
            ) from exc
    if arr.ndim < 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), 3-D (n, H, W) or 4-D images; got "
            f"{arr.ndim}-D input with shape {arr.shape}. Reshape your data: X.reshape(-1, 1) "
            f"for a single feature or X.reshape(1, -1) for a single sample."
        )
    if fitting and arr.shape[0] == 0:
        raise ValueError(f"X is empty: it has 0 samples (shape {arr.shape}); fit needs at "
                         f"least 2.")


def check_same_n_samples(X, y, num_samples):
    """``ValueError`` naming both counts when ``X`` and ``y`` differ in length."""
    try:
        n_X, n_y = num_samples(X), num_samples(y)
    except TypeError:
        return  # validate_data explains
    if n_X != n_y:
        raise ValueError(
            f"X and y must have the same number of samples; got {n_X} in X and {n_y} in y."
        )


def check_training_labels(values, name, n_samples):
    """1-D array of one label per training sample, or a ``ValueError`` naming ``name``.

    For arguments that describe the training set after ``fit`` (the given
    or the true labels), e.g. ``find_label_issues(y)`` and the displays.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {values.shape}.")
    if len(values) != n_samples:
        raise ValueError(
            f"{name} has {len(values)} labels but fit saw {n_samples} samples; pass one "
            f"label per training sample."
        )
    return values


def labeled_mask(y, unlabeled_label):
    """Which samples of ``y`` carry a label: those whose label is not
    ``unlabeled_label`` (in an array of strings, not ``str(unlabeled_label)``: numpy
    writes -1 among strings as ``"-1"``); every sample when ``unlabeled_label`` is
    None."""
    y = np.asarray(y)
    if unlabeled_label is None:
        return np.ones(len(y), dtype=bool)
    if isinstance(unlabeled_label, (bool, np.bool_)):
        raise ValueError(f"unlabeled_label must be an int, a str or None; got "
                         f"{unlabeled_label!r}, a bool.")
    marker = str(unlabeled_label) if y.dtype.kind == "U" else unlabeled_label
    return np.fromiter((not (v == marker) for v in y.tolist()), dtype=bool, count=len(y))


def check_labeled(y, labeled, unlabeled_label):
    """The classes of the labeled samples of ``y`` (sorted), or a ``ValueError`` when
    fewer than 2 classes are labeled."""
    if not labeled.any():
        raise ValueError(
            f"y marks all {len(y)} samples as unlabeled ({unlabeled_label!r}, "
            f"unlabeled_label); fit needs labels of at least 2 classes.")
    check_classification_targets(y[labeled])
    classes = np.unique(y[labeled])
    if len(classes) < 2:
        unlabeled = int((~labeled).sum())
        more = (f" ({unlabeled} more samples are unlabeled: {unlabeled_label!r}; if "
                f"{unlabeled_label!r} is a class, pass unlabeled_label=None)"
                if unlabeled else "")
        raise ValueError(f"y must contain at least 2 classes; got only {classes.tolist()}"
                         f"{more}.")
    return classes


def fit_labels(y, unlabeled_label):
    """``(labeled, classes)`` of ``fit``'s labels ``y``, or a ``ValueError`` (see
    :func:`check_labeled`)."""
    y = np.asarray(y)
    labeled = labeled_mask(y, unlabeled_label)
    return labeled, check_labeled(y, labeled, unlabeled_label)


def take(X, rows):
    """Samples ``rows`` (positions) of an array or of a streamed Dataset."""
    if isinstance(X, _streaming.ImageStream):
        return X.subset([X.item_index(j) for j in rows])
    return X[rows]


# ---------------------------------------------------------------------- layout
def _readings(shape):
    """(C, H, W) of one sample of a 4-D ``shape`` under each layout."""
    _, s1, s2, s3 = shape
    return {"channels_first": (s1, s2, s3), "channels_last": (s3, s1, s2)}


def _rank(chw):
    # Ambiguous shapes: prefer square images, then 3 channels, then fewer channels.
    c, h, w = chw
    return (h == w, c == 3, -c)


def infer_4d_layout(shape):
    """Layout of 4-D ``X`` of ``shape`` under ``data_format="auto"``.

    The rule, first match wins:

    1. exactly one reading has 1, 3 or 4 channels: that one
       ((n, 3, 32, 32) is channels-first, (n, 32, 32, 3) channels-last);
    2. neither has: exactly one reading has no more channels than its
       image's shorter side ((n, 10, 32, 32) first, (n, 32, 32, 10) last);
    3. otherwise the shape is ambiguous ((n, 4, 4, 3): 4-channel 4x3 or
       3-channel 4x4 images?): prefer the reading with square images, then
       the one with 3 channels, then the one with fewer channels.  The caller
       should warn: the layout was guessed.

    Returns
    -------
    layout : {"channels_first", "channels_last"}
    guessed : bool
        True when rule 3 decided.

    Raises
    ------
    ValueError
        When rule 3 cannot decide either ((n, 3, 3, 3), (n, 16, 16, 16)):
        the message asks for ``data_format``.
    """
    readings = _readings(shape)
    for plausible in (lambda c, h, w: c in CHANNEL_COUNTS,
                      lambda c, h, w: c <= min(h, w)):
        ok = [name for name, chw in readings.items() if plausible(*chw)]
        if len(ok) == 1:
            return ok[0], False
        if len(ok) == 2:
            break
    first, last = (_rank(readings[name]) for name in ("channels_first", "channels_last"))
    if first == last:
        raise ValueError(
            f"Cannot tell where the channels of 4-D X with shape {tuple(shape)} are: read "
            f"as (n, C, H, W) its images have shape (C, H, W) = {readings['channels_first']}, "
            f"read as (n, H, W, C) {readings['channels_last']}. Pass "
            f"data_format='channels_first' or data_format='channels_last'."
        )
    return ("channels_first" if first > last else "channels_last"), True


def _to_chw(X, layout):
    return X if layout == "channels_first" else X.transpose(0, 3, 1, 2)


def _flat_to_images(X, shape, layout):
    c, h, w = shape
    if layout == "channels_last":
        return X.reshape(len(X), h, w, c).transpose(0, 3, 1, 2)
    return X.reshape((len(X),) + tuple(shape))


def _pair_corr(a, b):
    """Pearson correlation of the pooled pairs (a, b); nan when undefined."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denom) if denom > 0 else float("nan"), a.size


def _adjacent_corr(images):
    """Mean correlation of horizontally and vertically adjacent pixels of (n, C, H, W)."""
    scores, pairs = [], []
    if images.shape[3] > 1:
        r, n = _pair_corr(images[..., :, :-1], images[..., :, 1:])
        scores.append(r)
        pairs.append(n)
    if images.shape[2] > 1:
        r, n = _pair_corr(images[..., :-1, :], images[..., 1:, :])
        scores.append(r)
        pairs.append(n)
    if not scores or np.isnan(scores).any():
        return float("nan"), 0
    return float(np.mean(scores)), min(pairs)


def flat_layout_scores(X, image_shape, max_rows=FLAT_CHECK_ROWS):
    """Spatial coherence of flattened images under both readings.

    Parameters
    ----------
    X : ndarray of shape (n_samples, C * H * W)
    image_shape : tuple (C, H, W)
    max_rows : int
        At most this many rows, evenly spaced (deterministic), are used.

    Returns
    -------
    scores : dict
        ``{"channels_first": r_first, "channels_last": r_last, "n_pairs": n}``
        with each reading's mean correlation of horizontally and vertically
        adjacent pixels (nan when undefined, e.g. constant images) and the
        number of pixel pairs per direction behind it.  Read with the wrong
        layout, one of the directions pairs pixels that are not neighbours
        (or different channels), so the right reading scores higher.
    """
    rows = np.unique(np.linspace(0, len(X) - 1, min(len(X), max_rows)).astype(int))
    sample = np.asarray(X[rows], dtype=np.float64)
    out = {}
    n_pairs = []
    for layout in ("channels_first", "channels_last"):
        out[layout], n = _adjacent_corr(_flat_to_images(sample, image_shape, layout))
        n_pairs.append(n)
    out["n_pairs"] = min(n_pairs)
    return out


def _check_flat_layout(X, shape):
    """``data_format="auto"``: refuse flattened channels-last rows read as (C, H, W)."""
    scores = flat_layout_scores(X, shape)
    first, last = scores["channels_first"], scores["channels_last"]
    if np.isnan(first) or np.isnan(last) or scores["n_pairs"] == 0:
        return
    margin = max(FLAT_MARGIN, 4.0 / np.sqrt(scores["n_pairs"]))
    if last >= FLAT_MIN_COHERENCE and last - first > margin:
        c, h, w = shape
        raise ValueError(
            f"X looks like flattened channels-last images: with image_shape={tuple(shape)} "
            f"its rows read as (H, W, C) = {(h, w, c)} images are much smoother (mean "
            f"correlation of adjacent pixels {last:.2f}) than read as (C, H, W) = "
            f"{tuple(shape)} ({first:.2f}). Pass data_format='channels_last' if each row "
            f"is an (H, W, C) image flattened (e.g. X.reshape(n, -1) of an (n, H, W, C) "
            f"array), or data_format='channels_first' to keep the (C, H, W) reading."
        )


def _image_shape(image_shape, n_features):
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} does not match X: it must be (C, H, W) with "
            f"C*H*W == X.shape[1] == {n_features}."
        )
    return shape


def _unsupported_ndim(X):
    return ValueError(
        f"X must be 2-D (n_samples, n_features), 3-D (n, H, W) or 4-D images; got "
        f"{X.ndim}-D input with shape {X.shape}."
    )


def _contiguous_float32(X, dtype=np.float32):
    """C-contiguous, writeable ``dtype`` (a copy whenever X cannot be used as it is)."""
    X = np.ascontiguousarray(X, dtype=dtype)
    canonical = np.empty(X.shape, dtype=dtype)
    if not X.flags.writeable or X.strides != canonical.strides:
        # A read-only caller's array: torch.from_numpy would warn about it.  Odd
        # strides on a size-1 axis (X[:, None], a transposed single channel) are
        # "contiguous" to numpy, but torch keeps them and may pick another conv
        # kernel (channels-last memory format): the same images would give
        # slightly different results in another layout.
        np.copyto(canonical, X)
        X = canonical
    return X


# ----------------------------------------------------------------- value scale
def _domain(dtype, lo, hi):
    if dtype == "uint8" or (lo >= -TOL and hi <= CLEARLY_RAW):
        return "unit"
    if lo >= -TOL and hi <= 255 + TOL:
        return "raw"
    return "other"


def _scaled(X):
    # The same float32 division for uint8 and float input, so that the same
    # pixel values give bit-identical results either way.
    return np.asarray(X, dtype=np.float32) / np.float32(255.0)


def predict_scale(X, spec):
    """Bring a predict-time batch of images onto the training scale.

    ``X`` is uint8 or float (after ``validate_data``); ``spec`` is what ``fit``
    recorded.  The rules (``domain`` as in :class:`InputSpec`):

    ================  ==================  ===========================================
    fitted on         predict gets        done
    ================  ==================  ===========================================
    uint8             uint8               scaled by 1/255 (as in fit)
    uint8             float in [0, 1]     as is
    uint8             float, max > 2      scaled by 1/255, DataConversionWarning
                      (0..255 scale)      (pass uint8 or scale to [0, 1])
    uint8             other floats        as is, DataConversionWarning (out of range)
    floats in [0, 1]  uint8               scaled by 1/255, DataConversionWarning
    floats in [0, 1]  float, max > 2      scaled by 1/255, DataConversionWarning
    floats 0..255     uint8               as is: the same raw values
    floats 0..255     floats in [0, 1]    as is, DataConversionWarning (other scale?)
    other floats      uint8               ValueError: convert X as in fit
    ================  ==================  ===========================================

    Returns a float32 array, or ``X`` itself when it is uint8 on the [0, 1]
    scale (the nets scale uint8 batches by 1/255 on the device, as in
    ``fit``); possibly a view of ``X`` when nothing changes; never modified
    in place.
    """
    lo_fit, hi_fit = spec.value_range
    if X.dtype == np.uint8:
        if spec.domain == "unit":
            if spec.dtype != "uint8":
                warnings.warn(
                    f"X is uint8 but the estimator was fitted on float images with values "
                    f"in [{lo_fit:g}, {hi_fit:g}], i.e. on the [0, 1] scale: X is read as "
                    f"pixel values 0..255 and scaled by 1/255. Pass float images scaled to "
                    f"[0, 1] as in fit to silence this warning.",
                    DataConversionWarning, stacklevel=6,
                )
            return X  # uint8: scaled by 1/255 per batch on the device, as in fit
        if spec.domain == "raw":
            return np.asarray(X, dtype=np.float32)
        raise ValueError(
            f"X is uint8 but the estimator was fitted on float images with values in "
            f"[{lo_fit:g}, {hi_fit:g}], neither on the [0, 1] nor on the 0..255 scale, so "
            f"there is no telling how uint8 pixels map onto them. Convert X to float the "
            f"same way as the training images (e.g. the same normalisation)."
        )
    X = np.asarray(X, dtype=np.float32)
    if X.size == 0:
        return X
    lo, hi = float(X.min()), float(X.max())
    fitted_on = ("uint8 images (scaled to [0, 1] by 1/255)" if spec.dtype == "uint8" else
                 f"float images with values in [{lo_fit:g}, {hi_fit:g}]")
    if spec.domain == "unit":
        if lo >= -TOL and CLEARLY_RAW < hi <= 255 + TOL:
            warnings.warn(
                f"X holds float values up to {hi:g}, i.e. on the 0..255 scale, but the "
                f"estimator was fitted on {fitted_on}: X is scaled by 1/255 to match. Pass "
                f"uint8 images, or float images scaled to [0, 1], to silence this warning.",
                DataConversionWarning, stacklevel=6,
            )
            return _scaled(X)
        if spec.dtype == "uint8" and (lo < -TOL or hi > 1 + TOL):
            warnings.warn(
                f"X holds float values in [{lo:g}, {hi:g}], outside the [0, 1] range of "
                f"the training images ({fitted_on}); X is used as it is. Pass uint8 images "
                f"or float images scaled to [0, 1].",
                DataConversionWarning, stacklevel=6,
            )
    elif spec.domain == "raw" and lo >= -TOL and 0 < hi <= 1 + TOL and hi_fit > CLEARLY_RAW:
        warnings.warn(
            f"X holds float values in [{lo:g}, {hi:g}], i.e. on the [0, 1] scale, but the "
            f"estimator was fitted on {fitted_on}; X is used as it is. If X was scaled to "
            f"[0, 1], pass it on the training scale instead (values up to {hi_fit:g}; for "
            f"8-bit images, multiply by 255 or pass uint8).",
            DataConversionWarning, stacklevel=6,
        )
    return X


# ------------------------------------------------------------------ fit, predict
def fit_layout(X, *, image_shape, data_format):
    """(n, C, H, W) images or (n, D) float32 features of validated ``X``, and its spec.

    Images are float32, or uint8 for uint8 ``X`` (pixels 0..255, to be scaled
    by 1/255 per batch by the nets).

    ``X`` comes from ``validate_data`` (uint8, float32 or float64).  The
    result is a new array whenever ``X`` has to change (dtype, layout,
    scale, read-only); otherwise a view of it, which callers must not modify
    in place.

    Warns (``UserWarning``) when ``data_format="auto"`` had to guess the
    layout of a 4-D shape; raises ``ValueError`` when it cannot, and when
    flattened multi-channel rows look channels-last (see
    :func:`flat_layout_scores`) -- raising rather than switching, because
    the check is a heuristic: a wrong automatic switch would be a silent
    mistake of its own, whereas the error costs one keyword, and the
    explicit layout is then what ``predict`` uses on batches too small to
    check.
    """
    is_image = X.ndim != 2 or image_shape is not None
    if X.ndim not in (2, 3, 4):
        raise _unsupported_ndim(X)
    layout, shape = None, None
    if not is_image:
        return _contiguous_float32(X), InputSpec(is_image=False, ndim=2,
                                                data_format=data_format)
    dtype = "uint8" if X.dtype == np.uint8 else "float"
    lo, hi = float(X.min()), float(X.max())
    # uint8 images stay uint8 (a quarter of float32's memory); the nets scale
    # each batch by 1/255 on the training device (nets._PhaseNetMixin._on_device).
    images = X if dtype == "uint8" else np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        shape = _image_shape(image_shape, X.shape[1])
        if data_format == "auto":
            if shape[0] > 1:
                _check_flat_layout(images, shape)
            layout = "channels_first"
        else:
            layout = data_format
        images = _flat_to_images(images, shape, layout)
    elif X.ndim == 3:
        images = images[:, None, :, :]
    else:
        if data_format == "auto":
            layout, guessed = infer_4d_layout(X.shape)
            if guessed:
                other = "channels_first" if layout == "channels_last" else "channels_last"
                readings = _readings(X.shape)
                warnings.warn(
                    f"4-D X with shape {X.shape} could be channels-first or channels-last "
                    f"images; data_format='auto' guessed {layout!r}: images of shape "
                    f"(C, H, W) = {readings[layout]} rather than {readings[other]} (it "
                    f"prefers square images, then 3 channels). Pass data_format={layout!r} "
                    f"(or {other!r}) to say which and silence this warning.",
                    UserWarning, stacklevel=5,
                )
        else:
            layout = data_format
        images = _to_chw(images, layout)
    spec = InputSpec(is_image=True, ndim=X.ndim, data_format=data_format, layout=layout,
                     image_shape=shape, dtype=dtype, value_range=(lo, hi),
                     domain=_domain(dtype, lo, hi))
    return _contiguous_float32(images, images.dtype), spec


def _predict_4d_layout(shape, spec, input_shape):
    if spec.data_format != "auto":
        return spec.data_format
    readings = _readings(shape)
    matching = [name for name, chw in readings.items() if chw == tuple(input_shape)]
    if len(matching) == 1:
        return matching[0]
    if spec.layout is not None:
        return spec.layout  # both readings fit (or neither: the shape check explains)
    try:
        return infer_4d_layout(shape)[0]
    except ValueError:
        return "channels_first"  # neither reading fits: the shape check explains


def predict_layout(X, spec, *, input_shape):
    """Float32 (or uint8 pixel) samples of validated predict-time ``X``, read as ``fit``
    read its input.

    Images are scaled by :func:`predict_scale` and laid out as recorded in
    ``spec`` (4-D input in ``data_format="auto"``: the reading whose sample
    shape is ``input_shape``, the fitted layout when both are).  Raises a
    ``ValueError`` when the samples do not have the fitted shape.
    """
    if X.ndim not in (2, 3, 4):
        raise _unsupported_ndim(X)
    if not spec.is_image and X.ndim == 2:
        out = _contiguous_float32(X)
    else:
        out = predict_scale(X, spec) if spec.is_image else np.asarray(X, dtype=np.float32)
        if X.ndim == 2 and spec.image_shape is not None:
            if int(np.prod(spec.image_shape)) == X.shape[1]:
                out = _flat_to_images(out, spec.image_shape, spec.layout)
        elif X.ndim == 3:
            out = out[:, None, :, :]
        elif X.ndim == 4:
            out = _to_chw(out, _predict_4d_layout(X.shape, spec, input_shape))
        out = _contiguous_float32(out, out.dtype)
    if tuple(out.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"X has samples of shape {tuple(out.shape[1:])} but this estimator was fitted "
            f"on samples of shape {tuple(input_shape)}."
        )
    return out


#: Samples per chunk when computing the standardisation statistics.
STATS_CHUNK = 256


def standardization(X):
    """Per-channel (images) or per-feature mean and scale of samples ``X``.

    ``X`` is float32, or uint8 pixels whose statistics are those of the
    images scaled by 1/255 (as the nets see them).  Computed in float64 over
    chunks of :data:`STATS_CHUNK` samples (two passes: mean, then the mean
    squared deviation), so no float copy of the whole of ``X`` is made.
    Constant channels/features get scale 1.  Image statistics have shape
    (C, 1, 1), feature statistics (D,).
    """
    is_image = X.ndim == 4
    axes = (0, 2, 3) if is_image else (0,)
    n_per_feature = X.shape[0] * (X.shape[2] * X.shape[3] if is_image else 1)

    def chunks():
        for start in range(0, X.shape[0], STATS_CHUNK):
            chunk = X[start:start + STATS_CHUNK]
            if chunk.dtype == np.uint8:  # the float32 values the nets will see
                chunk = _scaled(chunk)
            yield chunk.astype(np.float64)

    mean = sum(c.sum(axis=axes) for c in chunks()) / n_per_feature
    shape = (1, -1, 1, 1) if is_image else (1, -1)
    var = sum(((c - mean.reshape(shape)) ** 2).sum(axis=axes) for c in chunks())
    scale = np.sqrt(var / n_per_feature)
    mean = mean.astype(np.float32)
    scale = np.where(scale < 1e-8, 1.0, scale).astype(np.float32)
    if is_image:
        mean, scale = mean.reshape(-1, 1, 1), scale.reshape(-1, 1, 1)
    return mean, scale


def value_range(spec):
    """Range of the images as the nets see them, for the colour ops' clamping.

    [0, 1] for uint8 input (scaled by 1/255) and floats within [0, 1]-ish,
    [0, 255] for floats on that scale, else the training (min, max).
    """
    if spec.domain == "unit" and spec.dtype == "float":
        lo, hi = spec.value_range
        return (min(0.0, float(lo)), max(1.0, float(hi)))
    if spec.domain == "raw":
        return (0.0, 255.0)
    if spec.domain == "other":
        lo, hi = spec.value_range
        return (float(lo), float(hi))
    return (0.0, 1.0)


# ------------------------------------------------------ fit and predict input
@dataclasses.dataclass
class FitInput:
    """``fit``'s input as the nets take it, and what ``predict`` must remember of it.

    Attributes
    ----------
    X : ndarray or ImageStream
        Samples of shape ``(n, *input_shape)`` (uint8 images stay uint8), or
        a streamed Dataset.
    y : ndarray of shape (n,)
        The labels as given.
    input_shape : tuple of int
        One sample's shape: (C, H, W) or (n_features,).
    resize_to : tuple of int or None
        The size streamed images are resized to (``image_size``).
    mean, scale : ndarray
        Standardisation statistics, per channel (C, 1, 1) or per feature (D,).
    spec : InputSpec
        What ``fit`` saw and chose.
    labeled : ndarray of bool, shape (n,)
        Which samples have a label (``y`` is not ``unlabeled_label``).
    classes : ndarray
        The labeled samples' classes, sorted.
    kept : ndarray of int or None
        For a Dataset ``X`` whose unreadable items were skipped
        (``on_bad_item="skip"``): the indices of the items kept, in order
        (``X`` and ``y`` are of those items only); ``None`` otherwise.
    skipped : list of (int, str or None)
        ``(index, path)`` of the items skipped; empty when none was.
    """

    X: object
    y: np.ndarray
    input_shape: tuple
    resize_to: tuple
    mean: np.ndarray
    scale: np.ndarray
    spec: InputSpec
    labeled: np.ndarray = None
    classes: np.ndarray = None
    kept: np.ndarray = None
    skipped: list = dataclasses.field(default_factory=list)


def prepare_fit_input(estimator, X, y, check_encoder):
    """:class:`FitInput` of ``fit(X, y)``: an array ``X`` (validated by scikit-learn's
    ``validate_data``, which sets ``n_features_in_``) or a torch Dataset (streamed).

    ``check_encoder(input_shape, mean, scale)`` checks the estimator's encoder on
    the samples' shape before any pass over a streamed Dataset; for a Dataset
    it gets placeholder statistics.
    """
    if _streaming.is_dataset(X):
        return _prepare_fit_stream(estimator, X, y, check_encoder)
    if estimator.image_size is not None:
        raise ValueError(
            f"image_size={estimator.image_size!r} resizes the images of a torch Dataset X; "
            f"array X is never resized: resize it first, or pass image_size=None."
        )
    check_X_kind(X, fitting=True)
    check_same_n_samples(X, y, _num_samples)
    X, y = validate_data(
        estimator, X, y, allow_nd=True, dtype=[np.float32, np.float64, np.uint8],
        ensure_all_finite=True, ensure_min_samples=2, y_numeric=False,
    )
    labeled, classes = fit_labels(y, estimator.unlabeled_label)
    X, spec = fit_layout(X, image_shape=estimator.image_shape,
                         data_format=estimator.data_format)
    input_shape = tuple(int(s) for s in X.shape[1:])
    mean, scale = standardization(X)
    check_encoder(input_shape, mean, scale)
    return FitInput(X, y, input_shape, None, mean, scale, spec, labeled, classes)


def _prepare_fit_stream(estimator, X, y, check_encoder):
    """:class:`FitInput` of a torch Dataset ``X`` (see ``fit``).

    Checks what can be checked cheaply first (the dataset, ``image_size``,
    ``y``, the first image, the encoder on it), then makes the one pass over
    the data: standardisation statistics, labels when ``y`` is None, and a
    digest of the images for ``memory``.
    """
    size = _streaming.check_image_size(estimator.image_size)
    n = _streaming.check_dataset(X)
    if n < 2:
        raise ValueError(f"X is a Dataset of {n} item(s); fit needs at least 2.")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per item of X); got an array of "
                             f"shape {y.shape}.")
        if len(y) != n:
            raise ValueError(f"X and y must have the same number of samples; got {n} "
                             f"items in the Dataset X and {len(y)} labels in y.")
        fit_labels(y, estimator.unlabeled_label)  # before the pass over the data
    _, first = _streaming.first_image(X, size=size, on_bad_item=estimator.on_bad_item)
    input_shape = tuple(int(s) for s in first.shape)
    # Placeholder statistics: a bad encoder fails before the pass over the data.
    c = input_shape[0]
    check_encoder(input_shape, np.zeros((c, 1, 1), np.float32), np.ones((c, 1, 1), np.float32))
    stream = _streaming.ImageStream(X, size=size, image_shape=input_shape,
                                    num_workers=estimator.num_workers,
                                    on_bad_item=estimator.on_bad_item)
    stats = _streaming.scan(
        stream, digest=estimator.memory is not None or estimator.checkpoint_dir is not None)
    if stats.skipped:  # on_bad_item="skip": fit on the items kept
        stream = stream.subset(stats.kept)
        if y is not None:
            y = y[stats.kept]
        if len(stream) < 2:
            raise ValueError(f"X is a Dataset of {n} items of which {len(stream)} could be "
                             f"read; fit needs at least 2.")
    stream.digest = stats.digest
    if y is None:
        missing = [i for i, label in enumerate(stats.labels) if label is None]
        if missing:
            raise ValueError(
                f"y is None, so the labels are read from the items of X, but "
                f"X[{stream.item_index(missing[0])}]"
                f" has no label ({len(missing)} item(s) without one): pass y, or a Dataset "
                f"whose items are (image, label)."
            )
        y = np.asarray(stats.labels)
    spec = InputSpec(is_image=True, ndim=4, data_format=estimator.data_format,
                     layout="channels_first", dtype="uint8", value_range=stats.value_range,
                     domain="unit")
    # Array-only attributes of an earlier fit (validate_data sets them).
    for attr in ("n_features_in_", "feature_names_in_"):
        estimator.__dict__.pop(attr, None)
    labeled, classes = fit_labels(y, estimator.unlabeled_label)
    return FitInput(stream, y, input_shape, size, stats.mean, stats.scale, spec, labeled,
                    classes, stats.kept if stats.skipped else None, stats.skipped)


def predict_input(estimator, X):
    """``X`` of ``predict`` (and the other inference methods) as the fitted nets take it:
    float32 or uint8 samples laid out as in ``fit``, or an ImageStream of a Dataset."""
    check_is_fitted(estimator)
    if _streaming.is_dataset(X):
        return predict_stream(estimator, X)
    check_X_kind(X, fitting=False)
    X = validate_data(estimator, X, reset=False, allow_nd=True,
                      dtype=[np.float32, np.float64, np.uint8], ensure_all_finite=True)
    return predict_layout(X, estimator._input_spec, input_shape=estimator.input_shape_)


def predict_stream(estimator, X):
    """:class:`~noisyclf._streaming.ImageStream` of a predict-time Dataset ``X``: images
    resized as in ``fit`` and of the fitted shape."""
    spec = estimator._input_spec
    if len(estimator.input_shape_) != 3:
        raise ValueError(
            f"X is a torch Dataset (images) but this estimator was fitted on tabular "
            f"features of shape {estimator.input_shape_}; pass an array as in fit."
        )
    if spec.domain != "unit":
        lo, hi = spec.value_range
        raise ValueError(
            f"X is a torch Dataset, whose images are read as 8-bit pixels scaled to "
            f"[0, 1], but this estimator was fitted on float images with values in "
            f"[{lo:g}, {hi:g}]; pass an array on the training scale instead."
        )
    _streaming.check_dataset(X)
    return _streaming.ImageStream(
        X, size=estimator._resize_to, image_shape=estimator.input_shape_,
        num_workers=estimator.num_workers,
        reference="every image this estimator was fitted on")


def score_labels(estimator, X, y):
    """The true labels of ``score``: ``y``, or the labels of a Dataset ``X`` when ``y`` is
    None, and which of them are labels (not ``unlabeled_label``).  Unlike
    scikit-learn's default, which counts labels never seen in ``fit`` as errors, such
    labels raise a ``ValueError`` that lists them."""
    if y is None and _streaming.is_dataset(X):
        labels = _streaming.read_labels(predict_stream(estimator, X))
        missing = [i for i, label in enumerate(labels) if label is None]
        if missing:
            raise ValueError(
                f"y is None, so the labels are read from the items of X, but "
                f"X[{missing[0]}] has no label: pass y."
            )
        y = np.asarray(labels)
    elif y is None:
        raise ValueError("score needs the true labels y (only a Dataset X can give them "
                         "itself).")
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D; got an array of shape {y_arr.shape}.")
    marker = estimator._unlabeled_label  # fit's, not a later set_params
    labeled = labeled_mask(y_arr, marker)
    if not labeled.any():
        raise ValueError(
            f"y marks all {len(y_arr)} samples as unlabeled "
            f"({marker!r}, unlabeled_label); score needs true labels.")
    check_seen_labels(y_arr[labeled], estimator.classes_,
                      f"the fitted classes are {estimator.classes_.tolist()}.")
    return y_arr, labeled


def check_seen_labels(labels, classes, hint):
    """A ``ValueError`` naming the values of ``labels`` that are not among the fitted
    ``classes`` (``hint`` ends the message)."""
    seen = set(np.asarray(classes).tolist())
    unseen = sorted({v for v in np.asarray(labels).tolist() if v not in seen}, key=repr)
    if unseen:
        raise ValueError(f"y contains labels not seen in fit: {unseen}; {hint}")


def net_input(X):
    """The nets' ``"x"``: a streamed Dataset as it is, an array as a tensor (no copy)."""
    return X if isinstance(X, _streaming.ImageStream) else torch.from_numpy(X)


def net_data(X, sample_weight):
    """The nets' dict input of a fit: samples, their ids and the user's weights."""
    return {
        "x": net_input(X),
        "index": torch.arange(len(X)),
        "sample_weight": torch.as_tensor(sample_weight, dtype=torch.float32),
    }
