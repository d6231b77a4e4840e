"""The encoder: the built-in ones (``"auto"``, ``"mlp"``, ``"cnn"``, ``"resnet18"``) and your
own ``nn.Module``, a class (``encoder__*`` parameters) or an instance.

Every fit is tiny (a few epochs on 40-60 samples); torch runs on one thread
(``conftest.py``).  The module-level classes below are what a user would
write; being importable, fitted models that use them pickle.
"""

import copy
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import GridSearchCV
from torch import nn

import noisyclf._cache as cache_module
import noisyclf._phases as phases_module
import noisyclf.estimator as estimator_module
from noisyclf import ContrastiveNoisyClassifier
from noisyclf.modules import Standardize, embedding_size, make_encoder

TINY = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
            gmm_epochs=1, batch_size=32, projection_dim=16, device="cpu", random_state=0)


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**TINY, **params})


class TinyCNN(nn.Module):
    """A user's encoder class: ``width`` channels, global average pooling."""

    def __init__(self, in_channels=1, width=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(
            torch.relu(self.bn(self.conv(x))), 1), 1)


class NoPooling(nn.Module):
    """Returns (batch, C, H, W) feature maps: not an encoder output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 3)

    def forward(self, x):
        return self.linear(torch.flatten(x, 1)), None


class RecordsInput(nn.Module):
    """Keeps the first batch it sees (to check what the user's module receives)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 3)
        self.seen = []

    def forward(self, x):
        if not self.seen:
            self.seen.append(x.detach().clone())
        return self.linear(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:60].reshape(60, 1, 8, 8).astype(np.float32), y[:60] % 3


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(n_samples=60, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=0)
    return X.astype(np.float32), y


def _losses(clf, phase):
    return [row["train_loss"] for row in clf.history_[phase]]


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs")


# ---------------------------------------------------------- built-in encoders
def test_tabular_input_uses_the_mlp(tabular):
    X, y = tabular
    clf = _clf(phases="pretrain").fit(X, y)
    assert clf.encoder_kind_ == "mlp" and clf.input_shape_ == (6,)
    assert clf.transform(X[:4]).shape == (4, 256)


def test_mlp_encoder_on_images(digits):
    X, y = digits
    clf = _clf(encoder="mlp", phases="baseline").fit(X, y)
    assert clf.encoder_kind_ == "mlp" and clf.input_shape_ == (1, 8, 8)


def test_resnet18_runs_end_to_end_on_tiny_images():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 3, 8, 8).astype(np.float32)
    y = np.repeat([0, 1], 10)
    clf = ContrastiveNoisyClassifier(
        encoder="resnet18", pretrain_epochs=1, max_epochs=1, finetune_epochs=1,
        warmup_epochs=0, batch_size=10, random_state=0).fit(X, y)
    assert clf.encoder_kind_ == "resnet18"
    assert clf.transform(X[:3]).shape == (3, 512)
    proba = clf.predict_proba(X)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(1), 1)


@pytest.mark.parametrize("encoder", ["auto", "airbench"])
def test_airbench_for_colour_images(encoder):
    X, y = _rgb(size=16)
    clf = _clf(encoder=encoder, phases="pretrain").fit(X, y)
    assert clf.encoder_kind_ == "airbench" and clf.channels_last_
    body = clf.classifier_net_.module_.encoder[1]
    assert type(body).__name__ == "AirbenchCNN" and clf.transform(X[:3]).shape == (3, 128)


# ------------------------------------------------------------ your own encoder
def test_torchvision_resnet18_instance_on_tiny_images():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    resnet.fc = nn.Identity()
    rng = np.random.default_rng(0)
    X = rng.random((40, 3, 16, 16)).astype(np.float32)
    y = np.arange(40) % 2
    X[y == 1, 0] += 0.5  # something to learn
    before = _state(resnet)
    clf = _clf(encoder=resnet, phases="pretrain", batch_size=20).fit(X, y)
    assert clf.encoder_kind_ == "custom"
    assert clf.classifier_net_.module_.encoder.out_features == 512
    assert clf.transform(X[:5]).shape == (5, 512)
    assert clf.predict_proba(X[:5]).shape == (5, 2)
    # The encoder is the Standardize layer, then a copy of the user's module.
    encoder = clf.classifier_net_.module_.encoder
    assert isinstance(encoder[0], Standardize) and type(encoder[1]) is type(resnet)
    assert encoder[1] is not resnet
    _assert_state_equal(_state(resnet), before)  # never trained in place
    assert resnet.training  # its mode too


