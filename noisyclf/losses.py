"""Loss functions used by the noisy-label framework.

This module implements, as small :class:`torch.nn.Module` objects, the losses
of Ciortan, Dupuis & Peel, "A Framework using Contrastive Learning for
Classification with Noisy Labels" (equations 2-8 of the paper):

* :class:`NTXentLoss` -- unsupervised contrastive loss (eq. 6), SimCLR.
* :class:`WeightedSupConLoss` -- weighted supervised contrastive loss (eq. 8),
  which reduces to SupCon (eq. 7) when all weights are one.
* :class:`NFLRCELoss` -- Normalized Focal Loss + Reverse Cross Entropy, an
  "active passive" robust loss (eqs. 2-3).
* :class:`ELRLoss` -- Early Learning Regularization (eqs. 4-5).

Every loss accepts ``reduction="mean"`` (a scalar) or ``reduction="none"``
(the per-sample vector, e.g. to multiply by user sample weights or to record
per-sample losses for the GMM-based sample selection).
"""

import math
import numbers

import torch
import torch.nn.functional as F
from numpy import bool_ as np_bool
from torch import nn

__all__ = ["NTXentLoss", "WeightedSupConLoss", "NFLRCELoss", "ELRLoss"]

_REDUCTIONS = ("mean", "none")


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_real(value, name, *, low=None, low_inclusive=True, high=None,
                high_inclusive=True):
    """Check that ``value`` is a finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a finite real number, got {value!r} "
            f"of type {type(value).__name__}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if low is not None:
        if (low_inclusive and value < low) or (not low_inclusive and value <= low):
            op = ">=" if low_inclusive else ">"
            raise ValueError(f"{name} must be {op} {low}, got {value!r}.")
    if high is not None:
        if (high_inclusive and value > high) or (not high_inclusive and value >= high):
            op = "<=" if high_inclusive else "<"
            raise ValueError(f"{name} must be {op} {high}, got {value!r}.")
    return value


def _check_positive_int(value, name):
    """Check that ``value`` is a strictly positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{name} must be a positive integer, got {value!r} "
            f"of type {type(value).__name__}."
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {_REDUCTIONS}, got {reduction!r}."
        )
    return reduction


def _reduce(loss, reduction):
    return loss.mean() if reduction == "mean" else loss


def _check_views(z1, z2):
    if not (torch.is_tensor(z1) and torch.is_tensor(z2)):
        raise ValueError("z1 and z2 must be torch tensors.")
    if z1.ndim != 2 or z2.ndim != 2:
        raise ValueError(
            "z1 and z2 must be 2-D tensors of shape (n_samples, n_features), "
            f"got shapes {tuple(z1.shape)} and {tuple(z2.shape)}."
        )
    if z1.shape != z2.shape:
        raise ValueError(
            "z1 and z2 must have the same shape, "
            f"got {tuple(z1.shape)} and {tuple(z2.shape)}."
        )
    if z1.shape[0] < 1:
        raise ValueError("z1 and z2 must contain at least one sample.")
    if not (z1.is_floating_point() and z2.is_floating_point()):
        raise ValueError("z1 and z2 must be floating point tensors.")


def _check_logits_target(logits, target):
    if not torch.is_tensor(logits) or logits.ndim != 2:
        raise ValueError(
            "logits must be a 2-D tensor of shape (n_samples, n_classes), got "
            f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits)}."
        )
    if not logits.is_floating_point():
        raise ValueError("logits must be a floating point tensor.")
    target = torch.as_tensor(target, device=logits.device)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"target must contain integer class indices, got dtype {target.dtype}.")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must be a 1-D tensor of length {logits.shape[0]} "
            f"(the number of rows of logits), got shape {tuple(target.shape)}."
        )
    n_classes = logits.shape[1]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ValueError(
            f"target values must lie in [0, {n_classes}), got values in "
            f"[{int(target.min())}, {int(target.max())}]."
        )
    return target.long()


