"""Dynamic bootstrapping with mixup (Arazo et al., 2019): mixture, losses, net, and the
estimator's ``phases="bootstrap"`` mode (section 6.4)."""

import copy

import numpy as np
import pytest
import scipy.stats as stats
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

import noisyclf._input as input_module
import noisyclf._phases as phases_module
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf.bootstrap import (
    BetaMixture1D, BootstrapNet, DynamicBootstrappingLoss, MixupBootstrappingLoss,
    UniformPriorLoss, mixup_data,
)
from noisyclf.modules import ClassifierHead, ClassifierModule, MLPEncoder


# --------------------------------------------------------------------------- #
# slow float64 references
# --------------------------------------------------------------------------- #
def _log_softmax64(row):
    row = np.asarray(row, dtype=np.float64)
    m = row.max()
    return row - m - np.log(np.exp(row - m).sum())


def _slow_bootstrap(logits, y, B, boot, variant):
    """Per-sample -((1 - B) y + B t)^T log softmax(h), loops in float64."""
    logits, boot = logits.double().numpy(), boot.double().numpy()
    out = []
    for i in range(len(y)):
        log_p = _log_softmax64(logits[i])
        if variant == "hard":
            t = np.zeros(len(log_p))
            t[int(np.argmax(boot[i]))] = 1.0
        else:
            t = np.exp(_log_softmax64(boot[i]))
        onehot = np.zeros(len(log_p))
        onehot[int(y[i])] = 1.0
        target = (1 - float(B[i])) * onehot + float(B[i]) * t
        out.append(-sum(target[c] * log_p[c] for c in range(len(log_p))))
    return np.array(out)


def _slow_prior(logits):
    logits = logits.double().numpy()
    n, c = logits.shape
    mean = [sum(np.exp(_log_softmax64(logits[i]))[k] for i in range(n)) / n for k in range(c)]
    return sum((1.0 / c) * np.log((1.0 / c) / mean[k]) for k in range(c))


def _slow_mixup_bootstrap(logits, y, B, boot, lam, index, variant, reg, sw=None):
    sw = np.ones(len(y)) if sw is None else sw.double().numpy()
    idx = index.numpy()
    a = _slow_bootstrap(logits, y, B, boot, variant)
    b = _slow_bootstrap(logits, y[idx], B[idx], boot[idx], variant)
    n = len(y)
    total = sum(lam * sw[i] * a[i] + (1 - lam) * sw[idx[i]] * b[i] for i in range(n)) / n
    return total + reg * _slow_prior(logits)


def _batch(seed, n=6, c=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g) * 2
    boot = torch.randn(n, c, generator=g) * 2
    y = torch.randint(0, c, (n,), generator=g)
    B = torch.rand(n, generator=g)
    return logits, y, B, boot


# --------------------------------------------------------------------------- #
# beta mixture
# --------------------------------------------------------------------------- #
def _two_betas(seed=0, n=5000):
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.beta(2, 8, int(0.6 * n)), rng.beta(8, 2, int(0.4 * n))])


def test_bmm_recovers_the_parameters_of_two_known_betas():
    bmm = BetaMixture1D(max_iters=200).fit(_two_betas())
    clean, noisy = 1 - bmm.noisy_component_, bmm.noisy_component_
    assert bmm.means_[noisy] > bmm.means_[clean]
    np.testing.assert_allclose([bmm.alphas_[clean], bmm.betas_[clean]], [2, 8], rtol=0.15)
    np.testing.assert_allclose([bmm.alphas_[noisy], bmm.betas_[noisy]], [8, 2], rtol=0.15)
    np.testing.assert_allclose(bmm.weights_[[clean, noisy]], [0.6, 0.4], atol=0.03)


def test_bmm_posterior_is_bayes_rule_with_scipy_densities():
    bmm = BetaMixture1D(max_iters=30).fit(_two_betas(1, 2000))
    x = np.linspace(0.01, 0.99, 57)
    dens = [bmm.weights_[k] * stats.beta.pdf(x, bmm.alphas_[k], bmm.betas_[k]) for k in (0, 1)]
    for k in (0, 1):
        np.testing.assert_allclose(bmm.posterior(x, k), dens[k] / (dens[0] + dens[1]),
                                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bmm.posterior(x, 0) + bmm.posterior(x, 1), 1.0, atol=1e-9)
    assert np.array_equal(bmm.predict(x), bmm.posterior(x, bmm.noisy_component_) > 0.5)


