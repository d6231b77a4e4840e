"""Tests for :mod:`noisyclf.losses`.

Each loss is checked against an independent, slow reference implementation
written with plain Python loops over anchors / samples / classes (numpy,
float64), following the equations of Ciortan, Dupuis & Peel (eqs. 2-8).
"""

import itertools
import math

import numpy as np
import pytest
import torch

from noisyclf.losses import ELRLoss, NFLRCELoss, NTXentLoss, WeightedSupConLoss

SIZES = [1, 2, 5]
DIMS = [2, 7]
TEMPERATURES = [0.1, 0.5, 1.0]


# --------------------------------------------------------------------------- #
# loop-based references
# --------------------------------------------------------------------------- #
def _normalised_views(z1, z2):
    """Stack the 2N views as a list of L2-normalised numpy vectors."""
    views = []
    for z in (np.asarray(z1, dtype=float), np.asarray(z2, dtype=float)):
        for row in z:
            views.append(row / math.sqrt(sum(v * v for v in row)))
    return views


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def ref_ntxent(z1, z2, tau):
    """Eq. 6 by loops: list of the 2N per-anchor losses."""
    views = _normalised_views(z1, z2)
    n2 = len(views)
    n = n2 // 2
    out = []
    for i in range(n2):
        j = i + n if i < n else i - n
        denom = sum(math.exp(_dot(views[i], views[a]) / tau) for a in range(n2) if a != i)
        out.append(-math.log(math.exp(_dot(views[i], views[j]) / tau) / denom))
    return np.array(out)


def ref_weighted_supcon(z1, z2, labels, weights, tau):
    """Eq. 8 by loops: list of the 2N per-anchor losses."""
    views = _normalised_views(z1, z2)
    n2 = len(views)
    n = n2 // 2
    out = []
    for i in range(n2):
        j = i + n if i < n else i - n
        denom = sum(math.exp(_dot(views[i], views[a]) / tau) for a in range(n2) if a != i)
        positives = [p for p in range(n2) if p != i and labels[p % n] == labels[i % n]]
        assert j in positives
        total = 0.0
        for p in positives:
            w = 1.0 if p == j else weights[i % n]  # anchor's weight
            total += w * math.exp(_dot(views[i], views[p]) / tau) / denom
        out.append(-math.log(total / len(positives)))
    return np.array(out)


def ref_supcon_in(z1, z2, labels, tau):
    """Eq. 7 (SupCon, L_in variant) by loops: the 2N per-anchor losses."""
    views = _normalised_views(z1, z2)
    n2 = len(views)
    n = n2 // 2
    out = []
    for i in range(n2):
        denom = sum(math.exp(_dot(views[i], views[a]) / tau) for a in range(n2) if a != i)
        positives = [p for p in range(n2) if p != i and labels[p % n] == labels[i % n]]
        inner = sum(math.exp(_dot(views[i], views[p]) / tau) / denom for p in positives)
        out.append(-math.log(inner / len(positives)))
    return np.array(out)


def _softmax_row(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def ref_nfl_rce(logits, target, gamma, alpha, beta):
    """Eqs. 2-3 by loops, with log(0) := -4 for the RCE."""
    out = []
    for row, y in zip(np.asarray(logits, dtype=float), target):
        p = _softmax_row(row)
        num = -((1 - p[y]) ** gamma) * math.log(p[y])
        den = sum(-((1 - p[k]) ** gamma) * math.log(p[k]) for k in range(len(p)))
        rce = 0.0
        for k in range(len(p)):
            log_q = 0.0 if k == y else -4.0
            rce += -p[k] * log_q
        out.append(alpha * num / den + beta * rce)
    return np.array(out)


class RefELR:
    """ELR (eqs. 4-5, per-sample mean form) with an explicit numpy buffer."""

    def __init__(self, n_samples, n_classes, lam, beta):
        self.t = np.zeros((n_samples, n_classes))
        self.lam = lam
        self.beta = beta

    def step(self, logits, target, index, train=True):
        out = []
        for row, y, idx in zip(np.asarray(logits, dtype=float), target, index):
            p = [min(max(v, 1e-4), 1 - 1e-4) for v in _softmax_row(row)]
            if train:
                s = sum(p)
                for k in range(len(p)):
                    self.t[idx, k] = self.beta * self.t[idx, k] + (1 - self.beta) * p[k] / s
            ce = -math.log(_softmax_row(row)[y])
            inner = sum(self.t[idx, k] * p[k] for k in range(len(p)))
            out.append(ce + self.lam * math.log(1 - inner))
        return np.array(out)


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


# --------------------------------------------------------------------------- #
# NT-Xent (eq. 6)
# --------------------------------------------------------------------------- #
def test_ntxent_matches_loop():
    for n, d, tau in itertools.product(SIZES, DIMS, TEMPERATURES):
        z1 = _rand(n, d, seed=n * 100 + d)
        z2 = _rand(n, d, seed=n * 100 + d + 1)
        expected = ref_ntxent(z1.numpy(), z2.numpy(), tau)
        per = NTXentLoss(temperature=tau, reduction="none")(z1, z2)
        np.testing.assert_allclose(per.numpy(), expected, rtol=1e-10, atol=1e-12)
        mean = NTXentLoss(temperature=tau)(z1, z2)
        assert mean.ndim == 0
        assert math.isclose(mean.item(), expected.mean(), rel_tol=1e-10)
        # float32 agrees with the float64 reference
        per32 = NTXentLoss(temperature=tau, reduction="none")(z1.float(), z2.float())
        assert per32.dtype == torch.float32
        np.testing.assert_allclose(per32.double().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_ntxent_symmetry():
    z1, z2 = _rand(6, 4, seed=1), _rand(6, 4, seed=2)
    loss = NTXentLoss(temperature=0.3)
    assert torch.allclose(loss(z1, z2), loss(z2, z1), rtol=1e-12)
    per = NTXentLoss(temperature=0.3, reduction="none")
    # swapping views swaps the two halves of the per-anchor vector
    assert torch.allclose(per(z1, z2), torch.roll(per(z2, z1), 6), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_ntxent_parallel_closed_form(n):
    # all views parallel: every similarity is 1/tau -> L_i = -log(1 / (2N - 1))
    base = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    scales = torch.arange(1, n + 1, dtype=torch.float64)[:, None]
    for z1, z2 in [(base.repeat(n, 1), base.repeat(n, 1)),
                   (scales * base, 3.0 * scales * base)]:
        for tau in TEMPERATURES:
            per = NTXentLoss(temperature=tau, reduction="none")(z1, z2)
            expected = -math.log(1.0 / (2 * n - 1))
            assert torch.allclose(per, torch.full_like(per, expected), atol=1e-12)


def test_ntxent_orthogonal_closed_form_and_stability():
    n, tau = 4, 1e-3  # similarities up to 1000: naive exp would overflow
    z1 = torch.eye(n, 2 * n)
    loss = NTXentLoss(temperature=tau, reduction="none")(z1, z1.clone())
    assert torch.isfinite(loss).all()
    expected = math.log(math.exp(-1 / tau) * (2 * n - 2) + 1.0)  # log(e^{1/t}+2n-2) - 1/t
    assert torch.allclose(loss, torch.full_like(loss, expected), atol=1e-6)
    # anti-aligned twins: loss = log(e^{-1/t} + 2n-2) + 1/t
    loss_bad = NTXentLoss(temperature=0.5, reduction="none")(z1, -z1)
    expected_bad = math.log(math.exp(-2.0) + 2 * n - 2) + 2.0
    assert torch.allclose(loss_bad, torch.full_like(loss_bad, expected_bad), atol=1e-6)


def test_ntxent_gradients_finite_and_correct():
    z1 = _rand(4, 3, seed=3).requires_grad_()
    z2 = _rand(4, 3, seed=4).requires_grad_()
    loss = NTXentLoss(temperature=0.2)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b), (z1, z2))
    loss(z1.float(), z2.float()).backward()
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    assert z1.grad.abs().sum() > 0


def test_ntxent_input_validation():
    loss = NTXentLoss()
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.zeros(3), torch.zeros(3))


