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
entry per batch, and the modules ignore all keys but ``x``.  Inputs may stay
uint8 in host memory: each batch becomes float32 (scaled by 1/255) only on
the training device (:meth:`_PhaseNetMixin.prepare_input`).  ``"x"`` may
also be a streamed Dataset (:class:`noisyclf._streaming.ImageStream`): its
batches come from a :class:`torch.utils.data.DataLoader` whose workers read
the images, each batch with its samples' dataset positions in ``"index"``.

Data-parallel: in every process of a :mod:`torch.distributed`
process group of more than one process, each training step augments the
whole global batch, encodes this process's part, gathers the projections
for the contrastive losses, normalises BatchNorm over the global batch,
averages the gradients and synchronises ELR's targets; eval-mode passes for
the GMMs are split by eval batch and gathered (:mod:`noisyclf._distributed`).
Without such a group none of this runs.

Speed (measured in ``benchmarks/bench_speed.py``): ``precision``
runs the training steps' forward passes under :func:`torch.autocast` (bf16,
or fp16 with a gradient scaler on CUDA) with fp32 master weights, the
outputs cast to fp32 before every loss; eval-mode passes (GMM inputs,
pseudo-labels, predictions) stay fp32.  ``channels_last`` stores conv
weights and image batches in the channels-last memory format.  On CUDA,
batches are pinned and copied without blocking.  The training loop
itself is skorch's; these classes only override the named hooks
(``train_step_single``, ``get_loss``, ``initialize_criterion``, ``on_*``).
"""

import contextlib
import functools
import re
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from . import _distributed, _streaming
from .augment import make_augmenter
from .exceptions import DivergenceError
from .losses import ELRLoss, NFLRCELoss
from .selection import normalise_losses

__all__ = ["ContrastiveNet", "NoisyLabelNet", "TensorBatches", "make_criterion", "PRECISIONS",
           "resolve_device", "resolve_precision"]

#: Values of the nets' ``precision`` (the estimator also takes "auto").
PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


#: Fix glibc's mmap threshold when a net is first initialised (see :func:`fix_malloc_threshold`).
FIX_MALLOC_THRESHOLD = True
_MMAP_THRESHOLD = 4 * 2**20


@functools.lru_cache(maxsize=None)
def fix_malloc_threshold():
    """Stop glibc's malloc from keeping freed activation buffers (Linux only).

    glibc raises its mmap threshold each time a large mmapped block is freed
    (up to 32 MiB), after which the 1-30 MiB activation buffers of every
    batch come from the heap and are not given back: measured here, one fit
    on 50,000 CIFAR-10 images grew the process by 1.2-2 GB, mostly during
    the eval-mode passes, against 25 MB with a fixed threshold
    (``benchmarks/bench_speed.py``, section memory).  Setting the threshold
    once (``mallopt(M_MMAP_THRESHOLD, 4 MiB)``, the same as the environment
    variable ``MALLOC_MMAP_THRESHOLD_=4194304``) turns the adjustment off for
    the process.  Set :data:`FIX_MALLOC_THRESHOLD` to ``False`` before the
    first fit to leave malloc alone.  Returns whether it was set.
    """
    try:
        import ctypes
        import ctypes.util
        import platform
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, _MMAP_THRESHOLD))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _cpu_has_fast_bf16():
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), read from
    ``/proc/cpuinfo`` (Linux); ``False`` where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def _check_precision(precision, device, choices=PRECISIONS):
    """Raise a ``ValueError`` for a ``precision`` outside ``choices`` or fp16 off CUDA."""
    if precision not in choices:
        names = " or ".join(repr(c) for c in choices if c not in PRECISIONS)
        raise ValueError(f"precision must be {names + ' or ' if names else ''}one of "
                         f"{PRECISIONS}; got {precision!r}.")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device (mixed precision with a gradient "
            f"scaler); got device={str(device)!r}. Use 'bf16' or 'fp32' on the CPU."
        )


def resolve_precision(precision, device):
    """The concrete precision of the nets for the estimator's ``precision``.

    ``"auto"`` is "bf16" where the device computes bf16 fast -- a CUDA GPU
    of compute capability 8.0 or newer (Ampere), a CPU with AVX-512 BF16 or
    AMX instructions -- and "fp32" elsewhere (emulated bf16 is slower than
    fp32).  Explicit values are returned as they are; "fp16" needs CUDA.

    Examples
    --------
    >>> resolve_precision("fp32", "cpu")
    'fp32'
    """
    _check_precision(precision, device, choices=("auto",) + PRECISIONS)
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        fast = torch.cuda.get_device_capability(dev)[0] >= 8
    else:
        fast = _cpu_has_fast_bf16()
    return "bf16" if fast else "fp32"


def resolve_device(device):
    """The torch device string of the ``device`` hyperparameter ("auto": CUDA when present)."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch device string such as "
            f"'cuda:0'; got {device!r}."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device type {dev.type!r} is not supported; use 'cpu' or 'cuda'.")
    return str(dev)


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
    shuffle, drop_last, pin_memory : bool
        As in :class:`torch.utils.data.DataLoader`: ``pin_memory`` puts each
        batch in page-locked memory so that its copy to a CUDA device can run
        without blocking (the nets set it when training on CUDA).

    Examples
    --------
    >>> import torch
    >>> batches = TensorBatches({"x": torch.arange(5)}, None, batch_size=2)
    >>> [b[0]["x"].tolist() for b in batches]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, X, y, batch_size, shuffle=False, drop_last=False, pin_memory=False):
        self.X = X
        self.y = y
        self.n = len(next(iter(X.values())))
        self.batch_size = self.n if batch_size in (-1, None) else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pin_memory = pin_memory

    def __len__(self):
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n) if self.shuffle else torch.arange(self.n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            Xi = {k: self._pinned(v[idx]) for k, v in self.X.items()}
            yield Xi, (None if self.y is None else self._pinned(self.y[idx]))

    def _pinned(self, t):
        return t.pin_memory() if self.pin_memory and t.device.type == "cpu" else t


class _PhaseNetMixin:
    """Shared by both nets: fast batching, input on the device, mixed precision,
    augmentation on the device, divergence guard."""

    def get_iterator(self, dataset, training=False):
        X, y = getattr(dataset, "X", None), getattr(dataset, "y", None)
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        if (_streaming.is_stream_input(X) and (y is None or torch.is_tensor(y))
                and all(torch.is_tensor(v) for k, v in X.items() if k != "x")):
            # A streamed Dataset: DataLoader workers read the images;
            # the same batches as TensorBatches would give the images in memory.
            return _streaming.batches(
                X, y, kwargs.get("batch_size", self.batch_size),
                shuffle=kwargs.get("shuffle", False), drop_last=kwargs.get("drop_last", False),
                pin_memory=self._on_cuda(),
            )
        if not (isinstance(X, dict) and all(torch.is_tensor(v) for v in X.values())
                and (y is None or torch.is_tensor(y))):
            return super().get_iterator(dataset, training=training)
        return TensorBatches(
            X, y, kwargs.get("batch_size", self.batch_size),
            shuffle=kwargs.get("shuffle", False), drop_last=kwargs.get("drop_last", False),
            pin_memory=self._on_cuda(),
        )

    prefixes_ = NeuralNet.prefixes_ + ["augmenter"]

    def _on_cuda(self):
        return torch.device(self.device).type == "cuda"

    def initialize(self):
        precision = self.precision
        _check_precision(precision, self.device)
        if FIX_MALLOC_THRESHOLD:
            fix_malloc_threshold()
        super().initialize()
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range.
        self.grad_scaler_ = torch.amp.GradScaler(
            "cuda", enabled=precision == "fp16" and self._on_cuda())
        return self

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            # 4-D (conv) weights only; linear layers are unaffected.
            self.module_.to(memory_format=torch.channels_last)
        # The augmenter is named by ``augmenter`` ("simclr", "weak", "tabular",
        # "none") and configured with ``augmenter__*`` parameters, skorch-style.
        self.augmenter_ = make_augmenter(self.augmenter, **self.get_params_for("augmenter"))
        return self

    def _on_device(self, x):
        """Batch ``x`` on the net's device as float32; uint8 pixels scaled by 1/255.

        The division is the same float32 division as the estimator's (bit
        for bit), so uint8 images give the same results whether they are
        scaled on the host or here.  On CUDA the copy does not block (the
        batches are pinned, see :class:`TensorBatches`).
        """
        if not torch.is_tensor(x):
            x = to_tensor(x, device="cpu")
        x = x.to(self.device, non_blocking=self._on_cuda())
        if x.dtype == torch.uint8:
            x = x.to(torch.float32).div_(255.0)
        return x

    def _module_format(self, x):
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare_input(self, x):
        """What the module receives for batch ``x``: on the device, float32, in the
        net's memory format (channels-last for image batches when ``channels_last``)."""
        return self._module_format(self._on_device(x))

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):
            x = dict(x, x=self.prepare_input(x["x"]))
        else:
            x = self.prepare_input(x)
        return super().infer(x, **fit_params)

    def _autocast(self):
        """Autocast context of the training steps' forward passes (``precision``)."""
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        return torch.autocast(torch.device(self.device).type, dtype=dtype or torch.bfloat16,
                              enabled=dtype is not None)

    def _backward(self, loss):
        scaler = getattr(self, "grad_scaler_", None)
        (loss if scaler is None else scaler.scale(loss)).backward()
        if _distributed.is_active():  # data-parallel fit: noisyclf/_distributed.py
            _distributed.average_gradients(self.module_.parameters())

    def _global_batch(self, part):
        """BatchNorm over the global batch in a data-parallel step (``part`` not None)."""
        if part is None:
            return contextlib.nullcontext()
        return _distributed.global_batchnorm(self.module_)

    def _step_optimizer(self, step_fn):
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None or not scaler.is_enabled():
            return super()._step_optimizer(step_fn)
        # GradScaler: unscale, skip the step on inf/NaN gradients, adapt the scale.
        step_fn()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return None

    def _augment(self, x):
        return self.augmenter_(self._on_device(x))

    def _check_finite(self, loss):
        if not torch.isfinite(loss).all():
            raise DivergenceError(
                f"the training loss became {loss.item()} at epoch {len(self.history)} "
                f"(lr={self.lr}); the learning rate is probably too large."
            )

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        if _distributed.is_active():  # every process starts from rank 0's weights
            _distributed.check_batch_size(self.batch_size)
            _distributed.broadcast_module(self.module_)

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
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Autocast dtype of the training forward passes; the projections are
        cast to fp32 before the loss, so the similarity logits and the loss
        are fp32.  "fp16" needs CUDA and uses a gradient scaler.
    channels_last : bool, default=False
        Channels-last memory format for conv weights and image batches.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, criterion, *args, augmenter="none", precision="fp32",
                 channels_last=False, **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.augmenter = augmenter
        self.precision = precision
        self.channels_last = channels_last

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = self._on_device(Xi["x"])
        v1, v2 = self.augmenter_(x), self.augmenter_(x)
        # Data-parallel: views of the global batch, this process encodes its part.
        part = _distributed.local_part(len(x))
        if part is not None:
            v1, v2 = v1[part], v2[part]
        with self._autocast(), self._global_batch(part):
            z1 = self.infer(v1, **fit_params).float()
            z2 = self.infer(v2, **fit_params).float()
        if part is not None:  # negatives span the global batch (gradients flow back)
            z1, z2 = _distributed.gather(z1), _distributed.gather(z2)
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
        self._backward(loss)
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
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Autocast dtype of the training forward passes; logits are cast to
        fp32 before the loss (and ELR's targets stay fp32).  Eval-mode passes
        are fp32.  "fp16" needs CUDA and uses a gradient scaler.
    channels_last : bool, default=False
        Channels-last memory format for conv weights and image batches.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, criterion, *args, augmenter="none", n_samples=None,
                 record_epochs=5, precision="fp32", channels_last=False, **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.augmenter = augmenter
        self.n_samples = n_samples
        self.record_epochs = record_epochs
        self.precision = precision
        self.channels_last = channels_last

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

    def eval_cross_entropy(self, X, y):
        """Eval-mode cross-entropy of every sample against ``y`` (ndarray).

        One un-augmented pass in eval mode (DivideMix's ``eval_train``); the
        training mode of the module is restored afterwards.
        """
        was_training = self.module_.training
        x, y = X["x"], to_tensor(y, device="cpu")
        positions = None
        if _distributed.is_active() and torch.is_tensor(x):  # each process: its eval batches
            batch_size = self.get_params_for("iterator_valid").get("batch_size",
                                                                   self.batch_size)
            positions = _distributed.eval_positions(len(x), batch_size)
            x, y = x[positions], y[positions]
        with torch.random.fork_rng(devices=[]):
            logits = self.forward({"x": x}, training=False, device=self.device)
        self.module_.train(was_training)
        with torch.no_grad():
            ce = torch.nn.functional.cross_entropy(
                logits.float(), y.to(logits.device), reduction="none")
        if positions is not None:
            ce = _distributed.gather_positions(ce, positions.to(ce.device), len(X["x"]))
        return ce.cpu().numpy()

    def eval_losses(self, X, y):
        """:meth:`eval_cross_entropy`, min-max normalised (the GMMs' input)."""
        return normalise_losses(self.eval_cross_entropy(X, y))

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        if self._encoder_frozen():
            self.module_.encoder.eval()
        Xi, yi = unpack_data(batch)
        x = self._augment(Xi["x"])
        # Data-parallel: augment the global batch, train on this process's part.
        part = _distributed.local_part(len(x))
        if part is not None:
            n_global, x, yi = len(x), x[part], yi[part]
            Xi = {k: v[part] for k, v in Xi.items()}
        with self._autocast(), self._global_batch(part):
            logits = self.infer(x, **fit_params)
        logits = logits.float()
        loss = reported = self.get_loss(logits, yi, X=Xi, training=True)
        if part is not None:
            loss, reported = _distributed.global_mean(loss, len(logits), n_global)
            if torch.is_tensor(getattr(self.criterion_, "target_", None)):  # ELR, eq. 5
                _distributed.sync_rows(self.criterion_.target_, Xi["index"])
        self._check_finite(reported)
        self._backward(loss)
        return {"loss": reported, "y_pred": logits}

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
