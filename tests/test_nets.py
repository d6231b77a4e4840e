"""The skorch nets: batching, per-sample loss records, divergence guard, the allocator setting."""

import copy
import platform

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Freezer, Unfreezer

from noisyclf.exceptions import DivergenceError
from noisyclf.losses import ELRLoss, NFLRCELoss, NTXentLoss, WeightedSupConLoss
from noisyclf.modules import (
    ClassifierHead, ClassifierModule, ContrastiveModule, MLPEncoder, ProjectionHead,
)
from noisyclf.nets import (
    ContrastiveNet, NoisyLabelNet, TensorBatches, fix_malloc_threshold,
    make_criterion,
)


def test_tensor_batches_cover_every_sample_once_per_pass():
    torch.manual_seed(0)
    X = {"x": torch.arange(10) * 10, "index": torch.arange(10)}
    batches = TensorBatches(X, torch.arange(10), batch_size=3, shuffle=True)
    assert len(batches) == 4
    first = torch.cat([b[0]["index"] for b in batches])
    second = torch.cat([b[0]["index"] for b in batches])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert not torch.equal(first, second)  # reshuffled on every pass
    for Xi, yi in batches:
        assert torch.equal(Xi["x"], Xi["index"] * 10) and torch.equal(yi, Xi["index"])
    assert len(TensorBatches(X, None, batch_size=3, drop_last=True)) == 3
    assert [len(b[0]["x"]) for b in TensorBatches(X, None, batch_size=-1)] == [10]


def _net(n, d, k, **kwargs):
    torch.manual_seed(0)
    module = ClassifierModule(MLPEncoder(d, hidden=(8,)), ClassifierHead(8, k, hidden=8))
    return NoisyLabelNet(module, make_criterion("ce", n_samples=n, n_classes=k),
                         n_samples=n, train_split=None, verbose=0, **kwargs)


def _eval_ce(net, x, y):
    net.module_.eval()
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(net.module_(x), y, reduction="none").numpy()
    return ce


def _minmax(v):
    v = np.asarray(v, dtype=np.float64)
    return (v - v.min()) / (v.max() - v.min())


def test_recorded_losses_are_eval_mode_normalised_cross_entropy_of_the_last_epochs():
    # DivideMix's eval_train: eval mode, no augmentation, min-max per epoch.
    rng = np.random.RandomState(0)
    n, d, k = 40, 5, 3
    x = torch.as_tensor(rng.randn(n, d), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, k, n))
    data = {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}
    net = _net(n, d, k, lr=0.05, max_epochs=4, batch_size=8, record_epochs=1).fit(data, y)
    assert len(net.recorded_losses_) == 1
    want = _minmax(_eval_ce(net, x, y))
    np.testing.assert_allclose(net.mean_recorded_loss(), want, rtol=1e-5, atol=1e-6)
    assert net.recorded_losses_[0].min() == 0.0 and net.recorded_losses_[0].max() == 1.0
    # Not the training-mode (BatchNorm batch statistics) loss.
    net.module_.train()
    with torch.no_grad():
        train_ce = torch.nn.functional.cross_entropy(net.module_(x), y, reduction="none")
    assert not np.allclose(_minmax(train_ce.numpy()), want, atol=1e-3)


def test_recorded_losses_ignore_the_training_augmentation():
    # With a heavy corruption augmenter the recorded losses still come from
    # the clean inputs.
    rng = np.random.RandomState(2)
    n, d, k = 30, 6, 3
    x = torch.as_tensor(rng.randn(n, d), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, k, n))
    data = {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}
    net = _net(n, d, k, lr=0.05, max_epochs=2, batch_size=10, record_epochs=1,
               augmenter="tabular", augmenter__corruption_rate=0.9).fit(data, y)
    np.testing.assert_allclose(net.recorded_losses_[-1], _minmax(_eval_ce(net, x, y)),
                               rtol=1e-5, atol=1e-6)


def test_nothing_recorded_with_record_epochs_zero():
    data, y = _data()
    net = _net(24, 5, 3, lr=0.1, max_epochs=2, batch_size=8, record_epochs=0).fit(data, y)
    assert net.recorded_losses_ == [] and net.mean_recorded_loss() is None


def test_nan_loss_raises_divergence_error_and_weights_can_be_restored():
    n, d, k = 20, 4, 2
    x = torch.randn(n, d)
    x[3, 0] = float("nan")
    y = torch.arange(n) % k
    data = {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}
    net = _net(n, d, k, lr=0.1, max_epochs=2, batch_size=n)
    with pytest.raises(DivergenceError, match="loss became nan"):
        net.fit(data, y)
    initial = {key: v.clone() for key, v in net._last_finite_state.items()}
    net.restore_last_finite()
    for key, v in net.module_.state_dict().items():
        torch.testing.assert_close(v, initial[key])
    assert not hasattr(net, "_last_finite_state")


def test_make_criterion_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        make_criterion("mae", n_samples=3, n_classes=2)