# --------------------------------------------------------------------------- #
# Weighted SupCon (eqs. 7-8)
# --------------------------------------------------------------------------- #
def test_weighted_supcon_matches_loop():
    for n, d, tau in itertools.product(SIZES + [8], DIMS, TEMPERATURES):
        z1 = _rand(n, d, seed=7 * n + d)
        z2 = _rand(n, d, seed=7 * n + d + 50)
        rng = np.random.default_rng(n * 10 + d)
        labels = rng.integers(0, 3, size=n)
        weights = rng.uniform(0, 1, size=n)
        weights[0] = 0.0  # include an exact zero weight
        if n > 1:
            weights[-1] = 1.0  # and an exact one
        expected = ref_weighted_supcon(z1.numpy(), z2.numpy(), labels, weights, tau)
        per = WeightedSupConLoss(temperature=tau, reduction="none")(
            z1, z2, torch.as_tensor(labels), torch.as_tensor(weights))
        np.testing.assert_allclose(per.numpy(), expected, rtol=1e-10, atol=1e-12)
        mean = WeightedSupConLoss(temperature=tau)(
            z1.float(), z2.float(), torch.as_tensor(labels), torch.as_tensor(weights).float())
        assert mean.dtype == torch.float32
        assert math.isclose(mean.item(), expected.mean(), rel_tol=1e-4, abs_tol=1e-5)


def test_weighted_supcon_all_zero_weights_is_ntxent_plus_log_npos():
    n, tau = 8, 0.5
    z1, z2 = _rand(n, 5, seed=11), _rand(n, 5, seed=12)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 3])
    for dtype in (torch.float64, torch.float32):
        per = WeightedSupConLoss(temperature=tau, reduction="none")(
            z1.to(dtype), z2.to(dtype), labels, torch.zeros(n, dtype=dtype))
        assert torch.isfinite(per).all()
        ntx = NTXentLoss(temperature=tau, reduction="none")(z1.to(dtype), z2.to(dtype))
        lab2 = torch.cat([labels, labels])
        n_pos = (lab2[:, None] == lab2[None, :]).sum(1) - 1  # |P(i)|, self excluded
        expected = ntx + torch.log(n_pos.to(dtype))
        assert torch.allclose(per, expected, rtol=1e-6 if dtype == torch.float32 else 1e-12)
    # the extra log|P(i)| term is really there (not plain NT-Xent)
    assert not torch.allclose(per, ntx)


def test_weighted_supcon_all_one_weights_is_supcon_eq7():
    for n, d, tau in itertools.product([2, 6], DIMS, TEMPERATURES):
        z1, z2 = _rand(n, d, seed=n + d), _rand(n, d, seed=n + d + 99)
        labels = np.arange(n) % 2
        expected = ref_supcon_in(z1.numpy(), z2.numpy(), labels, tau)
        per = WeightedSupConLoss(temperature=tau, reduction="none")(
            z1, z2, torch.as_tensor(labels), torch.ones(n, dtype=torch.float64))
        np.testing.assert_allclose(per.numpy(), expected, rtol=1e-10)


