"""ContrastiveNoisyClassifier: the wiring between the phases of Figure 2.

Complements ``test_phases.py`` (attributes per mode, warm-up freeze of the
a1 encoder, b2 from a2's encoder, layouts, every loss x mode, end-to-end
digits) without repeating it: here spies on the private phase methods check
what flows from phase to phase (a1's projection into b2, b2's encoder into
b3, a2's last ``gmm_epochs`` losses into the GMM, pseudo-labels as a2's
argmax), that the head trains during warm-up, that the baseline never
freezes, that a warm-up as long as a2 does not leave b2 a frozen encoder,
uint8 scaling and channel order, and ``transform``.  Every hyperparameter a
test relies on is pinned (the defaults are tuned elsewhere); torch runs on
one thread for this module (small shared CPU).
"""

import copy
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import noisyclf.estimator as estimator_module
from noisyclf import ContrastiveNoisyClassifier
from noisyclf.losses import NTXentLoss, WeightedSupConLoss
from noisyclf.modules import Standardize
from noisyclf.nets import ContrastiveNet

PINNED = dict(pretrain_epochs=2, max_epochs=3, finetune_epochs=1, warmup_epochs=1,
              gmm_epochs=2, batch_size=64, lr=0.05, pretrain_lr=0.1, temperature=0.5,
              weight_decay=5e-4, projection_dim=32, loss="ce", encoder="auto",
              hflip_prob="auto", min_crop_scale=0.2, memory=None, device="cpu",
              random_state=0, verbose=0)


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**PINNED, **params})



@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:150], y[:150]


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _sub_state(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs")


def _changed(a, b, predicate=lambda k: True):
    return [k for k in a if predicate(k) and a[k].is_floating_point()
            and not torch.equal(a[k], b[k])]


class _Spies:
    """Records what flows between the phases of one fit."""

    def __init__(self, monkeypatch):
        self.simclr = []          # a1 results (state dict, history)
        self.classifier = []      # _train_classifier calls
        self.contrastive_modules = []
        self.select = []
        self.heads = []
        self.encoders = []
        self.gmm = []
        orig_run = estimator_module._run_simclr
        orig_train = ContrastiveNoisyClassifier._train_classifier
        orig_select = ContrastiveNoisyClassifier._select
        orig_cmod = estimator_module.ContrastiveModule
        orig_head = estimator_module.ClassifierHead
        orig_make_encoder = estimator_module.make_encoder
        orig_gmm = estimator_module.gmm_clean_probability
        spies = self

        def run_simclr(*args, **kwargs):
            out = orig_run(*args, **kwargs)
            spies.simclr.append(copy.deepcopy(out[0]))
            return out

        def train_classifier(est, phase, encoder, data, y, *, frozen_warmup):
            call = dict(phase=phase, encoder=encoder, y=y.clone(),
                        encoder_state=_state(encoder), frozen_warmup=frozen_warmup)
            net = orig_train(est, phase, encoder, data, y, frozen_warmup=frozen_warmup)
            call["net"] = net
            call["encoder_state_after"] = _state(net.module_.encoder)
            spies.classifier.append(call)
            return net

        def select(est, net, data, y):
            module = net.module_
            was_training = module.training
            module.eval()
            with torch.no_grad():
                logits = module(data["x"])
            module.train(was_training)
            spies.select.append(dict(argmax=logits.argmax(1).numpy(),
                                     encoder_state=_state(module.encoder)))
            return orig_select(est, net, data, y)

        def contrastive_module(encoder, projection):
            spies.contrastive_modules.append(dict(encoder=_state(encoder),
                                                  projection=_state(projection)))
            return orig_cmod(encoder, projection)

        def classifier_head(*args, **kwargs):
            head = orig_head(*args, **kwargs)
            spies.heads.append(_state(head))
            return head

        def make_encoder(*args, **kwargs):
            enc = orig_make_encoder(*args, **kwargs)
            spies.encoders.append(_state(enc))
            return enc

        def gmm(losses, **kwargs):
            weights = orig_gmm(losses, **kwargs)
            spies.gmm.append(dict(losses=np.array(losses, copy=True), weights=weights))
            return weights

        monkeypatch.setattr(estimator_module, "gmm_clean_probability", gmm)
        monkeypatch.setattr(estimator_module, "_run_simclr", run_simclr)
        monkeypatch.setattr(ContrastiveNoisyClassifier, "_train_classifier", train_classifier)
        monkeypatch.setattr(ContrastiveNoisyClassifier, "_select", select)
        monkeypatch.setattr(estimator_module, "ContrastiveModule", contrastive_module)
        monkeypatch.setattr(estimator_module, "ClassifierHead", classifier_head)
        monkeypatch.setattr(estimator_module, "make_encoder", make_encoder)


def _fit_spied(X, y, **params):
    with pytest.MonkeyPatch.context() as mp:
        spies = _Spies(mp)
        clf = _clf(**params).fit(X, y)
    return clf, spies


@pytest.fixture(scope="module")
def full_fit(digits):
    X, y = digits
    # String labels: pseudo-labels and predictions must come back in classes_.
    labels = np.array([f"d{v}" for v in y])
    return _fit_spied(X, labels, phases="full", image_shape=(1, 8, 8),
                      pretrain_epochs=2, max_epochs=3, finetune_epochs=2, warmup_epochs=1)


# ------------------------------------------------------------- data flow
def test_pretrain_mode_encoder_net_is_the_a1_net(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8))
    assert len(spies.simclr) == 1
    a1_state = spies.simclr[0]
    net = clf.encoder_net_
    assert isinstance(net, ContrastiveNet)
    assert isinstance(net.criterion_, NTXentLoss)
    assert net.max_epochs == PINNED["pretrain_epochs"]
    assert clf.pretrain_history_ == clf.history_["a1"]
    # Its projection head holds the SimCLR weights ...
    _assert_state_equal(_state(net.module_.projection), _sub_state(a1_state, "projection."))
    # ... and a2 started from the SimCLR encoder ...
    _assert_state_equal(spies.classifier[0]["encoder_state"], _sub_state(a1_state, "encoder."))
    # ... which a2 trained as its own copy: encoder_net_ keeps the SimCLR weights.
    assert net.module_.encoder is not clf.classifier_net_.module_.encoder
    _assert_state_equal(_state(net.module_.encoder), _sub_state(a1_state, "encoder."))
    assert _changed(_state(clf.classifier_net_.module_.encoder), _state(net.module_.encoder),
                    lambda k: k.endswith("weight"))


