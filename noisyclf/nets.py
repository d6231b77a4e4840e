"""skorch nets for the two kinds of training the framework runs.

* :class:`ContrastiveNet` trains an encoder + projection head on two augmented
  views per sample: SimCLR with NT-Xent (phase a1, eq. 6) or, given labels and
  weights, weighted supervised contrastive learning (phase b2, eq. 8).
* :class:`NoisyLabelNet` trains an encoder + classifier head with a
  noise-robust loss (phases a2 and b3), records the per-sample cross-entropy
  against the given labels for the GMM (phase b1) and keeps the encoder's
  BatchNorm layers in eval mode while the encoder is frozen (warm-up).

Both take ``X`` as a dict: ``{"x": inputs, "index": sample ids,
"sample_weight": user weights[, "weight": GMM weights]}``; skorch slices every
entry per batch, and the modules ignore all keys but ``x``.  The training loop
itself is skorch's; these classes only override the named hooks
(``train_step_single``, ``get_loss``, ``initialize_criterion``, ``on_*``).
"""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from .augment import make_augmenter
from .losses import ELRLoss, NFLRCELoss
from .selection import normalise_losses

__all__ = ["ContrastiveNet", "NoisyLabelNet", "DivergenceError", "TensorBatches", "make_criterion"]


class DivergenceError(FloatingPointError):
    """Raised inside a training phase when the loss becomes NaN or infinite.

    The estimator catches it, restores the weights of the last finished epoch
    (:meth:`_PhaseNetMixin.restore_last_finite`) and warns.
    """


class _CrossEntropy(torch.nn.CrossEntropyLoss):
    """Cross-entropy (eq. 1) with the ``(logits, target, index)`` call signature."""

    def forward(self, logits, target, index=None):
        return super().forward(logits, target)


class _NFLRCE(NFLRCELoss):
    """NFL+RCE (eqs. 2-3) with the ``(logits, target, index)`` call signature."""

    def forward(self, logits, target, index=None):
        return super().forward(logits, target)


def make_criterion(loss, *, n_samples, n_classes, nfl_gamma=0.5, nfl_alpha=1.0,
                   rce_beta=1.0, rce_log_zero=-4.0, elr_lambda=3.0, elr_beta=0.7):
    """Per-sample (``reduction="none"``) loss module for ``loss`` in {"ce", "nfl+rce", "elr"}.

    Examples
    --------
    >>> make_criterion("ce", n_samples=4, n_classes=3).reduction
    'none'
    """
    if loss == "ce":
        return _CrossEntropy(reduction="none")
    if loss == "nfl+rce":
        return _NFLRCE(gamma=nfl_gamma, alpha=nfl_alpha, beta=rce_beta, log_zero=rce_log_zero,
                       reduction="none")
    if loss == "elr":
        return ELRLoss(n_samples, n_classes, lam=elr_lambda, beta=elr_beta, reduction="none")
    raise ValueError(f"loss must be one of 'ce', 'nfl+rce', 'elr'; got {loss!r}.")