def test_weighted_supcon_distinct_labels_is_ntxent():
    n = 6
    z1, z2 = _rand(n, 4, seed=21), _rand(n, 4, seed=22)
    weights = torch.linspace(0, 1, n, dtype=torch.float64)
    for tau in TEMPERATURES:
        per = WeightedSupConLoss(temperature=tau, reduction="none")(
            z1, z2, torch.arange(n), weights)
        ntx = NTXentLoss(temperature=tau, reduction="none")(z1, z2)
        assert torch.allclose(per, ntx, rtol=1e-12)


def test_weighted_supcon_uses_anchor_weight():
    # w~_{p,i} = w_i: changing w_0 only changes the losses of the anchors of
    # sample 0 (positions 0 and n), not the anchors that have sample 0 as positive.
    n = 4
    z1, z2 = _rand(n, 3, seed=31), _rand(n, 3, seed=32)
    labels = torch.zeros(n, dtype=torch.long)
    w = torch.full((n,), 0.5, dtype=torch.float64)
    loss = WeightedSupConLoss(reduction="none")
    base = loss(z1, z2, labels, w)
    w2 = w.clone()
    w2[0] = 1.0
    changed = loss(z1, z2, labels, w2)
    diff = (changed - base).abs() > 1e-12
    assert diff.tolist() == [True, False, False, False, True, False, False, False]
    # a larger weight on the other positives lowers the anchor's loss
    assert changed[0] < base[0] and changed[n] < base[n]


