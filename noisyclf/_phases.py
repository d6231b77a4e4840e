"""The panels of the paper's Figure 2, one function each (private).

:class:`~noisyclf.ContrastiveNoisyClassifier.fit` plans; these functions train.
Each takes the :class:`Run` of the fit (the hyperparameters and what ``fit``
resolved: seed, device, precision, input shape, standardisation) and returns
what it produced; the estimator stores it in its fitted attributes::

    pretrain                a1  SimCLR on encoder + projection head (NT-Xent, eq. 6)
    given_label_noise           how wrong the given labels look from a1's features
    a2_warmup_epochs            a2's frozen warm-up from that estimate
    train_classifier        a2  classifier head on the encoder, noise-robust loss (eqs. 1-5)
    classifier_outputs          a2's pseudo-labels and the quality of the given labels
    label_noise                 noise matrix; expected accuracy of given and pseudo-labels
    phase_b_decision            whether b2-b3 run ("auto": when the pseudo-labels win)
    pseudo_label_weights    b1  2-component GMM on losses against the pseudo-labels
    supervised_contrastive  b2  weighted supervised contrastive training (eq. 8)
    train_classifier        b3  final classifier on the pseudo-labels
    dynamic_bootstrapping       section 6.4: dynamic bootstrapping with mixup

Every phase is a skorch net made by :func:`build_net` and fitted by
:func:`fit_net`, under a torch RNG seeded from the fit's seed and the phase's
:class:`Seed` stream.  A phase whose loss diverges is restored to its last
finished epoch and the fit goes on (:class:`~noisyclf.exceptions.DivergenceWarning`);
a phase interrupted by the user (KeyboardInterrupt, swallowed by skorch) keeps
its weights, and the next phase to start raises :class:`FitInterrupted`,
which ends the fit.
"""

import contextlib
import copy
import dataclasses
import enum
import functools
import os
import types
import warnings

import numpy as np
import torch
from skorch.callbacks import Freezer, LRScheduler, Unfreezer

from . import _cache, _checkpoint, _distributed, _input, _streaming, confident_learning
from ._progress import PhaseProgress, finish_progress, n_epochs, say
from .bootstrap import BootstrapNet, MixupBootstrappingLoss
from .exceptions import DivergenceError, DivergenceWarning
from .losses import NTXentLoss, WeightedSupConLoss
from .modules import (
    ClassifierHead, ClassifierModule, ContrastiveModule, ProjectionHead, make_encoder,
)
from .nets import ContrastiveNet, NoisyLabelNet, make_criterion
from .selection import gmm_clean_probability, label_issue_mask

__all__ = ["A1Noise", "FitInterrupted", "Run", "Seed", "a2_warmup_epochs", "build_net",
           "classifier_outputs", "dynamic_bootstrapping", "embed", "fit_net",
           "given_label_noise", "label_noise", "phase_b_decision", "predict_probabilities",
           "pretrain", "pseudo_label_weights", "random_encoder", "resolve_warmup_epochs",
           "run_simclr", "supervised_contrastive", "train_classifier"]


class Seed(enum.IntEnum):
    """The seed streams of a fit: each draws one seed from the fit's seed (:meth:`Run.seed_for`)."""

    A1_TRAINING = 1
    A2_TRAINING = 2
    B2_TRAINING = 3
    B3_TRAINING = 4
    GIVEN_LABEL_GMM = 5
    B1_TRAINING = 6
    B1_GMM = 7
    BOOTSTRAP_TRAINING = 8
    BASELINE_ENCODER = 10
    A1_MODULE = 11
    A2_HEAD = 12
    B1_HEAD = 13
    B3_HEAD = 14
    NOISE_FOLDS = 15


def phase_seed(seed, stream):
    """Independent, reproducible seed of one stream of the fit seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, int(stream)]).generate_state(1)[0])


class FitInterrupted(Exception):
    """A phase was interrupted (KeyboardInterrupt): the phases after it do not run."""

    def __init__(self, phase):
        super().__init__(f"fit was interrupted during phase {phase}")
        self.phase = phase


def fork_devices(device):
    """The CUDA devices whose RNG :func:`torch.random.fork_rng` must save for ``device``."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return [torch.device(device).index or 0]
    return []


@contextlib.contextmanager
def torch_seeded(seed, device):
    """Run the block under torch's RNG seeded with ``seed``; restore the caller's after."""
    with torch.random.fork_rng(devices=fork_devices(device)):
        torch.manual_seed(seed)
        yield


