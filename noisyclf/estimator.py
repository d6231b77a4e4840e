"""The scikit-learn estimator: the framework of Ciortan, Dupuis and Peel (Figure 2).

``fit`` runs one private method per panel of the paper's Figure 2::

    a1  _pretrain          SimCLR on the encoder + projection head (NT-Xent, eq. 6)
    a2  _train_classifier  classifier head on the encoder, noise-robust loss
                           (eqs. 1-5) -> pseudo_labels_
    b1  _select            2-component GMM on per-sample losses against the
                           pseudo-labels -> sample_weights_
    b2  _contrast          weighted supervised contrastive training (eq. 8)
    b3  _train_classifier  final classifier on the pseudo-labels -> predict

Every training loop is a skorch net (:mod:`noisyclf.nets`); this module only
validates input, builds the nets from flat hyperparameters and chains them.
"""

import contextlib
import copy
import io
import numbers
import os
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight, _num_samples, check_is_fitted, validate_data,
)
from skorch.callbacks import Callback, Freezer, LRScheduler, Unfreezer
from torch import nn
from tqdm import auto as tqdm_auto

from . import _distributed, _input, _streaming
from ._parallel import limit_worker_threads
from .bootstrap import BootstrapNet, MixupBootstrappingLoss
from .losses import NTXentLoss, WeightedSupConLoss
from .modules import (
    ClassifierHead, ClassifierModule, ContrastiveModule, ProjectionHead, is_module_class,
    make_encoder,
)
from .nets import (
    ContrastiveNet, DivergenceError, NoisyLabelNet, make_criterion, resolve_precision,
)
from .selection import gmm_clean_probability, label_issue_mask

__all__ = ["ContrastiveNoisyClassifier", "DivergenceWarning"]


class DivergenceWarning(UserWarning):
    """A training phase produced a NaN/inf loss and was stopped early.

    The phase's weights are restored from the end of its last finished epoch
    and ``fit`` goes on with the next phase, so the estimator stays usable
    and a grid search scores the point instead of crashing.
    """


def _in_notebook():
    """Whether ``tqdm.auto`` chose its notebook (widget) bar: a Jupyter kernel."""
    return getattr(tqdm_auto, "notebook_tqdm", None) is not getattr(tqdm_auto, "std_tqdm", None)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class _PhaseProgress(Callback):
    """Progress of one phase's skorch net (``verbose >= 1``), written to ``sys.stdout``.

    Two modes, chosen when the phase starts:

    * **bar** (``verbose == 1`` and ``sys.stdout`` is a terminal, or a Jupyter
      notebook): a ``tqdm.auto`` bar per phase, ``total`` epochs, with the
      phase name, epoch n/total, the last epoch's loss as postfix, rate and
      ETA; left on screen when the phase ends.
    * **line** (otherwise: output redirected to a file or a pipe, captured
      by a test, or ``verbose >= 2`` where skorch's tables already show every
      epoch): nothing while the phase runs, then one line when it ends,
      ``[noisyclf] <name>: <n> epochs, loss <last loss>, <seconds> s``
      (``<done>/<total> epochs`` and ``(diverged)``/``(interrupted)`` when
      it stopped early).

    ``sys.stdout`` is looked up at each phase start (so redirections and
    pytest's capture apply), the stream of skorch's own per-epoch tables.
    """

    def __init__(self, name, total, verbose=1):
        self.name = name
        self.total = total
        self.verbose = verbose

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = 0
        self.loss_ = float("nan")
        self.start_ = time.perf_counter()
        self.finished_ = False
        self.bar_ = None
        stream = sys.stdout
        if self.verbose == 1 and (_in_notebook() or _isatty(stream)):
            try:
                self.bar_ = tqdm_auto.tqdm(
                    total=self.total, desc=f"[noisyclf] {self.name}", unit="epoch",
                    file=stream, leave=True, dynamic_ncols=True)
            except Exception:  # e.g. a notebook without ipywidgets: one line instead
                self.bar_ = None

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        self.loss_ = float(net.history[-1].get("train_loss", float("nan")))
        if self.bar_ is not None:
            self.bar_.set_postfix_str(f"loss={self.loss_:.4f}", refresh=False)
            self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.finish("interrupted" if getattr(net, "interrupted_", False) else None)

    def finish(self, note=None):
        """Close the bar or write the phase's line (once); ``note`` says why it stopped."""
        if getattr(self, "finished_", True):
            return
        self.finished_ = True
        bar, self.bar_ = getattr(self, "bar_", None), None
        if bar is not None:
            if note:
                bar.set_postfix_str(f"loss={self.loss_:.4f}, {note}", refresh=False)
            bar.close()
            return
        done = (_n_epochs(self.epochs_) if self.epochs_ == self.total
                else f"{self.epochs_}/{self.total} epochs")
        line = (f"[noisyclf] {self.name}: {done}, loss {self.loss_:.4f}, "
                f"{time.perf_counter() - self.start_:.1f} s")
        print(line + (f" ({note})" if note else ""), file=sys.stdout, flush=True)

    def __getstate__(self):
        # A tqdm bar holds its stream and a lock: never pickled with a net.
        return {k: v for k, v in self.__dict__.items() if k != "bar_"}


def _finish_progress(net, note):
    """Close the progress of a net whose training stopped without ``on_train_end``."""
    for _, callback in getattr(net, "callbacks_", None) or []:
        if isinstance(callback, _PhaseProgress):
            callback.finish(note)


def _n_epochs(n):
    return f"{n} epoch{'' if n == 1 else 's'}"


def _say(message):
    print(f"[noisyclf] {message}", file=sys.stdout, flush=True)


def _phase_seed(seed, phase):
    """Independent, reproducible seed for one phase."""
    return int(np.random.SeedSequence([seed, phase]).generate_state(1)[0])


def _resolve_device(device):
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


#: Both contrastive views in one forward pass of a 2N batch?  Measured in
#: ``benchmarks/bench_speed.py``: about 1.2x faster per a1 epoch on 8x8 digits,
#: no faster in bf16 and slower in fp32 on 32x32 RGB, and it changes what
#: BatchNorm normalises over; so one pass per view, as before.
JOINT_VIEWS = False


def _drop_last(n_samples, batch_size):
    # A final batch of one sample breaks BatchNorm in training mode.
    return n_samples > batch_size and n_samples % batch_size == 1


def _run_simclr(X, input_shape, encoder, mean, scale, *, epochs, lr, batch_size, temperature,
                weight_decay, projection_dim, augment_kwargs, augment_kind, seed, device,
                precision="fp32", channels_last=False, encoder_kwargs=None, encoder_key=None,
                data_key=None, verbose=0):
    """Phase a1: SimCLR pre-training.  Label-free, so it can be cached.

    Returns the encoder + projection head weights (CPU tensors) and the
    skorch history as a list of dicts.  Module-level and deterministic in its
    arguments so that :class:`joblib.Memory` can cache it: ``encoder`` (a
    name, a module class or a module instance) is left out of the cache key
    and stands in it as ``encoder_key`` (:func:`_encoder_cache_key`); a
    streamed Dataset ``X`` (:class:`~noisyclf._streaming.ImageStream`) is left
    out too and stands in it as ``data_key``, the digest of its images.
    """
    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(seed)
        enc = make_encoder(encoder, input_shape, mean, scale, **(encoder_kwargs or {}))
        module = ContrastiveModule(enc, ProjectionHead(enc.out_features, projection_dim))
        net = _build_contrastive_net(
            module, NTXentLoss, name="a1 SimCLR pre-training", epochs=epochs, lr=lr,
            batch_size=batch_size, temperature=temperature, weight_decay=weight_decay,
            augment_kind=augment_kind, augment_kwargs=augment_kwargs, n_samples=len(X),
            device=device, precision=precision, channels_last=channels_last, verbose=verbose,
        )
        diverged = None
        try:
            net.fit({"x": _as_net_input(X)}, None)
        except DivergenceError as exc:
            net.restore_last_finite()
            _finish_progress(net, "diverged")
            diverged = str(exc)
        # Set by the net when skorch swallowed a KeyboardInterrupt.
        interrupted = bool(getattr(net, "interrupted_", False))
        state = {k: v.detach().cpu().clone() for k, v in net.module_.state_dict().items()}
        history = [dict(row) for row in net.history]
    return state, history, diverged, interrupted


def _as_net_input(X):
    """The nets' ``"x"``: a streamed Dataset as it is, an array as a tensor (no copy)."""
    return X if isinstance(X, _streaming.ImageStream) else torch.as_tensor(X)


def _encoder_cache_key(encoder, encoder_kwargs):
    """What identifies ``encoder`` in a1's :class:`joblib.Memory` cache key.

    A built-in encoder by its name; a module class by its import path (its
    ``encoder__*`` keyword arguments are a separate argument of the cached
    call); a module instance by its class, its ``repr`` (the architecture)
    and a hash of the bytes of every tensor of its ``state_dict`` (the
    starting weights), so that another instance or the same one with other
    weights never reuses a cached pre-training.
    """
    if isinstance(encoder, str):
        return encoder
    cls = encoder if isinstance(encoder, type) else type(encoder)
    key = (cls.__module__, cls.__qualname__)
    if isinstance(encoder, nn.Module):
        import joblib

        def tensor_key(t):
            if isinstance(t, nn.parameter.UninitializedTensorMixin):  # lazy modules
                return "uninitialized"
            return (str(t.dtype), tuple(t.shape),
                    t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())

        weights = {name: tensor_key(t) for name, t in encoder.state_dict().items()}
        key += (repr(encoder), joblib.hash(weights))
    return key


