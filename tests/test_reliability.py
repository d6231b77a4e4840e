"""Reliability of ContrastiveNoisyClassifier (GitHub issue #5).

Bad input fails early with a message naming the argument; divergence and
Ctrl-C leave a usable estimator; fits are reproducible and leave the caller's
RNGs, thread settings and arrays alone; models survive pickling; repeated
fits do not leak.

Every fit is tiny (80 tabular samples or 8x8 images, one or two epochs per
phase) and torch runs on one thread for this module: on a small shared CPU,
OpenMP's thread team makes these millisecond-sized steps many times slower.
"""

import copy
import gc
import io
import os
import pickle
import random
import threading
import warnings
import weakref

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.model_selection import GridSearchCV

import noisyclf.estimator as estimator_module
import noisyclf.nets as nets_module
from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning, make_noisy_labels

TINY = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
            batch_size=32, device="cpu", random_state=0)
PHASES = ("a1", "a2", "b1", "b2", "b3")


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**TINY, **params})


def _tabular(n=80, n_features=10, seed=0):
    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=5,
                               n_redundant=0, n_classes=3, random_state=seed)
    return X, y


def _images(n=80):
    X, y = load_digits(return_X_y=True)
    return X[:n].reshape(n, 8, 8), y[:n]



@pytest.fixture(scope="module")
def data():
    return _tabular()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return _clf().fit(X, y)


@pytest.fixture(scope="module")
def fitted_images():
    X, y = _images()
    return _clf().fit(X, y)


# --------------------------------------------------------------------- bad input
def _fail_if_called(*args, **kwargs):
    raise AssertionError("training started before the input was validated")


@pytest.fixture
def no_training(monkeypatch):
    """Any training (a1 runs through _run_simclr, the rest through the nets) fails."""
    monkeypatch.setattr(nets_module.NoisyLabelNet, "fit", _fail_if_called)
    monkeypatch.setattr(nets_module.ContrastiveNet, "fit", _fail_if_called)
    monkeypatch.setattr(nets_module.NoisyLabelNet, "partial_fit", _fail_if_called)
    monkeypatch.setattr(nets_module.ContrastiveNet, "partial_fit", _fail_if_called)
    monkeypatch.setattr(estimator_module, "_run_simclr", _fail_if_called)


def _with(X, index, value):
    X = X.astype(np.float64)
    X[index] = value
    return X


_X, _Y = _tabular(n_features=16)
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


@pytest.mark.parametrize("case", list(BAD_FIT), ids=list(BAD_FIT))
def test_bad_fit_input_raises_before_training(case, no_training):
    params, X, y, fit_kwargs, exc, match = BAD_FIT[case]
    with pytest.raises(exc, match=match):
        _clf(**params).fit(X, y, **fit_kwargs)


def test_invalid_hyperparameter_error_is_also_a_type_error(no_training):
    # sklearn's InvalidParameterError subclasses both ValueError and TypeError.
    with pytest.raises(TypeError, match=r"'batch_size' parameter"):
        _clf(batch_size="32").fit(_X, _Y)


BAD_NOISE_RATES = {
    "negative": (-0.1, ValueError), "one": (1.0, ValueError), "above_one": (1.5, ValueError),
    "nan": (float("nan"), ValueError), "inf": (float("inf"), ValueError),
    "string": ("0.2", TypeError),
}


@pytest.mark.parametrize("case", list(BAD_NOISE_RATES), ids=list(BAD_NOISE_RATES))
def test_make_noisy_labels_rejects_noise_rate_outside_0_1(case):
    rate, exc = BAD_NOISE_RATES[case]
    with pytest.raises(exc, match=r"`noise_rate` must be"):
        make_noisy_labels(_Y, "symmetric", rate, random_state=0)


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
    X, _ = _images(4)
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


# -------------------------------------------------------------------- divergence
def _diverged_in_messages(records):
    return [str(w.message) for w in records if issubclass(w.category, DivergenceWarning)]


def _all_weights_finite(net):
    return all(torch.isfinite(v).all() for v in net.module_.state_dict().values()
               if v.is_floating_point())