@dataclasses.dataclass
class Run:
    """What the phases of one fit share: settings resolved by ``fit``, and the fit's log.

    ``hp`` holds the estimator's hyperparameters (``get_params``) by name;
    ``encoder_spec`` is ``(encoder, kwargs)`` for
    :func:`~noisyclf.modules.make_encoder` (a built-in encoder's name, or the
    user's module and its keyword arguments); ``channels_last``, whether the
    conv nets run in channels-last memory format
    (:func:`~noisyclf.modules.runs_channels_last`).
    ``history``, ``gmm_losses`` and ``diverged`` are filled as the phases run
    (the estimator exposes them as ``history_``, ``gmm_losses_`` and
    ``diverged_phases_``); ``interrupted`` names the phase a KeyboardInterrupt
    stopped.  ``checkpoint`` (or None) is where the phases save their progress
    and find what an earlier, killed run of the same fit saved.
    """

    hp: types.SimpleNamespace
    seed: int
    device: str
    precision: str
    input_shape: tuple
    mean: np.ndarray
    scale: np.ndarray
    n_classes: int
    encoder_kind: str
    encoder_spec: tuple
    channels_last: bool = False
    value_range: tuple = (0.0, 1.0)
    history: dict = dataclasses.field(default_factory=dict)
    gmm_losses: dict = dataclasses.field(default_factory=dict)
    diverged: list = dataclasses.field(default_factory=list)
    interrupted: str = None
    checkpoint: _checkpoint.FitCheckpoint = None

    def seed_for(self, stream):
        """The seed of one :class:`Seed` stream."""
        return phase_seed(self.seed, stream)

    def new_encoder(self):
        """A freshly initialised encoder (under torch's current RNG)."""
        encoder, kwargs = self.encoder_spec
        return make_encoder(encoder, self.input_shape, self.mean, self.scale, **kwargs)

    def augmentation(self, *, contrastive):
        """``(kind, kwargs)`` of the augmenter of a contrastive (a1, b2) or supervised phase."""
        if len(self.input_shape) == 1:
            if contrastive:
                return "tabular", {"corruption_rate": self.hp.corruption_rate}
            return "none", {}
        hflip = self.hp.hflip_prob
        if hflip == "auto":
            hflip = 0.5 if self.input_shape[0] == 3 else 0.0
        if contrastive:
            return "simclr", {"crop_scale": (self.hp.min_crop_scale, 1.0), "hflip_prob": hflip,
                              "value_range": self.value_range}
        return "weak", {"hflip_prob": hflip}

    def begin(self, phase):
        """Start ``phase``: :class:`FitInterrupted` when an earlier phase was interrupted."""
        if self.interrupted:
            raise FitInterrupted(self.interrupted)

    def epoch_file(self, phase):
        """Where ``phase``'s net is saved at the end of its epochs (None: not saved)."""
        return None if self.checkpoint is None else self.checkpoint.epoch_file(phase)

    def note_diverged(self, phase, message):
        self.diverged.append(phase)
        warnings.warn(
            f"Phase {phase} diverged: {message} Its weights were restored from the "
            f"end of its last finished epoch and fit continued; lower the learning rate.",
            DivergenceWarning, stacklevel=4,
        )

    def note_interrupted(self, phase):
        self.interrupted = phase
        warnings.warn(
            f"fit was interrupted during phase {phase}; the remaining phases were skipped.",
            UserWarning, stacklevel=4,
        )


def _phase(name=None):
    """Decorate the function of one phase (``name``, else its first argument after ``run``).

    The phase starts with :meth:`Run.begin`; with a checkpoint, a phase that
    an earlier run of the same fit finished is loaded instead of run (its
    result and its log), and a phase that finishes is saved.
    """
    def decorate(function):
        @functools.wraps(function)
        def run_phase(run, *args, **kwargs):
            phase = name or args[0]
            run.begin(phase)
            saved = None if run.checkpoint is None else run.checkpoint.load(phase)
            # Data-parallel: each process has its own checkpoint; all load or none does.
            if run.checkpoint is not None and not _distributed.all_equal(saved is not None):
                saved = None
            if saved is not None:
                _restore_log(run, phase, saved["log"])
                return saved["result"]
            gmm_keys = set(run.gmm_losses)
            result = function(run, *args, **kwargs)
            if run.checkpoint is not None and run.interrupted != phase:
                log = {"history": run.history.get(phase), "diverged": phase in run.diverged,
                       "gmm_losses": {k: v for k, v in run.gmm_losses.items()
                                      if k not in gmm_keys}}
                run.checkpoint.save(phase, {"result": result, "log": log})
                with contextlib.suppress(OSError):
                    os.unlink(run.epoch_file(phase))
            return result
        return run_phase
    return decorate


def _restore_log(run, phase, log):
    if log["history"] is not None:
        run.history[phase] = log["history"]
    run.gmm_losses.update(log["gmm_losses"])
    if log["diverged"]:
        run.diverged.append(phase)
    if run.hp.verbose:
        say(f"{phase}: loaded from checkpoint ({run.checkpoint.path})")


# ------------------------------------------------------------------ nets
def _prefixed(prefix, kwargs):
    return {f"{prefix}__{k}": v for k, v in kwargs.items()}


def _drop_last(n_samples, batch_size):
    # A final batch of one sample breaks BatchNorm in training mode.
    return n_samples > batch_size and n_samples % batch_size == 1