def test_weighted_supcon_gradients_finite():
    n = 5
    z1 = _rand(n, 3, seed=41).requires_grad_()
    z2 = _rand(n, 3, seed=42).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 0])
    for weights in (torch.zeros(n, dtype=torch.float64),
                    torch.tensor([0.0, 1.0, 0.3, 0.0, 0.9], dtype=torch.float64)):
        loss = WeightedSupConLoss(temperature=0.3)
        assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels, weights), (z1, z2))
        z1.grad = None
        loss(z1, z2, labels, weights).backward()
        assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_weighted_supcon_input_validation():
    loss = WeightedSupConLoss()
    z = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="labels"):
        loss(z, z, torch.zeros(4, dtype=torch.long), torch.ones(3))
    with pytest.raises(ValueError, match="weights"):
        loss(z, z, torch.zeros(3, dtype=torch.long), torch.ones(2))
    with pytest.raises(ValueError, match="weights"):
        loss(z, z, torch.zeros(3, dtype=torch.long), torch.tensor([0.5, -0.1, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        loss(z, torch.zeros(3, 3), torch.zeros(3, dtype=torch.long), torch.ones(3))


# --------------------------------------------------------------------------- #
# NFL + RCE (eqs. 2-3)
# --------------------------------------------------------------------------- #
def test_nfl_rce_matches_loop():
    for n, k, gamma, (alpha, beta) in itertools.product(
            [1, 4, 9], [2, 5, 10], [0.0, 0.5, 2.0], [(1.0, 1.0), (0.3, 2.0)]):
        logits = 3 * _rand(n, k, seed=n * k)
        target = np.random.default_rng(n + k).integers(0, k, size=n)
        expected = ref_nfl_rce(logits.numpy(), target, gamma, alpha, beta)
        per = NFLRCELoss(gamma=gamma, alpha=alpha, beta=beta, reduction="none")(
            logits, torch.as_tensor(target))
        np.testing.assert_allclose(per.numpy(), expected, rtol=1e-10, atol=1e-12)
        mean = NFLRCELoss(gamma=gamma, alpha=alpha, beta=beta)(
            logits.float(), torch.as_tensor(target))
        assert math.isclose(mean.item(), expected.mean(), rel_tol=1e-5, abs_tol=1e-6)


def test_rce_is_four_times_one_minus_py():
    logits = 2 * _rand(20, 6, seed=5)
    target = torch.arange(20) % 6
    rce = NFLRCELoss(alpha=0.0, beta=1.0, reduction="none")(logits, target)
    p_y = torch.softmax(logits, 1)[torch.arange(20), target]
    assert torch.allclose(rce, 4.0 * (1.0 - p_y), rtol=1e-12)


def test_nfl_in_unit_interval():
    logits = torch.cat([5 * _rand(50, 4, seed=6), 300 * _rand(10, 4, seed=7)])
    target = torch.arange(60) % 4
    for gamma in (0.0, 0.5, 3.0):
        nfl = NFLRCELoss(gamma=gamma, alpha=1.0, beta=0.0, reduction="none")(logits, target)
        assert ((nfl >= 0) & (nfl <= 1)).all()
    # uniform prediction: each class contributes equally -> NFL = 1/K
    nfl = NFLRCELoss(beta=0.0, reduction="none")(torch.zeros(3, 4), torch.tensor([0, 1, 3]))
    assert torch.allclose(nfl, torch.full((3,), 0.25))
    # gamma=0 gives the normalized cross entropy log p_y / sum_k log p_k
    logits = _rand(5, 3, seed=8)
    logp = torch.log_softmax(logits, 1)
    t = torch.tensor([0, 1, 2, 0, 1])
    nce = NFLRCELoss(gamma=0.0, beta=0.0, reduction="none")(logits, t)
    assert torch.allclose(nce, logp[torch.arange(5), t] / logp.sum(1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nfl_rce_extreme_logits_finite(dtype):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, -1e4, 0.0],
                           [0.0, 0.0, 1e4]], dtype=dtype, requires_grad=True)
    target = torch.tensor([0, 0, 1, 2])
    for gamma in (0.0, 0.5, 2.0):
        loss = NFLRCELoss(gamma=gamma)(logits, target)
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all()
    per = NFLRCELoss(gamma=0.5, reduction="none")(logits, target).detach()
    # confidently right -> ~0; confidently wrong: RCE = 4 and
    # NFL = 2e4 / (2e4 + 1e4) = 2/3 (log p = [0, -2e4, -1e4], exact, not clamped)
    assert per[0] < 1e-3 and per[3] < 1e-3
    assert abs(per[2].item() - (4.0 + 2.0 / 3.0)) < 1e-5


def test_nfl_rce_gradient_through_normaliser():
    # By default we follow eq. 2 exactly: gradcheck against finite differences
    # of the value passes only with the full gradient.
    logits = _rand(3, 4, seed=9).requires_grad_()
    target = torch.tensor([1, 0, 3])
    loss = NFLRCELoss(gamma=0.5)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def _apl_normalized_focal(logits, target, gamma):
    """APL's NormalizedFocalLoss.forward (Ma et al. 2020, loss.py), scale 1, mean."""
    target = target.view(-1, 1)
    logpt = torch.log_softmax(logits, dim=1)
    normalizor = torch.sum(-1 * (1 - logpt.data.exp()) ** gamma * logpt, dim=1)
    logpt = logpt.gather(1, target).view(-1)
    pt = torch.autograd.Variable(logpt.data.exp())
    loss = -1 * (1 - pt) ** gamma * logpt
    loss = 1.0 * loss / normalizor
    return loss.mean()


def _apl_reverse_cross_entropy(logits, target, n_classes):
    """APL's ReverseCrossEntropy.forward (label clamped at 1e-4), scale 1, mean."""
    pred = torch.softmax(logits, dim=1).clamp(min=1e-7, max=1.0)
    one_hot = torch.nn.functional.one_hot(target, n_classes).to(logits.dtype)
    one_hot = one_hot.clamp(min=1e-4, max=1.0)
    return (-1 * torch.sum(pred * torch.log(one_hot), dim=1)).mean()


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_nfl_detach_focal_is_the_apl_gradient(gamma):
    # APL detaches only the (1 - p)^gamma factors; log p keeps its gradient in
    # the numerator and in the normaliser.
    logits = _rand(6, 4, seed=19).requires_grad_()
    target = torch.tensor([1, 0, 3, 2, 2, 0])
    apl = _apl_normalized_focal(logits, target, gamma)
    ours_apl = NFLRCELoss(gamma=gamma, beta=0.0, detach_focal=True)(logits, target)
    ours_full = NFLRCELoss(gamma=gamma, beta=0.0)(logits, target)
    torch.testing.assert_close(ours_apl, apl)
    torch.testing.assert_close(ours_full, apl)  # values are the same
    (g_apl,) = torch.autograd.grad(apl, logits)
    (g_ours,) = torch.autograd.grad(ours_apl, logits)
    (g_full,) = torch.autograd.grad(ours_full, logits)
    torch.testing.assert_close(g_ours, g_apl)
    assert not torch.allclose(g_full, g_apl)
    # Detaching the whole normaliser (what an earlier docstring claimed APL
    # does) is yet another gradient.
    logp = torch.log_softmax(logits, 1)
    focal = -(1 - logp.exp()) ** gamma * logp
    whole = (focal[torch.arange(6), target] / focal.sum(1).detach()).mean()
    (g_whole,) = torch.autograd.grad(whole, logits)
    assert not torch.allclose(g_whole, g_apl)


def test_nfl_detach_focal_gamma_zero_changes_nothing():
    # gamma = 0: the focal factors are 1, so APL's gradient is the full one.
    logits = _rand(5, 3, seed=23).requires_grad_()
    target = torch.tensor([2, 0, 1, 1, 0])
    apl = _apl_normalized_focal(logits, target, 0.0)
    (g_apl,) = torch.autograd.grad(apl, logits)
    for detach in (False, True):
        ours = NFLRCELoss(gamma=0.0, beta=0.0, detach_focal=detach)(logits, target)
        torch.testing.assert_close(ours, apl)
        (g,) = torch.autograd.grad(ours, logits)
        torch.testing.assert_close(g, g_apl)
        assert g.abs().sum() > 0


def test_nfl_detach_focal_gradcheck_fails_against_the_value():
    # APL's gradient is not the derivative of the value: finite differences
    # reject it (gamma > 0), and accept the default full gradient.
    logits = _rand(3, 4, seed=24).requires_grad_()
    target = torch.tensor([0, 3, 1])
    apl_like = NFLRCELoss(gamma=2.0, beta=0.0, detach_focal=True)
    full = NFLRCELoss(gamma=2.0, beta=0.0)
    assert torch.autograd.gradcheck(lambda x: full(x, target), (logits,))
    assert not torch.autograd.gradcheck(lambda x: apl_like(x, target), (logits,),
                                        raise_exception=False)


@pytest.mark.parametrize("log_zero", [-4.0, math.log(1e-4), -1.5])
def test_rce_log_zero_matches_loop(log_zero):
    logits = _rand(5, 3, seed=21)
    target = torch.tensor([0, 2, 1, 1, 0])
    got = NFLRCELoss(alpha=0.0, log_zero=log_zero, reduction="none")(logits, target)
    want = []
    for row, y in zip(logits.double().numpy(), target.tolist()):
        p = _softmax_row(row)
        want.append(sum(-p[k] * (0.0 if k == y else log_zero) for k in range(3)))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


def test_rce_log_zero_of_apl_code_reproduces_its_values():
    logits = _rand(8, 5, seed=22) * 3
    target = torch.tensor([0, 4, 1, 1, 3, 2, 0, 4])
    apl = _apl_reverse_cross_entropy(logits, target, 5)
    ours = NFLRCELoss(alpha=0.0, log_zero=math.log(1e-4))(logits, target)
    # APL's clamp of p at 1e-7 moves the value by at most K * 1e-7 * 9.21.
    assert abs(ours.item() - apl.item()) < 5 * 1e-7 * 9.22
    assert abs(NFLRCELoss(alpha=0.0)(logits, target).item() - apl.item()) > 0.1


def test_nfl_rce_target_validation():
    loss = NFLRCELoss()
    with pytest.raises(ValueError, match="target"):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="target"):
        loss(torch.zeros(2, 3), torch.tensor([0, 1, 2]))


# --------------------------------------------------------------------------- #
# ELR (eqs. 4-5)
# --------------------------------------------------------------------------- #
def test_elr_buffer_update_by_hand_two_steps():
    beta = 0.6
    elr = ELRLoss(n_samples=4, n_classes=3, lam=1.0, beta=beta)
    assert "target_" in dict(elr.named_buffers())
    assert torch.equal(elr.target_, torch.zeros(4, 3))
    logits1 = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 20.0]])
    idx1 = torch.tensor([2, 0])
    elr(logits1, torch.tensor([1, 2]), idx1)

    def clamp_norm(logits):
        p = torch.softmax(logits, 1).clamp(1e-4, 1 - 1e-4)
        return p / p.sum(1, keepdim=True)

    expected = torch.zeros(4, 3)
    expected[idx1] = (1 - beta) * clamp_norm(logits1)
    assert torch.allclose(elr.target_, expected)
    # sample 0 had a saturated prediction: the clamp keeps 1e-4 mass off-target
    assert elr.target_[0, 0] > 0

    logits2 = torch.tensor([[0.5, -0.5, 0.0], [3.0, 0.0, 1.0]])
    idx2 = torch.tensor([2, 3])
    elr(logits2, torch.tensor([0, 0]), idx2)
    expected[2] = beta * expected[2] + (1 - beta) * clamp_norm(logits2)[0]
    expected[3] = (1 - beta) * clamp_norm(logits2)[1]
    assert torch.allclose(elr.target_, expected)
    assert expected[1].abs().sum() == 0 and torch.equal(elr.target_[1], expected[1])

    elr.reset()
    assert torch.equal(elr.target_, torch.zeros(4, 3))