class TensorBatches:
    """Mini-batches of a dict of equal-length tensors, sliced by index.

    A drop-in for skorch's ``DataLoader`` when the whole training set already
    sits in memory as tensors: one indexing operation per batch instead of one
    ``__getitem__`` per sample plus a collate, which dominates the step time
    of small networks on small inputs.  Shuffling draws a permutation from
    torch's global RNG (seeded by the estimator), anew on every pass.

    Parameters
    ----------
    X : dict of str to torch.Tensor
    y : torch.Tensor or None
    batch_size : int
        ``-1`` means one batch with everything, as in skorch.
    shuffle, drop_last : bool
        As in :class:`torch.utils.data.DataLoader`.

    Examples
    --------
    >>> import torch
    >>> batches = TensorBatches({"x": torch.arange(5)}, None, batch_size=2)
    >>> [b[0]["x"].tolist() for b in batches]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, X, y, batch_size, shuffle=False, drop_last=False):
        self.X = X
        self.y = y
        self.n = len(next(iter(X.values())))
        self.batch_size = self.n if batch_size in (-1, None) else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self):
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n) if self.shuffle else torch.arange(self.n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            Xi = {k: v[idx] for k, v in self.X.items()}
            yield Xi, (None if self.y is None else self.y[idx])


class _PhaseNetMixin:
    """Shared by both nets: fast batching, augmentation on the device, divergence guard."""

    def get_iterator(self, dataset, training=False):
        X, y = getattr(dataset, "X", None), getattr(dataset, "y", None)
        if not (isinstance(X, dict) and all(torch.is_tensor(v) for v in X.values())
                and (y is None or torch.is_tensor(y))):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        return TensorBatches(
            X, y, kwargs.get("batch_size", self.batch_size),
            shuffle=kwargs.get("shuffle", False), drop_last=kwargs.get("drop_last", False),
        )

    prefixes_ = NeuralNet.prefixes_ + ["augmenter"]

    def initialize_module(self):
        super().initialize_module()
        # The augmenter is named by ``augmenter`` ("simclr", "weak", "tabular",
        # "none") and configured with ``augmenter__*`` parameters, skorch-style.
        self.augmenter_ = make_augmenter(self.augmenter, **self.get_params_for("augmenter"))
        return self

    def _augment(self, x):
        x = to_tensor(x, device=self.device)
        return self.augmenter_(x)

    def _check_finite(self, loss):
        if not torch.isfinite(loss).all():
            raise DivergenceError(
                f"the training loss became {loss.item()} at epoch {len(self.history)} "
                f"(lr={self.lr}); the learning rate is probably too large."
            )

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        # Weights at the end of the last finished epoch, for restore_last_finite.
        self._last_finite_state = {
            k: v.detach().clone() for k, v in self.module_.state_dict().items()
        }

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        # A finite loss does not guarantee finite weights: with a huge lr the
        # BatchNorm running variances overflow to inf (eval-mode outputs NaN).
        bad = [k for k, v in self.module_.state_dict().items()
               if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise DivergenceError(
                f"the weights became non-finite ({', '.join(bad[:3])}) at epoch "
                f"{len(self.history)} (lr={self.lr}); the learning rate is probably too large."
            )

    def restore_last_finite(self):
        """Load the weights saved at the start of the epoch in which training diverged."""
        state = getattr(self, "_last_finite_state", None)
        if state is not None:
            self.module_.load_state_dict(state)
        self.forget_checkpoint()
        return self

    def forget_checkpoint(self):
        """Drop the in-memory weight copy (so it is not pickled with the net)."""
        self.__dict__.pop("_last_finite_state", None)
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch's partial_fit swallows Ctrl-C and stops training; record
            # it so the estimator can tell an interrupted phase from a full one
            # (the history length cannot: the interrupted epoch has a row).
            self.interrupted_ = True
            raise

    def on_train_end(self, net, **kwargs):
        super().on_train_end(net, **kwargs)
        self.forget_checkpoint()


class ContrastiveNet(_PhaseNetMixin, NeuralNet):
    """Contrastive training of :class:`~noisyclf.modules.ContrastiveModule`.

    Each training step draws two augmented views of the batch on the device
    and feeds their projections to the criterion: ``criterion(z1, z2)`` for
    :class:`~noisyclf.losses.NTXentLoss` (phase a1), or ``criterion(z1, z2,
    y, X["weight"])`` for :class:`~noisyclf.losses.WeightedSupConLoss`
    (phase b2) when ``y`` is given.  Per-anchor losses are multiplied by
    ``X["sample_weight"]`` when that key is present.

    Parameters
    ----------
    module, criterion : as in :class:`skorch.NeuralNet`
    augmenter : {"simclr", "weak", "tabular", "none"}, default="none"
        Name of the augmentation (:func:`noisyclf.augment.make_augmenter`),
        configured with ``augmenter__*`` parameters and built as
        ``augmenter_`` on the device.  Applied independently twice per batch
        to make the two views.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, criterion, *args, augmenter="none", **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.augmenter = augmenter

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = Xi["x"]
        z1 = self.infer(self._augment(x), **fit_params)
        z2 = self.infer(self._augment(x), **fit_params)
        if "weight" not in Xi:  # a1: label-free (skorch puts a placeholder in yi)
            per_anchor = self.criterion_(z1, z2)
        else:
            labels = to_tensor(yi, device=self.device)
            weights = to_tensor(Xi["weight"], device=self.device).to(z1.dtype)
            per_anchor = self.criterion_(z1, z2, labels, weights)
        if "sample_weight" in Xi:
            sw = to_tensor(Xi["sample_weight"], device=self.device).to(per_anchor.dtype)
            per_anchor = per_anchor * torch.cat([sw, sw])
        loss = per_anchor.mean()
        self._check_finite(loss)
        loss.backward()
        return {"loss": loss, "y_pred": z1}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        raise NotImplementedError(
            "ContrastiveNet computes its loss on two views in train_step_single; "
            "it has no validation loss."
        )