def _prefixed(prefix, kwargs):
    return {f"{prefix}__{k}": v for k, v in kwargs.items()}


def _build_contrastive_net(module, criterion, *, name, epochs, lr, batch_size, temperature,
                           weight_decay, augment_kind, augment_kwargs, n_samples, device,
                           verbose, precision="fp32", channels_last=False,
                           criterion_kwargs=None):
    """The skorch net of a contrastive phase (a1 with NT-Xent, b2 with eq. 8)."""
    callbacks = [("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=epochs))]
    if verbose:
        callbacks.append(("progress", _PhaseProgress(name, epochs, verbose)))
    return ContrastiveNet(
        module, criterion, criterion__temperature=temperature,
        **_prefixed("criterion", criterion_kwargs or {}),
        augmenter=augment_kind, **_prefixed("augmenter", augment_kwargs),
        optimizer=torch.optim.SGD, optimizer__momentum=0.9,
        optimizer__weight_decay=weight_decay, lr=lr, max_epochs=epochs,
        batch_size=batch_size, train_split=None, callbacks=callbacks,
        iterator_train__shuffle=True,
        iterator_train__drop_last=_drop_last(n_samples, batch_size),
        precision=precision, channels_last=channels_last, joint_views=JOINT_VIEWS,
        device=device, verbose=max(0, verbose - 1),
    )


def _fork_devices(device):
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return [torch.device(device).index or 0]
    return []


class _ModuleClassOrInstance(HasMethods):
    """Parameter constraint: a :class:`torch.nn.Module` subclass or instance."""

    def __init__(self):
        super().__init__(["forward"])

    def is_satisfied_by(self, val):
        return is_module_class(val) or isinstance(val, nn.Module)

    def __str__(self):
        return "a torch.nn.Module subclass or instance"


@contextlib.contextmanager
def _torch_seeded(seed, device):
    """Run the block under torch's RNG seeded with ``seed``; restore the caller's after."""
    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(seed)
        yield


class ContrastiveNoisyClassifier(ClassifierMixin, BaseEstimator):
    """Classifier robust to label noise via contrastive pre-training (Ciortan et al.).

    Implements the framework of Figure 2 of "A Framework using Contrastive
    Learning for Classification with Noisy Labels" (Ciortan, Dupuis, Peel):

    * **a1** SimCLR pre-training of an encoder and a projection head (one
      hidden layer + ReLU) with the NT-Xent loss (eq. 6) on two augmented
      views per sample.
    * **a2** a classifier head (one hidden layer + BatchNorm + ReLU) trained on
      the noisy labels with ``loss`` (CE eq. 1, NFL+RCE eqs. 2-3 or ELR eqs. 4-5):
      ``warmup_epochs`` with the encoder frozen (and in eval mode), then end to
      end; SGD with momentum 0.9 and cosine annealing.  Its argmax on the
      un-augmented training set gives ``pseudo_labels_``, phase b's new
      ground truth (section 4).  For the user, a GMM on a2's losses against
      the *given* labels scores each given label: ``label_quality_`` and
      ``label_issues_``.
    * **b1** a 2-component Gaussian mixture on per-sample losses against the
      *pseudo-labels* (section 4.1): a fresh head is trained for
      ``gmm_epochs`` epochs on the pseudo-labels over a frozen copy of a2's
      encoder, as in the authors' code; the GMM gives ``sample_weights_ =
      p(pseudo-label correct | loss)``, the weights of eq. 8.
    * **b2** weighted supervised contrastive training (eq. 8) of a copy of
      a2's encoder with the pseudo-labels and ``sample_weights_``, at
      ``finetune_temperature``.
    * **b3** a final classifier head trained on the pseudo-labels with ``loss``
      over a copy of b2's encoder; it is the one that predicts.

    Both GMMs take their input as DivideMix (Li et al., 2020) and the authors
    compute it: after each recorded epoch, one eval-mode pass over the
    un-augmented training set gives every sample's cross-entropy, min-max
    normalised within the epoch; the recorded epochs are averaged.

    ``phases="pretrain"`` stops after b1 (a2 predicts: the paper's "Pre-t."
    column) and ``phases="baseline"`` runs a2 alone from a randomly
    initialised encoder, end to end for ``max_epochs`` (the "Base" column),
    then b1.  The GMMs run in every mode, so ``sample_weights_``,
    ``label_quality_`` and ``label_issues_`` always exist.  Each fitted net
    keeps its own weights: phases hand copies of the encoder on.

    ``phases="bootstrap"`` is the paper's other way to continue after the
    pre-training block (section 6.4, Figure 7): a1, a2 and b1 as for
    "pretrain", then a copy of a2's classifier is trained further on the
    *given* labels with dynamic bootstrapping and mixup (Arazo et al., ICML
    2019; :mod:`noisyclf.bootstrap`): each epoch a beta mixture on the
    per-sample losses gives each sample's probability ``B`` of being
    mislabelled, and the loss target mixes the given label with the
    network's own prediction by ``B``; that net predicts.

    Parameters
    ----------
    phases : {"full", "pretrain", "baseline", "bootstrap"}, default="full"
        Which part of the framework to run (see above).
    loss : {"elr", "nfl+rce", "ce"}, default="elr"
        Supervised loss of phases a2 and b3.  ELR is the default because the
        paper finds it best overall (section 8).
    encoder : {"auto", "cnn", "resnet18", "mlp"}, nn.Module class or instance, default="auto"
        ``"auto"`` picks a small CNN for image input and an MLP for tabular
        input.  ``"resnet18"`` is the CIFAR ResNet-18 of the paper (slow on CPU).

        Your own encoder, the skorch way: a :class:`torch.nn.Module`
        *subclass* is built at ``fit`` as ``encoder(**kwargs)`` from the
        ``encoder__<name>=value`` keyword arguments of this estimator (see
        ``**encoder__params``), with torch's RNG seeded from
        ``random_state``; an *instance* is deep-copied at ``fit`` (the module
        you pass is never trained in place) and its weights are the start of
        a1 (of a2 for ``phases="baseline"`` or ``pretrain_epochs=0``).  The
        module receives ``(batch, *input_shape_)`` float32 input standardised
        as the built-in encoders get it (the training mean and scale, per
        channel for images and per feature for tabular data, applied by a
        :class:`~noisyclf.modules.Standardize` layer put in front of it) and
        must return ``(batch, d)`` features; ``d`` is found by a dry forward
        pass (no gradients, eval mode, 2 zero samples, modes restored).  A
        module that fails on that pass or returns anything else raises a
        ``ValueError`` naming ``encoder`` before any training.  Every encoder
        parameter is trained (after the warm-up of a2 and b3).  A model fitted
        with a module class pickles when the class can be imported (defined
        at module level).  ``encoder_kind_`` is then ``"custom"``.
    image_shape : tuple of int (C, H, W) or None, default=None
        Shape of one image when ``X`` is 2-D with flattened images (e.g.
        ``(1, 8, 8)`` for sklearn's digits).  ``None`` treats 2-D ``X`` as
        tabular features, taken as they are whatever their dtype.  3-D ``X``
        is (n, H, W); 4-D is (n, C, H, W) or (n, H, W, C) (see
        ``data_format``).  ``image_shape`` is (C, H, W) whatever the layout.
        Image values: uint8 images are pixels 0..255, scaled by 1/255; float
        images are taken as they are.  ``predict`` reads its images on the
        scale ``fit`` saw: after uint8 (or float [0, 1]) training images,
        uint8 input is scaled by 1/255 and float input whose values reach
        above 2 (the 0..255 scale) too; after float training images on a
        0..255 scale, uint8 input is taken as the same raw values.  A
        :class:`~sklearn.exceptions.DataConversionWarning` naming the fix
        flags a predict batch on another scale than the training images
        (uint8 after float [0, 1] images, floats on the 0..255 scale after
        [0, 1] ones, floats in [0, 1] after 0..255 ones); uint8 input after
        float training images on neither scale raises a ``ValueError``.
    data_format : {"auto", "channels_first", "channels_last"}, default="auto"
        Layout of 4-D ``X`` ((n, C, H, W) or (n, H, W, C)) and of the rows
        of 2-D ``X`` with ``image_shape`` (each a flattened (C, H, W) or
        (H, W, C) image); ignored for 3-D and tabular ``X``.  ``"auto"``:
        4-D ``X`` is channels-first/-last where only one reading has 1, 3 or
        4 channels ((n, 3, 32, 32), (n, 32, 32, 3)), or else only one has no
        more channels than its image's shorter side; otherwise it prefers
        square images, then 3 channels (so (n, 4, 4, 3) is channels-last)
        and emits a ``UserWarning`` naming ``data_format``, or raises a
        ``ValueError`` when even that cannot decide ((n, 3, 3, 3)).
        Flattened rows are read as (C, H, W); for multi-channel images a
        ``ValueError`` asks for ``data_format="channels_last"`` when the rows
        are clearly more spatially coherent read as (H, W, C) (a flattened
        channels-last array).  ``predict`` uses the layout chosen in ``fit``.
    image_size : int, (height, width) or None, default=None
        For a :class:`torch.utils.data.Dataset` ``X`` (streamed, see ``fit``):
        resize every image whose size differs to this, PIL images with
        PIL's bilinear filter (as :func:`noisyclf.datasets.load_image_folder`),
        arrays and tensors with :func:`torch.nn.functional.interpolate`
        (bilinear, antialiased); ``predict`` resizes its Dataset images to
        the same size.  ``None`` takes the images as the dataset gives them,
        all of one size (a ``ValueError`` naming the first that differs asks
        for ``image_size``).  Array ``X`` is never resized: ``image_size``
        with an array ``X`` raises a ``ValueError``.
    num_workers : int, default=0
        For a Dataset ``X``: the :class:`torch.utils.data.DataLoader` worker
        processes that read (decode, resize) its items in every pass over
        it, in ``fit`` and ``predict``; ``0`` reads them in this process.
        Results do not depend on it.  Ignored for array ``X``.
    data_parallel : bool or "auto", default="auto"
        One fit on several processes (``docs/scaling_out_ddp.md``): when
        ``fit`` is called with the same data in every process of an
        initialised :mod:`torch.distributed` process group of 2 or more
        processes (e.g. started by ``torchrun``), each process trains every
        phase on its part of each global batch (gradients averaged,
        contrastive negatives gathered across processes, BatchNorm over the
        global batch, ELR's targets and the GMMs' losses synchronised, GMMs
        fitted on rank 0).  ``"auto"`` does so whenever such a group exists
        and runs as a single process otherwise; ``True`` requires the group
        (``ValueError`` without one); ``False`` ignores any group: each
        process fits its own model alone.
    lr : float, default=0.02
        Learning rate of the supervised phases a2 and b3 (SGD, momentum 0.9).
    encoder_lr : float or None, default=None
        Learning rate of the *pre-trained* encoder's weights in a2 and b3
        once the warm-up has unfrozen them (the classifier head keeps
        ``lr``; both follow the same cosine schedule).  ``None`` is ``lr``:
        the whole model fine-tuned at one rate.  A smaller value keeps the
        SimCLR (a2) and supervised contrastive (b3) features closer to what
        the contrastive phases learnt.  The baseline's random encoder always
        trains at ``lr``.  Measured on 4,000 CIFAR-10 images
        (``benchmarks/bench_cifar10.py --params encoder_lr=0.002``, README):
        +0.036 (ELR, pretrain) at symmetric 80 % noise, -0.020 on CIFAR-10N
        ``worse_label``; so the default stays ``lr``, and a smaller rate is
        for data where most labels are expected to be wrong.
    max_epochs : int, default=40
        Epochs of each supervised phase (a2, b3; the baseline too).
    batch_size : int, default=128
        Mini-batch size of every phase.  In a data-parallel fit (``fit``
        called by every process of a :mod:`torch.distributed` process group,
        e.g. started by ``torchrun``; ``docs/scaling_out_ddp.md``) it is the
        global batch, of which each process encodes its part.
    warmup_epochs : int, default=5
        Epochs at the start of a2 and b3 with the encoder frozen (ignored by
        the baseline, whose encoder is random).
    pretrain_epochs : int, default=100
        Epochs of SimCLR pre-training (a1).  ``0`` skips SimCLR: the encoder
        enters a2 with its initial weights (random for the built-in encoders
        and for a module class, the instance's own weights for a module
        instance), ``pretrain_history_`` and ``history_["a1"]`` are empty and
        the projection head that b2 trains is freshly initialised.  As the
        paper suggests, a pre-trained encoder instance with few (or no)
        SimCLR epochs cuts the cost of a1.
    pretrain_lr : float, default=0.1
        Learning rate of the contrastive phases a1 and b2.
    temperature : float, default=0.5
        Temperature tau of eq. 6 in a1 (SimCLR's CIFAR value).
    finetune_epochs : int, default=20
        Epochs of weighted supervised contrastive training (b2).
    finetune_temperature : float, default=0.1
        Temperature tau of eq. 8 in b2.  SupContrast and the authors' code
        use 0.07 for the supervised contrastive step, SimCLR 0.5.  Measured on
        digits (``benchmarks/bench_phase_b.py``, 5 seeds, 3 noise settings):
        0.07 and 0.1 tie (mean 0.948) ahead of 0.2 and 0.5; 0.1 is the default.
    supcon_weighting : {"paper", "authors"}, default="paper"
        Reading of eq. 8 (:class:`~noisyclf.losses.WeightedSupConLoss`):
        ``"paper"`` as the paper's text (twin weight 1, the other positives
        the anchor's weight w_i, average inside the log); ``"authors"`` as the
        authors' code (every positive, twin included, weighted by its own w_p,
        SupContrast's L_out form divided by the sum of weights).  "paper" is
        the default: on digits it is 0.0013 ahead on average over 60 paired
        cells (``benchmarks/bench_phase_b.py``).
    bootstrap_variant : {"hard", "soft"}, default="hard"
        ``phases="bootstrap"``: the bootstrapping target mixes the given
        label with the network's argmax ("hard", M-DYR-H) or its softmax
        ("soft", M-DYR-S).  "hard" is the original code's default and its
        best method up to 80 % noise.
    bootstrap_mixup_alpha : float, default=32.0
        ``phases="bootstrap"``: mixup's ``lam ~ Beta(alpha, alpha)``; the
        original code's default.
    bootstrap_reg_weight : float, default=1.0
        ``phases="bootstrap"``: weight of the uniform class-prior regulariser
        (the original's ``reg_loss_class``, weight 1 in all its published
        runs).
    bootstrap_epochs : int or None, default=None
        ``phases="bootstrap"``: epochs of bootstrapping; ``None`` is
        ``max_epochs``.
    bootstrap_lr : float or None, default=None
        ``phases="bootstrap"``: learning rate of bootstrapping (SGD, momentum
        0.9, cosine annealing); ``None`` is ``lr / 10`` (the original starts
        bootstrapping after its first tenfold learning-rate step).
    nfl_gamma : float, default=0.5
        Focusing parameter gamma of NFL (eq. 2); the paper's value.
    nfl_alpha : float, default=1.0
        Weight alpha of NFL in NFL+RCE.
    rce_beta : float, default=1.0
        Weight beta of RCE in NFL+RCE.
    rce_log_zero : float, default=-4.0
        Value of log 0 for the one-hot label in RCE (eq. 3): -4 as the paper
        writes; the Active-Passive Losses code clamps the label at 1e-4, i.e.
        log(1e-4) = -9.21, which produced the published numbers.
    elr_lambda : float, default=3.0
        ELR regularisation strength lambda (eq. 4); the paper's value.
    elr_beta : float, default=0.7
        ELR temporal-ensembling momentum beta (eq. 5); the paper's value.
    weight_decay : float, default=5e-4
        L2 penalty of every SGD optimiser.
    projection_dim : int, default=128
        Output size of the projection head (a1, b2).
    gmm_epochs : int, default=5
        Epochs whose normalised eval-mode losses are averaged for each GMM:
        the last ``gmm_epochs`` of a2 (given-label quality) and the
        ``gmm_epochs`` epochs of b1's head training on the pseudo-labels.
    min_crop_scale : float, default=0.2
        Smallest area fraction of SimCLR's random resized crop (images).
    hflip_prob : float or "auto", default="auto"
        Probability of a horizontal flip in every image augmentation.
        ``"auto"`` is 0.5 for colour (3-channel) images, whose mirror image is
        the same object, and 0 otherwise: single-channel images are often
        characters or digits, whose mirror image is another symbol.
    corruption_rate : float, default=0.6
        Fraction of features replaced per sample by SCARF-style corruption
        (tabular input, phases a1 and b2).
    memory : None, str, path or joblib.Memory, default=None
        Where to cache the label-free SimCLR pre-training (a1), keyed on the
        data, encoder, pre-training hyperparameters and seed, so that a grid
        over ``lr``, ``loss`` or any later-phase hyperparameter pre-trains once
        per fold.  A module class counts in the key by its import path and
        ``encoder__*`` parameters (editing the class's code does not
        invalidate the cache: clear it); a module instance by its class, its
        ``repr`` and a hash of its ``state_dict`` tensors (its starting
        weights).
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        On CUDA, batches are copied from pinned memory without blocking.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Arithmetic of the training steps' forward passes (mixed precision
        with :func:`torch.autocast`; the weights, the optimiser, the
        similarity logits of eqs. 6 and 8, every loss, ELR's targets and the
        GMMs stay fp32, and every eval-mode pass -- the GMM inputs, the
        pseudo-labels, ``predict`` -- runs in fp32).  ``"bf16"``: bfloat16,
        on CPU or GPU.  ``"fp16"``: float16 with a gradient scaler, CUDA only.
        ``"auto"``: "bf16" where the device computes it natively (a CPU with
        AVX-512 BF16 or AMX, a GPU of compute capability >= 8.0), else
        "fp32"; the choice is ``precision_``.  Measured in
        ``benchmarks/bench_speed.py`` (speed) and ``benchmarks/bench_digits.py``
        (accuracy, fp32 against bf16).  The built-in conv encoders also run
        in the channels-last memory format.
    random_state : int, RandomState instance or None, default=None
        Seeds every phase.  The caller's global numpy and torch RNG states are
        left untouched.
    verbose : int, default=0
        0 is silent.  1 shows the progress of each phase on ``sys.stdout``:
        in a terminal or a Jupyter notebook a ``tqdm.auto`` bar per phase
        (phase name, epoch n/total, last loss, rate, ETA), left on screen
        when the phase ends; elsewhere (output redirected to a file or a
        pipe) one line per phase, written when it ends, e.g.
        ``[noisyclf] a2 classifier (elr): 40 epochs, loss 0.1234, 12.3 s``.
        2 adds skorch's per-epoch tables, with the one-line summaries
        instead of bars.
    **encoder__params : keyword arguments named ``encoder__<name>``
        Keyword arguments of an ``encoder`` class: ``encoder__width=8`` builds
        ``encoder(width=8)``.  They are parameters like the others
        (``get_params``, ``set_params``, ``clone``, ``GridSearchCV``), as
        ``module__*`` are in skorch; with a string or an instance as
        ``encoder`` they raise a ``ValueError`` at ``fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, any dtype.
    n_features_in_ : int
        ``X.shape[1]`` in ``fit``.
    input_shape_ : tuple of int
        Shape of one sample as the nets see it: (C, H, W) or (n_features,).
    encoder_kind_ : str
        The encoder actually used: ``encoder`` with "auto" resolved, or
        ``"custom"`` for a user's module class or instance.
    precision_ : {"fp32", "bf16", "fp16"}
        The precision the training steps ran in (``precision`` resolved).
    pseudo_labels_ : ndarray of shape (n_samples,)
        a2's predictions on the un-augmented training set, in ``classes_``.
    sample_weights_ : ndarray of shape (n_samples,)
        b1's output: probability that each *pseudo-label* is correct (the
        GMM on losses against ``pseudo_labels_``), the weights w of eq. 8.
    label_quality_ : ndarray of shape (n_samples,)
        For the user: probability that each *given* label ``y`` is correct
        (a GMM on a2's losses against ``y``).  Low means suspicious.
    label_issues_ : ndarray of bool, shape (n_samples,)
        ``label_quality_ < 0.5``: given training labels judged wrong.
    encoder_net_ : ContrastiveNet or None
        The last contrastive skorch net (b2 for "full", a1 with its SimCLR
        weights for "pretrain"; None for "baseline").
    gmm_losses_ : dict of str to ndarray of shape (n_samples,)
        What each GMM was fitted to (normalised eval-mode losses averaged
        over the recorded epochs): ``"given"`` for ``label_quality_`` (a2
        against the given labels), ``"pseudo"`` for ``sample_weights_`` (b1
        against the pseudo-labels).
    selection_net_ : NoisyLabelNet
        b1's head trained on the pseudo-labels over a frozen copy of a2's
        encoder; its recorded losses fed the GMM of ``sample_weights_``.
    classifier_net_ : NoisyLabelNet
        The skorch net that predicts (b3 for "full", the
        :class:`~noisyclf.bootstrap.BootstrapNet` for "bootstrap", a2
        otherwise).
    bootstrap_noise_prob_ : ndarray of shape (n_samples,)
        ``phases="bootstrap"`` only: each training sample's probability of a
        wrong given label under the beta mixture of the last bootstrapping
        epoch.
    pretrain_history_ : list of dict
        Per-epoch log of a1 (empty for "baseline" and for ``pretrain_epochs=0``).
    history_ : dict of str to list of dict
        Per-epoch logs of every phase that ran, keyed "a1", "a2", "b1", "b2", "b3"
        and "bootstrap" (``"a1"`` is an empty list with ``pretrain_epochs=0``).
    diverged_phases_ : list of str
        Phases stopped by a NaN/inf loss (see :class:`DivergenceWarning`).
    interrupted_phase_ : str or None
        Phase during which training was interrupted (KeyboardInterrupt).

    Notes
    -----
    Choices where the paper is silent, following the cited originals: NT-Xent
    and eq. 8 use L2-normalised projections and A(i) = all 2N-1 other views
    (SimCLR); NFL+RCE takes log(0) = ``rce_log_zero`` (eq. 3, -4 as the paper)
    and keeps the full gradient of eq. 2; ELR uses the per-sample mean form
    of its official code rather than the paper's lambda/N; the GMMs use
    DivideMix's settings (``reg_covar=5e-4``, eval-mode losses normalised per
    epoch and averaged); b1 trains a head on the pseudo-labels before scoring
    them, as the authors' code does.  Image inputs are standardised per channel and
    tabular inputs per feature with training statistics stored in the model.
    Divergence (a NaN/inf loss) stops the phase, restores the weights of its
    last finished epoch and emits a :class:`DivergenceWarning`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
    >>> X, y = load_digits(return_X_y=True)
    >>> y_noisy = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
    >>> clf = ContrastiveNoisyClassifier(
    ...     image_shape=(1, 8, 8), pretrain_epochs=2, max_epochs=2, finetune_epochs=1,
    ...     warmup_epochs=1, random_state=0)
    >>> clf.fit(X[:300], y_noisy[:300]).predict(X[:3]).shape
    (3,)
    >>> clf.sample_weights_.shape
    (300,)
    """

    _parameter_constraints = {
        "phases": [StrOptions({"baseline", "pretrain", "full", "bootstrap"})],
        "loss": [StrOptions({"ce", "nfl+rce", "elr"})],
        "encoder": [StrOptions({"auto", "cnn", "resnet18", "mlp"}), _ModuleClassOrInstance()],
        "image_shape": [None, tuple, list],
        "data_format": [StrOptions({"auto", "channels_first", "channels_last"})],
        "image_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "data_parallel": ["boolean", StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "encoder_lr": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "pretrain_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "pretrain_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "finetune_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "finetune_temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "supcon_weighting": [StrOptions({"paper", "authors"})],
        "nfl_gamma": [Interval(numbers.Real, 0, None, closed="left")],
        "nfl_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "rce_beta": [Interval(numbers.Real, 0, None, closed="left")],
        "rce_log_zero": [Interval(numbers.Real, None, 0, closed="neither")],
        "elr_lambda": [Interval(numbers.Real, 0, None, closed="left")],
        "elr_beta": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "projection_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "gmm_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "bootstrap_variant": [StrOptions({"hard", "soft"})],
        "bootstrap_mixup_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "bootstrap_reg_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "bootstrap_epochs": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "bootstrap_lr": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "min_crop_scale": [Interval(numbers.Real, 0, 1, closed="right")],
        "hflip_prob": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "corruption_rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        phases="full",
        loss="elr",
        encoder="auto",
        image_shape=None,
        data_format="auto",
        image_size=None,
        num_workers=0,
        data_parallel="auto",
        lr=0.02,
        encoder_lr=None,
        max_epochs=40,
        batch_size=128,
        warmup_epochs=5,
        pretrain_epochs=100,
        pretrain_lr=0.1,
        temperature=0.5,
        finetune_epochs=20,
        finetune_temperature=0.1,
        supcon_weighting="paper",
        bootstrap_variant="hard",
        bootstrap_mixup_alpha=32.0,
        bootstrap_reg_weight=1.0,
        bootstrap_epochs=None,
        bootstrap_lr=None,
        nfl_gamma=0.5,
        nfl_alpha=1.0,
        rce_beta=1.0,
        rce_log_zero=-4.0,
        elr_lambda=3.0,
        elr_beta=0.7,
        weight_decay=5e-4,
        projection_dim=128,
        gmm_epochs=5,
        min_crop_scale=0.2,
        hflip_prob="auto",
        corruption_rate=0.6,
        memory=None,
        device="auto",
        precision="auto",
        random_state=None,
        verbose=0,
        **encoder__params,
    ):
        self.phases = phases
        self.loss = loss
        self.encoder = encoder
        self.image_shape = image_shape
        self.data_format = data_format
        self.image_size = image_size
        self.num_workers = num_workers
        self.data_parallel = data_parallel
        self.lr = lr
        self.encoder_lr = encoder_lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.warmup_epochs = warmup_epochs
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.temperature = temperature
        self.finetune_epochs = finetune_epochs
        self.finetune_temperature = finetune_temperature
        self.supcon_weighting = supcon_weighting
        self.bootstrap_variant = bootstrap_variant
        self.bootstrap_mixup_alpha = bootstrap_mixup_alpha
        self.bootstrap_reg_weight = bootstrap_reg_weight
        self.bootstrap_epochs = bootstrap_epochs
        self.bootstrap_lr = bootstrap_lr
        self.nfl_gamma = nfl_gamma
        self.nfl_alpha = nfl_alpha
        self.rce_beta = rce_beta
        self.rce_log_zero = rce_log_zero
        self.elr_lambda = elr_lambda
        self.elr_beta = elr_beta
        self.weight_decay = weight_decay
        self.projection_dim = projection_dim
        self.gmm_epochs = gmm_epochs
        self.min_crop_scale = min_crop_scale
        self.hflip_prob = hflip_prob
        self.corruption_rate = corruption_rate
        self.memory = memory
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        for key, value in encoder__params.items():
            if not key.startswith("encoder__") or key == "encoder__":
                raise TypeError(
                    f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                    f"{key!r}; the only extra keyword arguments are encoder__<name> "
                    f"parameters of an encoder class."
                )
            setattr(self, key, value)

    # ---------------------------------------------------------- parameters
    def _encoder_params(self):
        """The ``encoder__*`` parameters, name -> value, prefix included, sorted."""
        return {key: vars(self)[key] for key in sorted(vars(self))
                if key.startswith("encoder__")}

    def get_params(self, deep=True):
        """Get the parameters of this estimator, ``encoder__*`` ones included.

        As in skorch's ``NeuralNet``, the keyword arguments of an encoder
        class (``encoder__<name>``, stored as attributes by ``__init__`` and
        :meth:`set_params`) are parameters like those of the signature, so
        that :func:`~sklearn.base.clone` and the searches see them.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators (none here).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._encoder_params())
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator, ``encoder__*`` ones included.

        ``encoder__<name>`` sets (or adds) a keyword argument of the encoder
        class; every other name must be a parameter of the signature.

        Returns
        -------
        self : ContrastiveNoisyClassifier
        """
        encoder_params = {key: params.pop(key) for key in list(params)
                          if key.startswith("encoder__")}
        if "encoder__" in encoder_params:
            raise ValueError("Invalid parameter 'encoder__': encoder__ needs a name after it.")
        super().set_params(**params)
        for key, value in encoder_params.items():
            setattr(self, key, value)
        return self

    # ------------------------------------------------------------------ fit
    @limit_worker_threads  # one torch thread per dask/Ray task: noisyclf/_parallel.py
    def fit(self, X, y=None, sample_weight=None):
        """Run the framework on ``X`` with (possibly noisy) labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W), (n, C, H, W) or \
(n, H, W, C), or torch.utils.data.Dataset
            Training inputs; uint8 images are scaled to [0, 1].  Not modified.

            A map-style :class:`torch.utils.data.Dataset` of images (e.g.
            torchvision's ``ImageFolder``) is streamed, never held in memory
            as a whole: each pass over it is a
            :class:`~torch.utils.data.DataLoader` whose ``num_workers``
            processes read item ``i`` -- an image or ``(image, label, ...)``;
            the image a PIL image, an (H, W[, C]) uint8 array or a (C, H, W)
            uint8 tensor, or floats in [0, 1] -- and resize it to
            ``image_size``; uint8 batches go to the device, where they are
            scaled and augmented.  Samples are identified by their dataset
            position (ELR's targets, the GMMs' losses, ``pseudo_labels_``,
            ``label_quality_``: entry ``i`` is item ``i``); one pass before
            training computes the standardisation statistics (exact, from
            pixel histograms) and reads the labels.  A Dataset and the array
            of its images give the same model (``num_workers`` changes
            nothing).  ``n_features_in_`` is not set.
        y : array-like of shape (n_samples,) or None, default=None
            Given (noisy) labels of any type.  ``None`` only for a Dataset
            ``X``: the labels are then the second element of its items
            (``ImageFolder``'s class indices, after its ``target_transform``).
        sample_weight : array-like of shape (n_samples,), default=None
            Multiplies each sample's loss in the supervised phases (a2, b3)
            and its anchors' losses in b2.  SimCLR (a1) is label-free and
            unweighted.

        Returns
        -------
        self : ContrastiveNoisyClassifier
        """
        self._validate_params()
        if self.data_parallel is True and _distributed.group_size() < 2:
            raise ValueError(
                "data_parallel=True: fit must run in every process of an initialised "
                "torch.distributed process group of 2 or more processes (e.g. started by "
                f"torchrun); found {_distributed.group_size()} process.")
        with _distributed.data_parallel(self.data_parallel is not False):
            # Data-parallel: only rank 0 shows the progress (verbose).
            quiet = _distributed.world()[0] != 0
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        """``fit`` after parameter validation (see :meth:`fit`)."""
        if _streaming.is_dataset(X):
            X, y = self._validate_stream_input(X, y)
        else:
            X, y = self._validate_fit_input(X, y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y must contain at least 2 classes; got only {self.classes_.tolist()}."
            )
        self._device = _resolve_device(self.device)
        self.precision_ = resolve_precision(self.precision, self._device)
        # Data-parallel fit (noisyclf/_distributed.py): every process uses rank 0's seed.
        self._seed = _distributed.broadcast_object(self._base_seed())
        self.history_ = {}
        self.gmm_losses_ = {}
        self.diverged_phases_ = []
        self.interrupted_phase_ = None
        # Nothing from a previous fit may survive an interrupted one.
        for attr in ("classifier_net_", "encoder_net_", "selection_net_", "pseudo_labels_",
                     "sample_weights_", "label_quality_", "label_issues_",
                     "pretrain_history_", "bootstrap_noise_prob_"):
            self.__dict__.pop(attr, None)

        data = self._make_data(X, sample_weight)
        y_enc = torch.as_tensor(y_enc, dtype=torch.long)

        # Figure 2, panel a: pre-training phase.
        if self.phases == "baseline":
            with _torch_seeded(_phase_seed(self._seed, 10), self._device):
                encoder = self._new_encoder()
            projection, self.pretrain_history_ = None, []
            self.encoder_net_ = None
        else:
            encoder, projection = self._pretrain(X)                      # a1
            if self.interrupted_phase_:
                return self
        net = self._train_classifier(                                     # a2
            "a2", encoder, data, y_enc, frozen_warmup=self.phases != "baseline")
        self.classifier_net_ = net
        pseudo = torch.as_tensor(self._predict_encoded(net, data).argmax(1), dtype=torch.long)
        self.pseudo_labels_ = self.classes_[pseudo.numpy()]
        # For the user: which *given* labels look wrong (a2's losses against them).
        self.label_quality_ = self._gmm(self._recorded_losses(net, data, y_enc), "given", 5)
        self.label_issues_ = label_issue_mask(self.label_quality_)
        if self.interrupted_phase_:
            return self

        # Figure 2, panel b: fine-tuning phase; the pseudo-labels are the new ground truth.
        self.sample_weights_ = self._select(net, data, pseudo)           # b1
        if self.phases == "bootstrap" and not self.interrupted_phase_:
            # Section 6.4: dynamic bootstrapping with mixup instead of panel b.
            self.classifier_net_ = self._bootstrap(net, data, y_enc)
        if self.phases != "full" or self.interrupted_phase_:
            return self
        encoder = self._contrast(net, projection, data, pseudo)         # b2
        if self.interrupted_phase_:
            return self
        self.classifier_net_ = self._train_classifier(                   # b3
            "b3", copy.deepcopy(encoder), data, pseudo, frozen_warmup=True)
        return self

    # --------------------------------------------------------------- phases
    def _pretrain(self, X):
        """a1: SimCLR pre-training, cached with ``memory`` (label-free).

        With ``pretrain_epochs=0`` nothing is trained: the encoder keeps its
        initial weights (the instance's for a user's module instance) and the
        projection head its fresh random ones, which b2 starts from.
        """
        if self.pretrain_epochs == 0:
            state, history, diverged, interrupted = None, [], None, False
            if self.verbose:
                _say("a1 SimCLR pre-training: skipped (pretrain_epochs=0)")
        else:
            state, history, diverged, interrupted = self._run_pretraining(X)
        with _torch_seeded(_phase_seed(self._seed, 11), self._device):
            encoder = self._new_encoder()  # a random init is overwritten below
            module = ContrastiveModule(encoder, ProjectionHead(encoder.out_features,
                                                               self.projection_dim))
        if state is not None:
            module.load_state_dict(state)
        self.pretrain_history_ = history
        self.history_["a1"] = history
        self.encoder_net_ = self._contrastive_net(module, NTXentLoss, self.pretrain_epochs,
                                                  "a1", n_samples=len(X))
        self.encoder_net_.initialize()
        if diverged:
            self._warn_diverged("a1", diverged)
        if interrupted:
            self._note_interrupted("a1")
        # a2 trains its own copy: encoder_net_ keeps the SimCLR weights.
        return copy.deepcopy(encoder), module.projection

    def _run_pretraining(self, X):
        """Run (or load from ``memory``) :func:`_run_simclr`; ``(state, history, diverged,
        interrupted)``."""
        kind, kwargs = self._augment_spec(contrastive=True)
        encoder, encoder_kwargs = self._encoder_spec()
        run = _run_simclr
        memory = self._memory()
        streamed = isinstance(X, _streaming.ImageStream)
        if memory is not None:
            # The module itself is not hashed: encoder_key stands for it; nor is
            # a streamed Dataset: data_key, the digest of its images, does.
            run = memory.cache(_run_simclr,
                               ignore=["verbose", "encoder"] + (["X"] if streamed else []))
        args = (X, self.input_shape_, encoder, self._mean, self._scale)
        run_kwargs = dict(
            epochs=self.pretrain_epochs, lr=self.pretrain_lr, batch_size=self.batch_size,
            temperature=self.temperature, weight_decay=self.weight_decay,
            projection_dim=self.projection_dim, augment_kwargs=kwargs, augment_kind=kind,
            seed=_phase_seed(self._seed, 1), device=self._device,
            precision=self.precision_, channels_last=self._channels_last(),
            encoder_kwargs=encoder_kwargs,
            encoder_key=None if memory is None else _encoder_cache_key(encoder, encoder_kwargs),
            data_key=X.digest if streamed and memory is not None else None,
            verbose=self.verbose,
        )
        cached = (memory is not None and self.verbose > 0
                  and hasattr(run, "check_call_in_cache")
                  and run.check_call_in_cache(*args, **run_kwargs))
        state, history, diverged, interrupted = run(*args, **run_kwargs)
        if cached:  # no progress was shown: the phase did not run
            loss = history[-1].get("train_loss", float("nan")) if history else float("nan")
            _say(f"a1 SimCLR pre-training: {_n_epochs(len(history))}, loss {loss:.4f} "
                 f"(loaded from memory)")
        if interrupted and hasattr(run, "call_and_shelve"):
            # joblib cached the interrupted run; a later fit must not reuse it.
            run.call_and_shelve(*args, **run_kwargs).clear()
        return state, history, diverged, interrupted

    def _train_classifier(self, phase, encoder, data, y, *, frozen_warmup):
        """a2 / b3: classifier head on ``encoder`` trained with ``loss`` on ``y``."""
        n_classes = len(self.classes_)
        n_samples = len(y)
        with _torch_seeded(_phase_seed(self._seed, 12 if phase == "a2" else 14), self._device):
            head = ClassifierHead(encoder.out_features, n_classes)
        module = ClassifierModule(encoder, head)
        callbacks = []
        if frozen_warmup and self.warmup_epochs > 0:
            callbacks += [
                ("freeze_encoder", Freezer("encoder.*", at=1)),
                ("unfreeze_encoder", Unfreezer("encoder.*", at=self.warmup_epochs + 1)),
            ]
        groups = {}
        if frozen_warmup and self.encoder_lr is not None:
            # skorch's parameter groups by name pattern (get_params_for_optimizer).
            groups["optimizer__param_groups"] = [("encoder.*", {"lr": self.encoder_lr})]
        net = self._noisy_label_net(phase, module, n_samples, epochs=self.max_epochs,
                                    record_epochs=self.gmm_epochs, callbacks=callbacks,
                                    **groups)
        seed = _phase_seed(self._seed, 2 if phase == "a2" else 4)
        self._fit_net(net, phase, seed, data, y, self.max_epochs)
        # With warmup_epochs >= max_epochs the Unfreezer never fired: unfreeze
        # here, or b2 (which copies this encoder) would train no encoder weight.
        for param in encoder.parameters():
            param.requires_grad_(True)
        return net

    def _select(self, net, data, pseudo):
        """b1: GMM on the per-sample losses against the pseudo-labels.

        As in the authors' code, a classifier head is first trained briefly
        (``gmm_epochs`` epochs, a fresh head on a frozen copy of a2's encoder,
        with ``loss``) on the pseudo-labels; each epoch ends with an
        eval-mode, un-augmented pass whose cross-entropy against the
        pseudo-labels is min-max normalised; the epochs are averaged and a
        2-component GMM gives ``p(pseudo-label correct | loss)``.
        """
        with _torch_seeded(_phase_seed(self._seed, 13), self._device):
            head = ClassifierHead(net.module_.encoder.out_features, len(self.classes_))
        encoder = copy.deepcopy(net.module_.encoder)
        for param in encoder.parameters():
            param.requires_grad_(False)
        self.selection_net_ = self._noisy_label_net(
            "b1", ClassifierModule(encoder, head), len(pseudo), epochs=self.gmm_epochs,
            record_epochs=self.gmm_epochs, callbacks=[])
        self._fit_net(self.selection_net_, "b1", _phase_seed(self._seed, 6), data, pseudo,
                      self.gmm_epochs)
        losses = self._recorded_losses(self.selection_net_, data, pseudo)
        return self._gmm(losses, "pseudo", 7)

    def _recorded_losses(self, net, data, y):
        """The net's averaged normalised eval-mode losses; one pass if none were recorded."""
        losses = net.mean_recorded_loss()
        if losses is None:  # e.g. a phase stopped before its recorded epochs
            losses = net.eval_losses(data, y)
        return losses

    def _gmm(self, losses, key, phase):
        """GMM posterior of the low-loss component; keeps its input in ``gmm_losses_``."""
        self.gmm_losses_[key] = np.asarray(losses, dtype=np.float64)
        # Data-parallel fit: rank 0 fits the GMM, every process gets its posterior.
        return _distributed.on_rank0(lambda: gmm_clean_probability(
            losses, normalise=False, random_state=_phase_seed(self._seed, phase) % 2**31))

    def _contrast(self, net, projection, data, pseudo):
        """b2: weighted supervised contrastive training (eq. 8) of a2's encoder."""
        encoder = copy.deepcopy(net.module_.encoder)
        projection = copy.deepcopy(projection)
        module = ContrastiveModule(encoder, projection)
        self.encoder_net_ = self._contrastive_net(
            module, WeightedSupConLoss, self.finetune_epochs, "b2", n_samples=len(pseudo))
        data = dict(data, weight=torch.as_tensor(self.sample_weights_, dtype=torch.float32))
        self._fit_net(self.encoder_net_, "b2", _phase_seed(self._seed, 3), data, pseudo,
                      self.finetune_epochs)
        return encoder

    def _bootstrap(self, net, data, y):
        """Section 6.4: dynamic bootstrapping with mixup (Arazo et al.) of a copy of
        a2's classifier on the given labels ``y``."""
        module = copy.deepcopy(net.module_)
        for param in module.parameters():
            param.requires_grad_(True)
        epochs = self.max_epochs if self.bootstrap_epochs is None else self.bootstrap_epochs
        lr = self.lr / 10 if self.bootstrap_lr is None else self.bootstrap_lr
        boot = self._noisy_label_net(
            "bootstrap", module, len(y), epochs=epochs, record_epochs=0, callbacks=[],
            net_class=BootstrapNet, lr=lr, criterion=MixupBootstrappingLoss,
            variant=self.bootstrap_variant, mixup_alpha=self.bootstrap_mixup_alpha,
            reg_weight=self.bootstrap_reg_weight)
        self._fit_net(boot, "bootstrap", _phase_seed(self._seed, 8), data, y, epochs)
        if getattr(boot, "noise_prob_", None) is not None:
            self.bootstrap_noise_prob_ = boot.noise_prob_
        return boot

    # -------------------------------------------------------------- helpers
    def _noisy_label_net(self, phase, module, n_samples, *, epochs, record_epochs, callbacks,
                         net_class=NoisyLabelNet, lr=None, criterion=None, **net_kwargs):
        """The skorch net of a supervised phase (a2, b1's head, b3) trained with ``loss``
        (or of bootstrapping: ``net_class``, ``criterion`` and ``net_kwargs``)."""
        callbacks = [("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=epochs)),
                     *callbacks]
        if self.verbose:
            what = {"b1": f"pseudo-label head ({self.loss})",
                    "bootstrap": f"dynamic bootstrapping ({self.bootstrap_variant}, mixup)"
                    }.get(phase, f"classifier ({self.loss})")
            callbacks.append(("progress", _PhaseProgress(f"{phase} {what}", epochs,
                                                         self.verbose)))
        kind, kwargs = self._augment_spec(contrastive=False)
        if criterion is None:
            criterion = make_criterion(
                self.loss, n_samples=n_samples, n_classes=len(self.classes_),
                nfl_gamma=self.nfl_gamma, nfl_alpha=self.nfl_alpha, rce_beta=self.rce_beta,
                rce_log_zero=self.rce_log_zero, elr_lambda=self.elr_lambda,
                elr_beta=self.elr_beta,
            )
        return net_class(
            module, criterion, augmenter=kind, **_prefixed("augmenter", kwargs),
            n_samples=n_samples, record_epochs=record_epochs,
            precision=self.precision_, channels_last=self._channels_last(),
            optimizer=torch.optim.SGD, optimizer__momentum=0.9,
            optimizer__weight_decay=self.weight_decay, lr=self.lr if lr is None else lr,
            max_epochs=epochs, batch_size=self.batch_size, train_split=None,
            callbacks=callbacks, iterator_train__shuffle=True,
            iterator_train__drop_last=_drop_last(n_samples, self.batch_size),
            device=self._device, verbose=max(0, self.verbose - 1), **net_kwargs,
        )

    def _contrastive_net(self, module, criterion, epochs, phase, n_samples):
        kind, kwargs = self._augment_spec(contrastive=True)
        if phase == "b2":
            temperature = self.finetune_temperature
            criterion_kwargs = {"weighting": self.supcon_weighting}
        else:
            temperature, criterion_kwargs = self.temperature, {}
        return _build_contrastive_net(
            module, criterion, name=f"{phase} contrastive training", epochs=epochs,
            lr=self.pretrain_lr, batch_size=self.batch_size, temperature=temperature,
            weight_decay=self.weight_decay, augment_kind=kind, augment_kwargs=kwargs,
            n_samples=n_samples, device=self._device, verbose=self.verbose,
            precision=self.precision_, channels_last=self._channels_last(),
            criterion_kwargs=criterion_kwargs,
        )

    def _fit_net(self, net, phase, seed, data, y, epochs):
        """Fit one skorch net under a private torch RNG; handle divergence/interrupts."""
        with torch.random.fork_rng(devices=_fork_devices(self._device)):
            torch.manual_seed(seed)
            try:
                net.fit(data, y)
            except DivergenceError as exc:
                net.restore_last_finite()
                _finish_progress(net, "diverged")
                self._warn_diverged(phase, str(exc))
        self.history_[phase] = [dict(row) for row in net.history]
        # The net records a KeyboardInterrupt that skorch swallowed (the
        # history length cannot tell: the interrupted epoch has its row).
        if getattr(net, "interrupted_", False):
            self._note_interrupted(phase)

    def _warn_diverged(self, phase, message):
        self.diverged_phases_.append(phase)
        warnings.warn(
            f"Phase {phase} diverged: {message} Its weights were restored from the "
            f"end of its last finished epoch and fit continued; lower the learning rate.",
            DivergenceWarning, stacklevel=4,
        )

    def _note_interrupted(self, phase):
        self.interrupted_phase_ = phase
        warnings.warn(
            f"fit was interrupted during phase {phase}; the remaining phases were skipped.",
            UserWarning, stacklevel=4,
        )

    def _base_seed(self):
        if self.random_state is None:
            # Fresh OS entropy: does not consume numpy's global RNG.
            return int(np.random.SeedSequence().generate_state(1)[0])
        rng = check_random_state(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    def _memory(self):
        if self.memory is None:
            return None
        if hasattr(self.memory, "cache"):
            return self.memory
        from joblib import Memory
        return Memory(location=os.fspath(self.memory), verbose=0)

    def _augment_spec(self, *, contrastive):
        """(kind, kwargs) of the augmenter for the current input type and phase."""
        if len(self.input_shape_) == 1:
            if contrastive:
                return "tabular", {"corruption_rate": self.corruption_rate}
            return "none", {}
        hflip = self.hflip_prob
        if hflip == "auto":
            hflip = 0.5 if self.input_shape_[0] == 3 else 0.0
        if contrastive:
            return "simclr", {"crop_scale": (self.min_crop_scale, 1.0), "hflip_prob": hflip,
                              "value_range": self._value_range()}
        return "weak", {"hflip_prob": hflip}

    def _value_range(self):
        """Range of the images as the nets see them, for the colour ops' clamping.

        [0, 1] for uint8 input (scaled by 1/255) and floats within [0, 1]-ish,
        [0, 255] for floats on that scale, else the training (min, max).
        """
        spec = getattr(self, "_input_spec", None)
        domain = getattr(spec, "domain", "unit")
        if domain == "unit" and spec is not None and spec.dtype == "float":
            lo, hi = spec.value_range
            return (min(0.0, float(lo)), max(1.0, float(hi)))
        if domain == "raw":
            return (0.0, 255.0)
        if domain == "other":
            lo, hi = spec.value_range
            return (float(lo), float(hi))
        return (0.0, 1.0)

    def _channels_last(self):
        """Channels-last memory format for the built-in conv encoders on images
        (a user's module may reshape its activations with ``view``, which
        channels-last tensors do not allow)."""
        return len(self.input_shape_) == 3 and self.encoder_kind_ in ("cnn", "resnet18")

    def _encoder_spec(self):
        """``(encoder, kwargs)`` for :func:`make_encoder`: a name, or the user's module and the
        ``encoder__*`` parameters without their prefix."""
        if self.encoder_kind_ != "custom":
            return self.encoder_kind_, {}
        kwargs = {key[len("encoder__"):]: value
                  for key, value in self._encoder_params().items()}
        return self.encoder, kwargs

    def _new_encoder(self):
        encoder, kwargs = self._encoder_spec()
        return make_encoder(encoder, self.input_shape_, self._mean, self._scale, **kwargs)

    # ---------------------------------------------------------- input prep
    def _validate_fit_input(self, X, y):
        if self.image_size is not None:
            raise ValueError(
                f"image_size={self.image_size!r} resizes the images of a torch Dataset X; "
                f"array X is never resized: resize it first, or pass image_size=None."
            )
        _input.check_X_kind(X, fitting=True)
        _input.check_same_n_samples(X, y, _num_samples)
        X, y = validate_data(
            self, X, y, allow_nd=True, dtype=[np.float32, np.float64, np.uint8],
            ensure_all_finite=True, ensure_min_samples=2, y_numeric=False,
        )
        check_classification_targets(y)
        X = self._to_sample_layout(X, fitting=True)
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self._resize_to = None
        self._resolve_encoder_kind(f"X with shape {X.shape}")
        self._mean, self._scale = _input.standardization(X)
        self._check_custom_encoder()
        return X, y

    def _resolve_encoder_kind(self, what):
        """Set ``encoder_kind_`` for ``input_shape_``; ``ValueError`` for encoder__* parameters
        without an encoder class and for a conv encoder on tabular input (``what``)."""
        is_image = len(self.input_shape_) == 3
        encoder_params = self._encoder_params()
        custom = not isinstance(self.encoder, str)
        if encoder_params and not is_module_class(self.encoder):
            given = (f"an instance of {type(self.encoder).__name__}" if custom
                     else repr(self.encoder))
            raise ValueError(
                f"encoder__* parameters ({', '.join(encoder_params)}) are keyword arguments "
                f"of an encoder class, but encoder={given} is not a torch.nn.Module class; "
                f"pass the class, or drop them."
            )
        if custom:
            self.encoder_kind_ = "custom"
        elif self.encoder == "auto":
            self.encoder_kind_ = "cnn" if is_image else "mlp"
        elif self.encoder in ("cnn", "resnet18") and not is_image:
            raise ValueError(
                f"encoder={self.encoder!r} needs image input: pass image_shape=(C, H, W) "
                f"for 2-D X, or 3-D/4-D X; got {what}."
            )
        else:
            self.encoder_kind_ = self.encoder

    def _check_custom_encoder(self):
        if self.encoder_kind_ == "custom":
            # Build it once now, so that a module that cannot take this input or
            # does not return (batch, d) features fails before any training (a
            # dry forward pass in make_encoder); the caller's RNG is left alone.
            with torch.random.fork_rng(devices=[]):
                self._new_encoder()

    def _validate_stream_input(self, X, y):
        """``(ImageStream, labels)`` of a torch Dataset ``X`` (see ``fit``).

        Checks what can be checked cheaply first (the dataset, ``image_size``,
        ``y``, the first image, the encoder on it), then makes the one pass over
        the data: standardisation statistics, labels when ``y`` is None, and a
        digest of the images for ``memory``.
        """
        size = _streaming.check_image_size(self.image_size)
        n = _streaming.check_dataset(X)
        if n < 2:
            raise ValueError(f"X is a Dataset of {n} item(s); fit needs at least 2.")
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1:
                raise ValueError(f"y must be 1-D (one label per item of X); got an array of "
                                 f"shape {y.shape}.")
            if len(y) != n:
                raise ValueError(f"X and y must have the same number of samples; got {n} "
                                 f"items in the Dataset X and {len(y)} labels in y.")
            check_classification_targets(y)
        first, _ = _streaming.ImageStream(X, size=size).read(0)
        self.input_shape_ = tuple(int(s) for s in first.shape)
        self._resize_to = size
        self._resolve_encoder_kind(f"a Dataset of images of shape {self.input_shape_}")
        # Placeholder statistics: a bad encoder fails before the pass over the data.
        c = self.input_shape_[0]
        self._mean = np.zeros((c, 1, 1), np.float32)
        self._scale = np.ones((c, 1, 1), np.float32)
        self._check_custom_encoder()
        stream = _streaming.ImageStream(X, size=size, image_shape=self.input_shape_,
                                        num_workers=self.num_workers)
        stats = _streaming.scan(stream, digest=self._memory() is not None)
        stream.digest = stats.digest
        self._mean, self._scale = stats.mean, stats.scale
        if y is None:
            missing = [i for i, label in enumerate(stats.labels) if label is None]
            if missing:
                raise ValueError(
                    f"y is None, so the labels are read from the items of X, but X[{missing[0]}]"
                    f" has no label ({len(missing)} item(s) without one): pass y, or a Dataset "
                    f"whose items are (image, label)."
                )
            y = np.asarray(stats.labels)
            check_classification_targets(y)
        self._input_spec = _input.InputSpec(
            is_image=True, ndim=4, data_format=self.data_format, layout="channels_first",
            dtype="uint8", value_range=stats.value_range, domain="unit")
        # Array-only attributes of an earlier fit (validate_data sets them).
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        return stream, y

    def _to_sample_layout(self, X, fitting):
        """Float32 (n, C, H, W) images or (n, D) features of validated X (see ``_input``).

        ``fit`` records what it saw and chose (layout, value kind and range)
        in ``_input_spec``; ``predict`` reads its input the same way.  Never
        modifies X in place.
        """
        if fitting:
            X, self._input_spec = _input.fit_layout(
                X, image_shape=self.image_shape, data_format=self.data_format)
            return X
        spec = getattr(self, "_input_spec", None)
        if spec is None:  # a model pickled before data_format existed
            return _input.legacy_layout(X, self.image_shape, fitting=False,
                                        input_shape=self.input_shape_)
        return _input.predict_layout(X, spec, input_shape=self.input_shape_)

    def _make_data(self, X, sample_weight):
        n = len(X)
        return {
            "x": X if isinstance(X, _streaming.ImageStream) else torch.from_numpy(X),
            "index": torch.arange(n),
            "sample_weight": torch.as_tensor(sample_weight, dtype=torch.float32),
        }

    def _check_predict_input(self, X):
        check_is_fitted(self)
        if _streaming.is_dataset(X):
            return self._predict_stream(X)
        _input.check_X_kind(X, fitting=False)
        X = validate_data(self, X, reset=False, allow_nd=True,
                          dtype=[np.float32, np.float64, np.uint8], ensure_all_finite=True)
        return self._to_sample_layout(X, fitting=False)

    def _predict_stream(self, X):
        """:class:`~noisyclf._streaming.ImageStream` of a predict-time Dataset ``X``: images
        resized as in ``fit`` and of the fitted shape."""
        spec = getattr(self, "_input_spec", None)
        if len(self.input_shape_) != 3:
            raise ValueError(
                f"X is a torch Dataset (images) but this estimator was fitted on tabular "
                f"features of shape {self.input_shape_}; pass an array as in fit."
            )
        if spec is not None and spec.domain != "unit":
            lo, hi = spec.value_range
            raise ValueError(
                f"X is a torch Dataset, whose images are read as 8-bit pixels scaled to "
                f"[0, 1], but this estimator was fitted on float images with values in "
                f"[{lo:g}, {hi:g}]; pass an array on the training scale instead."
            )
        _streaming.check_dataset(X)
        return _streaming.ImageStream(
            X, size=getattr(self, "_resize_to", None), image_shape=self.input_shape_,
            num_workers=self.num_workers, reference="every image this estimator was fitted on")

    def __sklearn_is_fitted__(self):
        return hasattr(self, "classifier_net_")

    def _predict_encoded(self, net, data, proba=True):
        """Logits (or softmax probabilities, float64) of ``net`` in eval mode."""
        # Forked: every DataLoader iteration draws a seed from torch's global RNG.
        with torch.random.fork_rng(devices=_fork_devices(net.device)):
            logits = net.forward({"x": data["x"]}, training=False, device="cpu")
        logits = logits.double()
        return (torch.softmax(logits, dim=1) if proba else logits).numpy()

    # -------------------------------------------------------------- predict
    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : array-like, same layout as in ``fit``, or torch.utils.data.Dataset
            A Dataset of images (item ``i``: an image or ``(image, label,
            ...)``, labels ignored) is streamed as in ``fit``, its images
            resized to the fitted ``image_size``; row ``i`` is item ``i``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        if not self.__sklearn_is_fitted__() and getattr(self, "interrupted_phase_", None):
            raise NotFittedError(
                f"fit was interrupted in phase {self.interrupted_phase_} before a classifier "
                f"was trained; call fit again."
            )
        X = self._check_predict_input(X)
        x = X if isinstance(X, _streaming.ImageStream) else torch.from_numpy(X)
        return self._predict_encoded(self.classifier_net_, {"x": x})

    def predict(self, X):
        """Predicted labels (from ``classes_``).

        Parameters
        ----------
        X : array-like, same layout as in ``fit``, or torch.utils.data.Dataset
            See :meth:`predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``(X, y)``.

        Unlike scikit-learn's default, which silently counts labels never
        seen in ``fit`` as errors, a ``y`` holding such labels raises a
        ``ValueError`` that lists them: they usually mean a label encoding
        that differs from the one used in ``fit``.

        Parameters
        ----------
        X : array-like, same layout as in ``fit``, or torch.utils.data.Dataset
            See :meth:`predict_proba`.
        y : array-like of shape (n_samples,) or None, default=None
            True labels, all from ``classes_``.  ``None`` only for a Dataset
            ``X``: the second element of its items (read in one more pass).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if y is None and _streaming.is_dataset(X):
            labels = _streaming.read_labels(self._predict_stream(X))
            missing = [i for i, label in enumerate(labels) if label is None]
            if missing:
                raise ValueError(
                    f"y is None, so the labels are read from the items of X, but "
                    f"X[{missing[0]}] has no label: pass y."
                )
            y = np.asarray(labels)
        elif y is None:
            raise ValueError("score needs the true labels y (only a Dataset X can give them "
                             "itself).")
        y_arr = np.asarray(y)
        if y_arr.ndim == 1:
            seen = set(self.classes_.tolist())
            unseen = sorted({v for v in y_arr.tolist() if v not in seen}, key=repr)
            if unseen:
                raise ValueError(
                    f"y contains labels not seen in fit: {unseen}; the fitted classes are "
                    f"{self.classes_.tolist()}."
                )
        return super().score(X, y, sample_weight=sample_weight)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def transform(self, X):
        """Encoder embeddings of ``X`` from the predicting model's encoder.

        Parameters
        ----------
        X : array-like, same layout as in ``fit``, or torch.utils.data.Dataset
            See :meth:`predict_proba`.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_embedding)
        """
        X = self._check_predict_input(X)
        net = self.classifier_net_
        module = net.module_
        was_training = module.training
        module.eval()
        out = []
        if isinstance(X, _streaming.ImageStream):
            batches = (xb["x"] for xb, _ in _streaming.batches({"x": X}, None, 1024))
        else:
            batches = (torch.from_numpy(X[start:start + 1024])
                       for start in range(0, len(X), 1024))
        with torch.no_grad():
            for xb in batches:
                xb = net.prepare_input(xb)
                out.append(module.embed(xb).float().cpu())
        module.train(was_training)
        return torch.cat(out).numpy()

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit on ``(X, y)`` and return the embeddings of ``X`` (:meth:`transform`).

        A Dataset ``X`` is streamed twice: by ``fit``, then by ``transform``.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_embedding)
        """
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def find_label_issues(self, y=None):
        """Label issues of the training set, as a DataFrame like cleanlab's.

        The columns are those of cleanlab's
        ``CleanLearning.find_label_issues``, one row per training sample
        (index 0..n-1, in training order), so that
        ``sort_values("label_quality")`` ranks the most suspicious given
        labels first.  Nothing is recomputed: the columns are the fitted
        attributes, found during ``fit`` from phase a2's losses against the
        given labels (see ``label_quality_``), not from cross-validated
        predictions as in cleanlab.

        Parameters
        ----------
        y : array-like of shape (n_samples,), default=None
            The labels passed to ``fit``, for the ``given_label`` column; the
            estimator does not keep them.  Without ``y`` that column is left
            out.

        Returns
        -------
        label_issues : pandas.DataFrame of shape (n_samples, 4) or (n_samples, 3)
            Columns:

            * ``is_label_issue`` (bool): ``label_issues_``, i.e.
              ``label_quality < 0.5``.
            * ``label_quality`` (float): ``label_quality_``, the probability
              that the given label is correct; lower is more suspicious.
            * ``given_label``: ``y`` (only when ``y`` is passed), as values of
              ``classes_``.
            * ``predicted_label``: ``pseudo_labels_``, phase a2's prediction
              for the sample, a candidate correction.

        Raises
        ------
        NotFittedError
            If the estimator has no ``label_quality_`` yet.
        ValueError
            If ``y`` is not 1-D, does not have one label per training sample
            or holds labels not seen in ``fit``.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
        >>> X, y = load_digits(return_X_y=True)
        >>> X, y = X[:200], y[:200]
        >>> y_noisy = make_noisy_labels(y, "symmetric", 0.3, random_state=0)
        >>> clf = ContrastiveNoisyClassifier(
        ...     phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=3,
        ...     warmup_epochs=1, gmm_epochs=2, random_state=0).fit(X, y_noisy)
        >>> issues = clf.find_label_issues(y_noisy)
        >>> list(issues.columns)
        ['is_label_issue', 'label_quality', 'given_label', 'predicted_label']
        >>> len(issues)
        200
        >>> ranked = issues.sort_values("label_quality")  # most suspicious first
        >>> bool(ranked["label_quality"].is_monotonic_increasing)
        True
        """
        check_is_fitted(self, ["label_quality_", "label_issues_", "pseudo_labels_"])
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is an optional dependency
            raise ImportError(
                "find_label_issues returns a pandas DataFrame: install pandas "
                "(pip install pandas)."
            ) from exc
        n_samples = len(self.label_quality_)
        columns = {
            "is_label_issue": np.asarray(self.label_issues_, dtype=bool),
            "label_quality": np.asarray(self.label_quality_, dtype=np.float64),
        }
        if y is not None:
            y = _input.check_training_labels(y, "y", n_samples)
            unseen = ~np.isin(y, self.classes_)
            if unseen.any():
                raise ValueError(
                    f"y contains labels not seen in fit: "
                    f"{sorted(set(y[unseen].tolist()), key=repr)}; pass the labels given "
                    f"to fit (classes {self.classes_.tolist()})."
                )
            columns["given_label"] = self.classes_[np.searchsorted(self.classes_, y)]
        columns["predicted_label"] = np.asarray(self.pseudo_labels_)
        return pd.DataFrame(columns)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # transform() gives float32 embeddings whatever the input dtype.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        tags.non_deterministic = self.random_state is None
        return tags

    def __setstate__(self, state):
        # A model fitted on a GPU loads on a CPU-only machine: skorch has already
        # mapped the nets to CPU (with a DeviceWarning); do the same for the
        # device the estimator recorded, so a later forward pass never asks for CUDA.
        device = state.get("_device")
        if (device is not None and torch.device(device).type == "cuda"
                and not torch.cuda.is_available()):
            state = dict(state, _device="cpu")
        super().__setstate__(state)