def test_elr_eval_mode_does_not_update():
    elr = ELRLoss(n_samples=3, n_classes=2, lam=2.0, beta=0.5)
    logits = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    target, idx = torch.tensor([0, 1]), torch.tensor([0, 2])
    elr(logits, target, idx)
    before = elr.target_.clone()
    elr.eval()
    loss_eval = elr(logits, target, idx)
    assert torch.equal(elr.target_, before)
    # eval uses the current targets: CE + lam * log(1 - <t, p>)
    p = torch.softmax(logits, 1).clamp(1e-4, 1 - 1e-4)
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    expected = (ce + 2.0 * torch.log(1 - (before[idx] * p).sum(1))).mean()
    assert torch.allclose(loss_eval, expected)
    elr.train()
    elr(logits, target, idx)
    assert not torch.equal(elr.target_, before)


def test_elr_matches_loop():
    for n_samples, k, lam, beta in itertools.product([6, 10], [2, 5], [0.0, 3.0], [0.0, 0.7]):
        elr = ELRLoss(n_samples, k, lam=lam, beta=beta, reduction="none").double()
        ref = RefELR(n_samples, k, lam, beta)
        rng = np.random.default_rng(n_samples * k)
        for step in range(4):
            batch = rng.choice(n_samples, size=4, replace=False)
            logits = 4 * _rand(4, k, seed=step * 31 + k)
            target = rng.integers(0, k, size=4)
            train = step != 2
            elr.train(train)
            expected = ref.step(logits.numpy(), target, batch, train=train)
            per = elr(logits, torch.as_tensor(target), torch.as_tensor(batch))
            np.testing.assert_allclose(per.numpy(), expected, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(elr.target_.numpy(), ref.t, rtol=1e-12, atol=1e-15)


def test_elr_mean_reduction_and_float32():
    elr = ELRLoss(5, 3, lam=3.0, beta=0.7)
    elr_none = ELRLoss(5, 3, lam=3.0, beta=0.7, reduction="none")
    logits = _rand(4, 3, seed=2).float()
    target, idx = torch.tensor([0, 1, 2, 0]), torch.tensor([4, 0, 1, 3])
    for _ in range(3):
        m = elr(logits, target, idx)
        v = elr_none(logits, target, idx)
    assert m.dtype == torch.float32 and m.ndim == 0 and v.shape == (4,)
    assert torch.allclose(m, v.mean())
    # float64 input: buffer follows the dtype, loss is finite with gradients
    logits64 = _rand(4, 3, seed=2).requires_grad_()
    loss = elr(logits64, target, idx)
    loss.backward()
    assert elr.target_.dtype == torch.float64
    assert torch.isfinite(logits64.grad).all() and logits64.grad.abs().sum() > 0
    # saturated predictions stay finite thanks to the clamp
    big = torch.tensor([[1e4, -1e4, 0.0]] * 4, requires_grad=True)
    for _ in range(20):
        loss = elr(big, torch.tensor([0, 0, 0, 0]), idx)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


def test_elr_index_validation():
    elr = ELRLoss(n_samples=4, n_classes=2)
    logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="index"):
        elr(logits, target, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="index"):
        elr(logits, target, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="index"):
        elr(logits, target, torch.tensor([0]))
    with pytest.raises(ValueError, match="n_classes"):
        elr(torch.zeros(2, 3), target, torch.tensor([0, 1]))
    assert torch.equal(elr.target_, torch.zeros(4, 2))  # nothing was updated