def test_one_em_step_is_the_weighted_method_of_moments_from_the_initial_point():
    x = _two_betas(2, 500)
    r = np.array([w * stats.beta.pdf(x, a, b) for w, a, b in [(0.5, 1, 2), (0.5, 2, 1)]])
    r = np.maximum(r, 1e-12)
    r /= r.sum(axis=0)
    bmm = BetaMixture1D(max_iters=1).fit(x)
    for k in (0, 1):
        m = np.sum(r[k] * x) / np.sum(r[k])
        v = np.sum(r[k] * (x - m) ** 2) / np.sum(r[k])
        a = m * (m * (1 - m) / v - 1)
        np.testing.assert_allclose([bmm.alphas_[k], bmm.betas_[k]], [a, a * (1 - m) / m],
                                   rtol=1e-10)
    np.testing.assert_allclose(bmm.weights_, r.mean(axis=1), rtol=1e-10)


def test_lookup_table_matches_the_direct_posterior():
    # The original tabulates the posterior on linspace(1e-12, 1 - 1e-12, 100),
    # flattens it after its maximum and reads entry floor(100 x).
    bmm = BetaMixture1D(max_iters=30).fit(_two_betas(3, 2000))
    k = bmm.noisy_component_
    grid = np.linspace(1e-12, 1 - 1e-12, 100)
    direct = bmm.posterior(grid, k)
    table = direct.copy()
    table[np.argmax(direct):] = direct.max()
    np.testing.assert_allclose(bmm.lookup_, table)
    x = np.random.RandomState(0).uniform(1e-3, 1 - 1e-3, 500)
    np.testing.assert_allclose(bmm.look_lookup(x), table[(100 * x).astype(int)])
    # Read directly, the (monotone) posterior differs from the table by one grid step at most.
    fine = np.linspace(1e-3, 1 - 1e-3, 2000)
    monotone = np.maximum.accumulate(bmm.posterior(fine, k))
    assert np.max(np.abs(bmm.look_lookup(fine) - monotone)) < 0.1
    assert np.mean(np.abs(bmm.look_lookup(fine) - monotone)) < 0.01
    assert torch.is_tensor(torch.as_tensor(bmm.look_lookup(torch.as_tensor(x))))


def test_fit_losses_normalises_like_track_training_loss():
    rng = np.random.RandomState(4)
    losses = np.concatenate([rng.gamma(1.0, 0.2, 300), rng.gamma(9.0, 0.4, 200), [50.0]])
    bmm = BetaMixture1D().fit_losses(losses)
    p5, p95 = np.percentile(losses, 5), np.percentile(losses, 95)
    assert bmm.loss_min_ == pytest.approx(p5 + 1e-5) and bmm.loss_max_ == pytest.approx(p95)
    kept = losses[(losses >= p5) & (losses <= p95)]
    norm = (kept - (p5 + 1e-5)) / (p95 - (p5 + 1e-5) + 1e-6)
    norm = np.where(norm >= 1, 0.999, np.where(norm <= 0, 0.001, norm))
    ref = BetaMixture1D().fit(norm)
    np.testing.assert_allclose(bmm.alphas_, ref.alphas_)
    np.testing.assert_allclose(bmm.betas_, ref.betas_)
    # Batch probabilities (compute_probabilities_batch): same normalisation, then the table.
    batch = np.array([0.0, 0.05, 1.0, 3.0, 100.0])
    norm_b = np.clip((batch - bmm.loss_min_) / (bmm.loss_max_ - bmm.loss_min_ + 1e-6),
                     0.001, 0.999)
    np.testing.assert_allclose(bmm.noise_probability(torch.as_tensor(batch)),
                               ref.lookup_[(100 * norm_b).astype(int)])
    # High losses are the noisy ones.
    probs = bmm.noise_probability(batch)
    assert probs[0] < 0.1 and probs[-1] == bmm.lookup_.max() > 0.5
    assert np.all(np.diff(probs) >= 0)