def test_huge_lr_diverges_with_warning_and_stays_usable(data):
    X, y = data
    with pytest.warns(DivergenceWarning) as records:
        clf = _clf(lr=1e3, pretrain_lr=1e3).fit(X, y)
    messages = _diverged_in_messages(records)
    # The supervised phases blow up; SimCLR's NT-Xent on L2-normalised
    # projections is bounded and scale-invariant, so a1/b2 survive lr=1e3.
    assert "a2" in clf.diverged_phases_
    assert set(clf.diverged_phases_) <= set(PHASES)
    assert len(messages) == len(clf.diverged_phases_)
    for phase, message in zip(clf.diverged_phases_, messages):
        assert f"Phase {phase} diverged" in message and "lower the learning rate" in message
        assert "train_loss" not in clf.history_[phase][-1]  # the diverged epoch
    assert clf.interrupted_phase_ is None
    assert set(clf.history_) == set(PHASES)  # fit went on after the divergence
    assert _all_weights_finite(clf.classifier_net_)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.isfinite(clf.sample_weights_).all()
    assert np.isfinite(clf.transform(X)).all()


def test_contrastive_phases_divergence(data):
    X, y = data
    with pytest.warns(DivergenceWarning) as records:
        clf = _clf(pretrain_lr=1e6, pretrain_epochs=3, finetune_epochs=3).fit(X, y)
    assert {"a1", "b2"} <= set(clf.diverged_phases_)
    messages = _diverged_in_messages(records)
    assert [m.split()[1] for m in messages] == clf.diverged_phases_
    assert _all_weights_finite(clf.encoder_net_)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_finite_loss_with_overflowing_batchnorm_counts_as_divergence(data):
    # lr=1e3 from a random encoder: the loss stays finite (~1e19) but BatchNorm
    # running variances overflow to inf, so eval-mode outputs would be NaN.
    X, y = data
    with pytest.warns(DivergenceWarning) as records:
        clf = _clf(phases="baseline", lr=1e3).fit(X, y)
    assert "Phase a2 diverged" in str(records[0].message)
    # b1's head trains at the same lr and overflows too; both are restored.
    assert clf.diverged_phases_[0] == "a2" and set(clf.diverged_phases_) <= {"a2", "b1"}
    assert _all_weights_finite(clf.classifier_net_)
    assert _all_weights_finite(clf.selection_net_)
    assert np.isfinite(clf.predict_proba(X)).all()
    assert np.isfinite(clf.sample_weights_).all() and np.isfinite(clf.label_quality_).all()


@pytest.mark.parametrize("loss", ["ce", "nfl+rce", "elr"])
def test_every_loss_trains_and_survives_huge_lr(loss, data):
    X, y = data
    clf = _clf(loss=loss).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        clf = _clf(loss=loss, lr=1e3, pretrain_lr=1e3).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_grid_search_scores_every_point_despite_divergence(data):
    X, y = data
    search = GridSearchCV(_clf(), {"lr": [1e3, 0.01]}, cv=2, error_score=np.nan)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        search.fit(X, y)
    categories = {w.category for w in records}
    assert DivergenceWarning in categories
    assert FitFailedWarning not in categories
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        assert np.isfinite(search.cv_results_[key]).all(), search.cv_results_
    assert search.best_params_["lr"] in (1e3, 0.01)
    assert np.isfinite(search.predict_proba(X)).all()


# ------------------------------------------------------------------ interruption
INTERRUPT = dict(pretrain_epochs=2, max_epochs=2, finetune_epochs=2, warmup_epochs=1)


def _arm_interrupt(monkeypatch, phase, epoch):
    """Raise KeyboardInterrupt (once) in the first training step of ``epoch`` of ``phase``.

    The nets of a full fit train in the order a1, a2, b1, b2, b3.
    """
    seen = []
    fired = []
    for cls in (nets_module.ContrastiveNet, nets_module.NoisyLabelNet):
        original = cls.train_step_single

        def step(self, batch, _original=original, **fit_params):
            if not any(net is self for net in seen):
                seen.append(self)
            index = next(i for i, net in enumerate(seen) if net is self)
            if not fired and PHASES[index] == phase and len(self.history) == epoch:
                fired.append(phase)
                raise KeyboardInterrupt
            return _original(self, batch, **fit_params)

        monkeypatch.setattr(cls, "train_step_single", step)
    return fired


@pytest.fixture(scope="module")
def uninterrupted(data):
    X, y = data
    return _clf(**INTERRUPT).fit(X, y)


@pytest.mark.parametrize("phase,epoch", [("a1", 2), ("a2", 1), ("a2", 2), ("b1", 1),
                                         ("b2", 2), ("b3", 1), ("b3", 2)])