def _similarities(z1, z2, temperature):
    """L2-normalise and stack both views; return ``(2N, 2N)`` scaled similarities.

    The diagonal (self-similarity) is set to ``-inf`` so that any log-sum-exp
    over a row runs over ``A(i) = I \\ {i}``.
    """
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)], dim=0)
    sim = (z @ z.T) / temperature
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    return sim.masked_fill(eye, float("-inf"))


def _twin_index(n, device):
    """Index ``j(i)`` of the other view of each of the ``2n`` stacked anchors."""
    idx = torch.arange(2 * n, device=device)
    return (idx + n) % (2 * n)


# --------------------------------------------------------------------------- #
# contrastive losses
# --------------------------------------------------------------------------- #
class _ContrastiveLoss(nn.Module):
    """Shared ``temperature`` / ``reduction`` handling of the contrastive losses."""

    def __init__(self, temperature=0.5, reduction="mean"):
        super().__init__()
        self.temperature = _check_real(temperature, "temperature", low=0.0,
                                       low_inclusive=False)
        self.reduction = _check_reduction(reduction)

    def extra_repr(self):
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class NTXentLoss(_ContrastiveLoss):
    r"""Normalized temperature-scaled cross entropy (NT-Xent) loss.

    Unsupervised contrastive loss of SimCLR (Chen et al., 2020,
    arXiv:2002.05709), equation 6 of Ciortan, Dupuis & Peel. The ``N``
    projections of each of the two augmented views are L2-normalised and
    stacked into ``2N`` anchors ``z_i``; for anchor ``i`` with twin view
    ``j(i)``

    .. math::

        L_i = -\log \frac{\exp(z_i^T z_{j(i)} / \tau)}
                         {\sum_{a \in A(i)} \exp(z_i^T z_a / \tau)},
        \qquad A(i) = I \setminus \{i\},

    i.e. the denominator runs over all ``2N - 1`` other views. The
    computation uses ``logsumexp`` and is numerically stable.

    Parameters
    ----------
    temperature : float, default=0.5
        Temperature :math:`\tau`, a finite number ``> 0``.
    reduction : {"mean", "none"}, default="mean"
        ``"mean"`` averages over the ``2N`` anchors; ``"none"`` returns the
        ``(2N,)`` per-anchor vector ordered ``[view-1 anchors..., view-2
        anchors...]``.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.losses import NTXentLoss
    >>> z1 = torch.eye(4, 8)          # 4 orthogonal projections
    >>> z2 = 2.0 * z1                 # same directions, other scale
    >>> loss = NTXentLoss(temperature=0.5)
    >>> round(loss(z1, z2).item(), 4)  # -2 + log(e^2 + 6)
    0.5944
    >>> NTXentLoss(reduction="none")(z1, z2).shape
    torch.Size([8])
    """

    def forward(self, z1, z2):
        """Compute the loss.

        Parameters
        ----------
        z1, z2 : torch.Tensor of shape (N, d)
            Projections of the two augmented views of the same ``N`` samples.

        Returns
        -------
        loss : torch.Tensor
            Scalar (``reduction="mean"``) or ``(2N,)`` vector (``"none"``).
        """
        _check_views(z1, z2)
        n = z1.shape[0]
        sim = _similarities(z1, z2, self.temperature)
        twin = _twin_index(n, sim.device)
        pos = sim.gather(1, twin[:, None]).squeeze(1)
        loss = torch.logsumexp(sim, dim=1) - pos
        return _reduce(loss, self.reduction)