# --------------------------------------------------------------------------- #
# reductions and constructor validation
# --------------------------------------------------------------------------- #
def test_reduction_none_shapes_and_mean_consistency():
    n, d, k = 5, 3, 4
    z1, z2 = _rand(n, d, seed=1), _rand(n, d, seed=2)
    labels, weights = torch.tensor([0, 1, 0, 1, 2]), torch.rand(n, dtype=torch.float64)
    logits, target, idx = _rand(n, k, seed=3), torch.tensor([0, 1, 2, 3, 0]), torch.arange(n)
    cases = [
        (NTXentLoss, {}, (z1, z2), 2 * n),
        (WeightedSupConLoss, {}, (z1, z2, labels, weights), 2 * n),
        (NFLRCELoss, {}, (logits, target), n),
        (ELRLoss, {"n_samples": n, "n_classes": k}, (logits, target, idx), n),
    ]
    for cls, kw, args, length in cases:
        none = cls(**kw, reduction="none").double()(*args)
        mean = cls(**kw).double()(*args)
        assert none.shape == (length,), cls.__name__
        assert mean.shape == (), cls.__name__
        assert torch.allclose(mean, none.mean()), cls.__name__


@pytest.mark.parametrize("cls, kwargs, match", [
    (NTXentLoss, {"temperature": 0.0}, "temperature"),
    (NTXentLoss, {"temperature": -1.0}, "temperature"),
    (NTXentLoss, {"temperature": float("inf")}, "temperature"),
    (NTXentLoss, {"temperature": "0.5"}, "temperature"),
    (NTXentLoss, {"reduction": "sum"}, "reduction"),
    (WeightedSupConLoss, {"temperature": 0}, "temperature"),
    (WeightedSupConLoss, {"temperature": float("nan")}, "temperature"),
    (WeightedSupConLoss, {"reduction": "max"}, "reduction"),
    (NFLRCELoss, {"gamma": -0.1}, "gamma"),
    (NFLRCELoss, {"gamma": float("nan")}, "gamma"),
    (NFLRCELoss, {"alpha": -1.0}, "alpha"),
    (NFLRCELoss, {"beta": float("inf")}, "beta"),
    (NFLRCELoss, {"reduction": None}, "reduction"),
    (ELRLoss, {"n_samples": 0, "n_classes": 3}, "n_samples"),
    (ELRLoss, {"n_samples": 2.5, "n_classes": 3}, "n_samples"),
    (ELRLoss, {"n_samples": 10, "n_classes": 0}, "n_classes"),
    (ELRLoss, {"n_samples": 10, "n_classes": True}, "n_classes"),
    (ELRLoss, {"n_samples": 10, "n_classes": 3, "beta": 1.0}, "beta"),
    (ELRLoss, {"n_samples": 10, "n_classes": 3, "beta": -0.1}, "beta"),
    (ELRLoss, {"n_samples": 10, "n_classes": 3, "lam": -1.0}, "lam"),
    (ELRLoss, {"n_samples": 10, "n_classes": 3, "reduction": "sum"}, "reduction"),
])
def test_constructor_validation(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_constructor_accepts_valid_edge_values():
    assert NFLRCELoss(gamma=0).gamma == 0.0
    assert ELRLoss(np.int64(3), 2, beta=0.0).target_.shape == (3, 2)
    assert NTXentLoss(temperature=1e-3).temperature == 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_losses_on_cuda():
    dev = "cuda"
    z1, z2 = _rand(4, 3, seed=1), _rand(4, 3, seed=2)
    labels, w = torch.tensor([0, 1, 0, 1]), torch.tensor([0.0, 0.5, 1.0, 0.2])
    logits, target, idx = _rand(4, 3, seed=3), torch.tensor([0, 1, 2, 0]), torch.arange(4)
    for dtype in (torch.float32, torch.float64):
        args_cpu = [(z1.to(dtype), z2.to(dtype)),
                    (z1.to(dtype), z2.to(dtype), labels, w.to(dtype)),
                    (logits.to(dtype), target),
                    (logits.to(dtype), target, idx)]
        mods = [NTXentLoss(), WeightedSupConLoss(), NFLRCELoss(), ELRLoss(4, 3)]
        for mod, args in zip(mods, args_cpu):
            cpu = mod(*args)
            if isinstance(mod, ELRLoss):
                mod.reset()  # buffer stays on CPU: forward must move it
            gpu = mod(*[a.to(dev) for a in args])
            assert gpu.device.type == "cuda"
            assert torch.allclose(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- #
# eq. 8, the authors' reading (weighting="authors")
# --------------------------------------------------------------------------- #
def ref_weighted_supcon_authors(z1, z2, labels, weights, tau):
    """The authors' reading of eq. 8 by loops: weighted mean of log-probabilities.

    Every positive p (twin included) weighted by its own w_p, divided by the
    sum of those weights; 0 when that sum is 0.
    """
    views = _normalised_views(z1, z2)
    n2 = len(views)
    n = n2 // 2
    out = []
    for i in range(n2):
        denom = sum(math.exp(_dot(views[i], views[a]) / tau) for a in range(n2) if a != i)
        positives = [p for p in range(n2) if p != i and labels[p % n] == labels[i % n]]
        total_w = sum(weights[p % n] for p in positives)
        acc = sum(weights[p % n] * (_dot(views[i], views[p]) / tau - math.log(denom))
                  for p in positives)
        out.append(-acc / total_w if total_w >= 1e-6 else 0.0)
    return np.array(out)


def authors_code_weighted_supcon(z1, z2, labels, weights, temperature,
                                 base_temperature=None):
    """Reference: the forward pass of ``WeightedSupConLoss`` in the authors'
    repository (ciortanmadalina/constrastive-noisy-label, loss.py), with
    ``features = cat([normalize(z1)[:, None], normalize(z2)[:, None]], 1)``
    as their training loop builds it, ``contrast_mode="all"``."""
    base_temperature = temperature if base_temperature is None else base_temperature
    features = torch.cat([torch.nn.functional.normalize(z1, dim=1).unsqueeze(1),
                          torch.nn.functional.normalize(z2, dim=1).unsqueeze(1)], dim=1)
    batch_size = features.shape[0]
    labels = labels.contiguous().view(-1, 1)
    mask = torch.eq(labels, labels.T).float()
    w = torch.cat([weights, weights])
    w = w.repeat(w.shape[0], 1)
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    anchor_feature = contrast_feature
    anchor_count = contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T),
                                    temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1,
                                torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mask = w * mask
    denominator = mask.sum(1)
    mean_log_prob_pos = (mask * log_prob).sum(1) / denominator
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


# From the authors' code (authors_code_weighted_supcon) and eq. 8 as written,
# on _fixed_input() at tau = 0.07, float64.
AUTHORS_FIXED_007 = 11.176990085709951
AUTHORS_FIXED_05 = 2.8203063047463934
# ... with all weights one and base_temperature = temperature = 0.5 (SupCon L_out)
AUTHORS_ONES_05 = 2.83739423370374
PAPER_FIXED_007 = 5.579309468646378


def _fixed_input():
    """A deterministic batch (no RNG): 6 samples, 4-D projections, 3 labels."""
    z1 = torch.cos(torch.arange(24, dtype=torch.float64).reshape(6, 4) * 0.7)
    z2 = torch.sin(torch.arange(24, dtype=torch.float64).reshape(6, 4) * 1.3 + 0.5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    weights = torch.tensor([0.9, 0.1, 0.5, 1.0, 0.75, 0.3], dtype=torch.float64)
    return z1, z2, labels, weights


@pytest.mark.parametrize("n,d,tau,seed", [(1, 3, 0.5, 0), (5, 4, 0.07, 1), (7, 2, 0.2, 2),
                                          (6, 5, 1.0, 3)])
def test_weighted_supcon_authors_matches_loop(n, d, tau, seed):
    gen = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=gen, dtype=torch.float64)
    z2 = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=gen)
    weights = torch.rand(n, generator=gen, dtype=torch.float64)
    weights[0] = 1.0
    if n > 2:
        weights[1] = 0.0
    got = WeightedSupConLoss(temperature=tau, weighting="authors", reduction="none")(
        z1, z2, labels, weights)
    want = ref_weighted_supcon_authors(z1.numpy(), z2.numpy(), labels.tolist(),
                                       weights.tolist(), tau)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_weighted_supcon_authors_matches_their_code_on_a_fixed_input(tau):
    z1, z2, labels, weights = _fixed_input()
    got = WeightedSupConLoss(temperature=tau, weighting="authors")(z1, z2, labels, weights)
    torch.testing.assert_close(got, authors_code_weighted_supcon(z1, z2, labels, weights, tau))


