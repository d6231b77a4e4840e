"""What the estimator accepts as X and y: validation errors, array layouts, value scales.

Bad input fails before any training, with a message naming the argument.
Three input mistakes each give the right answer or a clear error or warning
naming the fix:

(a) fitting on uint8 images and predicting on the same images as floats
    0..255 (uint8 is scaled to [0, 1] in fit);
(b) an (n, 4, 4, 3) RGB batch, which could also be 4-channel 4x3 images;
(c) a flattened channels-last array (n, H*W*C) with ``image_shape=(C, H, W)``,
    which read as (C, H, W) rows would be scrambled images.

Then unit tests of the helpers (``noisyclf._input``): the 4-D layout rule, the
adjacent-pixel correlation detector, the predict-time value-scale table,
tabular input left alone, the caller's arrays never modified.  Every fit is
tiny (a2 alone, one or two epochs on <= 120 small images).
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import DataConversionWarning, NotFittedError

from noisyclf import ContrastiveNoisyClassifier
from noisyclf import _input
from noisyclf.modules import Standardize

from _data import digit_images, tabular

TINY = dict(phases="baseline", pretrain_epochs=1, max_epochs=2, finetune_epochs=1,
            warmup_epochs=0, batch_size=32, device="cpu", random_state=0)


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**TINY, **params})


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _digits_uint8(n=120):
    """sklearn's digits as 8-bit images, (n, 8, 8) uint8 0..255."""
    X, y = load_digits(return_X_y=True)
    return np.round(X[:n] * 255 / 16).astype(np.uint8).reshape(n, 8, 8), y[:n]