def test_keyboard_interrupt_leaves_defined_state(phase, epoch, monkeypatch, data,
                                                 uninterrupted):
    X, y = data
    fired = _arm_interrupt(monkeypatch, phase, epoch)
    clf = _clf(**INTERRUPT)
    rng_before = torch.get_rng_state()
    with pytest.warns(UserWarning, match=rf"interrupted during phase {phase}; the remaining "
                                         rf"phases were skipped"):
        clf.fit(X, y)
    assert fired == [phase]
    assert torch.equal(rng_before, torch.get_rng_state())
    assert clf.interrupted_phase_ == phase
    assert clf.diverged_phases_ == []
    ran = PHASES[:PHASES.index(phase) + 1]
    assert list(clf.history_) == list(ran)
    assert len(clf.history_[phase]) == epoch  # the interrupted epoch has its row
    assert "train_loss" not in clf.history_[phase][-1]
    if phase == "a1":
        for method in (clf.predict, clf.predict_proba):
            with pytest.raises(NotFittedError, match="interrupted in phase a1 before a "
                                                     "classifier was trained"):
                method(X)
        for attr in ("classifier_net_", "pseudo_labels_", "sample_weights_", "label_quality_"):
            assert not hasattr(clf, attr)
    else:
        proba = clf.predict_proba(X)
        assert proba.shape == (len(X), 3) and np.isfinite(proba).all()
        assert set(clf.predict(X)) <= set(clf.classes_)
        # a2's given-label scores exist; b1's weights only once b1 ran.
        assert clf.label_quality_.shape == (len(X),)
        assert np.isfinite(clf.label_quality_).all()
        if phase == "a2":
            assert not hasattr(clf, "sample_weights_")
        else:
            assert clf.sample_weights_.shape == (len(X),)
            assert np.isfinite(clf.sample_weights_).all()
    # A second fit, no longer interrupted, is a normal fit.
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        clf.fit(X, y)
    assert not [w for w in records if "interrupted" in str(w.message)]
    assert clf.interrupted_phase_ is None
    assert list(clf.history_) == list(PHASES)
    np.testing.assert_array_equal(clf.predict_proba(X), uninterrupted.predict_proba(X))
    np.testing.assert_array_equal(clf.sample_weights_, uninterrupted.sample_weights_)


def test_interrupted_pretraining_is_not_cached(monkeypatch, data, tmp_path):
    X, y = data
    fired = _arm_interrupt(monkeypatch, "a1", 2)
    clf = _clf(**INTERRUPT, memory=tmp_path)
    with pytest.warns(UserWarning, match="interrupted during phase a1"):
        clf.fit(X, y)
    assert fired == ["a1"] and clf.interrupted_phase_ == "a1"
    clf.fit(X, y)  # must pre-train again, not load the interrupted run
    assert clf.interrupted_phase_ is None
    assert len(clf.history_["a1"]) == INTERRUPT["pretrain_epochs"]
    assert all("train_loss" in row for row in clf.history_["a1"])


def test_interrupt_after_a_successful_fit_drops_its_results(monkeypatch, data):
    X, y = data
    clf = _clf(**INTERRUPT).fit(X, y)
    _arm_interrupt(monkeypatch, "a1", 1)
    with pytest.warns(UserWarning, match="interrupted during phase a1"):
        clf.fit(X, y)
    for attr in ("classifier_net_", "pseudo_labels_", "sample_weights_", "label_issues_"):
        assert not hasattr(clf, attr), attr
    with pytest.raises(NotFittedError):
        clf.predict(X)


# ------------------------------------------------------------------- determinism
def _fit_outputs(clf, X, y):
    clf.fit(X, y)
    return clf.predict_proba(X), clf.sample_weights_, clf.pseudo_labels_


@pytest.mark.parametrize("kind", ["tabular", "images"])
def test_same_seed_same_results_different_seed_different_results(kind):
    X, y = _tabular() if kind == "tabular" else _images()
    y = make_noisy_labels(y, "symmetric", 0.3, random_state=0)
    first = _fit_outputs(_clf(random_state=3), X, y)
    # Disturb every global RNG in between: the fit must not depend on them.
    torch.manual_seed(12345)
    np.random.seed(54321)
    random.seed(7)
    second = _fit_outputs(_clf(random_state=3), X, y)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = _fit_outputs(_clf(random_state=4), X, y)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_random_state_instance_reproducible():
    X, y = _tabular()
    a = _fit_outputs(_clf(random_state=np.random.RandomState(8)), X, y)
    b = _fit_outputs(_clf(random_state=np.random.RandomState(8)), X, y)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def _global_rng_states():
    return np.random.get_state(), torch.get_rng_state(), random.getstate()