def test_pseudo_labels_are_a2_argmax_on_unaugmented_data(full_fit):
    # In "full" mode b3 predicts, so predict() cannot stand in for a2.
    clf, spies = full_fit
    assert len(spies.select) == 1
    argmax = spies.select[0]["argmax"]
    np.testing.assert_array_equal(clf.pseudo_labels_, clf.classes_[argmax])
    assert clf.pseudo_labels_.dtype == clf.classes_.dtype


def test_full_mode_wiring(full_fit, digits):
    clf, spies = full_fit
    _, y = digits
    assert [c["phase"] for c in spies.classifier] == ["a2", "b3"]
    a2, b3 = spies.classifier
    # a2 learns the given (string) labels, b3 the pseudo-labels, as class indices.
    np.testing.assert_array_equal(clf.classes_[a2["y"].numpy()], [f"d{v}" for v in y])
    np.testing.assert_array_equal(clf.classes_[b3["y"].numpy()], clf.pseudo_labels_)
    assert a2["frozen_warmup"] and b3["frozen_warmup"]
    assert clf.classifier_net_ is b3["net"]
    # encoder_net_ is the b2 net and ran finetune_epochs epochs.
    assert isinstance(clf.encoder_net_.criterion_, WeightedSupConLoss)
    assert len(clf.encoder_net_.history) == 2 == len(clf.history_["b2"])


def test_b2_starts_from_the_a1_projection_head(full_fit):
    _, spies = full_fit
    a1_projection = _sub_state(spies.simclr[0], "projection.")
    _assert_state_equal(spies.contrastive_modules[-1]["projection"], a1_projection)


def test_b3_trains_a_copy_of_the_b2_encoder(full_fit):
    clf, spies = full_fit
    b3 = spies.classifier[1]
    b2_encoder = clf.encoder_net_.module_.encoder
    assert b3["encoder"] is clf.classifier_net_.module_.encoder
    assert b3["encoder"] is not b2_encoder
    # b3 started from b2's final weights, which encoder_net_ still holds ...
    _assert_state_equal(b3["encoder_state"], _state(b2_encoder))
    # ... and b2 trained them: b3 does not start from a2's encoder.
    assert _changed(b3["encoder_state"], spies.select[0]["encoder_state"],
                    lambda k: k.endswith("weight"))
    # b3 (warm-up then end to end) moved its copy away from b2's.
    assert _changed(b3["encoder_state_after"], _state(b2_encoder),
                    lambda k: k.endswith("weight"))