def test_user_class_with_encoder_params(digits):
    X, y = digits
    clf = _clf(encoder=TinyCNN, encoder__width=5, phases="full").fit(X, y)
    assert clf.encoder_kind_ == "custom"
    assert clf.get_params()["encoder__width"] == 5
    body = clf.classifier_net_.module_.encoder[1]
    assert isinstance(body, TinyCNN) and body.conv.out_channels == 5
    assert clf.transform(X).shape == (len(X), 5)
    assert set(clf.history_) == {"a1", "a2", "b1", "b2", "b3"}
    # Seeded from random_state like the built-in encoders: the same fit twice.
    again = _clf(encoder=TinyCNN, encoder__width=5, phases="full").fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


class FlattensWithView(nn.Module):
    """A user's encoder that flattens with ``.view``, which channels-last input refuses."""

    def __init__(self, in_features=3 * 8 * 8):
        super().__init__()
        self.linear = nn.Linear(in_features, 6)

    def forward(self, x):
        return self.linear(x.view(len(x), -1))


def _rgb(n=40, size=8):
    rng = np.random.default_rng(0)
    X = rng.random((n, 3, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    X[y == 1, 0] += 0.5
    return X, y


def _conv_weights(net):
    return [m.weight for m in net.module_.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("encoder, params, channels_last", [
    (TinyCNN, dict(encoder__in_channels=3), True),
    (FlattensWithView, {}, False),
    ("cnn", {}, True),
])
def test_users_encoders_run_channels_last_when_the_dry_run_agrees(encoder, params,
                                                                  channels_last):
    X, y = _rgb()
    clf = _clf(encoder=encoder, phases="full", **params).fit(X, y)
    assert clf.channels_last_ is channels_last
    for net in (clf.encoder_net_, clf.classifier_net_):
        assert net.channels_last is channels_last
        for weight in _conv_weights(net):
            assert weight.is_contiguous(memory_format=torch.channels_last)
            assert weight.is_contiguous() is not channels_last
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_tabular_input_never_runs_channels_last(tabular):
    X, y = tabular
    clf = _clf(phases="pretrain").fit(X, y)
    assert clf.channels_last_ is False and clf.classifier_net_.channels_last is False


def test_instance_on_tabular_data(tabular):
    X, y = tabular
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU())
    clf = _clf(encoder=mlp, phases="full").fit(X, y)
    assert clf.encoder_kind_ == "custom" and clf.transform(X).shape == (len(X), 16)
    assert clf.score(X, y) > 0.5


def test_the_module_receives_standardised_input(digits):
    X, y = digits
    module = RecordsInput()
    clf = _clf(encoder=module, phases="baseline", pretrain_epochs=1)
    clf.fit(X, y)
    body = clf.classifier_net_.module_.encoder[1]
    assert module.seen == []  # the user's instance never ran
    X_t = torch.from_numpy(X)
    # The first batch a copy saw was the dry pass: zeros, standardised.
    expected = (torch.zeros(2, 1, 8, 8) - clf.classifier_net_.module_.encoder[0].mean) \
        / clf.classifier_net_.module_.encoder[0].scale
    torch.testing.assert_close(body.seen[0], expected)
    # Standardised as the built-in encoders: per-channel training mean and scale.
    standardize = clf.classifier_net_.module_.encoder[0]
    z = standardize(X_t)
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 0.05


# ---------------------------------------------------------- parameters API
def test_clone_get_params_set_params_round_trip_encoder_params():
    clf = ContrastiveNoisyClassifier(encoder=TinyCNN, encoder__width=6, encoder__in_channels=1)
    params = clf.get_params()
    assert params["encoder"] is TinyCNN
    assert params["encoder__width"] == 6 and params["encoder__in_channels"] == 1
    assert clf.get_params(deep=False)["encoder__width"] == 6
    cloned = clone(clf)
    assert cloned.get_params() == params and cloned.encoder__width == 6
    assert cloned.set_params(encoder__width=3) is cloned
    assert cloned.encoder__width == 3 and clf.encoder__width == 6
    cloned.set_params(encoder__bias=False, lr=0.5)
    assert cloned.get_params()["encoder__bias"] is False and cloned.lr == 0.5
    assert "encoder__width=3" in repr(cloned)
    # The defaults have none.
    assert not [k for k in ContrastiveNoisyClassifier().get_params() if "__" in k]
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        cloned.set_params(bogus=1)


def test_unknown_keyword_argument_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'lrr'"):
        ContrastiveNoisyClassifier(lrr=0.1)


def test_clone_deep_copies_an_instance():
    module = TinyCNN()
    clf = ContrastiveNoisyClassifier(encoder=module)
    cloned = clone(clf)
    assert isinstance(cloned.encoder, TinyCNN) and cloned.encoder is not module
    _assert_state_equal(_state(cloned.encoder), _state(module))


def test_grid_search_over_encoder_width(digits):
    X, y = digits

    def fitted_width(est, X, y):
        return est.transform(X[:1]).shape[1]

    search = GridSearchCV(_clf(encoder=TinyCNN, phases="baseline"),
                          {"encoder__width": [4, 8]}, cv=2, scoring=fitted_width,
                          error_score="raise").fit(X, y)
    assert list(search.cv_results_["param_encoder__width"]) == [4, 8]
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], [4, 8])
    assert search.best_params_ == {"encoder__width": 8}
    assert search.best_estimator_.encoder__width == 8
    assert search.best_estimator_.transform(X).shape == (len(X), 8)