def test_fit_losses_survives_identical_losses_and_rejects_non_finite_ones():
    bmm = BetaMixture1D().fit_losses(np.full(50, 0.3))
    assert np.all(np.isfinite(bmm.alphas_)) and np.all(np.isfinite(bmm.lookup_))
    with pytest.raises(ValueError, match="finite"):
        BetaMixture1D().fit_losses([0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="max_iters"):
        BetaMixture1D(max_iters=0).fit([0.2, 0.4])


# --------------------------------------------------------------------------- #
# losses
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("variant", ["hard", "soft"])
@pytest.mark.parametrize("seed", [0, 1])
def test_dynamic_bootstrapping_matches_the_slow_formula(variant, seed):
    logits, y, B, boot = _batch(seed)
    want = _slow_bootstrap(logits, y, B, boot, variant)
    per = DynamicBootstrappingLoss(variant, reduction="none")(logits, y, B, boot)
    np.testing.assert_allclose(per.double().numpy(), want, rtol=1e-5)
    mean = DynamicBootstrappingLoss(variant)(logits, y, B, boot)
    assert float(mean) == pytest.approx(want.mean(), rel=1e-5)


def test_bootstrap_targets_get_no_gradient_and_b_zero_is_cross_entropy():
    logits, y, B, boot = _batch(2)
    boot.requires_grad_(True)
    logits.requires_grad_(True)
    DynamicBootstrappingLoss("soft")(logits, y, B, boot).backward()
    assert boot.grad is None and logits.grad is not None
    zero = torch.zeros(len(y))
    for variant in ("hard", "soft"):
        loss = DynamicBootstrappingLoss(variant)(logits, y, zero, boot)
        assert torch.allclose(loss, F.cross_entropy(logits, y))
    # B = 1, hard: cross-entropy against the prediction's argmax.
    ones = torch.ones(len(y))
    assert torch.allclose(DynamicBootstrappingLoss("hard")(logits, y, ones, boot),
                          F.cross_entropy(logits, boot.argmax(1)))


def test_uniform_prior_loss_matches_the_slow_formula():
    logits = _batch(3)[0]
    assert float(UniformPriorLoss()(logits)) == pytest.approx(_slow_prior(logits), rel=1e-5)
    assert float(UniformPriorLoss()(logits)) > 0
    assert float(UniformPriorLoss()(torch.randn(1, 5).repeat(5, 1) * 0 + 1.0)) == 0.0


@pytest.mark.parametrize("variant", ["hard", "soft"])
@pytest.mark.parametrize("reg", [0.0, 1.0, 2.5])
def test_mixup_bootstrapping_matches_the_slow_formula(variant, reg):
    logits, y, B, boot = _batch(5, n=7)
    index = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    sw = torch.rand(7, generator=torch.Generator().manual_seed(2))
    loss = MixupBootstrappingLoss(variant, reg_weight=reg)
    for lam, weights in [(0.3, None), (0.71, sw)]:
        want = _slow_mixup_bootstrap(logits, y, B, boot, lam, index, variant, reg, weights)
        got = loss(logits, y, B, boot, lam, index, sample_weight=weights)
        assert float(got) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("variant", ["hard", "soft"])
def test_mixup_bootstrapping_with_lam_one_is_the_plain_bootstrapping_loss(variant):
    logits, y, B, boot = _batch(6)
    index = torch.randperm(len(y))
    got = MixupBootstrappingLoss(variant, reg_weight=0.5)(logits, y, B, boot, 1.0, index)
    want = DynamicBootstrappingLoss(variant)(logits, y, B, boot) + 0.5 * UniformPriorLoss()(logits)
    assert torch.allclose(got, want)


def test_soft_mixup_bootstrapping_with_b_zero_is_mixup_cross_entropy():
    logits, y, _, boot = _batch(7)
    index = torch.randperm(len(y))
    lam = 0.37
    got = MixupBootstrappingLoss("soft", reg_weight=0.0)(
        logits, y, torch.zeros(len(y)), boot, lam, index)
    want = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[index])
    assert torch.allclose(got, want)