def _assert_same_rng_states(before, after):
    (np_a, torch_a, py_a), (np_b, torch_b, py_b) = before, after
    assert np_a[0] == np_b[0]
    np.testing.assert_array_equal(np_a[1], np_b[1])
    assert np_a[2:] == np_b[2:]
    assert torch.equal(torch_a, torch_b)
    assert py_a == py_b


@pytest.mark.parametrize("phases", ["full", "baseline"])
@pytest.mark.parametrize("random_state", [0, None], ids=["seed0", "seedNone"])
def test_fit_and_predict_leave_global_rngs_alone(random_state, phases, data):
    X, y = data
    np.random.seed(1)
    torch.manual_seed(2)
    before = _global_rng_states()
    clf = _clf(random_state=random_state, phases=phases).fit(X, y)
    clf.predict_proba(X)
    clf.score(X, y)
    clf.transform(X)
    _assert_same_rng_states(before, _global_rng_states())


def test_fit_leaves_torch_thread_settings_alone(monkeypatch, data):
    X, y = data
    calls = []
    for name in ("set_num_threads", "set_num_interop_threads"):
        original = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda n, _name=name, _orig=original:
                            (calls.append((_name, n)), _orig(n))[1])
    threads = torch.get_num_threads(), torch.get_num_interop_threads()
    for random_state in (0, None):
        _clf(random_state=random_state).fit(X, y).predict(X)
    assert calls == []
    assert (torch.get_num_threads(), torch.get_num_interop_threads()) == threads


# ------------------------------------------------------ caller's data untouched
def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


_RNG = np.random.RandomState(0)
INPUTS = {
    "float64": (lambda: _X, {}),
    "float32": (lambda: _X.astype(np.float32), {}),
    "float16": (lambda: _X.astype(np.float16), {}),
    "object_numeric": (lambda: _X.astype(object), {}),
    "uint8": (lambda: _RNG.randint(0, 256, (80, 16)).astype(np.uint8), {}),
    "float32_readonly": (lambda: _readonly(_X.astype(np.float32)), {}),
    "float64_readonly": (lambda: _readonly(_X), {}),
    "non_contiguous": (lambda: np.repeat(_X, 2, axis=1)[:, ::2], {}),
    "fortran_float32": (lambda: np.asfortranarray(_X.astype(np.float32)), {}),
    "images_nhwc_uint8_readonly": (
        lambda: _readonly(_RNG.randint(0, 256, (80, 8, 8, 3)).astype(np.uint8)), {}),
    "images_flat_uint8": (lambda: _RNG.randint(0, 256, (80, 64)).astype(np.uint8),
                          {"image_shape": (1, 8, 8)}),
    "images_flat_rgb_channels_last": (
        lambda: _RNG.rand(80, 8 * 8 * 3).astype(np.float32),
        {"image_shape": (3, 8, 8), "data_format": "channels_last"}),
    "images_ambiguous_4d_channels_last": (
        lambda: _RNG.randint(0, 256, (80, 4, 4, 3)).astype(np.uint8),
        {"data_format": "channels_last"}),
}


@pytest.mark.parametrize("case", list(INPUTS), ids=list(INPUTS))
def test_caller_arrays_unchanged(case):
    make_X, params = INPUTS[case]
    X = make_X()
    y = _readonly(_Y) if "readonly" in case else _Y.copy()
    X_before, y_before = X.copy(order="K"), y.copy()
    flags = (X.flags.writeable, X.flags.c_contiguous, X.flags.f_contiguous)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. torch's non-writable warning
        clf = _clf(**params).fit(X, y)
        clf.predict(X)
        clf.predict_proba(X)
        clf.score(X, y)
        clf.transform(X)
    assert X.dtype == X_before.dtype and X.shape == X_before.shape
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert (X.flags.writeable, X.flags.c_contiguous, X.flags.f_contiguous) == flags
    if case.startswith("images_nhwc"):
        assert clf.input_shape_ == (3, 8, 8)


def test_caller_lists_unchanged():
    X, y = _X.tolist(), _Y.tolist()
    X_before, y_before = copy.deepcopy(X), copy.deepcopy(y)
    clf = _clf().fit(X, y)
    clf.predict(X)
    clf.score(X, y)
    assert X == X_before and y == y_before