def test_label_quality_gmm_gets_a2_losses_against_the_given_labels(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8),
                            max_epochs=4, gmm_epochs=2, batch_size=64)
    net = clf.classifier_net_  # a2's net in "pretrain" mode
    assert len(net.recorded_losses_) == 2
    assert len(spies.gmm) == 2  # given labels (a2), then pseudo-labels (b1)
    np.testing.assert_allclose(spies.gmm[0]["losses"], np.mean(net.recorded_losses_, axis=0),
                               rtol=1e-6)
    # The last recorded epoch is a2's final model against the given labels.
    net.module_.eval()
    with torch.no_grad():
        logits = net.module_(torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8))
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y), reduction="none")
    ce = ce.numpy()
    np.testing.assert_allclose(net.recorded_losses_[-1], (ce - ce.min()) / np.ptp(ce),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(clf.label_quality_, spies.gmm[0]["weights"])
    np.testing.assert_array_equal(clf.label_issues_, clf.label_quality_ < 0.5)


def test_b1_gmm_scores_the_pseudo_labels_with_a_head_trained_on_them(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8),
                            max_epochs=3, gmm_epochs=2, batch_size=64)
    sel = clf.selection_net_
    assert len(sel.history) == 2 == len(clf.history_["b1"])
    # Trained on the pseudo-labels, over a frozen copy of a2's encoder.
    a2_encoder = clf.classifier_net_.module_.encoder
    assert sel.module_.encoder is not a2_encoder
    _assert_state_equal(_state(sel.module_.encoder), _state(a2_encoder))
    assert not any(p.requires_grad for p in sel.module_.encoder.parameters())
    pseudo = np.searchsorted(clf.classes_, clf.pseudo_labels_)
    sel.module_.eval()
    with torch.no_grad():
        logits = sel.module_(torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8))
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(pseudo),
                                           reduction="none").numpy()
    np.testing.assert_allclose(sel.recorded_losses_[-1], (ce - ce.min()) / np.ptp(ce),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spies.gmm[1]["losses"], np.mean(sel.recorded_losses_, axis=0),
                               rtol=1e-6)
    np.testing.assert_array_equal(clf.sample_weights_, spies.gmm[1]["weights"])
    # Not the given-label answer.
    assert not np.array_equal(clf.sample_weights_, clf.label_quality_)


# -------------------------------------------------------------- warm-up
def test_head_trains_during_warmup_and_encoder_is_unfrozen_after_fit(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8),
                            warmup_epochs=2, max_epochs=2)
    _assert_state_equal(_state(clf.classifier_net_.module_.encoder),
                        _sub_state(spies.simclr[0], "encoder."))
    head_init = spies.heads[-1]
    head_after = _state(clf.classifier_net_.module_.head)
    assert _changed(head_after, head_init, lambda k: k.endswith("weight"))
    assert _changed(head_after, head_init, lambda k: "running_mean" in k)
    # The warm-up must not leave a frozen encoder behind.
    assert all(p.requires_grad for p in clf.classifier_net_.module_.parameters())


def test_b2_trains_the_encoder_even_when_warmup_covers_all_of_a2(digits, monkeypatch):
    # Regression: with warmup_epochs >= max_epochs skorch's Unfreezer never
    # fires; the encoder handed to b2 stayed frozen and b2 trained only the
    # projection head (and the BatchNorm statistics).
    X, y = digits
    seen = {}
    orig = ContrastiveNoisyClassifier._contrast

    def contrast(est, net, projection, data, pseudo):
        seen["before"] = _state(net.module_.encoder)
        encoder = orig(est, net, projection, data, pseudo)
        seen["after"] = _state(encoder)
        return encoder

    monkeypatch.setattr(ContrastiveNoisyClassifier, "_contrast", contrast)
    clf = _clf(phases="full", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=2,
               warmup_epochs=3, finetune_epochs=1).fit(X, y)
    assert _changed(seen["after"], seen["before"], lambda k: k.endswith("weight"))
    assert all(p.requires_grad for p in clf.encoder_net_.module_.parameters())


def test_baseline_has_no_warmup_freeze(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="baseline", image_shape=(1, 8, 8),
                            warmup_epochs=5, max_epochs=1)
    assert spies.simclr == []
    assert not spies.classifier[0]["frozen_warmup"]
    names = [name for name, _ in clf.classifier_net_.callbacks]
    assert "freeze_encoder" not in names
    # In its only epoch the random encoder trained, weights and BatchNorm stats.
    init = spies.encoders[-1]
    after = _state(clf.classifier_net_.module_.encoder)
    assert _changed(after, init, lambda k: k.endswith("weight"))
    assert _changed(after, init, lambda k: "running_mean" in k)


