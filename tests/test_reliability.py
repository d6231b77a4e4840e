"""Reliability of ContrastiveNoisyClassifier.

Divergence and Ctrl-C leave a usable estimator; fits are reproducible and
leave the caller's RNGs, thread settings and arrays alone; models survive
pickling, refitting and loading on a machine without CUDA; repeated fits do
not leak.  Bad input is tested in ``test_input.py``.

Every fit is tiny (80 tabular samples or 8x8 images, one or two epochs per
phase) and torch runs on one thread (``conftest.py``): on a small shared CPU,
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
from sklearn.exceptions import DataConversionWarning, FitFailedWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from skorch.exceptions import DeviceWarning

import noisyclf.nets as nets_module
from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning, make_noisy_labels

from _data import digit_images, tabular

TINY = dict(phases="full", pretrain_epochs=1, max_epochs=2, finetune_epochs=1,
            warmup_epochs=1, batch_size=32, device="cpu", random_state=0)
PHASES = ("a1", "a2", "b1", "b2", "b3")
MODES = ["auto", "baseline", "pretrain", "full", "bootstrap"]


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**TINY, **params})


@pytest.fixture(scope="module")
def data():
    return tabular()


_X, _Y = tabular(n_features=16)


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
def test_every_loss_survives_huge_lr(loss, data):
    # Each loss trains normally in every mode (test_estimator_phases.py).
    X, y = data
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
    # A second fit, not interrupted, is a normal fit.
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
    X, y = tabular() if kind == "tabular" else digit_images()
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
    X, y = tabular()
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


def test_caller_arrays_unchanged_when_predicting_another_dtype():
    X, y = digit_images(40)
    X = np.round(X * 255 / 16).astype(np.uint8)
    X_float = X.astype(np.float64)
    before_u8, before_f = X.copy(), X_float.copy()
    clf = _clf(phases="baseline", max_epochs=1).fit(X, y)
    with pytest.warns(DataConversionWarning):
        clf.predict(X_float)
    clf.predict(X)
    np.testing.assert_array_equal(X, before_u8)
    np.testing.assert_array_equal(X_float, before_f)


# ------------------------------------------------------------------- persistence
def _joblib_round_trip(obj):
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


DUMPS = {"pickle": lambda o: pickle.loads(pickle.dumps(o)), "joblib": _joblib_round_trip}


@pytest.mark.parametrize("dump", list(DUMPS))
def test_unfitted_model_round_trips(dump):
    unfitted = DUMPS[dump](_clf(lr=0.02))
    assert unfitted.get_params() == _clf(lr=0.02).get_params()
    assert not hasattr(unfitted, "classes_")


@pytest.mark.parametrize("phases", MODES)
def test_fitted_model_round_trips_and_refits(phases, data, tmp_path):
    X, y = data
    fitted = _clf(phases=phases).fit(X, y)
    proba = fitted.predict_proba(X)
    joblib.dump(fitted, tmp_path / "model.joblib")
    for name, dump in DUMPS.items():
        empty_clone = dump(clone(fitted))
        assert not hasattr(empty_clone, "classes_")
        assert empty_clone.get_params() == fitted.get_params()
        loaded = dump(fitted)
        assert loaded.get_params() == fitted.get_params()
        np.testing.assert_array_equal(loaded.predict_proba(X), proba)
        np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
        np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
        for attr in ("classes_", "sample_weights_", "label_quality_", "pseudo_labels_",
                     "label_issues_"):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(fitted, attr))
        assert loaded.history_ == fitted.history_, name
    # Through a file; a loaded model is still a working estimator: fitted again,
    # the same model.
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    np.testing.assert_array_equal(loaded.fit(X, y).predict_proba(X), proba)


def test_interrupted_model_pickles(monkeypatch, data):
    X, y = data
    _arm_interrupt(monkeypatch, "b2", 1)
    with pytest.warns(UserWarning, match="interrupted during phase b2"):
        clf = _clf(**INTERRUPT).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.interrupted_phase_ == "b2"
def _nets(clf):
    return [net for net in (clf.classifier_net_, clf.encoder_net_) if net is not None]


@pytest.mark.parametrize("device, phases", [("auto", "baseline"), ("auto", "full"),
                                            ("cuda", "full")])
def test_model_fitted_on_cuda_loads_and_predicts_on_cpu(device, phases, data, monkeypatch):
    X, y = data
    clf = _clf(phases=phases).fit(X, y)
    expected = clf.predict_proba(X)
    # No GPU here: record "cuda" as skorch and the estimator do after a GPU fit
    # (the tensors stay on the CPU), then load as on a machine without CUDA.
    clf.set_params(device=device)
    clf._device = "cuda"
    for net in _nets(clf):
        net.device = "cuda"
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    buffer.seek(0)
    with pytest.warns(DeviceWarning, match="(?i)cuda"):
        loaded = joblib.load(buffer)
    assert loaded.device == device  # the hyperparameter itself is left alone
    assert loaded._device == "cpu"
    assert [torch.device(net.device).type for net in _nets(loaded)] == ["cpu"] * len(_nets(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.transform(X).shape[0] == len(X)
    assert 0.0 <= loaded.score(X, y) <= 1.0
    if device == "cuda":
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
