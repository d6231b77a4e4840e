"""The phases of Figure 2 as the estimator runs them: what each mode runs, what each phase
produces, and what flows from phase to phase.

Spies on the estimator's phase methods record what flows between the phases:
a1's SimCLR weights into a2 and b2, a2's encoder into b2 and b2's into b3, a2's
last ``gmm_epochs`` losses into the GMM of the given labels, the pseudo-labels
(a2's argmax on the un-augmented data) into b1, b2 and b3.  Then the warm-up
freeze, ``encoder_lr``, ``transform``, every loss in every mode, and an
end-to-end fit on the digits.  Every hyperparameter a test relies on is pinned
(the defaults are tuned elsewhere).  Progress output is tested in
``test_progress.py``, input layouts in ``test_input.py``, the bootstrap mode in
``test_bootstrap.py``, the encoders in ``test_encoder.py``.
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import noisyclf._phases as phases_module
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf.losses import NTXentLoss, WeightedSupConLoss
from noisyclf.nets import ContrastiveNet

# The spied fits (150 digits).
PINNED = dict(pretrain_epochs=2, max_epochs=3, finetune_epochs=1, warmup_epochs=1,
              gmm_epochs=2, batch_size=64, lr=0.05, pretrain_lr=0.1, temperature=0.5,
              weight_decay=5e-4, projection_dim=32, loss="ce", encoder="auto",
              hflip_prob="auto", min_crop_scale=0.2, memory=None, device="cpu",
              random_state=0, verbose=0)
# The fits of every mode and loss (300 digits).
TINY = dict(pretrain_epochs=2, max_epochs=3, finetune_epochs=2, warmup_epochs=1,
            batch_size=32, lr=0.02, pretrain_lr=0.1, random_state=0)


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**PINNED, **params})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300].astype(np.float32), y[:300]


@pytest.fixture(scope="module")
def small_digits():
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


def _images(X):
    return torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8)


class _Spies:
    """Records what flows between the phases of one fit."""

    def __init__(self, monkeypatch):
        self.simclr = []          # a1 results (state dict)
        self.classifier = []      # _train_classifier calls (a2, b3)
        self.contrastive_modules = []
        self.b2 = []              # b2's net at the start of its fit: labels, encoder
        self.select = []
        self.heads = []
        self.encoders = []
        self.gmm = []
        orig_run = phases_module.run_simclr
        orig_train = phases_module.train_classifier
        orig_select = phases_module.pseudo_label_weights
        orig_cmod = phases_module.ContrastiveModule
        orig_head = phases_module.ClassifierHead
        orig_make_encoder = phases_module.make_encoder
        orig_gmm = phases_module.gmm_clean_probability
        orig_contrastive_fit = ContrastiveNet.fit
        spies = self

        def run_simclr(*args, **kwargs):
            out = orig_run(*args, **kwargs)
            spies.simclr.append(copy.deepcopy(out[0]))
            return out

        def train_classifier(run, phase, encoder, data, y, *, warmup_epochs):
            call = dict(phase=phase, encoder=encoder, y=y.clone(),
                        encoder_state=_state(encoder), warmup_epochs=warmup_epochs)
            net = orig_train(run, phase, encoder, data, y, warmup_epochs=warmup_epochs)
            call["net"] = net
            call["encoder_state_after"] = _state(net.module_.encoder)
            spies.classifier.append(call)
            return net

        def select(run, net, data, y):
            module = net.module_
            was_training = module.training
            module.eval()
            with torch.no_grad():
                logits = module(data["x"])
            module.train(was_training)
            spies.select.append(dict(argmax=logits.argmax(1).numpy(),
                                     encoder_state=_state(module.encoder)))
            return orig_select(run, net, data, y)

        def contrastive_module(encoder, projection):
            spies.contrastive_modules.append(dict(encoder=_state(encoder),
                                                  projection=_state(projection)))
            return orig_cmod(encoder, projection)

        def contrastive_fit(net, X, y=None, **kwargs):
            if net.criterion is WeightedSupConLoss:
                spies.b2.append(dict(y=np.asarray(y), encoder=_state(net.module.encoder)))
            return orig_contrastive_fit(net, X, y, **kwargs)

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

        monkeypatch.setattr(phases_module, "gmm_clean_probability", gmm)
        monkeypatch.setattr(phases_module, "run_simclr", run_simclr)
        monkeypatch.setattr(phases_module, "train_classifier", train_classifier)
        monkeypatch.setattr(phases_module, "pseudo_label_weights", select)
        monkeypatch.setattr(phases_module, "ContrastiveModule", contrastive_module)
        monkeypatch.setattr(ContrastiveNet, "fit", contrastive_fit)
        monkeypatch.setattr(phases_module, "ClassifierHead", classifier_head)
        monkeypatch.setattr(phases_module, "make_encoder", make_encoder)


def _fit_spied(X, y, **params):
    with pytest.MonkeyPatch.context() as mp:
        spies = _Spies(mp)
        clf = _clf(**params).fit(X, y)
    return clf, spies


@pytest.fixture(scope="module")
def pretrain_fit(small_digits):
    X, y = small_digits
    return _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8))


@pytest.fixture(scope="module")
def full_fit(small_digits):
    X, y = small_digits
    # Noisy string labels: the pseudo-labels differ from the given labels, and
    # pseudo-labels and predictions must come back in classes_.
    given = np.array([f"d{v}" for v in make_noisy_labels(y, "symmetric", 0.4, random_state=0)])
    clf, spies = _fit_spied(X, given, phases="full", image_shape=(1, 8, 8), finetune_epochs=2)
    return clf, spies, given


# ------------------------------------------------------------------ modes
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
        criterion = WeightedSupConLoss if phases == "full" else NTXentLoss
        assert isinstance(clf.encoder_net_.criterion_, criterion)


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


# ------------------------------------------------------------- data flow
def test_pretrain_mode_encoder_net_is_the_a1_net(pretrain_fit):
    clf, spies = pretrain_fit
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


def test_pseudo_labels_are_a2_argmax_on_unaugmented_data(full_fit, pretrain_fit, small_digits):
    # In "full" mode b3 predicts, so predict() cannot stand in for a2: the spy
    # gives a2's eval-mode argmax on the un-augmented training set.
    clf, spies, _ = full_fit
    assert len(spies.select) == 1
    argmax = spies.select[0]["argmax"]
    np.testing.assert_array_equal(clf.pseudo_labels_, clf.classes_[argmax])
    assert clf.pseudo_labels_.dtype == clf.classes_.dtype
    # In "pretrain" mode a2's classifier predicts: its predictions on the
    # training set are the pseudo-labels.
    clf, _ = pretrain_fit
    X, _ = small_digits
    np.testing.assert_array_equal(clf.pseudo_labels_, clf.predict(X))


def test_full_mode_wiring(full_fit):
    clf, spies, given = full_fit
    assert [c["phase"] for c in spies.classifier] == ["a2", "b3"]
    a2, b3 = spies.classifier
    pseudo = np.searchsorted(clf.classes_, clf.pseudo_labels_)
    assert np.any(clf.pseudo_labels_ != given)  # the two label sets can be told apart
    # a2 learns the given labels, b2 and b3 the pseudo-labels, as class indices.
    np.testing.assert_array_equal(clf.classes_[a2["y"].numpy()], given)
    assert len(spies.b2) == 1
    np.testing.assert_array_equal(spies.b2[0]["y"], pseudo)
    np.testing.assert_array_equal(b3["y"].numpy(), pseudo)
    # b2 starts from a2's final encoder.
    _assert_state_equal(spies.b2[0]["encoder"], spies.select[0]["encoder_state"])
    assert a2["warmup_epochs"] == clf.warmup_epochs_ and b3["warmup_epochs"] == 1
    assert clf.classifier_net_ is b3["net"]
    # encoder_net_ is the b2 net and ran finetune_epochs epochs.
    assert isinstance(clf.encoder_net_.criterion_, WeightedSupConLoss)
    assert len(clf.encoder_net_.history) == 2 == len(clf.history_["b2"])


def test_b2_starts_from_the_a1_projection_head(full_fit):
    _, spies, _ = full_fit
    a1_projection = _sub_state(spies.simclr[0], "projection.")
    _assert_state_equal(spies.contrastive_modules[-1]["projection"], a1_projection)


def test_b3_trains_a_copy_of_the_b2_encoder(full_fit):
    clf, spies, _ = full_fit
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


def test_label_quality_gmm_gets_a2_losses_against_the_given_labels(pretrain_fit,
                                                                   small_digits):
    X, y = small_digits
    clf, spies = pretrain_fit
    net = clf.classifier_net_  # a2's net in "pretrain" mode
    assert len(net.recorded_losses_) == 2
    assert len(spies.gmm) == 2  # given labels (a2), then pseudo-labels (b1)
    np.testing.assert_allclose(spies.gmm[0]["losses"], np.mean(net.recorded_losses_, axis=0),
                               rtol=1e-6)
    # The last recorded epoch is a2's final model against the given labels.
    net.module_.eval()
    with torch.no_grad():
        logits = net.module_(_images(X))
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y), reduction="none")
    ce = ce.numpy()
    np.testing.assert_allclose(net.recorded_losses_[-1], (ce - ce.min()) / np.ptp(ce),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(clf.label_quality_, spies.gmm[0]["weights"])
    np.testing.assert_array_equal(clf.label_issues_, clf.label_quality_ < 0.5)


def test_b1_gmm_scores_the_pseudo_labels_with_a_head_trained_on_them(pretrain_fit,
                                                                     small_digits):
    X, _ = small_digits
    clf, spies = pretrain_fit
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
        logits = sel.module_(_images(X))
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(pseudo),
                                           reduction="none").numpy()
    np.testing.assert_allclose(sel.recorded_losses_[-1], (ce - ce.min()) / np.ptp(ce),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spies.gmm[1]["losses"], np.mean(sel.recorded_losses_, axis=0),
                               rtol=1e-6)
    np.testing.assert_array_equal(clf.sample_weights_, spies.gmm[1]["weights"])
    # Not the given-label answer.
    assert not np.array_equal(clf.sample_weights_, clf.label_quality_)


def test_gmm_losses_are_what_each_gmm_saw(pretrain_fit, small_digits):
    X, _ = small_digits
    clf, spies = pretrain_fit
    assert set(clf.gmm_losses_) == {"given", "pseudo"}
    np.testing.assert_array_equal(clf.gmm_losses_["given"], spies.gmm[0]["losses"])
    np.testing.assert_array_equal(clf.gmm_losses_["pseudo"], spies.gmm[1]["losses"])
    for v in clf.gmm_losses_.values():
        assert v.shape == (len(X),) and v.min() >= 0.0 and v.max() <= 1.0


def test_transform_is_the_predicting_encoder(full_fit, small_digits):
    clf, spies, _ = full_fit
    X, _ = small_digits
    Z = clf.transform(X[:9])
    assert Z.shape == (9, 128) and Z.dtype == np.float32  # SmallCNN features
    enc = copy.deepcopy(clf.classifier_net_.module_.encoder).eval()
    with torch.no_grad():
        ref = enc(_images(X[:9]))
    np.testing.assert_allclose(Z, ref.numpy(), rtol=1e-5, atol=1e-5)
    # b3's encoder, not a2's.
    enc.load_state_dict(spies.select[0]["encoder_state"])
    with torch.no_grad():
        a2 = enc(_images(X[:9]))
    assert not np.allclose(Z, a2.numpy(), atol=1e-3)


# -------------------------------------------------------------- warm-up
def test_pretrain_epochs_auto_trains_a1_for_the_resolved_number_of_epochs(monkeypatch):
    """``pretrain_epochs="auto"`` gives colour images about ``A1_COLOUR_IMAGE_VIEWS``
    images in all (clipped to the bounds) and every other input ``A1_EPOCHS``; a1 trains
    exactly ``pretrain_epochs_`` epochs.  The bounds are scaled down for speed."""
    monkeypatch.setattr(phases_module, "A1_EPOCHS", 1)
    monkeypatch.setattr(phases_module, "A1_MAX_EPOCHS", 4)
    monkeypatch.setattr(phases_module, "A1_COLOUR_IMAGE_VIEWS", 90)
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    colour = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (30, 8, 8), dtype=np.uint8)
    params = dict(phases="pretrain", pretrain_epochs="auto", max_epochs=1, warmup_epochs=0,
                  gmm_epochs=1, batch_size=16, random_state=0)
    for X, n, epochs in [(colour, 30, 3), (colour[:15], 15, 4), (grey, 30, 1)]:
        clf = ContrastiveNoisyClassifier(**params).fit(X[:n], y[:n])
        assert clf.pretrain_epochs_ == epochs == len(clf.history_["a1"])
        assert clf.pretrain_epochs == "auto"  # the hyperparameter is left as it is
    clf.set_params(pretrain_epochs=2).fit(grey, y)
    assert clf.pretrain_epochs_ == 2 == len(clf.history_["a1"])


def test_warmup_trains_the_head_on_the_frozen_a1_encoder(small_digits, pretrain_fit):
    X, y = small_digits
    # A warm-up as long as a2: the encoder keeps a1's weights and BatchNorm statistics ...
    clf, spies = _fit_spied(X, y, phases="pretrain", image_shape=(1, 8, 8),
                            warmup_epochs=2, max_epochs=2)
    after = _state(clf.classifier_net_.module_.encoder)
    assert any("running_mean" in k for k in after)
    _assert_state_equal(after, _sub_state(spies.simclr[0], "encoder."))
    # ... while the head trained, weights and BatchNorm statistics (heads[0] is a2's).
    head_init = spies.heads[0]
    head_after = _state(clf.classifier_net_.module_.head)
    assert _changed(head_after, head_init, lambda k: k.endswith("weight"))
    assert _changed(head_after, head_init, lambda k: "running_mean" in k)
    # The warm-up does not leave a frozen encoder behind.
    assert all(p.requires_grad for p in clf.classifier_net_.module_.parameters())
    # With one warm-up epoch out of three the encoder trains afterwards.
    clf, spies = pretrain_fit
    changed = _changed(_state(clf.classifier_net_.module_.encoder),
                       _sub_state(spies.simclr[0], "encoder."))
    assert any("running_mean" in k for k in changed)
    assert any(k.endswith("weight") for k in changed)


def test_b2_trains_the_encoder_even_when_warmup_covers_all_of_a2(small_digits, monkeypatch):
    # With warmup_epochs >= max_epochs skorch's Unfreezer never fires during a2;
    # b2 must still train the encoder, not only the projection head (and the
    # BatchNorm statistics).
    X, y = small_digits
    seen = {}
    orig = phases_module.supervised_contrastive

    def contrast(run, net, projection, data, pseudo, weights):
        seen["before"] = _state(net.module_.encoder)
        contrastive_net, encoder = orig(run, net, projection, data, pseudo, weights)
        seen["after"] = _state(encoder)
        return contrastive_net, encoder

    monkeypatch.setattr(phases_module, "supervised_contrastive", contrast)
    clf = _clf(phases="full", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=2,
               warmup_epochs=3, finetune_epochs=1).fit(X, y)
    assert _changed(seen["after"], seen["before"], lambda k: k.endswith("weight"))
    assert all(p.requires_grad for p in clf.encoder_net_.module_.parameters())


def test_baseline_has_no_warmup_freeze(small_digits):
    X, y = small_digits
    clf, spies = _fit_spied(X, y, phases="baseline", image_shape=(1, 8, 8),
                            warmup_epochs=5, max_epochs=1)
    assert spies.simclr == []
    assert spies.classifier[0]["warmup_epochs"] is None and clf.warmup_epochs_ == 0
    names = [name for name, _ in clf.classifier_net_.callbacks]
    assert "freeze_encoder" not in names
    # In its only epoch the random encoder trained, weights and BatchNorm stats.
    init = spies.encoders[-1]
    after = _state(clf.classifier_net_.module_.encoder)
    assert _changed(after, init, lambda k: k.endswith("weight"))
    assert _changed(after, init, lambda k: "running_mean" in k)


@pytest.mark.parametrize("phases", ["full", "baseline"])
def test_encoder_lr_sets_the_pretrained_encoder_rate(phases, digits):
    X, y = digits
    params = dict(TINY, phases=phases, image_shape=(1, 8, 8))
    clf = ContrastiveNoisyClassifier(encoder_lr=0.001, **params).fit(X, y)
    net = clf.classifier_net_  # b3 (full) or a2 (baseline)
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


# ------------------------------------------------------------ end to end
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