# --------------------------------------------------------------------------- #
# More on the nets: the weighted batch loss, which epochs are recorded, the
# encoder's mode while frozen, what the contrastive criterion receives, and
# restoring after a divergence in the middle of training.
# --------------------------------------------------------------------------- #
def _data(n=24, d=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    x = torch.as_tensor(rng.randn(n, d), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, k, n))
    return {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}, y


class _Record(Callback):
    """Calls ``fn(net)`` at every batch or epoch end and keeps what it returns."""

    def __init__(self, fn, when="epoch"):
        self.fn = fn
        self.when = when

    def initialize(self):
        self.seen = []
        return self

    def on_epoch_end(self, net, **kwargs):
        if self.when == "epoch":
            self.seen.append(self.fn(net))

    def on_batch_end(self, net, **kwargs):
        if self.when == "batch":
            self.seen.append(self.fn(net))


@pytest.mark.parametrize("loss", ["ce", "nfl+rce"])
def test_get_loss_is_mean_of_per_sample_loss_times_sample_weight(loss):
    n, d, k = 12, 5, 3
    data, y = _data(n, d, k)
    sw = torch.linspace(0.0, 2.0, n)
    criterion = make_criterion(loss, n_samples=n, n_classes=k, nfl_gamma=0.5)
    net = NoisyLabelNet(ClassifierModule(MLPEncoder(d, hidden=(8,)), ClassifierHead(8, k)),
                        criterion, n_samples=n, train_split=None).initialize()
    logits = torch.randn(n, k)
    got = net.get_loss(logits, y, X=dict(data, sample_weight=sw))
    if loss == "ce":
        per_sample = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    else:
        per_sample = NFLRCELoss(gamma=0.5, reduction="none")(logits, y)
    torch.testing.assert_close(got, (per_sample * sw).mean())
    assert not torch.allclose(got, per_sample.mean())  # the weights matter
    assert net.mean_recorded_loss() is None  # outside training nothing is recorded


