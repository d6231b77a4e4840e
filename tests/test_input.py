"""Input layout and value scale (noisyclf._input; GitHub issue #8, item 8).

"No silent input mistakes": three ways a new user's input used to collapse
quietly, each now giving the right answer or a clear error/warning naming
the fix:

(a) fitting on uint8 images and predicting on the same images as floats
    0..255 (uint8 was scaled to [0, 1] in fit, floats taken as they are);
(b) an (n, 4, 4, 3) RGB batch read as 4-channel 4x3 images;
(c) a flattened channels-last array (n, H*W*C) with ``image_shape=(C, H, W)``
    read as (C, H, W) rows: scrambled images.

Then unit tests of the helpers: the 4-D layout rule, the adjacent-pixel
correlation detector, the predict-time value-scale table, tabular input left
alone, and the caller's arrays never modified.  Every fit is tiny (a2 alone,
one or two epochs on <= 120 small images).
"""

import pickle
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import DataConversionWarning

from noisyclf import ContrastiveNoisyClassifier
from noisyclf import _input

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


# ======================================================= (a) uint8 fit, float predict
def test_a_uint8_fit_float_0_255_predict_is_scaled_with_a_warning():
    X, y = _digits_uint8()
    clf = _clf().fit(X[:80], y[:80])
    proba_uint8 = clf.predict_proba(X[80:])
    X_float = X[80:].astype(np.float64)  # the same images as a new user loads them
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


def test_b_undecidable_4d_shape_raises_naming_data_format():
    X = np.random.default_rng(0).random((20, 3, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"Cannot tell where the channels.*Pass "
                                         r"data_format='channels_first' or "
                                         r"data_format='channels_last'"):
        _clf().fit(X, np.arange(20) % 2)
    assert _clf(data_format="channels_last").fit(X, np.arange(20) % 2).input_shape_ == (3, 3, 3)


def test_unambiguous_4d_shapes_keep_working_silently(no_warnings):
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    for shape, chw in [((20, 3, 8, 8), (3, 8, 8)), ((20, 8, 8, 3), (3, 8, 8)),
                       ((20, 1, 8, 8), (1, 8, 8)), ((20, 8, 8, 1), (1, 8, 8))]:
        clf = _clf(max_epochs=1).fit(rng.random(shape).astype(np.float32), y)
        assert clf.input_shape_ == chw, shape


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


def test_model_pickled_before_data_format_still_predicts():
    X, y = _digits_uint8(40)
    clf = _clf().fit(X, y)
    proba = clf.predict_proba(X)
    state = pickle.loads(pickle.dumps(clf))
    del state.__dict__["_input_spec"]  # as pickled by an earlier version
    np.testing.assert_array_equal(state.predict_proba(X), proba)


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
    ((5, 8, 8, 2), "channels_last", False),       # the old rule read this as 8x2 images
    ((5, 4, 4, 3), "channels_last", True),        # issue 8 (b): square, 3 channels
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


# ==================================================================== caller's data
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


def test_estimator_leaves_the_callers_arrays_alone_across_dtypes():
    X, y = _digits_uint8(40)
    X_float = X.astype(np.float64)
    before_u8, before_f = X.copy(), X_float.copy()
    clf = _clf(max_epochs=1).fit(X, y)
    with pytest.warns(DataConversionWarning):
        clf.predict(X_float)
    clf.predict(X)
    np.testing.assert_array_equal(X, before_u8)
    np.testing.assert_array_equal(X_float, before_f)