class NoisyLabelNet(_PhaseNetMixin, NeuralNet):
    """Supervised training of :class:`~noisyclf.modules.ClassifierModule` on noisy labels.

    The criterion is a per-sample loss (``reduction="none"``) called as
    ``criterion(logits, y, index)``; the batch loss is the mean of per-sample
    losses times ``X["sample_weight"]``.  At the end of each of the last
    ``record_epochs`` epochs the net also records every training sample's
    cross-entropy (eq. 1) against its training label, as DivideMix's
    ``eval_train`` (and the authors' ``eval_train_gmm``) compute the GMM's
    input: one eval-mode, un-augmented pass over the training set, the
    losses min-max normalised within the epoch.  :meth:`mean_recorded_loss`
    averages the recorded epochs.  While every encoder parameter is frozen
    (warm-up, via skorch's ``Freezer``/``Unfreezer`` callbacks) the encoder
    is put in eval mode so its BatchNorm statistics stay fixed too.

    Parameters
    ----------
    module, criterion : as in :class:`skorch.NeuralNet`
    augmenter : {"simclr", "weak", "tabular", "none"}, default="none"
        Training-time augmentation (e.g. "weak": random crop and flip),
        configured with ``augmenter__*`` parameters.
    n_samples : int
        Size of the training set (sample ids run over ``range(n_samples)``).
    record_epochs : int, default=5
        How many of the last epochs' per-sample losses to record (0: none).
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, criterion, *args, augmenter="none", n_samples=None,
                 record_epochs=5, **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.augmenter = augmenter
        self.n_samples = n_samples
        self.record_epochs = record_epochs

    def _encoder_frozen(self):
        params = list(self.module_.encoder.parameters())
        return bool(params) and not any(p.requires_grad for p in params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.recorded_losses_ = []

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, **kwargs)
        epochs_left = self.max_epochs - len(self.history)
        if self.record_epochs and epochs_left < self.record_epochs and dataset_train is not None:
            self.recorded_losses_.append(self.eval_losses(dataset_train.X, dataset_train.y))
            self.recorded_losses_ = self.recorded_losses_[-self.record_epochs:]

    def eval_losses(self, X, y):
        """Min-max normalised eval-mode cross-entropy of every sample against ``y``.

        One un-augmented pass in eval mode (DivideMix's ``eval_train``); the
        training mode of the module is restored afterwards.
        """
        was_training = self.module_.training
        with torch.random.fork_rng(devices=[]):
            logits = self.forward({"x": X["x"]}, training=False, device=self.device)
        self.module_.train(was_training)
        with torch.no_grad():
            ce = torch.nn.functional.cross_entropy(
                logits.float(), to_tensor(y, device=logits.device), reduction="none")
        return normalise_losses(ce.cpu().numpy())

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        if self._encoder_frozen():
            self.module_.encoder.eval()
        Xi, yi = unpack_data(batch)
        logits = self.infer(self._augment(Xi["x"]), **fit_params)
        loss = self.get_loss(logits, yi, X=Xi, training=True)
        self._check_finite(loss)
        loss.backward()
        return {"loss": loss, "y_pred": logits}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        index = to_tensor(X["index"], device=self.device)
        per_sample = self.criterion_(y_pred, y_true, index)
        sw = to_tensor(X["sample_weight"], device=self.device).to(per_sample.dtype)
        return (per_sample * sw).mean()

    def mean_recorded_loss(self):
        """Normalised per-sample cross-entropy averaged over the recorded epochs.

        ``None`` when nothing was recorded (e.g. training stopped early).
        """
        if not getattr(self, "recorded_losses_", None):
            return None
        return np.mean(np.vstack(self.recorded_losses_), axis=0)