class WeightedSupConLoss(_ContrastiveLoss):
    r"""Weighted supervised contrastive loss (equation 8 of the paper).

    Extension by Ciortan, Dupuis & Peel of the supervised contrastive loss
    (SupCon, Khosla et al., 2020, arXiv:2004.11362, the :math:`L^{sup}_{in}`
    variant -- equation 7 of the paper) in which each anchor's positives are
    weighted by the anchor's probability of being correctly labelled. Over the
    ``2N`` L2-normalised views,

    .. math::

        L_i = -\log \frac{1}{|P(i)|} \sum_{p \in P(i)}
              \frac{\tilde w_{p,i} \exp(z_i^T z_p / \tau)}
                   {\sum_{a \in A(i)} \exp(z_i^T z_a / \tau)},

    where ``A(i)`` are all ``2N - 1`` other views, ``P(i)`` the other views
    with the same (pseudo-)label as ``i`` -- which always contains the twin
    view ``j(i)`` -- and :math:`\tilde w_{p,i} = 1` if ``p = j(i)``, else
    :math:`w_i` (the *anchor's* weight, as written in the paper).

    This is ``weighting="paper"``.  Special cases: with all weights one it is
    SupCon (eq. 7); with all weights zero it equals the NT-Xent loss (eq. 6)
    plus :math:`\log|P(i)|` (a constant, so the gradients are those of
    eq. 6); with all labels distinct it equals NT-Xent. The sum over ``P(i)``
    is computed in log space (``log w = -inf`` for zero weights, the twin term
    is always finite), so the result is never NaN.

    ``weighting="authors"`` is the reading of the authors' code (repository
    ciortanmadalina/constrastive-noisy-label, ``loss.py``,
    ``WeightedSupConLoss``): SupContrast's :math:`L^{sup}_{out}` form in which
    every positive, the twin included, is weighted by its *own* weight
    :math:`w_p`, and the weighted mean is taken outside the log:

    .. math::

        L_i = -\frac{1}{\sum_{p \in P(i)} w_p} \sum_{p \in P(i)} w_p
              \log \frac{\exp(z_i^T z_p / \tau)}
                         {\sum_{a \in A(i)} \exp(z_i^T z_a / \tau)}.

    With all weights one it is SupCon's :math:`L^{sup}_{out}`.  The authors'
    factor ``temperature / base_temperature`` is 1 in their settings (both
    0.07) and is left out.  An anchor whose positives all have weight 0 would
    give 0/0 (NaN) in their code; as in SupContrast's later fix
    (``mask_pos_pairs < 1e-6 -> 1``) its loss is 0 here.

    The weights are treated as constants (detached) in both readings.

    Parameters
    ----------
    temperature : float, default=0.5
        Temperature :math:`\tau`, a finite number ``> 0``.
    reduction : {"mean", "none"}, default="mean"
        ``"mean"`` averages over the ``2N`` anchors; ``"none"`` returns the
        ``(2N,)`` per-anchor vector ordered ``[view-1 anchors..., view-2
        anchors...]`` (as :class:`NTXentLoss`).
    weighting : {"paper", "authors"}, default="paper"
        Reading of eq. 8: the paper's text or the authors' code (see above).

    Examples
    --------
    >>> import torch
    >>> from noisyclf.losses import WeightedSupConLoss, NTXentLoss
    >>> z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> z2 = torch.tensor([[1.0, 0.2], [0.1, 1.0], [1.0, 0.8]])
    >>> labels = torch.tensor([0, 1, 0])
    >>> loss = WeightedSupConLoss(temperature=0.5)
    >>> round(loss(z1, z2, labels, torch.ones(3)).item(), 4)
    1.2147
    >>> per_anchor = WeightedSupConLoss(reduction="none")(
    ...     z1, z2, labels, torch.zeros(3))
    >>> per_anchor.shape
    torch.Size([6])
    >>> ntxent = NTXentLoss(reduction="none")(z1, z2)
    >>> n_pos = torch.tensor([3.0, 1.0, 3.0, 3.0, 1.0, 3.0])  # |P(i)|
    >>> bool(torch.allclose(per_anchor, ntxent + n_pos.log()))
    True
    """

    def __init__(self, temperature=0.5, reduction="mean", weighting="paper"):
        super().__init__(temperature=temperature, reduction=reduction)
        if not isinstance(weighting, str) or weighting not in ("paper", "authors"):
            raise ValueError(
                f"weighting must be 'paper' or 'authors', got {weighting!r}.")
        self.weighting = weighting

    def extra_repr(self):
        return super().extra_repr() + f", weighting={self.weighting!r}"

    def forward(self, z1, z2, labels, weights):
        """Compute the loss.

        Parameters
        ----------
        z1, z2 : torch.Tensor of shape (N, d)
            Projections of the two augmented views of the same ``N`` samples.
        labels : torch.Tensor of shape (N,)
            Integer (pseudo-)labels, shared by both views of a sample.
        weights : torch.Tensor of shape (N,)
            Per-sample weights :math:`w_i` in ``[0, 1]`` (probability of
            being correctly labelled), shared by both views of a sample.

        Returns
        -------
        loss : torch.Tensor
            Scalar (``reduction="mean"``) or ``(2N,)`` vector (``"none"``).
        """
        _check_views(z1, z2)
        n = z1.shape[0]
        labels = torch.as_tensor(labels, device=z1.device)
        weights = torch.as_tensor(weights, device=z1.device)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(
                f"labels must be a 1-D tensor of length {n}, got shape "
                f"{tuple(labels.shape)}."
            )
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}.")
        if weights.ndim != 1 or weights.shape[0] != n:
            raise ValueError(
                f"weights must be a 1-D tensor of length {n}, got shape "
                f"{tuple(weights.shape)}."
            )
        sim = _similarities(z1, z2, self.temperature)
        weights = weights.detach().to(dtype=sim.dtype)
        if bool(torch.any(torch.isnan(weights) | (weights < 0) | (weights > 1))):
            raise ValueError("weights must lie in [0, 1] (and not be NaN).")

        twin = _twin_index(n, sim.device)
        labels2 = torch.cat([labels, labels])
        eye = torch.eye(2 * n, dtype=torch.bool, device=sim.device)
        pos_mask = (labels2[:, None] == labels2[None, :]) & ~eye
        is_twin = torch.zeros_like(pos_mask)
        is_twin[torch.arange(2 * n, device=sim.device), twin] = True
        pos_mask = pos_mask | is_twin  # the twin is always a positive

        # log-probabilities log(exp(s_ip) / sum_{a in A(i)} exp(s_ia))
        log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
        if self.weighting == "authors":
            # sum_p w_p log_prob_ip / sum_p w_p over P(i), twin included.
            w_pos = torch.where(pos_mask, torch.cat([weights, weights])[None, :],
                                torch.zeros_like(sim))
            weighted = torch.where(pos_mask, w_pos * log_prob, torch.zeros_like(sim)).sum(1)
            total = w_pos.sum(1)
            # SupContrast's guard for anchors without (weighted) positives.
            total = torch.where(total < 1e-6, torch.ones_like(total), total)
            return _reduce(-weighted / total, self.reduction)
        # log w~_{p,i}: 0 for the twin, log(w_i) (anchor weight) otherwise
        log_w = torch.log(torch.cat([weights, weights]))
        log_w_tilde = torch.where(is_twin, torch.zeros_like(sim), log_w[:, None])
        neg_inf = torch.full_like(sim, float("-inf"))
        terms = torch.where(pos_mask, log_w_tilde + log_prob, neg_inf)
        n_pos = pos_mask.sum(dim=1).to(sim.dtype)
        loss = torch.log(n_pos) - torch.logsumexp(terms, dim=1)
        return _reduce(loss, self.reduction)