def build_net(net_class, module, criterion, *, name, epochs, lr, batch_size, weight_decay,
              n_samples, augment_kind, augment_kwargs, device, precision, channels_last,
              verbose, callbacks=(), checkpoint=None, **net_kwargs):
    """The skorch net of one phase: SGD with momentum 0.9 and cosine annealing over
    ``epochs``, shuffled batches (the last one dropped when it would hold one sample),
    the phase's progress (``name``) when ``verbose``, and its epochs saved to the file
    ``checkpoint`` when given."""
    callbacks = [("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=epochs)),
                 *callbacks]
    if verbose:
        callbacks.append(("progress", PhaseProgress(name, epochs, verbose)))
    if checkpoint is not None:
        callbacks.append(("checkpoint", _checkpoint.EpochCheckpoint(checkpoint, epochs)))
    if issubclass(net_class, NoisyLabelNet):  # per-sample state: ELR targets, recorded losses
        net_kwargs["n_samples"] = n_samples
    return net_class(
        module, criterion, augmenter=augment_kind, **_prefixed("augmenter", augment_kwargs),
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, optimizer__weight_decay=weight_decay,
        lr=lr, max_epochs=epochs, batch_size=batch_size, train_split=None, callbacks=callbacks,
        iterator_train__shuffle=True, iterator_train__drop_last=_drop_last(n_samples, batch_size),
        precision=precision, channels_last=channels_last, device=device,
        verbose=max(0, verbose - 1), **net_kwargs,
    )


def _net_settings(run, n_samples, *, contrastive):
    """The :func:`build_net` arguments every phase of ``run`` shares."""
    kind, kwargs = run.augmentation(contrastive=contrastive)
    return dict(batch_size=run.hp.batch_size, weight_decay=run.hp.weight_decay,
                n_samples=n_samples, augment_kind=kind, augment_kwargs=kwargs, device=run.device,
                precision=run.precision, channels_last=run.channels_last,
                verbose=run.hp.verbose)


def _contrastive_net(run, module, phase, n_samples):
    """The net of b2 (weighted SupCon, eq. 8), or a1's (NT-Xent, eq. 6) as the estimator
    exposes it with a1's weights (a1 trains in :func:`run_simclr`)."""
    if phase == "b2":
        criterion, epochs, temperature = (
            WeightedSupConLoss, run.hp.finetune_epochs, run.hp.finetune_temperature)
        criterion_kwargs = {"weighting": run.hp.supcon_weighting}
    else:
        criterion, epochs, temperature = NTXentLoss, run.hp.pretrain_epochs, run.hp.temperature
        criterion_kwargs = {}
    return build_net(
        ContrastiveNet, module, criterion, name=f"{phase} contrastive training", epochs=epochs,
        lr=run.hp.pretrain_lr, criterion__temperature=temperature,
        **_prefixed("criterion", criterion_kwargs),
        checkpoint=run.epoch_file(phase) if phase == "b2" else None,  # a1 saves in run_simclr
        **_net_settings(run, n_samples, contrastive=True),
    )


def _noisy_label_net(run, phase, module, n_samples, *, epochs, record_epochs, callbacks=(),
                     net_class=NoisyLabelNet, lr=None, criterion=None, **net_kwargs):
    """The net of a supervised phase (a2, b1's head, b3) trained with ``loss`` (or of
    bootstrapping: ``net_class``, ``criterion`` and ``net_kwargs``)."""
    hp = run.hp
    what = {"b1": f"pseudo-label head ({hp.loss})",
            "bootstrap": f"dynamic bootstrapping ({hp.bootstrap_variant}, mixup)",
            }.get(phase, f"classifier ({hp.loss})")
    if criterion is None:
        criterion = make_criterion(
            hp.loss, n_samples=n_samples, n_classes=run.n_classes, nfl_gamma=hp.nfl_gamma,
            nfl_alpha=hp.nfl_alpha, rce_beta=hp.rce_beta, rce_log_zero=hp.rce_log_zero,
            elr_lambda=hp.elr_lambda, elr_beta=hp.elr_beta,
        )
    return build_net(
        net_class, module, criterion, name=f"{phase} {what}", epochs=epochs,
        lr=hp.lr if lr is None else lr, callbacks=callbacks, checkpoint=run.epoch_file(phase),
        record_epochs=record_epochs, **_net_settings(run, n_samples, contrastive=False),
        **net_kwargs,
    )


def _fit_or_resume(net, device, data, y, checkpoint=None):
    """Fit ``net`` under torch's current RNG, or continue the net saved at the end of an
    epoch in the file ``checkpoint``, with the RNG state saved with it.

    Returns ``(net, diverged message or None, interrupted)``: the net that
    trained (the saved one when it resumed).
    """
    saved = _checkpoint.load_epoch(checkpoint)
    # Data-parallel: every process resumes from the same epoch, or all start afresh.
    if checkpoint is not None and not _distributed.all_equal(
            -1 if saved is None else len(saved[0].history)):
        saved = None
    diverged = None
    try:
        if saved is None:
            net.fit(data, y)
        else:
            net, rng = saved
            _checkpoint.set_rng_state(rng, device)
            net.partial_fit(data, y, epochs=net.max_epochs - len(net.history))
    except DivergenceError as exc:
        net.restore_last_finite()
        finish_progress(net, "diverged")
        diverged = str(exc)
    # The net records a KeyboardInterrupt that skorch swallowed (the history
    # length cannot tell: the interrupted epoch has its row).
    return net, diverged, bool(getattr(net, "interrupted_", False))


def fit_net(run, net, phase, stream, data, y):
    """Fit one phase's net (seed stream ``stream``); log its history, divergence, interrupt.

    Returns the net that trained: ``net``, or the one a checkpoint resumed.
    """
    with torch_seeded(run.seed_for(stream), run.device):
        net, diverged, interrupted = _fit_or_resume(net, run.device, data, y,
                                                    checkpoint=run.epoch_file(phase))
    if diverged:
        run.note_diverged(phase, diverged)
    run.history[phase] = [dict(row) for row in net.history]
    if interrupted:
        run.note_interrupted(phase)
    return net


def predict_probabilities(net, x, flip=False):
    """Softmax class probabilities (float64 ndarray) of ``net`` in eval mode on input ``x``;
    with ``flip``, the mean of those of each image and of its horizontal mirror."""
    views = [False, True] if flip else [False]
    proba = 0.0
    # Forked: every DataLoader iteration draws a seed from torch's global RNG.
    with torch.random.fork_rng(devices=fork_devices(net.device)):
        for mirrored in views:
            with _mirrored_input(net.module_) if mirrored else contextlib.nullcontext():
                logits = net.forward({"x": x}, training=False, device="cpu")
            proba = proba + torch.softmax(logits.double(), dim=1)
    return (proba / len(views)).numpy()


@contextlib.contextmanager
def _mirrored_input(module):
    """``module`` receives its image batches mirrored left to right (the last axis, width);
    ``flip`` keeps their memory format."""
    def mirror(_, args, kwargs):  # skorch passes a dict input's "x" as a keyword
        if "x" in kwargs:
            return args, dict(kwargs, x=kwargs["x"].flip(-1))
        return (args[0].flip(-1), *args[1:]), kwargs
    handle = module.register_forward_pre_hook(mirror, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def embed(net, X, batch_size=1024):
    """Encoder embeddings (float32) of samples ``X`` (an array or an ImageStream) from the
    encoder of ``net``, in eval mode (its mode is restored after)."""
    module = net.module_
    was_training = module.training
    module.eval()
    out = []
    if isinstance(X, _streaming.ImageStream):
        batches = (xb["x"] for xb, _ in _streaming.batches({"x": X}, None, batch_size))
    else:
        batches = (torch.from_numpy(X[start:start + batch_size])
                   for start in range(0, len(X), batch_size))
    with torch.no_grad():
        for xb in batches:
            xb = net.prepare_input(xb)
            out.append(module.embed(xb).float().cpu())
    module.train(was_training)
    return torch.cat(out).numpy()


# ------------------------------------------------------------ panel a
def run_simclr(X, input_shape, encoder, mean, scale, *, epochs, lr, batch_size, temperature,
               weight_decay, projection_dim, augment_kwargs, augment_kind, seed, device,
               precision="fp32", channels_last=False, encoder_kwargs=None, encoder_key=None,
               data_key=None, verbose=0, checkpoint=None):
    """a1's training: SimCLR on a new encoder + projection head.  Label-free, so cached.

    Returns the encoder + projection head weights (CPU tensors), the skorch
    history as a list of dicts, the divergence message (or None) and whether
    it was interrupted.  Module-level and deterministic in its arguments so
    that :class:`joblib.Memory` can cache it: ``encoder`` (a name, a module
    class or a module instance) is left out of the cache key and stands in it
    as ``encoder_key`` (:func:`~noisyclf._cache.encoder_cache_key`); a
    streamed Dataset ``X`` (:class:`~noisyclf._streaming.ImageStream`) is left
    out too and stands in it as ``data_key``, the digest of its images.
    ``checkpoint`` (a file, or None) saves the net at the end of its epochs
    and resumes from it (left out of the cache key too).
    """
    with torch_seeded(seed, device):
        enc = make_encoder(encoder, input_shape, mean, scale, **(encoder_kwargs or {}))
        module = ContrastiveModule(enc, ProjectionHead(enc.out_features, projection_dim))
        net = build_net(
            ContrastiveNet, module, NTXentLoss, name="a1 SimCLR pre-training", epochs=epochs,
            lr=lr, criterion__temperature=temperature, batch_size=batch_size,
            weight_decay=weight_decay, n_samples=len(X), augment_kind=augment_kind,
            augment_kwargs=augment_kwargs, device=device, precision=precision,
            channels_last=channels_last, verbose=verbose, checkpoint=checkpoint,
        )
        net, diverged, interrupted = _fit_or_resume(net, device, {"x": _input.net_input(X)},
                                                    None, checkpoint)
        state = {k: v.detach().cpu().clone() for k, v in net.module_.state_dict().items()}
        history = [dict(row) for row in net.history]
    return state, history, diverged, interrupted


@dataclasses.dataclass
class Pretrained:
    """What a1 produced: a copy of the encoder for a2, the projection head for b2, the
    SimCLR net (its weights those of a1) and its history."""

    encoder: torch.nn.Module
    projection: torch.nn.Module
    net: ContrastiveNet
    history: list


def _simclr_weights(run, X):
    """``(state, history, diverged, interrupted)`` of a1, through ``memory`` when set."""
    hp = run.hp
    kind, kwargs = run.augmentation(contrastive=True)
    encoder, encoder_kwargs = run.encoder_spec
    memory = _cache.resolve_memory(hp.memory)
    streamed = isinstance(X, _streaming.ImageStream)
    args = (X, run.input_shape, encoder, run.mean, run.scale)
    kwargs = dict(
        epochs=hp.pretrain_epochs, lr=hp.pretrain_lr, batch_size=hp.batch_size,
        temperature=hp.temperature, weight_decay=hp.weight_decay,
        projection_dim=hp.projection_dim, augment_kwargs=kwargs, augment_kind=kind,
        seed=run.seed_for(Seed.A1_TRAINING), device=run.device, precision=run.precision,
        channels_last=run.channels_last, encoder_kwargs=encoder_kwargs,
        encoder_key=None if memory is None else _cache.encoder_cache_key(encoder, encoder_kwargs),
        data_key=X.digest if streamed and memory is not None else None, verbose=hp.verbose,
        checkpoint=run.epoch_file("a1"),
    )
    # The module itself is not hashed: encoder_key stands for it; nor is a
    # streamed Dataset: data_key, the digest of its images, does.  An
    # interrupted run is not kept.
    result, loaded = _cache.cached_call(
        memory, run_simclr, args, kwargs,
        ignore=["verbose", "encoder", "checkpoint"] + (["X"] if streamed else []),
        check_loaded=hp.verbose > 0, keep=lambda result: not result[3])
    if loaded:  # no progress was shown: the phase did not run
        history = result[1]
        loss = history[-1].get("train_loss", float("nan")) if history else float("nan")
        say(f"a1 SimCLR pre-training: {n_epochs(len(history))}, loss {loss:.4f} "
            f"(loaded from memory)")
    return result


#: a1 on colour images with ``pretrain_epochs="auto"``: about this many augmented
#: pairs in all (200 epochs of 4,000 images), between 100 and 200 epochs.
A1_COLOUR_IMAGE_VIEWS = 800_000
A1_EPOCHS = 100  # "auto" for grey images and tabular data, and the least for colour ones
A1_MAX_EPOCHS = 200


def resolve_pretrain_epochs(pretrain_epochs, input_shape, n_samples):
    """The number of a1 epochs for the ``pretrain_epochs`` hyperparameter.

    ``"auto"`` is 100 epochs, except on colour images (3 channels), where a1
    sees about ``A1_COLOUR_IMAGE_VIEWS`` images: 200 epochs up to 4,000
    images, fewer down to 100 epochs from 8,000.  On 4,000 CIFAR-10 images a
    200-epoch a1 gave a2 a higher test accuracy than a 100-epoch one with
    clean labels, 20 % symmetric, 40 % asymmetric and CIFAR-10N
    ``worse_label`` noise, and a lower one at 60 % symmetric noise
    (``docs/benchmarks.rst``); at 50,000 images a 100-epoch a1 already takes
    about 100 minutes on 2 CPU cores.  An integer is returned as it is.

    Examples
    --------
    >>> resolve_pretrain_epochs("auto", (3, 32, 32), 4000)
    200
    >>> resolve_pretrain_epochs("auto", (3, 32, 32), 6000)
    133
    >>> resolve_pretrain_epochs("auto", (1, 28, 28), 4000)
    100
    >>> resolve_pretrain_epochs(30, (3, 32, 32), 4000)
    30
    """
    if pretrain_epochs != "auto":
        return pretrain_epochs
    if len(input_shape) != 3 or input_shape[0] != 3:
        return A1_EPOCHS
    epochs = round(A1_COLOUR_IMAGE_VIEWS / max(n_samples, 1))
    return int(min(A1_MAX_EPOCHS, max(A1_EPOCHS, epochs)))


@_phase("a1")
def pretrain(run, X):
    """a1: SimCLR pre-training (label-free, cached with ``memory``) -> :class:`Pretrained`.

    With ``pretrain_epochs=0`` nothing is trained: the encoder keeps its
    initial weights (the instance's for a user's module instance) and the
    projection head its fresh random ones, which b2 starts from.
    """
    if run.hp.pretrain_epochs == 0:
        state, history, diverged, interrupted = None, [], None, False
        if run.hp.verbose:
            say("a1 SimCLR pre-training: skipped (pretrain_epochs=0)")
    else:
        state, history, diverged, interrupted = _simclr_weights(run, X)
    with torch_seeded(run.seed_for(Seed.A1_MODULE), run.device):
        encoder = run.new_encoder()  # a random init is overwritten below
        module = ContrastiveModule(encoder, ProjectionHead(encoder.out_features,
                                                           run.hp.projection_dim))
    if state is not None:
        module.load_state_dict(state)
    run.history["a1"] = history
    net = _contrastive_net(run, module, "a1", n_samples=len(X))
    net.initialize()
    if diverged:
        run.note_diverged("a1", diverged)
    if interrupted:
        run.note_interrupted("a1")
    # a2 trains its own copy: the net keeps the SimCLR weights.
    return Pretrained(copy.deepcopy(encoder), module.projection, net, history)


def random_encoder(run):
    """The baseline's encoder: randomly initialised, no pre-training."""
    with torch_seeded(run.seed_for(Seed.BASELINE_ENCODER), run.device):
        return run.new_encoder()


@_phase()
def train_classifier(run, phase, encoder, data, y, *, warmup_epochs, epochs=None):
    """a2 / b3: a classifier head on ``encoder`` trained with ``loss`` on ``y`` -> the net.

    ``warmup_epochs``: for a pre-trained encoder, how many of the first epochs
    it stays frozen (it trains at ``encoder_lr`` after them); None for a random
    encoder (the baseline), which trains from the first epoch at ``lr``.
    ``epochs``: ``max_epochs`` when None.
    """
    hp = run.hp
    # a2's cross-fitted twins ("a2_fold<k>") start as a2 does.
    head_seed, fit_seed = ((Seed.A2_HEAD, Seed.A2_TRAINING) if phase.startswith("a2")
                           else (Seed.B3_HEAD, Seed.B3_TRAINING))
    with torch_seeded(run.seed_for(head_seed), run.device):
        head = ClassifierHead(encoder.out_features, run.n_classes)
    module = ClassifierModule(encoder, head)
    callbacks = []
    if warmup_epochs:
        callbacks += [
            ("freeze_encoder", Freezer("encoder.*", at=1)),
            ("unfreeze_encoder", Unfreezer("encoder.*", at=warmup_epochs + 1)),
        ]
    groups = {}
    if warmup_epochs is not None and hp.encoder_lr is not None:
        # skorch's parameter groups by name pattern (get_params_for_optimizer).
        groups["optimizer__param_groups"] = [("encoder.*", {"lr": hp.encoder_lr})]
    net = _noisy_label_net(run, phase, module, len(y),
                           epochs=hp.max_epochs if epochs is None else epochs,
                           record_epochs=hp.gmm_epochs, callbacks=callbacks, **groups)
    net = fit_net(run, net, phase, fit_seed, data, y)
    # With warmup_epochs >= max_epochs the Unfreezer never fired: unfreeze
    # here, or b2 (which copies this encoder) would train no encoder weight.
    for param in net.module_.encoder.parameters():
        param.requires_grad_(True)
    return net


def _recorded_losses(net, data, y):
    """The net's averaged normalised eval-mode losses; one pass if none were recorded."""
    losses = net.mean_recorded_loss()
    if losses is None:  # e.g. a phase stopped before its recorded epochs
        losses = net.eval_losses(data, y)
    return losses


def _gmm(run, losses, key, stream):
    """GMM posterior of the low-loss component; keeps its input in ``run.gmm_losses``."""
    run.gmm_losses[key] = np.asarray(losses, dtype=np.float64)
    # Data-parallel fit: rank 0 fits the GMM, every process gets its posterior.
    return _distributed.on_rank0(lambda: gmm_clean_probability(
        losses, normalise=False, random_state=run.seed_for(stream) % 2**31))


@dataclasses.dataclass
class Labeled:
    """The labeled samples of a fit, what a2 (and bootstrapping) train on: their
    positions ``rows`` in the training set, the samples ``X``, the nets' ``data`` and the
    labels ``y`` (class indices); the whole training set when every sample is labeled."""

    rows: np.ndarray
    X: object
    data: dict
    y: torch.Tensor
    n_samples: int

    @property
    def everything(self):
        return len(self.rows) == self.n_samples

    def spread(self, values, fill):
        """``values`` of the labeled samples as one entry per training sample, ``fill``
        for the unlabeled ones."""
        values = np.asarray(values)
        if self.everything:
            return values
        out = np.full((self.n_samples,) + values.shape[1:], fill,
                      dtype=np.result_type(values, type(fill)))
        out[self.rows] = values
        return out


def labeled_part(X, data, y):
    """:class:`Labeled` of the training samples ``X`` whose label ``y`` is not -1."""
    rows = np.flatnonzero(y.numpy() >= 0)
    if len(rows) == len(y):
        return Labeled(rows, X, data, y, len(y))
    X_l = _input.take(X, rows)
    return Labeled(rows, X_l, _input.net_data(X_l, data["sample_weight"][rows].numpy()),
                   y[rows], len(y))


@dataclasses.dataclass
class ClassifierOutputs:
    """What a2's classifier says about the training set: its pseudo-labels (class indices,
    phase b's new ground truth) and, for the user, the quality of each given label."""

    probabilities: np.ndarray
    pseudo_labels: torch.Tensor
    label_quality: np.ndarray
    label_issues: np.ndarray


def classifier_outputs(run, net, data, labeled):
    """a2's probabilities and pseudo-labels (argmax) on the un-augmented training set
    ``data`` and the given labels' quality: a GMM on a2's recorded losses against the
    given labels of the ``labeled`` samples (NaN for the unlabeled ones)."""
    probabilities = predict_probabilities(net, data["x"])
    pseudo = probabilities.argmax(1)
    quality = _gmm(run, _recorded_losses(net, labeled.data, labeled.y), "given",
                   Seed.GIVEN_LABEL_GMM)
    run.gmm_losses["given"] = labeled.spread(run.gmm_losses["given"], np.nan)
    quality = labeled.spread(quality, np.nan)
    return ClassifierOutputs(probabilities, torch.as_tensor(pseudo, dtype=torch.long), quality,
                             label_issue_mask(quality))


@dataclasses.dataclass
class A1Noise:
    """How wrong the given labels of the labeled samples look from a1's label-free
    features (:func:`given_label_noise`): the features, ``embedded``, and the
    :class:`~noisyclf.confident_learning.LabelNoise` found on them."""

    embedded: np.ndarray
    noise: confident_learning.LabelNoise


def given_label_noise(run, features, labeled):
    """:class:`A1Noise` of the given labels of the ``labeled`` samples: confident
    learning on the out-of-fold probabilities of a logistic regression on the label-free
    features of a1's net ``features``, with the posterior of
    :func:`~noisyclf.confident_learning.estimate_label_noise` (one EM step from a
    forward-corrected logistic regression's prior).  It needs a1 only, so it runs before
    a2: its noise rate sets a2's frozen warm-up (:func:`resolve_warmup_epochs`)."""
    run.begin("a2")  # nothing to estimate for after an interrupted a1
    y = labeled.y.numpy()
    embedded = embed(features, labeled.X)
    probabilities = confident_learning.out_of_fold_probabilities(
        embedded, y, run.n_classes, random_state=_fold_seed(run))
    return A1Noise(embedded, confident_learning.estimate_label_noise(
        y, probabilities, features=embedded, random_state=_fold_seed(run)))


#: a2's frozen warm-up with ``warmup_epochs="auto"``: this many epochs, or half of a2
#: where at least ``HEAVY_NOISE_RATE`` of the given labels look wrong from a1's features
#: (measured: 60 % symmetric noise reads about 0.58 on digits, where a2 fits well after a
#: 5-epoch warm-up, and 0.71 on 4,000 CIFAR-10 images, where a2 memorises and the longer
#: warm-up pays; 80 % reads 0.84 and 0.88).
WARMUP_EPOCHS = 5
HEAVY_NOISE_RATE = 0.65


def resolve_warmup_epochs(warmup_epochs, noise_rate, max_epochs):
    """The frozen warm-up of a2 (and b3) for the ``warmup_epochs`` hyperparameter.

    ``"auto"`` freezes the encoder for ``WARMUP_EPOCHS`` epochs, and for half
    of a2's ``max_epochs`` where the estimated share of wrong given labels,
    ``noise_rate`` (from a1's features, :func:`given_label_noise`), is at
    least ``HEAVY_NOISE_RATE``: a network fine-tuned on mostly wrong labels
    memorises them within a2 (the early-learning phenomenon of ELR), and a
    frozen encoder cannot.  ``noise_rate=None`` (b3, whose labels are the
    pseudo-labels) keeps ``WARMUP_EPOCHS``.  An integer is returned as it is.

    Examples
    --------
    >>> resolve_warmup_epochs("auto", 0.2, 40)
    5
    >>> resolve_warmup_epochs("auto", 0.7, 40)
    20
    >>> resolve_warmup_epochs("auto", None, 40)
    5
    >>> resolve_warmup_epochs(3, 0.7, 40)
    3
    """
    if warmup_epochs != "auto":
        return warmup_epochs
    if noise_rate is not None and noise_rate >= HEAVY_NOISE_RATE:
        return max(WARMUP_EPOCHS, max_epochs // 2)
    return WARMUP_EPOCHS


def a2_warmup_epochs(run, a1_noise):
    """a2's frozen warm-up (:func:`resolve_warmup_epochs` on the noise rate of
    ``a1_noise``), said when ``verbose``."""
    hp = run.hp
    rate = a1_noise.noise.noise_rate
    warmup = resolve_warmup_epochs(hp.warmup_epochs, rate, hp.max_epochs)
    if hp.verbose and hp.warmup_epochs == "auto":
        say(f"a2 warm-up: {rate:.0%} of the given labels look wrong from a1's features "
            f"({'at least' if rate >= HEAVY_NOISE_RATE else 'under'} "
            f"{HEAVY_NOISE_RATE:.0%}): the encoder stays frozen for {warmup} of "
            f"{hp.max_epochs} epochs")
    return warmup


def label_noise(run, a1_noise, encoder, labeled, outputs, *, warmup_epochs):
    """:class:`~noisyclf.confident_learning.LabelNoise` of the given labels of the
    ``labeled`` samples and of their pseudo-labels, by confident learning on out-of-fold
    probabilities (a2's own probabilities on its training set are in-sample, and a
    network that memorises the given labels confirms them), with Bayes' rule for the
    expected accuracies whose prior is the out-of-fold ``P(true | x)`` of a
    forward-corrected logistic regression on a1's label-free features.  ``pred_probs``,
    ``true_probs`` and ``posterior`` have one row per training sample (NaN for the
    unlabeled ones).

    The probabilities for confident learning: with ``noise_cv`` folds, a2
    itself, cross-fitted (:func:`cross_fitted_probabilities` from a copy of
    ``encoder``, the encoder a2 started from, with a2's ``warmup_epochs``);
    without (``noise_cv=None``), the logistic regression on a1's features that
    :func:`given_label_noise` already fitted (``a1_noise``), the pseudo-labels'
    expected accuracy added.  Without a1 (``a1_noise=None``: the baseline)
    a2's in-sample probabilities stand in, and are the prior too.
    """
    y = labeled.y.numpy()
    pseudo = outputs.pseudo_labels.numpy()[labeled.rows]
    embedded = None if a1_noise is None else a1_noise.embedded
    if run.hp.noise_cv is not None:
        probabilities = cross_fitted_probabilities(run, encoder, labeled.data, y,
                                                   warmup_epochs=warmup_epochs)
        noise = confident_learning.estimate_label_noise(
            y, probabilities, pseudo, features=embedded, random_state=_fold_seed(run))
    elif a1_noise is not None:
        noise = dataclasses.replace(a1_noise.noise, pseudo_accuracy=(
            confident_learning.expected_accuracy(a1_noise.noise.posterior, pseudo)))
    else:
        noise = confident_learning.estimate_label_noise(
            y, outputs.probabilities[labeled.rows], pseudo, random_state=_fold_seed(run))
    for name in ("pred_probs", "true_probs", "posterior"):
        if getattr(noise, name) is not None:
            setattr(noise, name, labeled.spread(getattr(noise, name), np.nan))
    return noise


def _fold_seed(run):
    return run.seed_for(Seed.NOISE_FOLDS) % 2**32


def cross_fitted_probabilities(run, encoder, data, y, *, warmup_epochs):
    """a2's out-of-fold probabilities (cleanlab's cross-validated ``pred_probs``).

    ``noise_cv`` stratified folds (fewer when a class is rarer); for each, a2
    trains again from a copy of ``encoder`` with its seeds, as a user's fit
    with sample weight 0 on the fold would: the fold's labels never reach the
    net, its samples still pass through it (batch statistics, the batch mean of
    the weighted loss), and the fold's probabilities are that net's.  Each fit
    is a phase of its own, ``"a2_fold<k>"``, in ``history_`` and in
    checkpoints.
    """
    probabilities = np.zeros((len(y), run.n_classes))
    for k, (_, held_out) in enumerate(
            confident_learning.stratified_folds(y, run.hp.noise_cv, _fold_seed(run)), 1):
        weight = data["sample_weight"].clone()
        weight[held_out] = 0.0
        net = train_classifier(run, f"a2_fold{k}", copy.deepcopy(encoder),
                               dict(data, sample_weight=weight), torch.as_tensor(y),
                               warmup_epochs=warmup_epochs, epochs=run.hp.noise_cv_epochs)
        probabilities[held_out] = predict_probabilities(net, _input.take(data["x"], held_out))
    return probabilities


def phase_b_decision(phases, noise, n_unlabeled=0):
    """Whether phase b (b2, b3) runs and why: ``phases="auto"`` runs it when the
    pseudo-labels are expected to be more accurate than the given labels (the premise of
    the paper's phase b), or when ``n_unlabeled`` samples have no given label (only phase
    b trains the classifier on them); "full" always runs it, the other modes never do."""
    wins = bool(n_unlabeled) or noise.pseudo_accuracy > noise.given_accuracy
    estimates = (f"expected accuracy of the pseudo-labels {noise.pseudo_accuracy:.3f}, "
                 f"of the given labels {noise.given_accuracy:.3f}")
    if n_unlabeled:
        estimates = (f"{n_unlabeled} unlabeled samples, which only phase b trains the "
                     f"classifier on; {estimates} on the labeled ones")
    if phases == "auto":
        run_b = wins
        reason = (f"ran phase b, b3 predicts: {estimates}" if run_b
                  else f"skipped phase b, a2 predicts: {estimates}")
    else:
        run_b = phases == "full"
        reason = (f"phases={phases!r} {'always runs' if run_b else 'has no'} phase b "
                  f"({estimates}; 'auto' would {'run' if wins else 'skip'} it)")
    return {"run_phase_b": run_b, "auto_runs_phase_b": wins,
            "expected_given_accuracy": noise.given_accuracy,
            "expected_pseudo_accuracy": noise.pseudo_accuracy, "reason": reason}


# ------------------------------------------------------------ panel b
@_phase("b1")
def pseudo_label_weights(run, net, data, pseudo):
    """b1: GMM on the per-sample losses against the pseudo-labels -> ``(weights, net)``.

    As in the authors' code, a classifier head is first trained briefly
    (``gmm_epochs`` epochs, a fresh head on a frozen copy of a2's encoder,
    with ``loss``) on the pseudo-labels; each epoch ends with an eval-mode,
    un-augmented pass whose cross-entropy against the pseudo-labels is
    min-max normalised; the epochs are averaged and a 2-component GMM gives
    ``p(pseudo-label correct | loss)``, the weights of eq. 8.
    """
    with torch_seeded(run.seed_for(Seed.B1_HEAD), run.device):
        head = ClassifierHead(net.module_.encoder.out_features, run.n_classes)
    encoder = copy.deepcopy(net.module_.encoder)
    for param in encoder.parameters():
        param.requires_grad_(False)
    epochs = run.hp.gmm_epochs
    selection_net = _noisy_label_net(run, "b1", ClassifierModule(encoder, head), len(pseudo),
                                     epochs=epochs, record_epochs=epochs)
    selection_net = fit_net(run, selection_net, "b1", Seed.B1_TRAINING, data, pseudo)
    losses = _recorded_losses(selection_net, data, pseudo)
    return _gmm(run, losses, "pseudo", Seed.B1_GMM), selection_net


@_phase("b2")
def supervised_contrastive(run, net, projection, data, pseudo, weights):
    """b2: weighted supervised contrastive training (eq. 8) of a copy of a2's encoder with
    the pseudo-labels and b1's ``weights`` -> ``(net, encoder)``."""
    encoder = copy.deepcopy(net.module_.encoder)
    module = ContrastiveModule(encoder, copy.deepcopy(projection))
    contrastive_net = _contrastive_net(run, module, "b2", n_samples=len(pseudo))
    data = dict(data, weight=torch.as_tensor(weights, dtype=torch.float32))
    contrastive_net = fit_net(run, contrastive_net, "b2", Seed.B2_TRAINING, data, pseudo)
    return contrastive_net, contrastive_net.module_.encoder


@_phase("bootstrap")
def dynamic_bootstrapping(run, net, data, y):
    """Section 6.4: dynamic bootstrapping with mixup (Arazo et al.) of a copy of a2's
    classifier on the given labels ``y`` -> ``(net, noise probability or None)``."""
    hp = run.hp
    module = copy.deepcopy(net.module_)
    for param in module.parameters():
        param.requires_grad_(True)
    epochs = hp.max_epochs if hp.bootstrap_epochs is None else hp.bootstrap_epochs
    lr = hp.lr / 10 if hp.bootstrap_lr is None else hp.bootstrap_lr
    boot = _noisy_label_net(
        run, "bootstrap", module, len(y), epochs=epochs, record_epochs=0,
        net_class=BootstrapNet, lr=lr, criterion=MixupBootstrappingLoss,
        variant=hp.bootstrap_variant, mixup_alpha=hp.bootstrap_mixup_alpha,
        reg_weight=hp.bootstrap_reg_weight)
    boot = fit_net(run, boot, "bootstrap", Seed.BOOTSTRAP_TRAINING, data, y)
    return boot, getattr(boot, "noise_prob_", None)