# ---------------------------------------------------------------- instances
def test_the_instance_passed_in_is_unchanged_by_fit(digits):
    X, y = digits
    torch.manual_seed(1)
    module = TinyCNN(width=3)
    module.eval()
    before = _state(module)
    clf = _clf(encoder=module, phases="full").fit(X, y)
    _assert_state_equal(_state(module), before)
    assert not module.training and not module.bn.training  # modes restored
    assert all(p.grad is None for p in module.parameters())
    assert clf.encoder is module  # the parameter itself is left alone
    # ...while the fitted copies did train.
    after = _state(clf.classifier_net_.module_.encoder[1])
    assert any(not torch.equal(after[k], before[k]) for k in before if "weight" in k)


def test_instance_weights_start_a1(digits, monkeypatch):
    X, y = digits
    torch.manual_seed(2)
    module = TinyCNN(width=3)
    starts = []
    original = phases_module.make_encoder

    def spy(*args, **kwargs):
        encoder = original(*args, **kwargs)
        starts.append(_state(encoder[1]))
        return encoder

    # The estimator's check of the encoder and the phases' builds.
    monkeypatch.setattr(estimator_module, "make_encoder", spy)
    monkeypatch.setattr(phases_module, "make_encoder", spy)
    _clf(encoder=module, phases="pretrain").fit(X, y)
    # Every build (the check, a1's net, the container a1's weights load into)
    # starts from the instance's weights.
    assert len(starts) >= 2
    for state in starts:
        _assert_state_equal(state, _state(module))


def test_pretrain_epochs_0_keeps_the_instance_weights_for_a2(digits, monkeypatch):
    X, y = digits
    torch.manual_seed(3)
    module = TinyCNN(width=3)
    calls = []
    original = phases_module.train_classifier

    def spy(run, phase, encoder, data, y, *, warmup_epochs):
        calls.append((phase, _state(encoder[1]), warmup_epochs))
        return original(run, phase, encoder, data, y, warmup_epochs=warmup_epochs)

    monkeypatch.setattr(phases_module, "train_classifier", spy)
    monkeypatch.setattr(phases_module, "run_simclr", _fail)  # no SimCLR at all
    clf = _clf(encoder=module, phases="full", pretrain_epochs=0).fit(X, y)
    phase, start, warmup_epochs = calls[0]
    assert phase == "a2" and warmup_epochs == clf.warmup_epochs_ >= 1
    _assert_state_equal(start, _state(module))
    assert clf.pretrain_history_ == [] and clf.history_["a1"] == []
    assert set(clf.history_) == {"a1", "a2", "b1", "b2", "b3"}
    assert len(clf.history_["b2"]) == TINY["finetune_epochs"]
    assert np.isfinite(clf.predict_proba(X)).all()


def _fail(*args, **kwargs):
    raise AssertionError("SimCLR ran")


def test_pretrain_epochs_0_with_a_builtin_encoder(tabular):
    X, y = tabular
    clf = _clf(phases="pretrain", pretrain_epochs=0).fit(X, y)
    assert clf.pretrain_history_ == [] and clf.encoder_kind_ == "mlp"
    assert len(clf.encoder_net_.history) == 0
    assert np.isfinite(clf.predict_proba(X)).all()


# ------------------------------------------------------------------- memory
def test_memory_keys_instances_on_their_weights(digits, tmp_path, capsys):
    X, y = digits
    torch.manual_seed(4)
    a = TinyCNN(width=3)
    b = TinyCNN(width=3)  # same architecture, other weights
    params = dict(phases="pretrain", memory=tmp_path, verbose=1)

    def a1_line():
        lines = [line for line in capsys.readouterr().out.splitlines() if " a1 " in line]
        assert len(lines) == 1
        return lines[0]

    first = _clf(encoder=a, **params).fit(X, y)
    assert "loaded from memory" not in a1_line()
    again = _clf(encoder=copy.deepcopy(a), **params).fit(X, y)
    assert "loaded from memory" in a1_line()
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    other = _clf(encoder=b, **params).fit(X, y)
    assert "loaded from memory" not in a1_line()
    assert _losses(other, "a1") != _losses(first, "a1")
    # A class is keyed on its encoder__* parameters.
    _clf(encoder=TinyCNN, encoder__width=3, **params).fit(X, y)
    assert "loaded from memory" not in a1_line()
    _clf(encoder=TinyCNN, encoder__width=4, **params).fit(X, y)
    assert "loaded from memory" not in a1_line()
    _clf(encoder=TinyCNN, encoder__width=3, **params).fit(X, y)
    assert "loaded from memory" in a1_line()