def test_mixup_data_draws_from_torch_and_mixes_with_a_permutation():
    x = torch.randn(16, 3)
    torch.manual_seed(3)
    mixed, lam, index = mixup_data(x, alpha=32.0)
    torch.manual_seed(3)
    again = mixup_data(x, alpha=32.0)
    assert lam == again[1] and torch.equal(index, again[2]) and torch.equal(mixed, again[0])
    assert sorted(index.tolist()) == list(range(16))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[index])
    # Beta(alpha, alpha): mean 1/2, variance 1 / (4 (2 alpha + 1)).
    lams = np.array([mixup_data(x, alpha=32.0)[1] for _ in range(400)])
    assert lams.mean() == pytest.approx(0.5, abs=0.02)
    assert lams.var() == pytest.approx(1 / (4 * 65), rel=0.25)
    assert 0 < lams.min() and lams.max() < 1


@pytest.mark.parametrize("make, match", [
    (lambda: DynamicBootstrappingLoss("medium"), "variant"),
    (lambda: MixupBootstrappingLoss("Hard"), "variant"),
    (lambda: MixupBootstrappingLoss(reg_weight=-1.0), "reg_weight"),
    (lambda: DynamicBootstrappingLoss(reduction="sum"), "reduction"),
    (lambda: mixup_data(torch.zeros(2, 2), alpha=0.0), "mixup_alpha"),
])
def test_bad_loss_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- #
# the net
# --------------------------------------------------------------------------- #
def _module(d, k, seed=0):
    torch.manual_seed(seed)
    return ClassifierModule(MLPEncoder(d, hidden=(16,)), ClassifierHead(16, k, hidden=16))


def _noisy_blobs(n=240, d=8, k=3, noise=0.4, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.randn(k, d) * 4
    y_true = rng.randint(0, k, n)
    x = centres[y_true] + rng.randn(n, d)
    flipped = rng.rand(n) < noise
    y = y_true.copy()
    y[flipped] = (y_true[flipped] + rng.randint(1, k, flipped.sum())) % k
    data = {"x": torch.as_tensor(x, dtype=torch.float32), "index": torch.arange(n),
            "sample_weight": torch.ones(n)}
    return data, torch.as_tensor(y), flipped


@pytest.mark.parametrize("variant", ["hard", "soft"])
def test_bootstrap_net_flags_flipped_labels_with_a_finite_loss(variant):
    data, y, flipped = _noisy_blobs()
    net = BootstrapNet(_module(8, 3), variant=variant, n_samples=len(y), max_epochs=6,
                       batch_size=32, lr=0.05, optimizer=torch.optim.SGD,
                       optimizer__momentum=0.9, iterator_train__shuffle=True,
                       train_split=None, verbose=0)
    torch.manual_seed(0)
    net.fit(data, y)
    losses = net.history[:, "train_loss"]
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    assert len(net.history[:, "noise_prob_mean"]) == 6
    net.fit_noise_model(data, y)
    b = net.noise_prob_
    assert b.shape == (len(y),) and np.all((b >= 0) & (b <= 1))
    # The mixture's noisy component holds the flipped labels.
    assert b[flipped].mean() > b[~flipped].mean() + 0.4
    assert isinstance(net.criterion_, MixupBootstrappingLoss)
    assert net.criterion_.variant == variant


@pytest.mark.parametrize("variant", ["hard", "soft"])
def test_train_step_uses_train_mode_targets_and_eval_mode_noise_probabilities(variant):
    # One step redone by hand from a copy of the module: train-mode forward
    # for the bootstrap targets, eval-mode losses for B (before the mixed
    # forward pass for soft, after it for hard, as the original), slow loss.
    data, y, _ = _noisy_blobs(n=64, seed=1)
    net = BootstrapNet(_module(8, 3, seed=1), variant=variant, reg_weight=0.7, mixup_alpha=2.0,
                       n_samples=64, max_epochs=1, batch_size=64, lr=0.05, train_split=None,
                       verbose=0)
    torch.manual_seed(0)
    net.fit(data, y)
    net.fit_noise_model(data, y)
    module = copy.deepcopy(net.module_)
    modes = []
    hook = net.module_.register_forward_hook(lambda m, i, o: modes.append(m.training))
    torch.manual_seed(11)
    got = net.train_step_single((dict(data), y))["loss"].item()
    hook.remove()
    assert modes == ([True, False, True] if variant == "soft" else [True, True, False])

    x = data["x"]

    def noise_prob():
        module.eval()
        B = net.bmm_.noise_probability(F.cross_entropy(module(x), y, reduction="none"))
        module.train()
        return torch.as_tensor(B).float().clamp(1e-4, 1 - 1e-4)

    module.train()
    with torch.no_grad():
        boot = module(x)
        B = noise_prob() if variant == "soft" else None
        torch.manual_seed(11)
        mixed, lam, index = mixup_data(x, 2.0)
        logits = module(mixed)
        B = noise_prob() if variant == "hard" else B
    want = _slow_mixup_bootstrap(logits, y, B, boot, lam, index, variant, 0.7)
    assert got == pytest.approx(want, rel=1e-4)
    # Validation loss: weighted cross-entropy against the given labels.
    sw = torch.rand(64)
    assert torch.allclose(net.get_loss(logits, y, X={"sample_weight": sw}),
                          (F.cross_entropy(logits, y, reduction="none") * sw).mean())
    # Eval-mode and train-mode losses differ (BatchNorm), so B's mode matters.
    assert not torch.allclose(boot, module.eval()(x), atol=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "both"}, "variant"),
    ({"mixup_alpha": 0.0}, "mixup_alpha"),
    ({"mixup_alpha": float("nan")}, "mixup_alpha"),
    ({"reg_weight": -0.1}, "reg_weight"),
    ({"bmm_max_iters": 0}, "bmm_max_iters"),
])
def test_bad_net_settings_raise_naming_the_argument(kwargs, match):
    data, y, _ = _noisy_blobs(n=32)
    net = BootstrapNet(_module(8, 3), n_samples=32, max_epochs=1, train_split=None, verbose=0,
                       **kwargs)
    with pytest.raises(ValueError, match=match):
        net.fit(data, y)