def _smooth_rgb(n=40, size=8, seed=0):
    """Smooth colour images (n, 3, H, W) in [0, 1]: correlated channels, like photos."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 1.5, 1.5))
    tint = gaussian_filter(rng.normal(size=(n, 3, size, size)), sigma=(0, 0, 2, 2))
    img = 3 * base[:, None] + tint + rng.normal(scale=0.05, size=(n, 3, size, size))
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32)


def _smooth_rgb_nhwc(n=40, size=8):
    rng = np.random.RandomState(0)
    X = np.cumsum(np.cumsum(rng.rand(n, size, size, 3), axis=1), axis=2)  # smooth
    return X / X.max()


@pytest.fixture(scope="module")
def data():
    return tabular()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return _clf().fit(X, y)


@pytest.fixture(scope="module")
def fitted_images():
    X, y = digit_images()
    return _clf().fit(X, y)


# ================================================================ validation errors
def _with(X, index, value):
    X = X.astype(np.float64)
    X[index] = value
    return X


_X, _Y = tabular(n_features=16)
_OBJ_NONE = _X.astype(object)
_OBJ_NONE[0, 0] = None  # numpy converts it to NaN
_OBJ_DICT = _X.astype(object)
_OBJ_DICT[0, 0] = {"foo": "bar"}
_OBJ_WORD = _X.astype(object)
_OBJ_WORD[3, 2] = "abc"
_Y_NAN = _Y.astype(float)
_Y_NAN[4] = np.nan

# id: (estimator params, X, y, fit kwargs, exception, message regex)
BAD_FIT = {
    "X_nan": ({}, _with(_X, (3, 2), np.nan), _Y, {}, ValueError, r"Input X contains NaN"),
    "X_inf": ({}, _with(_X, (5, 1), np.inf), _Y, {}, ValueError,
              r"Input X contains infinity"),
    "X_neg_inf": ({}, _with(_X, (5, 1), -np.inf), _Y, {}, ValueError,
                  r"Input X contains infinity"),
    "X_empty": ({}, _X[:0], _Y[:0], {}, ValueError, r"X is empty: it has 0 samples"),
    "X_y_lengths": ({}, _X, _Y[:-1], {}, ValueError,
                    r"X and y must have the same number of samples; got 80 in X and 79 in y"),
    "y_single_class": ({}, _X, np.zeros(80, dtype=int), {}, ValueError,
                       r"y must contain at least 2 classes; got only \[0\]"),
    "y_nan": ({}, _X, _Y_NAN, {}, ValueError, r"Input y contains NaN"),
    "y_2d": ({}, _X, np.c_[_Y, _Y], {}, ValueError, r"y should be a 1d array"),
    "X_1d": ({}, _X[:, 0], _Y, {}, ValueError, r"X must be 2-D .* got 1-D input"),
    "X_5d": ({}, np.zeros((80, 1, 2, 2, 4)), _Y, {}, ValueError,
             r"X must be 2-D .* got 5-D input"),
    "image_shape_wrong_size": ({"image_shape": (1, 4, 5)}, _X, _Y, {}, ValueError,
                               r"image_shape=\(1, 4, 5\) does not match X"),
    "image_shape_not_chw": ({"image_shape": (4, 4)}, _X, _Y, {}, ValueError,
                            r"image_shape=\(4, 4\) does not match X: it must be \(C, H, W\)"),
    "X_numeric_strings": ({}, _X.astype(str), _Y, {}, ValueError,
                          r"X must be numeric; got strings"),
    "X_word_strings": ({}, np.full((80, 4), "a"), _Y, {}, ValueError,
                       r"X must be numeric; got strings"),
    "X_object_with_None": ({}, _OBJ_NONE, _Y, {}, ValueError, r"Input X contains NaN"),
    "X_object_with_dict": ({}, _OBJ_DICT, _Y, {}, TypeError,
                           r"X must contain only numbers.*argument must be a string.* number"),
    "X_object_with_word": ({}, _OBJ_WORD, _Y, {}, ValueError,
                           r"X must contain only numbers.*could not convert"),
    "X_complex": ({}, _X.astype(np.complex128), _Y, {}, ValueError,
                  r"Complex data not supported: X has dtype complex128"),
    "sample_weight_length": ({}, _X, _Y, {"sample_weight": np.ones(3)}, ValueError,
                             r"sample_weight.shape == \(3,\), expected \(80,\)"),
    "encoder_cnn_on_tabular": ({"encoder": "cnn"}, _X, _Y, {}, ValueError,
                               r"encoder='cnn' needs image input"),
    # A user's encoder (tests/test_encoder.py has more).
    "encoder_class_not_a_module": ({"encoder": dict}, _X, _Y, {}, ValueError,
                                   r"The 'encoder' parameter of ContrastiveNoisyClassifier "
                                   r"must be .* a torch.nn.Module subclass or instance"),
    "encoder_3d_output": ({"encoder": torch.nn.Unflatten(1, (4, 4))}, _X, _Y, {}, ValueError,
                          r"encoder=Unflatten must return \(batch, d\) floating-point "
                          r"features; .* returned shape \(2, 4, 4\)"),
    "encoder_wrong_input_size": ({"encoder": torch.nn.Linear(3, 2)}, _X, _Y, {}, ValueError,
                                 r"encoder=Linear failed on a batch of 2 training samples of "
                                 r"shape \(2, 16\)"),
    "encoder_params_without_a_class": ({"encoder__width": 4}, _X, _Y, {}, ValueError,
                                       r"encoder__\* parameters \(encoder__width\) are "
                                       r"keyword arguments of an encoder class"),
}
for _name, _value in [("lr", 0.0), ("lr", -0.1), ("lr", float("nan")), ("pretrain_lr", 0.0),
                      ("pretrain_lr", -1.0), ("batch_size", 0), ("batch_size", -8),
                      ("max_epochs", 0), ("pretrain_epochs", -1), ("finetune_epochs", 0),
                      ("warmup_epochs", -1), ("max_epochs", 2.5), ("temperature", 0.0),
                      ("temperature", -0.5), ("lr", "0.1")]:
    BAD_FIT[f"{_name}={_value!r}"] = (
        {_name: _value}, _X, _Y, {}, ValueError,
        rf"The '{_name}' parameter of ContrastiveNoisyClassifier must be")
for _name, _value in [("loss", "mse"), ("phases", "everything"), ("encoder", "vit"),
                      ("data_format", "nhwc")]:
    BAD_FIT[f"{_name}={_value!r}"] = (
        {_name: _value}, _X, _Y, {}, ValueError,
        rf"The '{_name}' parameter of ContrastiveNoisyClassifier must be a str among .*"
        rf"Got '{_value}'")
BAD_FIT["device='tpu'"] = ({"device": "tpu"}, _X, _Y, {}, ValueError,
                           r"device must be 'auto', 'cpu', 'cuda' .* got 'tpu'")
BAD_FIT["device='banana'"] = ({"device": "banana"}, _X, _Y, {}, ValueError,
                              r"device must be .* got 'banana'")
if not torch.cuda.is_available():
    BAD_FIT["device='cuda'_without_cuda"] = (
        {"device": "cuda"}, _X, _Y, {}, ValueError,
        r"device='cuda' was requested but CUDA is not available")
BAD_FIT["4d_undecidable"] = (
    {}, np.zeros((20, 3, 3, 3)), np.arange(20) % 2, {}, ValueError,
    r"Cannot tell where the channels.*Pass data_format='channels_first' or "
    r"data_format='channels_last'")
BAD_FIT["flat_channels_last"] = (
    {"image_shape": (3, 8, 8)}, _smooth_rgb_nhwc().reshape(40, -1), np.arange(40) % 2, {},
    ValueError, r"flattened channels-last .* data_format='channels_last'")


@pytest.mark.parametrize("case", list(BAD_FIT), ids=list(BAD_FIT))
def test_bad_fit_input_raises_before_training(case, no_training):
    params, X, y, fit_kwargs, exc, match = BAD_FIT[case]
    with pytest.raises(exc, match=match):
        _clf(**{"phases": "full", **params}).fit(X, y, **fit_kwargs)


def test_invalid_hyperparameter_error_is_also_a_type_error(no_training):
    # sklearn's InvalidParameterError subclasses both ValueError and TypeError.
    with pytest.raises(TypeError, match=r"'batch_size' parameter"):
        _clf(batch_size="32").fit(_X, _Y)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba",
                                    "transform", "score"])
def test_use_before_fit_raises_not_fitted(method):
    args = (_X, _Y) if method == "score" else (_X,)
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(_clf(), method)(*args)


BAD_PREDICT = {
    "n_features": (lambda X: X[:, :9], ValueError,
                   r"X has 9 features, but ContrastiveNoisyClassifier is expecting 10"),
    "X_1d": (lambda X: X[0], ValueError, r"X must be 2-D .* got 1-D input"),
    "X_nan": (lambda X: _with(X, (0, 0), np.nan), ValueError, r"Input X contains NaN"),
    "X_strings": (lambda X: X.astype(str), ValueError, r"X must be numeric; got strings"),
    "X_complex": (lambda X: X.astype(complex), ValueError, r"Complex data not supported: X"),
    "X_3d_for_tabular": (lambda X: X[:, :, None].repeat(2, axis=2), ValueError,
                         r"X has samples of shape \(1, 10, 2\) but this estimator was fitted "
                         r"on samples of shape \(10,\)"),
}


@pytest.mark.parametrize("case", list(BAD_PREDICT), ids=list(BAD_PREDICT))
def test_bad_predict_input(case, fitted, data):
    make_X, exc, match = BAD_PREDICT[case]
    with pytest.raises(exc, match=match):
        fitted.predict(make_X(data[0]))


def test_predict_with_other_image_shape(fitted_images):
    X, _ = digit_images(4)
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 8, 16\) but this "
                                         r"estimator was fitted on samples of shape \(1, 8, 8\)"):
        fitted_images.predict(np.concatenate([X, X], axis=2))
    with pytest.raises(ValueError, match=r"X has 7 features"):
        fitted_images.predict(X[:, :7, :])


def test_score_rejects_labels_never_seen_in_fit(fitted, data):
    X, y = data
    y_bad = y.copy()
    y_bad[:3] = [7, 9, 7]
    with pytest.raises(ValueError, match=r"y contains labels not seen in fit: \[7, 9\]; "
                                         r"the fitted classes are \[0, 1, 2\]"):
        fitted.score(X, y_bad)
    y_mixed = y.astype(object)
    y_mixed[y == 0] = "a"
    with pytest.raises(ValueError, match=r"y contains labels not seen in fit: \['a'\]"):
        fitted.score(X, y_mixed)
    assert 0.0 <= fitted.score(X, y) <= 1.0
    assert fitted.score(X, y.astype(float)) == fitted.score(X, y)


# ======================================================= (a) uint8 fit, float predict
def test_a_uint8_fit_float_0_255_predict_is_scaled_with_a_warning():
    X, y = _digits_uint8()
    clf = _clf().fit(X[:80], y[:80])
    proba_uint8 = clf.predict_proba(X[80:])
    X_float = X[80:].astype(np.float64)  # the same images as often loaded
    with pytest.warns(DataConversionWarning,
                      match=r"0\.\.255 scale.*scaled by 1/255.*Pass uint8 images, or float "
                            r"images scaled to \[0, 1\]"):
        proba_float = clf.predict_proba(X_float)
    np.testing.assert_array_equal(proba_float, proba_uint8)
    with pytest.warns(DataConversionWarning):
        assert clf.score(X_float, y[80:]) == clf.score(X[80:], y[80:])
    # Floats already on the training scale: silent, the same answer.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(clf.predict_proba(X[80:] / np.float32(255)), proba_uint8,
                                   rtol=1e-6, atol=1e-7)


def test_a_float_unit_fit_uint8_predict_is_scaled_with_a_warning():
    X, y = _digits_uint8()
    X_unit = X / np.float32(255)
    clf = _clf().fit(X_unit[:80], y[:80])
    with pytest.warns(DataConversionWarning, match=r"X is uint8 .*scaled by 1/255.*Pass float "
                                                   r"images scaled to \[0, 1\] as in fit"):
        proba = clf.predict_proba(X[80:])
    np.testing.assert_array_equal(proba, clf.predict_proba(X_unit[80:]))


def test_a_float_0_255_fit_reads_uint8_as_the_same_raw_values(no_warnings):
    X, y = _digits_uint8()
    clf = _clf().fit(X[:80].astype(np.float32), y[:80])  # floats 0..255: taken as they are
    assert clf._input_spec.domain == "raw"
    np.testing.assert_array_equal(clf.predict_proba(X[80:]),
                                  clf.predict_proba(X[80:].astype(np.float32)))


def test_a_float_0_255_fit_warns_on_a_unit_scale_batch():
    X, y = _digits_uint8()
    clf = _clf().fit(X[:80].astype(np.float32), y[:80])
    with pytest.warns(DataConversionWarning, match=r"\[0, 1\] scale.*values up to 255.*"
                                                   r"multiply by 255 or pass uint8"):
        clf.predict(X[80:] / np.float32(255))


def test_a_uint8_predict_after_standardised_float_fit_raises():
    X, y = _digits_uint8()
    Xs = (X - X.mean()) / X.std()
    clf = _clf().fit(Xs[:80].astype(np.float32), y[:80])
    with pytest.raises(ValueError, match=r"X is uint8 .*neither on the \[0, 1\] nor on the "
                                         r"0\.\.255 scale.*Convert X to float the same way"):
        clf.predict(X[80:])


def test_a_tabular_input_gets_no_scaling(no_warnings):
    X, y = _digits_uint8()
    X = X.reshape(len(X), -1)  # no image_shape: 64 tabular features
    clf = _clf().fit(X[:80], y[:80])
    assert not clf._input_spec.is_image and clf.encoder_kind_ == "mlp"
    # The features are the values 0..255, whatever the dtype: no /255, no warning.
    np.testing.assert_allclose(clf._mean, X[:80].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict_proba(X[80:].astype(np.float64)),
                                  clf.predict_proba(X[80:]))


# ================================================================== (b) (n, 4, 4, 3)
def test_b_ambiguous_4d_rgb_batch_is_channels_last_with_a_warning():
    X, y = _digits_uint8(60)
    rgb = np.stack([X[:, :4, :4], X[:, 4:, :4], X[:, :4, 4:]], axis=-1)  # (60, 4, 4, 3)
    with pytest.warns(UserWarning, match=r"guessed 'channels_last'.*\(3, 4, 4\).*Pass "
                                         r"data_format='channels_last'"):
        guessed = _clf().fit(rgb, y)
    assert guessed.input_shape_ == (3, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = _clf(data_format="channels_last").fit(rgb, y)
        np.testing.assert_array_equal(guessed.predict_proba(rgb), explicit.predict_proba(rgb))
        # The same images channels-first: the same model.
        first = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(
            _clf(data_format="channels_first").fit(first, y).predict_proba(first),
            explicit.predict_proba(rgb))
        # predict uses the fitted layout, without warning again.
        assert guessed.predict(rgb[:1]).shape == (1,)
    # Told otherwise, it obeys: 4-channel 4x3 images.
    assert _clf(data_format="channels_first").fit(rgb, y).input_shape_ == (4, 4, 3)


def test_b_undecidable_4d_shape_fits_with_an_explicit_data_format():
    # Without data_format it raises before training (test_bad_fit_input_raises_before_training).
    X = np.random.default_rng(0).random((20, 3, 3, 3)).astype(np.float32)
    assert _clf(data_format="channels_last").fit(X, np.arange(20) % 2).input_shape_ == (3, 3, 3)


def test_unambiguous_4d_shapes_keep_working_silently(no_warnings):
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    for shape, chw in [((20, 3, 8, 8), (3, 8, 8)), ((20, 8, 8, 3), (3, 8, 8)),
                       ((20, 1, 8, 8), (1, 8, 8)), ((20, 8, 8, 1), (1, 8, 8))]:
        clf = _clf(max_epochs=1).fit(rng.random(shape).astype(np.float32), y)
        assert clf.input_shape_ == chw, shape


@pytest.mark.parametrize("layout", ["flat", "3d", "4d_first"])
def test_image_layouts(layout):
    X, y = load_digits(return_X_y=True)
    X, y = X[:120].astype(np.float32), y[:120]
    images = X.reshape(-1, 1, 8, 8)
    Xin, params = {"flat": (X, dict(image_shape=(1, 8, 8))), "3d": (images[:, 0], {}),
                   "4d_first": (images, {})}[layout]
    clf = _clf(**params).fit(Xin, y)
    assert clf.input_shape_ == (1, 8, 8)
    assert clf.encoder_kind_ == "cnn"
    assert clf.predict(Xin[:5]).shape == (5,)


def test_uint8_scaling_and_channel_order():
    rng = np.random.default_rng(0)
    n = 40
    # Channel c holds values around 80 * c: the channel order is visible in the means.
    noise = rng.integers(0, 60, size=(n, 8, 8))
    first = np.stack([noise + 80 * c for c in range(3)], axis=1).astype(np.uint8)
    last = np.ascontiguousarray(first.transpose(0, 2, 3, 1))
    y = np.arange(n) % 2
    fits = {}
    for name, X in [("first", first), ("last", last)]:
        clf = _clf(max_epochs=1, batch_size=16).fit(X, y)
        assert clf.input_shape_ == (3, 8, 8) and clf.encoder_kind_ == "cnn"
        fits[name] = clf
        standardize = clf.classifier_net_.module_.encoder[0]
        assert isinstance(standardize, Standardize)
        mean = standardize.mean.numpy().ravel()
        np.testing.assert_allclose(mean, first.mean(axis=(0, 2, 3)) / 255.0, rtol=1e-5)
    # Same images in another layout, same seed: the same model.
    np.testing.assert_allclose(fits["first"].predict_proba(first),
                               fits["last"].predict_proba(last), rtol=1e-5, atol=1e-6)
    # 3-D uint8 input: one channel, scaled to [0, 1].
    clf = _clf(max_epochs=1, batch_size=16).fit(first[:, 0], y)
    assert clf.input_shape_ == (1, 8, 8)
    mean = float(clf.classifier_net_.module_.encoder[0].mean)
    assert mean == pytest.approx(first[:, 0].mean() / 255.0, rel=1e-5)


# ======================================================= (c) flattened channels-last
def test_c_flattened_channels_last_rows_raise_naming_the_fix():
    images = _smooth_rgb(n=60)                                  # (60, 3, 8, 8)
    y = (images[:, 0].mean(axis=(1, 2)) > np.median(images[:, 0].mean(axis=(1, 2))))
    flat_last = images.transpose(0, 2, 3, 1).reshape(60, -1)    # X.reshape(n, -1) of NHWC
    with pytest.raises(ValueError, match=r"flattened channels-last images.*Pass "
                                         r"data_format='channels_last'"):
        _clf(image_shape=(3, 8, 8)).fit(flat_last, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = _clf(image_shape=(3, 8, 8), data_format="channels_last").fit(flat_last, y)
        # Read right: the same model as on the 4-D channels-last images.
        nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(clf.predict_proba(flat_last),
                                      _clf().fit(nhwc, y).predict_proba(nhwc))
        # Flattened channels-first rows are what image_shape describes: no error.
        flat_first = images.reshape(60, -1)
        np.testing.assert_array_equal(_clf(image_shape=(3, 8, 8)).fit(flat_first, y)
                                      .predict_proba(flat_first), clf.predict_proba(flat_last))
        # Explicitly channels-first: the check is skipped, the user's word stands.
        _clf(image_shape=(3, 8, 8), data_format="channels_first").fit(flat_last, y)


def test_c_single_channel_flattened_images_are_unaffected(no_warnings):
    X, y = _digits_uint8(60)
    flat = X.reshape(60, -1)
    a = _clf(image_shape=(1, 8, 8)).fit(flat, y)
    b = _clf(image_shape=(1, 8, 8), data_format="channels_last").fit(flat, y)
    np.testing.assert_array_equal(a.predict_proba(flat), b.predict_proba(flat))


# ================================================================ the hyperparameter
def test_data_format_is_a_validated_cloned_hyperparameter():
    clf = ContrastiveNoisyClassifier(data_format="channels_last")
    assert clf.get_params()["data_format"] == "channels_last"
    assert clone(clf).data_format == "channels_last"
    assert ContrastiveNoisyClassifier().data_format == "auto"
    X, y = _digits_uint8(20)
    for bad in ("nhwc", "channels-last", None):
        with pytest.raises(ValueError, match=r"The 'data_format' parameter of "
                                             r"ContrastiveNoisyClassifier must be a str among"):
            _clf(data_format=bad).fit(X, y)


def test_fitted_layout_is_used_at_predict_even_after_set_params():
    X, y = _digits_uint8(40)
    rgb = np.stack([X[:, :4, :4], X[:, 4:, :4], X[:, :4, 4:]], axis=-1)
    clf = _clf(data_format="channels_last").fit(rgb, y)
    proba = clf.predict_proba(rgb)
    clf.set_params(data_format="channels_first")  # not refitted: the fitted layout stands
    np.testing.assert_array_equal(clf.predict_proba(rgb), proba)


# ======================================================================== 4-D rule
@pytest.mark.parametrize("shape,layout,guessed", [
    ((5, 3, 32, 32), "channels_first", False),
    ((5, 32, 32, 3), "channels_last", False),
    ((5, 1, 28, 28), "channels_first", False),
    ((5, 28, 28, 1), "channels_last", False),
    ((5, 4, 16, 16), "channels_first", False),
    ((5, 10, 32, 32), "channels_first", False),   # multispectral: no 1/3/4 reading
    ((5, 32, 32, 10), "channels_last", False),
    ((5, 2, 8, 8), "channels_first", False),
    ((5, 8, 8, 2), "channels_last", False),       # not 8x2 images of 8 channels
    ((5, 4, 4, 3), "channels_last", True),        # (b): square, 3 channels
    ((5, 3, 4, 4), "channels_first", True),
    ((5, 1, 4, 4), "channels_first", True),
    ((5, 4, 4, 1), "channels_last", True),
    ((5, 3, 5, 4), "channels_first", True),       # neither square: the 3-channel reading
    ((5, 1, 3, 4), "channels_first", True),       # neither square nor 3 channels: fewer
])
def test_infer_4d_layout(shape, layout, guessed):
    assert _input.infer_4d_layout(shape) == (layout, guessed)


@pytest.mark.parametrize("shape", [(5, 3, 3, 3), (5, 4, 4, 4), (5, 1, 1, 1), (5, 4, 3, 4),
                                   (5, 3, 4, 3), (5, 16, 16, 16)])
def test_infer_4d_layout_undecidable(shape):
    with pytest.raises(ValueError, match=r"Cannot tell where the channels.*data_format="):
        _input.infer_4d_layout(shape)


def test_fit_layout_warns_only_when_guessing():
    X = np.zeros((2, 4, 4, 3), dtype=np.float32)
    with pytest.warns(UserWarning, match="data_format"):
        _input.fit_layout(X, image_shape=None, data_format="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for data_format in ("channels_first", "channels_last"):
            out, spec = _input.fit_layout(X, image_shape=None, data_format=data_format)
            assert spec.layout == data_format
        out, spec = _input.fit_layout(np.zeros((2, 8, 8, 3)), image_shape=None,
                                      data_format="auto")
        assert out.shape == (2, 3, 8, 8) and spec.layout == "channels_last"


def test_predict_layout_follows_the_fitted_sample_shape():
    X = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
    out, spec = _input.fit_layout(X, image_shape=None, data_format="auto")
    chw = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    # Channels-first batch at predict for a channels-last fit: the shape decides.
    np.testing.assert_array_equal(_input.predict_layout(chw, spec, input_shape=(3, 8, 8)), out)
    np.testing.assert_array_equal(_input.predict_layout(X, spec, input_shape=(3, 8, 8)), out)
    with pytest.raises(ValueError, match=r"X has samples of shape \(3, 8, 9\)"):
        _input.predict_layout(np.zeros((1, 8, 9, 3)), spec, input_shape=(3, 8, 8))


# ======================================================= flattened-layout detector
def test_correlation_detector_on_smooth_rgb_flattened_both_ways():
    images = _smooth_rgb(n=50, size=8)
    n = len(images)
    first = _input.flat_layout_scores(images.reshape(n, -1), (3, 8, 8))
    last = _input.flat_layout_scores(images.transpose(0, 2, 3, 1).reshape(n, -1), (3, 8, 8))
    # The right reading is the smooth one, by a wide margin, either way round.
    assert first["channels_first"] > 0.7 and first["channels_first"] > first["channels_last"]
    assert last["channels_last"] > 0.7
    assert last["channels_last"] - last["channels_first"] > 0.2
    # Right reading, same images: the same score.
    assert last["channels_last"] == pytest.approx(first["channels_first"])


@pytest.mark.parametrize("size,channels", [(8, 3), (16, 3), (6, 4), (32, 3)])
def test_detector_raises_only_on_the_channels_last_flattening(size, channels):
    rng = np.random.default_rng(size)
    smooth = gaussian_filter(rng.random((30, channels, size, size)), sigma=(0, 0.3, 1.5, 1.5))
    shape = (channels, size, size)
    flat_first = smooth.reshape(30, -1)
    flat_last = smooth.transpose(0, 2, 3, 1).reshape(30, -1)
    _input.fit_layout(flat_first, image_shape=shape, data_format="auto")
    with pytest.raises(ValueError, match=r"data_format='channels_last'"):
        _input.fit_layout(flat_last, image_shape=shape, data_format="auto")
    out, spec = _input.fit_layout(flat_last, image_shape=shape, data_format="channels_last")
    np.testing.assert_allclose(out, smooth.astype(np.float32))
    assert spec.layout == "channels_last"


@pytest.mark.parametrize("n", [2, 3, 5, 40])
def test_detector_does_not_fire_on_noise(n):
    # No spatial structure either way: no reading is "clearly" more coherent.
    for seed in range(20):
        X = np.random.default_rng(seed).integers(0, 256, (n, 3 * 4 * 4)).astype(np.uint8)
        _input.fit_layout(X, image_shape=(3, 4, 4), data_format="auto")


def test_detector_single_channel_and_constant_images():
    X = _smooth_rgb(n=10)[:, :1].reshape(10, -1)
    scores = _input.flat_layout_scores(X, (1, 8, 8))
    assert scores["channels_first"] == scores["channels_last"]  # the same reading
    out, spec = _input.fit_layout(X, image_shape=(1, 8, 8), data_format="auto")
    assert out.shape == (10, 1, 8, 8) and spec.layout == "channels_first"
    const = np.ones((4, 3 * 8 * 8), dtype=np.float32)
    assert np.isnan(_input.flat_layout_scores(const, (3, 8, 8))["channels_first"])
    _input.fit_layout(const, image_shape=(3, 8, 8), data_format="auto")  # no decision


def test_tabular_input_is_never_checked_or_scaled(no_warnings):
    # Smooth-looking rows of 48 features without image_shape: just features.
    images = _smooth_rgb(n=20)[:, :, :4, :4]
    X = images.transpose(0, 2, 3, 1).reshape(20, -1) * 255
    for data_format in _input.DATA_FORMATS:
        out, spec = _input.fit_layout(X, image_shape=None, data_format=data_format)
        assert not spec.is_image and spec.dtype is None and out.shape == (20, 48)
        np.testing.assert_allclose(out, X.astype(np.float32))
    Xu = np.arange(40, dtype=np.uint8).reshape(4, 10) * 6
    out, spec = _input.fit_layout(Xu, image_shape=None, data_format="auto")
    np.testing.assert_array_equal(out, Xu.astype(np.float32))  # no /255
    np.testing.assert_array_equal(_input.predict_layout(Xu.astype(np.float64), spec,
                                                        input_shape=(10,)), out)


# ======================================================================= value scale
def _spec(X):
    return _input.fit_layout(X, image_shape=None, data_format="auto")[1]


_U8 = np.array([[[0, 128], [255, 7]]], dtype=np.uint8)          # (1, 2, 2)
_UNIT = _U8 / np.float32(255)
_RAW = _U8.astype(np.float32)
_STD = (_RAW - 100) / 50


@pytest.mark.parametrize("fit_X,predict_X,expected,warns", [
    (_U8, _U8, _UNIT, None),
    (_U8, _UNIT, _UNIT, None),
    (_U8, _RAW, _UNIT, r"0\.\.255 scale"),
    (_U8, _RAW.astype(np.float64), _UNIT, r"0\.\.255 scale"),
    (_U8, _STD, _STD, r"outside the \[0, 1\] range"),
    (_U8, _UNIT * 1.5, _UNIT * 1.5, r"outside the \[0, 1\] range"),  # ambiguous: as is
    (_UNIT, _U8, _UNIT, r"X is uint8"),
    (_UNIT, _UNIT, _UNIT, None),
    (_UNIT, _RAW, _UNIT, r"0\.\.255 scale"),
    (_UNIT, _UNIT * 1.5, _UNIT * 1.5, None),  # floats: out of range stays as is
    (_RAW, _U8, _RAW, None),
    (_RAW, _RAW, _RAW, None),
    (_RAW, _UNIT, _UNIT, r"\[0, 1\] scale"),
    (_STD, _STD, _STD, None),
    (_STD, _RAW, _RAW, None),
], ids=["u8-u8", "u8-unit", "u8-raw", "u8-raw64", "u8-std", "u8-1.5", "unit-u8", "unit-unit",
        "unit-raw", "unit-1.5", "raw-u8", "raw-raw", "raw-unit", "std-std", "std-raw"])
def test_predict_scale_table(fit_X, predict_X, expected, warns):
    spec = _spec(fit_X)
    before = predict_X.copy()
    if warns is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = _input.predict_scale(predict_X, spec)
    else:
        with pytest.warns(DataConversionWarning, match=warns):
            out = _input.predict_scale(predict_X, spec)
    if out.dtype == np.uint8:
        # uint8 pixels on the [0, 1] scale stay uint8 (a quarter of the memory);
        # the nets divide each batch by 255 on the device, bit for bit as _scaled.
        assert predict_X.dtype == np.uint8 and spec.domain == "unit"
        out = _input._scaled(out)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    np.testing.assert_array_equal(predict_X, before)


def test_predict_scale_uint8_after_other_floats_raises():
    with pytest.raises(ValueError, match=r"X is uint8 .*Convert X to float the same way"):
        _input.predict_scale(_U8, _spec(_STD))


def test_fit_records_value_kind_and_range():
    spec = _spec(_U8)
    assert (spec.dtype, spec.value_range, spec.domain) == ("uint8", (0.0, 255.0), "unit")
    spec = _spec(_RAW)
    assert (spec.dtype, spec.value_range, spec.domain) == ("float", (0.0, 255.0), "raw")
    assert _spec(_UNIT).domain == "unit" and _spec(_STD).domain == "other"
    assert _spec(_RAW * 2).domain == "other"  # above 255


@pytest.mark.parametrize("kind, want", [
    ("uint8", (0.0, 1.0)), ("unit", (0.0, 1.0)), ("raw", (0.0, 255.0)), ("other", None)])
def test_simclr_augmenter_clamps_to_the_input_range(kind, want):
    # Colour jitter clamps to the range the images live in.
    rng = np.random.default_rng(0)
    X = {"uint8": lambda: rng.integers(0, 256, (40, 3, 8, 8)).astype(np.uint8),
         "unit": lambda: rng.random((40, 3, 8, 8)).astype(np.float32),
         "raw": lambda: (rng.random((40, 3, 8, 8)) * 255).astype(np.float32),
         "other": lambda: rng.normal(size=(40, 3, 8, 8)).astype(np.float32)}[kind]()
    clf = _clf(phases="pretrain", pretrain_epochs=1, max_epochs=1, gmm_epochs=1,
               warmup_epochs=1, batch_size=64, lr=0.05, pretrain_lr=0.1).fit(
        X, np.arange(40) % 2)
    got = clf.encoder_net_.augmenter_.value_range
    if want is None:  # standardised-looking floats: the training range
        want = (float(X.min()), float(X.max()))
    assert tuple(got) == pytest.approx(want)


# ================================================================= the caller's data
@pytest.mark.parametrize("case", ["uint8_4d", "float_flat_last", "uint8_flat", "tabular",
                                  "readonly_4d"])
def test_helpers_never_modify_the_callers_array(case):
    rng = np.random.default_rng(0)
    image_shape, data_format = None, "auto"
    if case == "uint8_4d":
        X = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    elif case == "float_flat_last":
        X = rng.random((6, 3 * 8 * 8)).astype(np.float32)
        image_shape, data_format = (3, 8, 8), "channels_last"
    elif case == "uint8_flat":
        X = rng.integers(0, 256, (6, 64)).astype(np.uint8)
        image_shape = (1, 8, 8)
    elif case == "tabular":
        X = rng.random((6, 5))
    else:
        X = rng.random((6, 8, 8, 3)).astype(np.float32)
        X.setflags(write=False)
    before = X.copy()
    out, spec = _input.fit_layout(X, image_shape=image_shape, data_format=data_format)
    # uint8 images stay uint8 (the nets scale each batch on the device).
    expected_dtype = np.uint8 if spec.is_image and X.dtype == np.uint8 else np.float32
    assert out.flags.writeable and out.flags.c_contiguous and out.dtype == expected_dtype
    pred = _input.predict_layout(X, spec, input_shape=out.shape[1:])
    np.testing.assert_array_equal(pred, out)
    if spec.is_image:
        other = X.astype(np.float32) if X.dtype == np.uint8 else X
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataConversionWarning)
            _input.predict_layout(other, spec, input_shape=out.shape[1:])
        if np.shares_memory(out, X):
            # Only a view when nothing had to change (uint8 rows reshaped):
            # no copy of the caller's data, which nothing downstream writes to.
            assert X.dtype == out.dtype and X.size == out.size
        else:
            out += 1  # the results are the helpers' own arrays
    np.testing.assert_array_equal(X, before)