def test_weighted_supcon_pinned_values_on_a_fixed_input():
    # Computed once from the authors' code (above) and from eq. 8 as written;
    # pinned so that a change to either reading shows.
    z1, z2, labels, weights = _fixed_input()
    authors = WeightedSupConLoss(temperature=0.07, weighting="authors")(z1, z2, labels, weights)
    paper = WeightedSupConLoss(temperature=0.07, weighting="paper")(z1, z2, labels, weights)
    assert authors.item() == pytest.approx(AUTHORS_FIXED_007, rel=1e-9)
    assert paper.item() == pytest.approx(PAPER_FIXED_007, rel=1e-9)
    assert authors_code_weighted_supcon(z1, z2, labels, weights, 0.07).item() == \
        pytest.approx(AUTHORS_FIXED_007, rel=1e-9)
    authors_05 = WeightedSupConLoss(temperature=0.5, weighting="authors")(
        z1, z2, labels, weights)
    assert authors_05.item() == pytest.approx(AUTHORS_FIXED_05, rel=1e-9)
    ones = torch.ones(6, dtype=torch.float64)
    authors_ones = WeightedSupConLoss(temperature=0.5, weighting="authors")(
        z1, z2, labels, ones)
    assert authors_ones.item() == pytest.approx(AUTHORS_ONES_05, rel=1e-9)
    assert authors_code_weighted_supcon(z1, z2, labels, ones, 0.5).item() == \
        pytest.approx(AUTHORS_ONES_05, rel=1e-9)