def test_recorded_losses_are_the_last_record_epochs():
    data, y = _data()
    # What an eval-mode pass gives at the end of every epoch (after the net's
    # own on_epoch_end, so the callback sees the same weights).
    cb = _Record(lambda net: _minmax(_eval_ce(net, data["x"], y)))
    net = _net(24, 5, 3, lr=0.1, max_epochs=5, batch_size=8, record_epochs=2,
               iterator_train__shuffle=True, callbacks=[("rec", cb)]).fit(data, y)
    per_epoch = cb.seen
    assert len(per_epoch) == 5 and len(net.recorded_losses_) == 2
    for got, want in zip(net.recorded_losses_, per_epoch[-2:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(per_epoch[0], per_epoch[-1])  # training changed them
    np.testing.assert_allclose(net.mean_recorded_loss(), np.mean(per_epoch[-2:], axis=0),
                               rtol=1e-5, atol=1e-6)


def test_recording_leaves_the_module_in_training_mode_and_rng_untouched():
    data, y = _data()
    modes = _Record(lambda net: net.module_.training, when="batch")
    net = _net(24, 5, 3, lr=0.1, max_epochs=3, batch_size=8, record_epochs=3,
               callbacks=[("modes", modes)])
    torch.manual_seed(5)
    net.fit(data, y)
    after = torch.rand(3)
    net2 = _net(24, 5, 3, lr=0.1, max_epochs=3, batch_size=8, record_epochs=0)
    torch.manual_seed(5)
    net2.fit(data, y)
    assert all(modes.seen)
    # The eval passes draw nothing from torch's RNG: same stream and weights.
    torch.testing.assert_close(after, torch.rand(3))
    for (k, a), b in zip(net.module_.state_dict().items(), net2.module_.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_frozen_encoder_runs_in_eval_mode():
    data, y = _data(32, 5, 3)

    def snapshot(net):
        bn = net.module_.encoder.net[1]
        return (len(net.history), net.module_.encoder.training, net.module_.head.training,
                bn.running_mean.clone(), net.module_.head.net[1].running_mean.clone())

    cb = _Record(snapshot, when="batch")
    net = _net(32, 5, 3, lr=0.05, max_epochs=4, batch_size=8, callbacks=[
        ("freeze", Freezer("encoder.*", at=1)), ("unfreeze", Unfreezer("encoder.*", at=3)),
        ("rec", cb)])
    net.initialize()
    initial = net.module_.encoder.net[1].running_mean.clone()
    net.fit(data, y)
    warm = [s for s in cb.seen if s[0] <= 2]
    after = [s for s in cb.seen if s[0] > 2]
    assert len(warm) == 8 and len(after) == 8
    assert all(not enc_training and head_training for _, enc_training, head_training, _, _ in warm)
    for s in warm:
        torch.testing.assert_close(s[3], initial, rtol=0, atol=0)
    assert not torch.equal(warm[-1][4], warm[0][4])  # the head's BatchNorm did update
    assert all(enc_training for _, enc_training, _, _, _ in after)
    assert not torch.equal(after[-1][3], initial)


class _SpySupCon(WeightedSupConLoss):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def forward(self, z1, z2, labels, weights):
        self.calls.append((labels.clone(), weights.clone()))
        return super().forward(z1, z2, labels, weights)


class _SpyNTXent(NTXentLoss):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_calls = 0

    def forward(self, z1, z2):
        self.n_calls += 1
        return super().forward(z1, z2)


def _contrastive(criterion, d=5, **kwargs):
    torch.manual_seed(0)
    module = ContrastiveModule(MLPEncoder(d, hidden=(8,)), ProjectionHead(8, 4))
    return ContrastiveNet(module, criterion, criterion__temperature=0.5, augmenter="tabular",
                          augmenter__corruption_rate=0.3, train_split=None, lr=0.05,
                          verbose=0, **kwargs)


def test_contrastive_net_gives_weighted_supcon_the_labels_and_gmm_weights():
    n = 24
    data, _ = _data(n)
    y = torch.arange(n) % 3
    weight = torch.arange(n, dtype=torch.float32) / n  # unique: identifies the sample
    net = _contrastive(_SpySupCon, max_epochs=2, batch_size=8, iterator_train__shuffle=True)
    net.fit(dict(data, weight=weight), y)
    calls = net.criterion_.calls
    assert len(calls) == 6
    seen = torch.cat([w for _, w in calls[:3]])
    assert sorted(seen.tolist()) == weight.tolist()  # every sample once per epoch
    for labels, weights in calls:
        assert labels.shape == weights.shape == (8,)
        ids = torch.round(weights * n).long()
        torch.testing.assert_close(labels, y[ids])  # labels and weights stay paired
    assert seen.tolist() != weight.tolist()  # shuffled


def test_contrastive_net_without_weights_is_label_free_and_sample_weight_scales():
    data, _ = _data(16)
    net = _contrastive(_SpyNTXent, max_epochs=1, batch_size=8).fit(data, None)
    assert net.criterion_.n_calls == 2
    assert net.history[-1, "train_loss"] > 0
    zero = _contrastive(_SpyNTXent, max_epochs=1, batch_size=8)
    zero.fit(dict(data, sample_weight=torch.zeros(16)), None)
    assert zero.history[-1, "train_loss"] == 0.0


class _NaNAfter(torch.nn.Module):
    """Per-sample cross-entropy that turns NaN from its ``after``-th call on."""

    def __init__(self, after):
        super().__init__()
        self.after = after
        self.calls = 0

    def forward(self, logits, target, index=None):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        return loss * float("nan") if self.calls >= self.after else loss


def test_divergence_mid_training_restores_the_last_finished_epoch():
    data, y = _data(32, 5, 3)
    # 4 batches per epoch; NaN at the 3rd batch of epoch 2 (after 2 updates in it).
    cb = _Record(lambda net: copy.deepcopy(net.module_.state_dict()))
    net = NoisyLabelNet(
        ClassifierModule(MLPEncoder(5, hidden=(8,)), ClassifierHead(8, 3, hidden=8)),
        _NaNAfter(7), n_samples=32, train_split=None, lr=0.1, max_epochs=3, batch_size=8,
        callbacks=[("rec", cb)], verbose=0)
    with pytest.raises(DivergenceError, match="epoch 2"):
        net.fit(data, y)
    assert len(cb.seen) == 1
    end_of_epoch_1 = cb.seen[0]
    current = net.module_.state_dict()
    assert any(not torch.equal(current[k], end_of_epoch_1[k]) for k in current)
    net.restore_last_finite()
    for k, v in net.module_.state_dict().items():
        torch.testing.assert_close(v, end_of_epoch_1[k], rtol=0, atol=0)
    assert not hasattr(net, "_last_finite_state")
    net.restore_last_finite()  # a second call is harmless


@pytest.mark.parametrize("loss, cls", [("ce", torch.nn.CrossEntropyLoss),
                                       ("nfl+rce", NFLRCELoss), ("elr", ELRLoss)])
def test_make_criterion_builds_per_sample_losses(loss, cls):
    crit = make_criterion(loss, n_samples=6, n_classes=4, nfl_gamma=0.7, nfl_alpha=2.0,
                          rce_beta=0.3, elr_lambda=1.5, elr_beta=0.6)
    assert isinstance(crit, cls) and crit.reduction == "none"
    if loss == "nfl+rce":
        assert (crit.gamma, crit.alpha, crit.beta) == (0.7, 2.0, 0.3)
    if loss == "elr":
        assert (crit.n_samples, crit.n_classes, crit.lam, crit.beta) == (6, 4, 1.5, 0.6)
    out = crit(torch.randn(3, 4), torch.tensor([0, 3, 1]), torch.tensor([5, 0, 2]))
    assert out.shape == (3,) and torch.all(torch.isfinite(out))


def test_malloc_threshold_is_fixed_on_glibc():
    fixed = fix_malloc_threshold()
    # mallopt(M_MMAP_THRESHOLD) returns 1 on glibc; other platforms are left alone.
    assert fixed == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