# --------------------------------------------------------------------------- #
# robust classification losses
# --------------------------------------------------------------------------- #
class NFLRCELoss(nn.Module):
    r"""Normalized Focal Loss + Reverse Cross Entropy (NFL+RCE).

    "Active passive" robust loss of Ma et al., "Normalized Loss Functions for
    Deep Learning with Noisy Labels", ICML 2020 (arXiv:2006.13554); equations
    2-3 of Ciortan, Dupuis & Peel. With :math:`p_k = \mathrm{softmax}(z)_k`
    and label ``y``,

    .. math::

        l_{nfl} = \frac{-(1 - p_y)^\gamma \log p_y}
                       {-\sum_{k=1}^K (1 - p_k)^\gamma \log p_k},
        \qquad
        l_{rce} = -\sum_{k=1}^K p_k \log q_k = -A (1 - p_y),

    where the one-hot label ``q`` has ``log 0`` truncated to ``A = log_zero`` (-4 as in
    the paper), and the loss is :math:`\alpha\, l_{nfl} + \beta\, l_{rce}`.
    ``l_nfl`` lies in ``[0, 1]``.

    Notes
    -----
    *log 0 in RCE.* The paper writes :math:`\log q = -4` for the zero entries
    of the one-hot label (``log_zero=-4``, the default).  The APL code
    (Ma et al., ``ReverseCrossEntropy``; copied by the authors' repository)
    clamps the one-hot label at ``1e-4``, i.e. ``log_zero = log(1e-4) =
    -9.2103``, which is what produced the published numbers; pass that value
    to reproduce them.  RCE equals ``-log_zero * (1 - p_y)`` either way.  APL
    also clamps ``p`` at ``1e-7`` inside RCE; that changes the value by at
    most ``K * 1e-7 * |log_zero|`` and is not reproduced.

    *Gradient of NFL.* By default (``detach_focal=False``) the gradient is
    that of equation 2 as written, through every factor.  The APL code
    (``NormalizedFocalLoss``) detaches only the focal factors
    :math:`(1 - p_k)^\gamma` (``logpt.data.exp()``), in the numerator and in
    the normaliser; :math:`\log p_k` keeps its gradient in both.
    ``detach_focal=True`` reproduces that gradient.  Loss *values* are
    identical either way.  ``log p`` comes from
    ``log_softmax`` and ``1 - p`` is computed as ``-expm1(log p)`` clamped
    below at the dtype's machine epsilon, so extreme logits (e.g. of
    magnitude ``1e4``) give a finite loss and finite gradients.

    Parameters
    ----------
    gamma : float, default=0.5
        Focusing parameter :math:`\gamma \ge 0` of the focal loss.
    alpha : float, default=1.0
        Weight (``>= 0``) of the active term NFL.
    beta : float, default=1.0
        Weight (``>= 0``) of the passive term RCE.
    reduction : {"mean", "none"}, default="mean"
        ``"mean"`` averages over samples; ``"none"`` returns the ``(N,)``
        per-sample vector.
    log_zero : float, default=-4.0
        Value of :math:`\log 0` for the one-hot label in RCE (finite, ``< 0``):
        -4 as the paper; ``math.log(1e-4)`` as the APL code.
    detach_focal : bool, default=False
        Detach the :math:`(1 - p_k)^\gamma` factors of NFL, as the APL code.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.losses import NFLRCELoss
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> target = torch.tensor([0, 2])
    >>> loss = NFLRCELoss(gamma=0.5, reduction="none")
    >>> [round(v, 4) for v in loss(logits, target).tolist()]
    [0.8775, 3.0]
    >>> round(NFLRCELoss()(logits, target).item(), 4)
    1.9388
    """

    def __init__(self, gamma=0.5, alpha=1.0, beta=1.0, reduction="mean", log_zero=-4.0,
                 detach_focal=False):
        super().__init__()
        self.gamma = _check_real(gamma, "gamma", low=0.0)
        self.alpha = _check_real(alpha, "alpha", low=0.0)
        self.beta = _check_real(beta, "beta", low=0.0)
        self.reduction = _check_reduction(reduction)
        self.log_zero = _check_real(log_zero, "log_zero", high=0.0, high_inclusive=False)
        if not isinstance(detach_focal, (bool, np_bool)):
            raise ValueError(f"detach_focal must be a bool, got {detach_focal!r}.")
        self.detach_focal = bool(detach_focal)

    def extra_repr(self):
        return (f"gamma={self.gamma}, alpha={self.alpha}, beta={self.beta}, "
                f"reduction={self.reduction!r}, log_zero={self.log_zero}, "
                f"detach_focal={self.detach_focal}")

    def forward(self, logits, target):
        """Compute the loss.

        Parameters
        ----------
        logits : torch.Tensor of shape (N, K)
            Unnormalised class scores.
        target : torch.Tensor of shape (N,)
            Integer class labels in ``[0, K)``.

        Returns
        -------
        loss : torch.Tensor
            Scalar (``reduction="mean"``) or ``(N,)`` vector (``"none"``).
        """
        target = _check_logits_target(logits, target)
        log_p = F.log_softmax(logits, dim=1)
        eps = torch.finfo(log_p.dtype).eps
        one_minus_p = (-torch.expm1(log_p)).clamp(min=eps)
        factor = one_minus_p.pow(self.gamma)
        if self.detach_focal:
            factor = factor.detach()
        focal = -factor * log_p  # (N, K), all >= 0
        numerator = focal.gather(1, target[:, None]).squeeze(1)
        denominator = focal.sum(dim=1).clamp(min=torch.finfo(log_p.dtype).tiny)
        nfl = numerator / denominator
        one_minus_py = one_minus_p.gather(1, target[:, None]).squeeze(1)
        rce = -self.log_zero * one_minus_py
        loss = self.alpha * nfl + self.beta * rce
        return _reduce(loss, self.reduction)