# --------------------------------------------------------------------------- #
# the estimator's bootstrap mode
# --------------------------------------------------------------------------- #
TINY = dict(pretrain_epochs=2, max_epochs=3, finetune_epochs=2, warmup_epochs=1,
            batch_size=32, lr=0.02, pretrain_lr=0.1, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300].astype(np.float32), y[:300]


def test_bootstrap_continues_a2_on_the_given_labels(digits, monkeypatch):
    X, y = digits
    y_noisy = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
    fitted = {}
    original = phases_module.dynamic_bootstrapping

    def spy(run, net, data, labels):
        fitted["a2_state"] = {k: v.clone() for k, v in net.module_.state_dict().items()}
        fitted["labels"] = labels.clone()
        return original(run, net, data, labels)

    monkeypatch.setattr(phases_module, "dynamic_bootstrapping", spy)
    clf = ContrastiveNoisyClassifier(phases="bootstrap", image_shape=(1, 8, 8),
                                     bootstrap_variant="soft", bootstrap_epochs=2,
                                     bootstrap_mixup_alpha=4.0, **TINY).fit(X, y_noisy)
    net = clf.classifier_net_
    assert isinstance(net, BootstrapNet)
    assert (net.variant, net.mixup_alpha, net.reg_weight) == ("soft", 4.0, 1.0)
    assert net.lr == pytest.approx(TINY["lr"] / 10)  # bootstrap_lr=None
    assert len(clf.history_["bootstrap"]) == 2
    # Trained on the given (noisy) labels, not on the pseudo-labels.
    np.testing.assert_array_equal(clf.classes_[fitted["labels"].numpy()], y_noisy)
    # Started from a copy of a2's weights, which it then changed.
    start = fitted["a2_state"]
    end = net.module_.state_dict()
    assert any(not torch.equal(start[k], end[k]) for k in start)
    assert clf.bootstrap_noise_prob_.shape == (len(X),)
    assert np.all((clf.bootstrap_noise_prob_ >= 0) & (clf.bootstrap_noise_prob_ <= 1))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[
        phases_module.predict_probabilities(
            net, input_module.net_input(input_module.predict_input(clf, X))).argmax(1)])


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