def test_cache_key_of_an_instance_follows_its_weights():
    module = TinyCNN(width=2)
    key = cache_module.encoder_cache_key(module, {})
    assert cache_module.encoder_cache_key(copy.deepcopy(module), {}) == key
    changed = copy.deepcopy(module)
    with torch.no_grad():
        changed.conv.bias[0] += 1e-6
    assert cache_module.encoder_cache_key(changed, {}) != key
    assert cache_module.encoder_cache_key(TinyCNN, {}) == (__name__, "TinyCNN")
    assert cache_module.encoder_cache_key("cnn", {}) == "cnn"
    # Lazy modules have no weights yet: keyed on their architecture.
    lazy = nn.Sequential(nn.LazyLinear(4))
    assert cache_module.encoder_cache_key(lazy, {}) == \
        cache_module.encoder_cache_key(copy.deepcopy(lazy), {})


# --------------------------------------------------------------- bad encoders
@pytest.mark.parametrize("params, exc, match", [
    (dict(encoder=NoPooling), ValueError,
     r"encoder=NoPooling must return \(batch, d\) floating-point features; for a batch of "
     r"shape \(2, 1, 8, 8\) it returned shape \(2, 2, 8, 8\).*nn.Flatten"),
    (dict(encoder=ReturnsTuple()), ValueError,
     r"encoder=ReturnsTuple must return a tensor of \(batch, d\) features; it returned a tuple"),
    (dict(encoder=TinyCNN, encoder__in_channels=3), ValueError,
     r"encoder=TinyCNN failed on a batch of 2 training samples of shape \(2, 1, 8, 8\)"),
    (dict(encoder=TinyCNN, encoder__depth=3), ValueError,
     r"encoder=TinyCNN could not be built with the encoder__\* parameters \{'depth': 3\}"),
    (dict(encoder="auto", encoder__width=3), ValueError,
     r"encoder__\* parameters \(encoder__width\) are keyword arguments of an encoder class, "
     r"but encoder='auto' is not"),
    (dict(encoder=TinyCNN(), encoder__width=3), ValueError,
     r"but encoder=an instance of TinyCNN is not a torch.nn.Module class"),
    (dict(encoder=dict), ValueError,
     r"The 'encoder' parameter of ContrastiveNoisyClassifier must be a str among .* or a "
     r"torch.nn.Module subclass or instance. Got <class 'dict'> instead"),
    (dict(encoder=3), TypeError, r"The 'encoder' parameter .* Got 3 instead"),
    (dict(encoder=nn.Linear(64, 3).forward), ValueError, r"The 'encoder' parameter"),
], ids=["4d-output", "tuple-output", "wrong-input", "bad-kwarg", "kwargs-with-a-name",
        "kwargs-with-an-instance", "not-a-module-class", "int", "bound-method"])
def test_bad_encoders_raise_before_training(params, exc, match, digits, no_training):
    X, y = digits
    rng_before = torch.get_rng_state()
    with pytest.raises(exc, match=match):
        _clf(**params).fit(X, y)
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_embedding_size_restores_every_mode():
    module = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    module[1].eval()
    before = _state(module)
    assert embedding_size(module, (4,)) == 3
    assert module.training and not module[1].training and module[2].training
    _assert_state_equal(_state(module), before)  # no BatchNorm statistic moved


def test_make_encoder_with_a_class_and_an_instance():
    enc = make_encoder(TinyCNN, (1, 8, 8), [[[0.0]]], [[[1.0]]], width=7)
    assert isinstance(enc[0], Standardize) and enc.out_features == 7
    module = TinyCNN(width=2)
    enc = make_encoder(module, (1, 8, 8), [[[0.0]]], [[[1.0]]])
    assert enc[1] is not module and enc.out_features == 2


# ----------------------------------------------------------------- pickling
@pytest.mark.parametrize("kind", ["class", "instance"])
def test_pickle_round_trip(kind, digits, tmp_path):
    X, y = digits
    encoder = TinyCNN if kind == "class" else TinyCNN(width=3)
    clf = _clf(encoder=encoder, encoder__width=3, phases="full") if kind == "class" \
        else _clf(encoder=encoder, phases="full")
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    assert loaded.encoder_kind_ == "custom"
    if kind == "class":
        assert loaded.get_params() == clf.get_params()
    # A loaded model fits again, to the same model.
    np.testing.assert_array_equal(loaded.fit(X, y).predict_proba(X), proba)
