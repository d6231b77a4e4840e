"""The phases of Figure 2 as the estimator runs them: what each writes, and that it does what it says."""

import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import noisyclf.estimator as est_mod
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf.losses import WeightedSupConLoss
from noisyclf.nets import ContrastiveNet

TINY = dict(pretrain_epochs=2, max_epochs=3, finetune_epochs=2, warmup_epochs=1,
            batch_size=32, lr=0.02, pretrain_lr=0.1, random_state=0)



@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300].astype(np.float32), y[:300]


@pytest.mark.parametrize("phases, keys", [
    ("baseline", {"a2", "b1"}), ("pretrain", {"a1", "a2", "b1"}),
    ("full", {"a1", "a2", "b1", "b2", "b3"}),
    ("bootstrap", {"a1", "a2", "b1", "bootstrap"}),
])
def test_each_mode_runs_its_phases(phases, keys, digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(phases=phases, image_shape=(1, 8, 8), **TINY).fit(X, y)
    assert set(clf.history_) == keys
    # b1: gmm_epochs; bootstrap: max_epochs (bootstrap_epochs=None)
    epochs = {"a1": 2, "a2": 3, "b1": 5, "b2": 2, "b3": 3, "bootstrap": 3}
    assert {k: len(v) for k, v in clf.history_.items()} == {k: epochs[k] for k in keys}
    assert clf.sample_weights_.shape == (len(X),)
    assert np.all((clf.sample_weights_ >= 0) & (clf.sample_weights_ <= 1))
    assert clf.label_quality_.shape == (len(X),)
    assert np.all((clf.label_quality_ >= 0) & (clf.label_quality_ <= 1))
    np.testing.assert_array_equal(clf.label_issues_, clf.label_quality_ < 0.5)
    assert set(np.unique(clf.pseudo_labels_)) <= set(clf.classes_)
    if phases == "baseline":
        assert clf.encoder_net_ is None and clf.pretrain_history_ == []
    else:
        assert len(clf.pretrain_history_) == 2
        criterion = WeightedSupConLoss if phases == "full" else est_mod.NTXentLoss
        assert isinstance(clf.encoder_net_.criterion_, criterion)


def test_pseudo_labels_are_a2_predictions_on_clean_inputs(digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(phases="pretrain", image_shape=(1, 8, 8), **TINY).fit(X, y)
    # In "pretrain" mode a2's classifier predicts, so its argmax on the
    # un-augmented training set must be the pseudo-labels.
    np.testing.assert_array_equal(clf.pseudo_labels_, clf.predict(X))


def test_warmup_freezes_encoder_weights_and_batchnorm_statistics(digits, monkeypatch):
    X, y = digits
    captured = {}
    original = est_mod._run_simclr

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        captured["state"] = {k: v.clone() for k, v in out[0].items()}
        return out

    monkeypatch.setattr(est_mod, "_run_simclr", spy)
    params = dict(TINY, max_epochs=2, warmup_epochs=2)  # warm-up for the whole of a2
    clf = ContrastiveNoisyClassifier(phases="pretrain", image_shape=(1, 8, 8), **params)
    clf.fit(X, y)
    a1_encoder = {k[len("encoder."):]: v for k, v in captured["state"].items()
                  if k.startswith("encoder.")}
    after = clf.classifier_net_.module_.encoder.state_dict()
    assert any("running_mean" in k for k in after)
    for k, v in after.items():
        torch.testing.assert_close(v.cpu(), a1_encoder[k], msg=f"{k} changed during warm-up")

    # With one warm-up epoch out of three, the encoder does change afterwards.
    clf.set_params(max_epochs=3, warmup_epochs=1).fit(X, y)
    after = clf.classifier_net_.module_.encoder.state_dict()
    changed = [k for k, v in after.items()
               if v.is_floating_point() and not torch.equal(v.cpu(), a1_encoder[k])]
    assert any("running_mean" in k for k in changed)
    assert any(k.endswith("weight") for k in changed)


@pytest.mark.parametrize("phases", ["full", "baseline"])
def test_encoder_lr_sets_the_pretrained_encoder_rate(phases, digits):
    X, y = digits
    params = dict(TINY, phases=phases, image_shape=(1, 8, 8))
    clf = ContrastiveNoisyClassifier(encoder_lr=0.001, **params).fit(X, y)
    for net in [clf.classifier_net_]:  # b3 (full) or a2 (baseline)
        groups = net.optimizer_.param_groups
        names = [n for n, _ in net.module_.named_parameters()]
        if phases == "baseline":  # a random encoder: one rate for the whole model
            assert [g["initial_lr"] for g in groups] == [TINY["lr"]]
        else:
            encoder = {id(p) for p in net.module_.encoder.parameters()}
            assert [g["initial_lr"] for g in groups] == [0.001, TINY["lr"]]
            assert {id(p) for p in groups[0]["params"]} == encoder
            assert sum(len(g["params"]) for g in groups) == len(names)
    same = ContrastiveNoisyClassifier(**params).fit(X, y)
    a2 = [r["train_loss"] for r in clf.history_["a2"]]
    a2_same = [r["train_loss"] for r in same.history_["a2"]]
    if phases == "baseline":  # ignored: the same fit
        assert a2 == a2_same
    else:  # the warm-up epoch is untouched, the unfrozen epochs differ
        assert a2[0] == a2_same[0] and a2[1:] != a2_same[1:]
        # encoder_lr=None is lr: the same fit as encoder_lr=lr.
        again = ContrastiveNoisyClassifier(encoder_lr=TINY["lr"], **params).fit(X, y)
        assert [r["train_loss"] for r in again.history_["b3"]] == [
            r["train_loss"] for r in same.history_["b3"]]


def test_b2_starts_from_the_a2_encoder_and_b3_trains_on_pseudo_labels(digits, monkeypatch):
    X, y = digits
    seen = {}
    orig_contrast = est_mod.ContrastiveNoisyClassifier._contrast
    orig_fit = ContrastiveNet.fit
    orig_train = est_mod.ContrastiveNoisyClassifier._train_classifier

    def contrast(self, net, projection, data, pseudo):
        seen["a2"] = {k: v.clone() for k, v in net.module_.encoder.state_dict().items()}
        return orig_contrast(self, net, projection, data, pseudo)

    def fit(self, X, y=None, **kw):
        if isinstance(self.criterion, type) and self.criterion is WeightedSupConLoss:
            seen["b2"] = {k: v.clone() for k, v in self.module.encoder.state_dict().items()}
            seen["b2_labels"] = np.asarray(y)
        return orig_fit(self, X, y, **kw)

    def train(self, phase, encoder, data, y, **kw):
        seen[f"{phase}_labels"] = np.asarray(y)
        return orig_train(self, phase, encoder, data, y, **kw)

    monkeypatch.setattr(est_mod.ContrastiveNoisyClassifier, "_contrast", contrast)
    monkeypatch.setattr(ContrastiveNet, "fit", fit)
    monkeypatch.setattr(est_mod.ContrastiveNoisyClassifier, "_train_classifier", train)
    y_noisy = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
    clf = ContrastiveNoisyClassifier(image_shape=(1, 8, 8), **TINY).fit(X, y_noisy)
    for k, v in seen["a2"].items():
        torch.testing.assert_close(seen["b2"][k], v)
    pseudo_idx = np.searchsorted(clf.classes_, clf.pseudo_labels_)
    np.testing.assert_array_equal(seen["a2_labels"], y_noisy)
    np.testing.assert_array_equal(seen["b2_labels"], pseudo_idx)
    np.testing.assert_array_equal(seen["b3_labels"], pseudo_idx)


def test_framework_finds_flipped_labels_and_beats_logistic_regression():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    y_noisy = make_noisy_labels(y_tr, "symmetric", 0.4, random_state=0)
    clf = ContrastiveNoisyClassifier(
        image_shape=(1, 8, 8), pretrain_epochs=5, max_epochs=15, finetune_epochs=3,
        warmup_epochs=2, random_state=0).fit(X_tr, y_noisy)
    flipped = y_noisy != y_tr
    # label_quality_ scores the given labels ...
    assert roc_auc_score(flipped, 1 - clf.label_quality_) > 0.9
    # ... sample_weights_ (b1) the pseudo-labels, better than label_quality_ does.
    pseudo_wrong = clf.pseudo_labels_ != y_tr
    auc_pseudo = roc_auc_score(pseudo_wrong, 1 - clf.sample_weights_)
    assert auc_pseudo > 0.8
    assert auc_pseudo > roc_auc_score(pseudo_wrong, 1 - clf.label_quality_)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    assert clf.score(X_te, y_te) > logreg.fit(X_tr, y_noisy).score(X_te, y_te)
    # The pseudo-labels are cleaner than the labels they were trained on (Figure 3).
    assert np.mean(clf.pseudo_labels_ == y_tr) > np.mean(y_noisy == y_tr)


@pytest.mark.parametrize("layout", ["flat", "3d", "4d_first", "4d_last_uint8"])
def test_image_layouts(layout, digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    if layout == "flat":
        Xin, params = X, dict(image_shape=(1, 8, 8))
    elif layout == "3d":
        Xin, params = images[:, 0], {}
    elif layout == "4d_first":
        Xin, params = images, {}
    else:
        rgb = np.repeat(images, 3, axis=1)
        Xin, params = (rgb / 16 * 255).astype(np.uint8).transpose(0, 2, 3, 1), {}
    clf = ContrastiveNoisyClassifier(phases="baseline", **params, **TINY).fit(Xin, y)
    channels = 3 if layout == "4d_last_uint8" else 1
    assert clf.input_shape_ == (channels, 8, 8)
    assert clf.encoder_kind_ == "cnn"
    assert clf.predict(Xin[:5]).shape == (5,)
    if layout == "4d_last_uint8":  # scaled to [0, 1] before standardisation
        mean = clf.classifier_net_.module_.encoder[0].mean
        assert float(mean.min()) >= 0.0 and float(mean.max()) <= 1.0


def test_tabular_input_uses_the_mlp(digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(phases="pretrain", **TINY).fit(X, y)
    assert clf.encoder_kind_ == "mlp" and clf.input_shape_ == (64,)
    assert clf.transform(X[:4]).shape == (4, 256)


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


def test_mlp_encoder_on_images(digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(encoder="mlp", phases="baseline", image_shape=(1, 8, 8),
                                     **TINY).fit(X, y)
    assert clf.encoder_kind_ == "mlp" and clf.input_shape_ == (1, 8, 8)


@pytest.mark.parametrize("verbose", [0, 1])
def test_verbose_prints_one_progress_line_per_phase(verbose, digits, capsys):
    # Under capsys stdout is no terminal: no bars, one line per phase when it ends
    # (the bars are tested in test_progress.py).
    X, y = digits
    clf = ContrastiveNoisyClassifier(image_shape=(1, 8, 8), verbose=verbose, **TINY).fit(X, y)
    captured = capsys.readouterr()
    if verbose == 0:
        assert captured.out == "" and captured.err == ""
        return
    assert "\r" not in captured.out and "%|" not in captured.out + captured.err
    lines = captured.out.splitlines()
    names = ["a1 SimCLR pre-training", "a2 classifier (elr)", "b1 pseudo-label head (elr)",
             "b2 contrastive training", "b3 classifier (elr)"]
    assert len(lines) == len(names), captured.out
    for (phase, name), line in zip(zip(["a1", "a2", "b1", "b2", "b3"], names), lines):
        match = re.fullmatch(r"\[noisyclf\] (.+): (\d+) epochs, loss (-?\d+\.\d{4}), \d+\.\d s",
                             line)  # ELR's loss can be negative
        assert match, line
        assert match[1] == name
        history = clf.history_[phase]
        assert int(match[2]) == len(history)  # TINY: 2, 3, gmm_epochs=5, 2, 3
        assert float(match[3]) == pytest.approx(history[-1]["train_loss"], abs=6e-5)


@pytest.mark.parametrize("loss", ["ce", "nfl+rce", "elr"])
@pytest.mark.parametrize("phases", ["baseline", "pretrain", "full"])
def test_every_loss_in_every_mode(loss, phases, digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(loss=loss, phases=phases, image_shape=(1, 8, 8), **TINY)
    proba = clf.fit(X, y).predict_proba(X[:10])
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(1), 1)
    assert clf.diverged_phases_ == []
    assert type(clf.classifier_net_.criterion_).__name__ in {
        "ce": {"_CrossEntropy"}, "nfl+rce": {"_NFLRCE"}, "elr": {"ELRLoss"}}[loss]


def test_bootstrap_continues_a2_on_the_given_labels(digits, monkeypatch):
    X, y = digits
    y_noisy = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
    fitted = {}
    original = est_mod.ContrastiveNoisyClassifier._bootstrap

    def spy(self, net, data, labels):
        fitted["a2_state"] = {k: v.clone() for k, v in net.module_.state_dict().items()}
        fitted["labels"] = labels.clone()
        return original(self, net, data, labels)

    monkeypatch.setattr(est_mod.ContrastiveNoisyClassifier, "_bootstrap", spy)
    clf = ContrastiveNoisyClassifier(phases="bootstrap", image_shape=(1, 8, 8),
                                     bootstrap_variant="soft", bootstrap_epochs=2,
                                     bootstrap_mixup_alpha=4.0, **TINY).fit(X, y_noisy)
    net = clf.classifier_net_
    from noisyclf.bootstrap import BootstrapNet
    assert isinstance(net, BootstrapNet)
    assert (net.variant, net.mixup_alpha, net.reg_weight) == ("soft", 4.0, 1.0)
    assert net.lr == pytest.approx(TINY["lr"] / 10)  # bootstrap_lr=None
    assert len(clf.history_["bootstrap"]) == 2
    # Trained on the given (noisy) labels, not on the pseudo-labels.
    np.testing.assert_array_equal(clf.classes_[fitted["labels"].numpy()], y_noisy)
    # Started from a copy of a2's weights, which it then changed.
    start = fitted["a2_state"]
    now = net.module_.state_dict()
    assert any(not torch.equal(start[k], now[k]) for k in start)
    assert clf.bootstrap_noise_prob_.shape == (len(X),)
    assert np.all((clf.bootstrap_noise_prob_ >= 0) & (clf.bootstrap_noise_prob_ <= 1))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[
        clf._predict_encoded(net, clf._make_data(clf._check_predict_input(X),
                                                 np.ones(len(X), np.float32))).argmax(1)])


@pytest.mark.parametrize("param, value", [
    ("bootstrap_variant", "medium"), ("bootstrap_mixup_alpha", 0.0),
    ("bootstrap_reg_weight", -1.0), ("bootstrap_epochs", 0), ("bootstrap_lr", 0.0),
])
def test_bootstrap_settings_are_validated(param, value, digits):
    X, y = digits
    clf = ContrastiveNoisyClassifier(phases="bootstrap", image_shape=(1, 8, 8),
                                     **{**TINY, param: value})
    with pytest.raises(ValueError, match=param):
        clf.fit(X, y)


def test_bootstrap_finds_flipped_labels(digits):
    X, y = digits
    y_noisy = make_noisy_labels(y, "symmetric", 0.4, random_state=1)
    clf = ContrastiveNoisyClassifier(phases="bootstrap", image_shape=(1, 8, 8),
                                     **{**TINY, "max_epochs": 6}).fit(X, y_noisy)
    flipped = y_noisy != y
    # The beta mixture's B ranks the flipped given labels above the kept ones.
    assert roc_auc_score(flipped, clf.bootstrap_noise_prob_) > 0.8