class ELRLoss(nn.Module):
    r"""Early Learning Regularization (ELR) loss.

    Liu et al., "Early-Learning Regularization Prevents Memorization of Noisy
    Labels", NeurIPS 2020 (arXiv:2007.00151); equations 4-5 of Ciortan,
    Dupuis & Peel. For sample ``i`` with softmax output :math:`p_i` (clamped
    to ``[1e-4, 1 - 1e-4]`` as in the official ELR code) and temporal-ensemble
    target :math:`t_i`,

    .. math::

        t_i^{(l)} = \beta\, t_i^{(l-1)} + (1 - \beta)\, \bar p_i^{(l)},
        \qquad
        l_i = \mathrm{CE}(z_i, y_i)
              + \lambda \log\Big(1 - \sum_{k=1}^K p_{ik}\, t_{ik}^{(l)}\Big),

    where :math:`\bar p_i = p_i / \sum_k p_{ik}` is the detached, renormalised
    clamped prediction. The targets are stored in the buffer ``target_``
    (shape ``(n_samples, n_classes)``, zeros at start) and are updated
    (eq. 5) on each forward call in training mode only; in ``.eval()`` mode
    the current targets are used without being updated.

    Notes
    -----
    The paper writes :math:`\lambda/N` in eq. 4; we follow the ELR paper and
    its official code, i.e. the mini-batch loss is the mean CE plus
    :math:`\lambda` times the mean of the log term. Equivalently, the
    per-sample loss is ``ce_i + lam * log(1 - <p_i, t_i>)`` and
    ``reduction="mean"`` averages it. If ``index`` contains duplicates, the
    last written update wins (as in the official code). The buffer is moved
    to the device/dtype of ``logits`` when they differ.

    Parameters
    ----------
    n_samples : int
        Number of training samples (size of the target buffer).
    n_classes : int
        Number of classes.
    lam : float, default=3.0
        Regularisation strength :math:`\lambda \ge 0`.
    beta : float, default=0.7
        Temporal-ensembling momentum, ``0 <= beta < 1``.
    reduction : {"mean", "none"}, default="mean"
        ``"mean"`` averages over samples; ``"none"`` returns the ``(N,)``
        per-sample vector.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.losses import ELRLoss
    >>> elr = ELRLoss(n_samples=5, n_classes=2, lam=3.0, beta=0.5)
    >>> logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    >>> loss = elr(logits, torch.tensor([0, 1]), torch.tensor([1, 3]))
    >>> elr.target_          # rows 1 and 3 updated: 0.5 * 0 + 0.5 * 0.5
    tensor([[0.0000, 0.0000],
            [0.2500, 0.2500],
            [0.0000, 0.0000],
            [0.2500, 0.2500],
            [0.0000, 0.0000]])
    >>> round(loss.item(), 4)  # log 2 + 3 * log(1 - 0.25)
    -0.1699
    >>> _ = elr.eval()
    >>> _ = elr(logits, torch.tensor([0, 1]), torch.tensor([0, 4]))
    >>> float(elr.target_.sum())  # unchanged in eval mode
    1.0
    """

    def __init__(self, n_samples, n_classes, lam=3.0, beta=0.7, reduction="mean"):
        super().__init__()
        self.n_samples = _check_positive_int(n_samples, "n_samples")
        self.n_classes = _check_positive_int(n_classes, "n_classes")
        self.lam = _check_real(lam, "lam", low=0.0)
        self.beta = _check_real(beta, "beta", low=0.0, high=1.0, high_inclusive=False)
        self.reduction = _check_reduction(reduction)
        self.register_buffer("target_", torch.zeros(self.n_samples, self.n_classes))

    def extra_repr(self):
        return (f"n_samples={self.n_samples}, n_classes={self.n_classes}, "
                f"lam={self.lam}, beta={self.beta}, reduction={self.reduction!r}")

    def reset(self):
        """Reset the temporal-ensemble targets ``target_`` to zero.

        Returns
        -------
        self : ELRLoss
        """
        with torch.no_grad():
            self.target_.zero_()
        return self

    def forward(self, logits, target, index):
        """Compute the loss (and update the targets in training mode).

        Parameters
        ----------
        logits : torch.Tensor of shape (N, n_classes)
            Unnormalised class scores.
        target : torch.Tensor of shape (N,)
            Integer class labels in ``[0, n_classes)``.
        index : torch.LongTensor of shape (N,)
            Ids in ``[0, n_samples)`` of the samples in the batch (rows of
            ``target_``).

        Returns
        -------
        loss : torch.Tensor
            Scalar (``reduction="mean"``) or ``(N,)`` vector (``"none"``).
        """
        target = _check_logits_target(logits, target)
        if logits.shape[1] != self.n_classes:
            raise ValueError(
                f"logits must have n_classes={self.n_classes} columns, "
                f"got {logits.shape[1]}."
            )
        index = torch.as_tensor(index)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise ValueError(f"index must contain integer sample ids, got dtype {index.dtype}.")
        if index.ndim != 1 or index.shape[0] != logits.shape[0]:
            raise ValueError(
                f"index must be a 1-D tensor of length {logits.shape[0]}, got "
                f"shape {tuple(index.shape)}."
            )
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.n_samples):
            raise ValueError(
                f"index values must lie in [0, n_samples={self.n_samples}), got "
                f"values in [{int(index.min())}, {int(index.max())}]."
            )
        if self.target_.device != logits.device or self.target_.dtype != logits.dtype:
            self.target_ = self.target_.to(device=logits.device, dtype=logits.dtype)
        index = index.to(device=logits.device, dtype=torch.long)

        p = F.softmax(logits, dim=1).clamp(1e-4, 1.0 - 1e-4)
        if self.training:
            with torch.no_grad():
                p_ = p.detach()
                self.target_[index] = (self.beta * self.target_[index]
                                       + (1.0 - self.beta) * p_ / p_.sum(dim=1, keepdim=True))
        t = self.target_[index]
        ce = F.cross_entropy(logits, target, reduction="none")
        reg = torch.log(1.0 - (t * p).sum(dim=1))
        loss = ce + self.lam * reg
        return _reduce(loss, self.reduction)