# --------------------------------------------------------------- inputs
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
        clf = _clf(phases="baseline", max_epochs=1, batch_size=16).fit(X, y)
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
    clf = _clf(phases="baseline", max_epochs=1, batch_size=16).fit(first[:, 0], y)
    assert clf.input_shape_ == (1, 8, 8)
    mean = float(clf.classifier_net_.module_.encoder[0].mean)
    assert mean == pytest.approx(first[:, 0].mean() / 255.0, rel=1e-5)


def test_transform_is_the_predicting_encoder(full_fit, digits):
    clf, spies = full_fit
    X, _ = digits
    Z = clf.transform(X[:9])
    assert Z.shape == (9, 128) and Z.dtype == np.float32  # SmallCNN features
    enc = copy.deepcopy(clf.classifier_net_.module_.encoder).eval()
    with torch.no_grad():
        ref = enc(torch.as_tensor(X[:9], dtype=torch.float32).reshape(9, 1, 8, 8))
    np.testing.assert_allclose(Z, ref.numpy(), rtol=1e-5, atol=1e-5)
    # b3's encoder, not a2's.
    enc.load_state_dict(spies.select[0]["encoder_state"])
    with torch.no_grad():
        a2 = enc(torch.as_tensor(X[:9], dtype=torch.float32).reshape(9, 1, 8, 8))
    assert not np.allclose(Z, a2.numpy(), atol=1e-3)


# -------------------------------------------------------------- verbose
def test_verbose_baseline_prints_one_line(digits, capsys):
    # stdout is no terminal under capsys: one line per phase, written when it ends.
    X, y = digits
    clf = _clf(phases="baseline", image_shape=(1, 8, 8), verbose=1, max_epochs=2).fit(X, y)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2, out  # a2, then b1's head; no a1 line
    for line, phase, head in zip(lines, ["a2", "b1"], ["classifier", "pseudo-label head"]):
        loss = clf.history_[phase][-1]["train_loss"]
        assert re.fullmatch(rf"\[noisyclf\] {phase} {head} \(ce\): 2 epochs, "
                            rf"loss {loss:.4f}, \d+\.\d s", line), line


def test_verbose_2_keeps_one_line_per_phase_after_the_tables(digits, capsys):
    X, y = digits
    _clf(phases="baseline", image_shape=(1, 8, 8), verbose=2, max_epochs=2).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out  # skorch's table
    summaries = [line for line in out.splitlines() if line.startswith("[noisyclf]")]
    assert [line.split(":")[0] for line in summaries] == [
        "[noisyclf] a2 classifier (ce)", "[noisyclf] b1 pseudo-label head (ce)"]


@pytest.mark.parametrize("kind, want", [
    ("uint8", (0.0, 1.0)), ("unit", (0.0, 1.0)), ("raw", (0.0, 255.0)), ("other", None)])
def test_simclr_augmenter_clamps_to_the_input_range(kind, want):
    # Colour jitter clamps to the range the images live in (issue 8.7).
    rng = np.random.default_rng(0)
    X = {"uint8": lambda: rng.integers(0, 256, (40, 3, 8, 8)).astype(np.uint8),
         "unit": lambda: rng.random((40, 3, 8, 8)).astype(np.float32),
         "raw": lambda: (rng.random((40, 3, 8, 8)) * 255).astype(np.float32),
         "other": lambda: rng.normal(size=(40, 3, 8, 8)).astype(np.float32)}[kind]()
    clf = _clf(phases="pretrain", pretrain_epochs=1, max_epochs=1, gmm_epochs=1).fit(
        X, np.arange(40) % 2)
    got = clf.encoder_net_.augmenter_.value_range
    if want is None:  # standardised-looking floats: the training range
        want = (float(X.min()), float(X.max()))
    assert tuple(got) == pytest.approx(want)


def test_gmm_losses_are_what_each_gmm_saw(digits):
    X, y = digits
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8), gmm_epochs=2)
    assert set(clf.gmm_losses_) == {"given", "pseudo"}
    np.testing.assert_array_equal(clf.gmm_losses_["given"], spies.gmm[0]["losses"])
    np.testing.assert_array_equal(clf.gmm_losses_["pseudo"], spies.gmm[1]["losses"])
    for v in clf.gmm_losses_.values():
        assert v.shape == (len(X),) and v.min() >= 0.0 and v.max() <= 1.0