def test_weighted_supcon_authors_all_ones_is_supcon_l_out():
    z1, z2, labels, _ = _fixed_input()
    got = WeightedSupConLoss(temperature=0.3, weighting="authors", reduction="none")(
        z1, z2, labels, torch.ones(6, dtype=torch.float64))
    # SupCon L_out: -mean over P(i) of the log-probabilities.
    views = _normalised_views(z1.numpy(), z2.numpy())
    want = []
    for i in range(12):
        denom = sum(math.exp(_dot(views[i], views[a]) / 0.3) for a in range(12) if a != i)
        pos = [p for p in range(12) if p != i and labels[p % 6] == labels[i % 6]]
        want.append(-np.mean([_dot(views[i], views[p]) / 0.3 - math.log(denom) for p in pos]))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    # With weights one, their code is SupContrast's SupConLoss (the mask
    # multiplied by ones); with base_temperature = temperature it is L_out.
    torch.testing.assert_close(
        got.mean(), authors_code_weighted_supcon(z1, z2, labels,
                                                 torch.ones(6, dtype=torch.float64), 0.3))
    # ... and it is not L_in (the paper reading with weights one).
    paper = WeightedSupConLoss(temperature=0.3, weighting="paper", reduction="none")(
        z1, z2, labels, torch.ones(6, dtype=torch.float64))
    np.testing.assert_allclose(paper.numpy(), ref_supcon_in(z1.numpy(), z2.numpy(),
                                                            labels.tolist(), 0.3), rtol=1e-10)
    assert (got >= paper - 1e-12).all() and not torch.allclose(got, paper)  # Jensen


def test_weighted_supcon_authors_zero_weight_anchor_gives_zero_not_nan():
    z1, z2, labels, _ = _fixed_input()
    weights = torch.tensor([0.0, 0.5, 0.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    per = WeightedSupConLoss(weighting="authors", reduction="none")(z1, z2, labels, weights)
    assert torch.isfinite(per).all()
    # Labels 0 (samples 0, 2, 5) and 2 (sample 3): every positive has weight 0.
    for i in (0, 2, 3, 5, 6, 8, 9, 11):
        assert per[i] == 0.0
    assert (per[[1, 4, 7, 10]] > 0).all()
    # The authors' own code gives NaN there.
    assert torch.isnan(authors_code_weighted_supcon(z1, z2, labels, weights, 0.5))


@pytest.mark.parametrize("weighting", ["paper", "authors"])
def test_weighted_supcon_gradcheck_both_readings(weighting):
    z1, z2, labels, weights = _fixed_input()
    z1 = z1.clone().requires_grad_()
    z2 = z2.clone().requires_grad_()
    loss = WeightedSupConLoss(temperature=0.2, weighting=weighting)
    zero_some = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.4, 0.0], dtype=torch.float64)
    for w in (weights, zero_some, torch.zeros(6, dtype=torch.float64)):
        assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels, w), (z1, z2))
        (g1, g2) = torch.autograd.grad(loss(z1, z2, labels, w), (z1, z2))
        assert torch.isfinite(g1).all() and torch.isfinite(g2).all()
        if weighting == "authors" and not w.any():
            # every anchor's loss is 0 (no weighted positive): no gradient
            assert g1.abs().sum() == 0 and g2.abs().sum() == 0
        else:
            assert g1.abs().sum() > 0


@pytest.mark.parametrize("weighting", ["paper", "authors"])
def test_weighted_supcon_weights_are_detached(weighting):
    z1, z2, labels, weights = _fixed_input()
    weights = weights.clone().requires_grad_()
    z1 = z1.clone().requires_grad_()
    out = WeightedSupConLoss(weighting=weighting)(z1, z2, labels, weights)
    assert out.requires_grad
    out.backward()
    assert weights.grad is None
    assert z1.grad is not None and z1.grad.abs().sum() > 0


_LABEL_PATTERNS = {
    "all_same": lambda n, rng: np.zeros(n, dtype=int),
    "all_distinct": lambda n, rng: np.arange(n),
    "pairs": lambda n, rng: np.arange(n) // 2,
    "random3": lambda n, rng: rng.integers(0, 3, size=n),
}


@pytest.mark.parametrize("weighting", ["paper", "authors"])
@pytest.mark.parametrize("pattern", sorted(_LABEL_PATTERNS))
def test_weighted_supcon_label_patterns_match_loops(weighting, pattern):
    ref = ref_weighted_supcon if weighting == "paper" else ref_weighted_supcon_authors
    for n, tau, seed in [(1, 0.5, 0), (4, 0.07, 1), (7, 0.3, 2)]:
        rng = np.random.default_rng(seed)
        z1 = torch.as_tensor(rng.normal(size=(n, 3)))
        z2 = torch.as_tensor(rng.normal(size=(n, 3)))
        labels = _LABEL_PATTERNS[pattern](n, rng)
        weights = rng.uniform(0, 1, size=n)
        weights[::3] = 0.0   # exact zeros
        weights[1::3] = 1.0  # exact ones
        got = WeightedSupConLoss(temperature=tau, weighting=weighting, reduction="none")(
            z1, z2, torch.as_tensor(labels), torch.as_tensor(weights))
        want = ref(z1.numpy(), z2.numpy(), labels.tolist(), weights.tolist(), tau)
        assert got.shape == (2 * n,)
        assert torch.isfinite(got).all()
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)


def test_weighted_supcon_readings_differ_and_weighting_is_validated():
    z1, z2, labels, weights = _fixed_input()
    a = WeightedSupConLoss(weighting="authors")(z1, z2, labels, weights)
    p = WeightedSupConLoss(weighting="paper")(z1, z2, labels, weights)
    assert not torch.allclose(a, p)
    with pytest.raises(ValueError, match="weighting"):
        WeightedSupConLoss(weighting="text")
    assert "weighting='authors'" in repr(WeightedSupConLoss(weighting="authors"))


@pytest.mark.parametrize("kwargs", [dict(log_zero=0.0), dict(log_zero=1.0),
                                    dict(log_zero=float("-inf")), dict(detach_focal="yes")])
def test_nfl_rce_log_zero_and_detach_focal_are_validated(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        NFLRCELoss(**kwargs)