# ------------------------------------------------------------------- persistence
def _joblib_round_trip(obj):
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("dump", [lambda o: pickle.loads(pickle.dumps(o)), _joblib_round_trip],
                         ids=["pickle", "joblib"])
def test_round_trip_unfitted_and_fitted(dump, fitted, data):
    X, _ = data
    unfitted = dump(_clf(lr=0.02))
    assert unfitted.get_params() == _clf(lr=0.02).get_params()
    empty_clone = dump(clone(fitted))
    assert not hasattr(empty_clone, "classes_")
    assert empty_clone.get_params() == fitted.get_params()
    loaded = dump(fitted)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    for attr in ("classes_", "sample_weights_", "pseudo_labels_", "label_issues_"):
        np.testing.assert_array_equal(getattr(loaded, attr), getattr(fitted, attr))
    assert loaded.history_ == fitted.history_


def test_fitted_model_round_trip_through_file_and_refit(fitted, data, tmp_path):
    X, y = data
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    loaded.fit(X, y)  # still a working estimator
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_interrupted_model_pickles(monkeypatch, data):
    X, y = data
    _arm_interrupt(monkeypatch, "b2", 1)
    with pytest.warns(UserWarning, match="interrupted during phase b2"):
        clf = _clf(**INTERRUPT).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.interrupted_phase_ == "b2"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_model_with_cuda_device_loads_and_predicts_on_cpu(data):
    # Simulate a model fitted with device="cuda" (skorch's tests do the same):
    # the hyperparameter and every net's device say "cuda" when pickled.
    X, y = data
    clf = _clf().fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(device="cuda")
    clf._device = "cuda"
    for net in (clf.classifier_net_, clf.encoder_net_):
        net.device = "cuda"
    payload = pickle.dumps(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning: loading on "cpu"
        loaded = pickle.loads(payload)
    assert loaded.device == "cuda"  # hyperparameters are never changed
    assert str(loaded.classifier_net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.transform(X).shape[0] == len(X)
    assert 0.0 <= loaded.score(X, y) <= 1.0
    with pytest.raises(ValueError, match="CUDA is not available"):
        loaded.fit(X, y)  # refitting asks for CUDA again, and says it is missing


# --------------------------------------------------------------------- resources
def _rss_mib():
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc or psutil")
def test_repeated_fits_do_not_leak_memory_or_threads(data):
    # One leaked fitted estimator (graphs, weight copies) is ~3.5 MiB here, so
    # 15 leaked fits would add ~50 MiB; allocator noise is ~2 MiB.
    X, y = data
    threads = threading.active_count()
    rss = {}
    for i in range(1, 21):
        clf = _clf(random_state=i).fit(X, y)
        clf.predict_proba(X)
        del clf
        gc.collect()
        if i in (5, 20):
            rss[i] = _rss_mib()
    assert rss[20] - rss[5] < 25, rss
    assert threading.active_count() == threads


def test_fitted_estimator_is_garbage_collected(data):
    X, y = data
    clf = _clf().fit(X, y)
    clf.predict(X)
    refs = [weakref.ref(clf), weakref.ref(clf.classifier_net_),
            weakref.ref(clf.classifier_net_.module_), weakref.ref(clf.encoder_net_.module_)]
    del clf
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


# ------------------------------------------- no silent input mistakes (issue #8, item 8)
# The full story (uint8/float scales, 4-D layouts, flattened channels-last rows)
# is in test_input.py; here: the layout errors come before any training.
def _smooth_rgb_nhwc(n=40, size=8):
    rng = np.random.RandomState(0)
    X = np.cumsum(np.cumsum(rng.rand(n, size, size, 3), axis=1), axis=2)  # smooth
    return X / X.max()


LAYOUT_ERRORS = {
    "4d_undecidable": ({}, np.zeros((20, 3, 3, 3)), r"Cannot tell where the channels .* "
                                                    r"Pass data_format="),
    "flat_channels_last": ({"image_shape": (3, 8, 8)}, _smooth_rgb_nhwc().reshape(40, -1),
                           r"flattened channels-last .* data_format='channels_last'"),
}


@pytest.mark.parametrize("case", list(LAYOUT_ERRORS), ids=list(LAYOUT_ERRORS))
def test_layout_errors_raise_before_training(case, no_training):
    params, X, match = LAYOUT_ERRORS[case]
    with pytest.raises(ValueError, match=match):
        _clf(**params).fit(X, np.arange(len(X)) % 2)
