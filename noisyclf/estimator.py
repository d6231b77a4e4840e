"""The scikit-learn estimator: the framework of Ciortan, Dupuis and Peel (Figure 2).

:class:`ContrastiveNoisyClassifier` holds the hyperparameters, validates them
and the input, plans the phases of the chosen mode and stores what they
produced; the phases themselves are functions of :mod:`noisyclf._phases`,
each a skorch net.  Input preparation lives in :mod:`noisyclf._input`.
"""

import contextlib
import copy
import io
import numbers
import os
import types

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight, check_consistent_length, check_is_fitted,
)
from torch import nn

from . import _cache, _checkpoint, _distributed, _input, _phases, _streaming
from ._parallel import limit_worker_threads
from .exceptions import DivergenceWarning
from .modules import (
    BUILT_IN_ENCODERS, encoder_kind, is_module_class, make_encoder, runs_channels_last,
)
from .nets import resolve_device, resolve_precision

__all__ = ["ContrastiveNoisyClassifier", "DivergenceWarning"]

#: The panels of Figure 2 each mode runs (``phases``).  Every mode fits both
#: GMMs (``label_quality_`` from a2, ``sample_weights_`` from b1).
MODES = {
    "auto": ("a1", "a2", "b1", "b2", "b3"),         # b2-b3: pseudo-labels win, or unlabeled
    "baseline": ("a2", "b1"),                       # the paper's "Base" column
    "pretrain": ("a1", "a2", "b1"),                 # "Pre-t."
    "full": ("a1", "a2", "b1", "b2", "b3"),         # "Fine-tune"
    "bootstrap": ("a1", "a2", "b1", "bootstrap"),   # section 6.4, Figure 7
}

#: Fitted attributes that a fit sets (none may survive from an earlier fit).
_FITTED = ("classifier_net_", "pseudo_label_net_", "encoder_net_", "selection_net_",
           "pseudo_labels_", "sample_weights_", "label_quality_", "label_issues_",
           "pretrain_history_", "bootstrap_noise_prob_", "noise_matrix_", "noise_rate_",
           "out_of_fold_proba_", "out_of_fold_true_proba_", "phase_b_decision_",
           "pretrain_epochs_", "warmup_epochs_")


class _ModuleClassOrInstance(HasMethods):
    """Parameter constraint: a :class:`torch.nn.Module` subclass or instance."""

    def __init__(self):
        super().__init__(["forward"])

    def is_satisfied_by(self, val):
        return is_module_class(val) or isinstance(val, nn.Module)

    def __str__(self):
        return "a torch.nn.Module subclass or instance"


class ContrastiveNoisyClassifier(ClassifierMixin, BaseEstimator):
    """Classifier robust to label noise via contrastive pre-training (Ciortan et al.).

    Implements the framework of Figure 2 of "A Framework using Contrastive
    Learning for Classification with Noisy Labels" (Ciortan, Dupuis, Peel):
    **a1** SimCLR pre-training of the encoder (NT-Xent, eq. 6); **a2** a
    classifier head trained on the noisy labels with a noise-robust ``loss``
    (CE, NFL+RCE or ELR), whose predictions on the training set are the
    pseudo-labels; **b1** a 2-component GMM on losses against the
    pseudo-labels, giving ``sample_weights_``; **b2** weighted supervised
    contrastive training (eq. 8); **b3** the final classifier on the
    pseudo-labels.  ``phases`` picks the part of the framework to run:

    ===============  =================================  ====================
    ``phases``       panels                             predicts with
    ===============  =================================  ====================
    ``"auto"``       a1, a2, b1, then b2, b3 if the     b3, else a2
                     pseudo-labels are expected to be
                     more accurate than the given ones
                     or some samples are unlabeled
    ``"full"``       a1, a2, b1, b2, b3 (the paper's)   b3
    ``"pretrain"``   a1, a2, b1                         a2
    ``"baseline"``   a2 (random encoder), b1            a2
    ``"bootstrap"``  a1, a2, b1, dynamic bootstrapping  bootstrapping's net
    ===============  =================================  ====================

    Phase b pays only where a2's pseudo-labels are more accurate than the given
    labels (the paper's premise).  After a2, confident learning on
    out-of-fold probabilities (a cross-validated logistic regression on a1's
    label-free features, or a2 itself cross-fitted: ``noise_cv``) estimates
    how wrong the given labels are (``noise_matrix_``, ``noise_rate_``) and,
    by Bayes' rule, the expected accuracy of the given labels and of the
    pseudo-labels;
    ``phases="auto"`` runs b2-b3 only when the pseudo-labels win, or when
    some samples are unlabeled (``unlabeled_label``: only phase b trains the
    classifier on them), and says what it decided and why in
    ``phase_b_decision_`` (:ref:`phase-b-choice`).

    For the user, a GMM on a2's losses against the *given* labels scores each
    given label (``label_quality_``, ``label_issues_``,
    :meth:`find_label_issues`).  The user guide walks through each phase
    (:ref:`figure-2`), lists the choices made where the paper is vague,
    following the cited originals (:ref:`paper-choices`), and how a fit
    behaves when a phase diverges or is interrupted (:ref:`reliability`).

    Parameters
    ----------
    phases : {"auto", "full", "pretrain", "baseline", "bootstrap"}, default="auto"
        Which part of the framework to run (see above).  ``"auto"`` is
        ``"full"`` where phase b is expected to help (or some samples are
        unlabeled) and ``"pretrain"`` elsewhere, with the same seeds: its
        predictions are those of one of the two.
    loss : {"elr", "nfl+rce", "ce"}, default="elr"
        Supervised loss of phases a2 and b3.  ELR is the default because the
        paper finds it best overall (section 8).
    encoder : {"auto", "cnn", "airbench", "resnet18", "mlp"}, nn.Module class or \
instance, default="auto"
        ``"auto"`` picks ``"airbench"`` for colour images (3 or more
        channels, both sides at least 16 pixels), ``"cnn"`` for grey or
        smaller images and ``"mlp"`` for tabular input, by measured accuracy
        against CPU time (:ref:`bench-encoders`).  ``"cnn"`` is a 3-conv
        :class:`~noisyclf.modules.SmallCNN`, ``"airbench"`` a 7-conv
        :class:`~noisyclf.modules.AirbenchCNN` after airbench94,
        ``"resnet18"`` the CIFAR ResNet-18 of the paper (slow on CPU).

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
        at module level).  ``encoder_kind_`` is then ``"custom"``.  On images
        it runs in channels-last memory format, as the built-in conv encoders
        do (about twice as fast in bf16 on CPU), when a dry run on 2 random
        images gives the same features in both layouts
        (:func:`~noisyclf.modules.runs_channels_last`); a module that
        reshapes its activations with ``.view()`` runs as it is
        (``channels_last_``).
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
    on_bad_item : {"raise", "skip"}, default="raise"
        For a Dataset ``X``: what ``fit`` does with an item it cannot read
        (its ``__getitem__`` raises, e.g. on a truncated image file).
        ``"raise"`` raises :class:`~noisyclf.exceptions.UnreadableItemError`
        naming the item's index and file, with any ``num_workers``;
        ``"skip"`` leaves such items out with one
        :class:`~noisyclf.exceptions.UnreadableItemWarning` listing them, as
        if fitting ``Subset(X, kept)`` with ``y`` and ``sample_weight`` at
        ``kept`` (``skipped_items_``).  ``predict`` always raises.  Ignored
        for array ``X``.
    unlabeled_label : int, str or None, default=-1
        The label that marks a sample of ``y`` as unlabeled (scikit-learn's
        semi-supervised convention: ``-1``, also in an object array of
        strings; in an array of strings, ``"-1"``, which numpy makes of a -1
        among strings).  Unlabeled samples join a1 and phase b: a2 (and
        bootstrapping) trains on the labeled samples only; every sample gets
        a pseudo-label and a weight, and b2-b3 train on all of them
        (:ref:`unlabeled-samples`).  ``classes_`` never contains the marker.
        None: every label is a class (for data whose class is -1).
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
        (``benchmarks/bench_cifar10.py --params encoder_lr=0.002``; see the
        benchmark results in the docs):
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
    warmup_epochs : int or "auto", default="auto"
        Epochs at the start of a2 and b3 with the encoder frozen (ignored by
        the baseline, whose encoder is random).  ``"auto"`` freezes it for 5
        epochs, and in a2 for half of ``max_epochs`` where at least 65 % of
        the given labels look wrong from a1's label-free features (confident
        learning on a logistic regression on them, before a2 starts;
        ``warmup_epochs_`` says how many): fine-tuned on mostly wrong labels,
        a2 memorises them (:ref:`the adaptive warm-up <a2-warmup>`).
    pretrain_epochs : int or "auto", default="auto"
        Epochs of SimCLR pre-training (a1).  ``"auto"`` trains 100 epochs,
        except on colour images, where a1 sees about 800,000 augmented pairs:
        200 epochs up to 4,000 images, fewer down to 100 epochs from 8,000
        (measured in ``docs/benchmarks.rst``; ``pretrain_epochs_`` says how
        many).  ``0`` skips SimCLR: the encoder
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
    noise_cv : int >= 2 or None, default=None
        Where the out-of-fold probabilities behind ``noise_matrix_``,
        ``noise_rate_`` and the phase-b decision come from.  None: a 5-fold
        logistic regression on a1's label-free features (seconds).  An
        integer k: a2 itself, cross-fitted: k more a2 fits, each with sample
        weight 0 on one of k stratified folds (fewer when a class has fewer
        than k labeled samples), whose probabilities that fold gets
        (cleanlab's cross-validated ``pred_probs``); closer estimates
        where a1's features are weak, for k times a2's cost
        (:ref:`phase-b-choice` has both, measured).  Either way the
        decision's prior, ``out_of_fold_true_proba_``, comes from a1's features.
    noise_cv_epochs : int >= 1 or None, default=None
        Epochs of each cross-fitted a2 of ``noise_cv`` (None: ``max_epochs``,
        as a2; the first ``warmup_epochs`` of them with the encoder frozen, as
        in a2).  The folds then cost ``noise_cv * noise_cv_epochs`` epochs
        instead of ``noise_cv * max_epochs``, and stop before a network
        memorises the wrong labels (the early-learning phenomenon);
        :ref:`bench-auto-mode` measures the estimates with ``noise_cv=5,
        noise_cv_epochs=10``.
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
    tta : None or "flip", default=None
        Test-time augmentation of :meth:`predict_proba` (and so of
        :meth:`predict` and :meth:`score`): ``"flip"`` averages the class
        probabilities of each image and of its horizontal mirror, as airbench94
        predicts, for twice the cost of a prediction.  Images only (a
        ``ValueError`` otherwise); it suits the images whose mirror is the same
        object, those that ``hflip_prob="auto"`` flips.  Training is the same
        either way, so it can be set after ``fit``.  Measured on CIFAR-10 in
        the encoder section of the results page.
    memory : None, str, path or joblib.Memory, default=None
        Where to cache the label-free SimCLR pre-training (a1), keyed on the
        data, encoder, pre-training hyperparameters and seed, so that a grid
        over ``lr``, ``loss`` or any later-phase hyperparameter pre-trains once
        per fold.  A module class counts in the key by its import path and
        ``encoder__*`` parameters (editing the class's code does not
        invalidate the cache: clear it); a module instance by its class, its
        ``repr`` and a hash of its ``state_dict`` tensors (its starting
        weights).
    checkpoint_dir : None, str or path, default=None
        Where ``fit`` saves its progress, so that a fit killed (out of
        memory, a pre-empted machine, a closed notebook) or interrupted
        resumes when the same ``fit`` is called again: each finished phase,
        and inside a phase its net at the end of an epoch (as often as
        costs at most 2 % of the training time), with every RNG state, so
        the resumed fit gives the same model as an uninterrupted one.  One
        folder per fit, keyed on the data, labels, sample weights,
        hyperparameters, device and precision, so one location serves many
        fits (a grid search); removed when ``fit`` finishes.  See
        :ref:`reliability`.
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
    skipped_items_ : list of (int, str or None)
        ``(index, path)`` of the Dataset items that ``fit`` left out
        (``on_bad_item="skip"``); empty when none were.  Per-sample
        attributes have one entry per kept item, in order.
    input_shape_ : tuple of int
        Shape of one sample as the nets see it: (C, H, W) or (n_features,).
    pretrain_epochs_ : int
        The number of a1 epochs (``pretrain_epochs`` with "auto" resolved for
        the training set).
    warmup_epochs_ : int
        The epochs at the start of a2 with the encoder frozen
        (``warmup_epochs`` with "auto" resolved by the noise rate that a1's
        features estimate; 0 for the baseline, whose encoder is random).
    encoder_kind_ : str
        The encoder actually used: ``encoder`` with "auto" resolved, or
        ``"custom"`` for a user's module class or instance.
    channels_last_ : bool
        Whether the conv nets ran in channels-last memory format: always for
        the built-in conv encoders on images, for a user's module when its
        dry run agrees (see ``encoder``), never for tabular input.
    precision_ : {"fp32", "bf16", "fp16"}
        The precision the training steps ran in (``precision`` resolved).
    labeled_ : ndarray of bool, shape (n_samples,)
        Which training samples had a label (``y`` not ``unlabeled_label``).
    pseudo_labels_ : ndarray of shape (n_samples,)
        a2's predictions on the un-augmented training set, in ``classes_``
        (unlabeled samples included).
    sample_weights_ : ndarray of shape (n_samples,)
        b1's output: probability that each *pseudo-label* is correct (the
        GMM on losses against ``pseudo_labels_``), the weights w of eq. 8.
    label_quality_ : ndarray of shape (n_samples,)
        For the user: probability that each *given* label ``y`` is correct
        (a GMM on a2's losses against ``y``).  Low means suspicious.  NaN
        for an unlabeled sample.
    label_issues_ : ndarray of bool, shape (n_samples,)
        ``label_quality_ < 0.5``: given training labels judged wrong (False
        for an unlabeled sample).
    noise_matrix_ : ndarray of shape (n_classes, n_classes)
        Estimated ``P(given = classes_[i] | true = classes_[j])`` (cleanlab's
        convention: columns sum to 1): confident learning
        (:mod:`noisyclf.confident_learning`) on out-of-fold probabilities of
        the training set, ``out_of_fold_proba_``, then the joint that the
        posterior of the phase-b decision implies (one EM step; for
        ``phases="baseline"``, which has no a1, confident learning's).
    noise_rate_ : float
        Estimated share of wrong given labels (``1 - trace`` of the joint
        distribution behind ``noise_matrix_``; one minus the given labels'
        expected accuracy where a1 ran).
    out_of_fold_proba_ : ndarray of shape (n_samples, n_classes)
        The out-of-fold class probabilities of the training samples that
        the noise estimates come from (see ``noise_cv``): a 5-fold logistic
        regression on a1's features, or a2 cross-fitted; for
        ``phases="baseline"`` with ``noise_cv=None``, which has no a1, a2's
        own (in-sample) probabilities.  NaN rows for unlabeled samples: the
        estimates come from the labeled ones.
    out_of_fold_true_proba_ : ndarray of shape (n_samples, n_classes) or None
        Estimated ``P(true class = classes_[j] | x)`` of each training sample,
        out of fold: a 5-fold logistic regression on a1's features corrected
        for confident learning's noise matrix (its probabilities, passed
        through that matrix, explain the given labels:
        :class:`~noisyclf.confident_learning.ForwardCorrectedLogisticRegression`).
        The prior of the phase-b decision's posterior.  None for
        ``phases="baseline"`` (no a1); NaN rows for unlabeled samples.
    phase_b_decision_ : dict
        ``"run_phase_b"`` (bool: whether b2-b3 ran), ``"auto_runs_phase_b"``
        (bool: whether ``phases="auto"`` runs them, in every mode), ``"expected_given_accuracy"``
        and ``"expected_pseudo_accuracy"`` (mean posterior probability that
        the given label, the pseudo-label, is the true class; the posterior
        is Bayes' rule with ``out_of_fold_true_proba_`` as prior and
        confident learning's noise matrix as likelihood; ``noise_matrix_`` is
        the joint it implies) and ``"reason"`` (a sentence).  Every mode estimates;
        only ``"auto"`` decides by the estimates.
    encoder_net_ : ContrastiveNet or None
        The last contrastive skorch net (b2 for "full", a1 with its SimCLR
        weights for "pretrain"; None for "baseline").
    gmm_losses_ : dict of str to ndarray of shape (n_samples,)
        What each GMM was fitted to (normalised eval-mode losses averaged
        over the recorded epochs): ``"given"`` for ``label_quality_`` (a2
        against the given labels; NaN for unlabeled samples), ``"pseudo"``
        for ``sample_weights_`` (b1 against the pseudo-labels).
    selection_net_ : NoisyLabelNet
        b1's head trained on the pseudo-labels over a frozen copy of a2's
        encoder; its recorded losses fed the GMM of ``sample_weights_``.
    classifier_net_ : NoisyLabelNet
        The skorch net that predicts (b3 for "full", the
        :class:`~noisyclf.bootstrap.BootstrapNet` for "bootstrap", a2
        otherwise).
    pseudo_label_net_ : NoisyLabelNet
        a2's classifier, whose predictions are ``pseudo_labels_`` (the same
        object as ``classifier_net_`` where a2 predicts).
    bootstrap_noise_prob_ : ndarray of shape (n_samples,)
        ``phases="bootstrap"`` only: each training sample's probability of a
        wrong given label under the beta mixture of the last bootstrapping
        epoch (NaN for an unlabeled sample: bootstrapping trains on the
        labeled ones).
    pretrain_history_ : list of dict
        Per-epoch log of a1 (empty for "baseline" and for ``pretrain_epochs=0``).
    history_ : dict of str to list of dict
        Per-epoch logs of every phase that ran, keyed "a1", "a2", "b1", "b2", "b3"
        and "bootstrap" (``"a1"`` is an empty list with ``pretrain_epochs=0``).
    diverged_phases_ : list of str
        Phases stopped by a NaN/inf loss (see :class:`~noisyclf.exceptions.DivergenceWarning`).
    interrupted_phase_ : str or None
        Phase during which training was interrupted (KeyboardInterrupt).

    Notes
    -----
    Image inputs are standardised per channel and tabular inputs per feature
    with training statistics stored in the model.  Divergence (a NaN/inf
    loss) stops the phase, restores the weights of its last finished epoch
    and emits a :class:`~noisyclf.exceptions.DivergenceWarning`.

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
        "phases": [StrOptions(set(MODES))],
        "loss": [StrOptions({"ce", "nfl+rce", "elr"})],
        "encoder": [StrOptions({"auto", *BUILT_IN_ENCODERS}), _ModuleClassOrInstance()],
        "image_shape": [None, tuple, list],
        "data_format": [StrOptions({"auto", "channels_first", "channels_last"})],
        "image_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "on_bad_item": [StrOptions(set(_streaming.ON_BAD_ITEM))],
        "unlabeled_label": [None, numbers.Integral, str],
        "data_parallel": ["boolean", StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "encoder_lr": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left"),
                          StrOptions({"auto"})],
        "pretrain_epochs": [Interval(numbers.Integral, 0, None, closed="left"),
                            StrOptions({"auto"})],
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
        "noise_cv": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "noise_cv_epochs": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "bootstrap_variant": [StrOptions({"hard", "soft"})],
        "bootstrap_mixup_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "bootstrap_reg_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "bootstrap_epochs": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "bootstrap_lr": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "min_crop_scale": [Interval(numbers.Real, 0, 1, closed="right")],
        "hflip_prob": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "corruption_rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "tta": [None, StrOptions({"flip"})],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "checkpoint_dir": [None, str, os.PathLike],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        phases="auto",
        loss="elr",
        encoder="auto",
        image_shape=None,
        data_format="auto",
        image_size=None,
        num_workers=0,
        on_bad_item="raise",
        unlabeled_label=-1,
        data_parallel="auto",
        lr=0.02,
        encoder_lr=None,
        max_epochs=40,
        batch_size=128,
        warmup_epochs="auto",
        pretrain_epochs="auto",
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
        noise_cv=None,
        noise_cv_epochs=None,
        min_crop_scale=0.2,
        hflip_prob="auto",
        corruption_rate=0.6,
        tta=None,
        memory=None,
        checkpoint_dir=None,
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
        self.on_bad_item = on_bad_item
        self.unlabeled_label = unlabeled_label
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
        self.noise_cv = noise_cv
        self.noise_cv_epochs = noise_cv_epochs
        self.min_crop_scale = min_crop_scale
        self.hflip_prob = hflip_prob
        self.corruption_rate = corruption_rate
        self.tta = tta
        self.memory = memory
        self.checkpoint_dir = checkpoint_dir
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
            torchvision's ``ImageFolder``; item ``i`` an image or ``(image,
            label, ...)``) is streamed, never held in memory as a whole: its
            items are read by ``num_workers`` DataLoader processes, resized
            to ``image_size`` and identified by their position (entry ``i``
            of ``pseudo_labels_`` is item ``i``).  A Dataset and the array of
            its images give the same model.  ``n_features_in_`` is not set.
            See :doc:`/scaling_out_streaming`.
        y : array-like of shape (n_samples,) or None, default=None
            Given (noisy) labels of any type; ``unlabeled_label`` (-1) marks
            a sample without a label.  ``None`` only for a Dataset
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
        """Figure 2: the panels of ``MODES[phases]``, in order (see :meth:`fit`)."""
        X, y, data = self._prepare_fit_input(X, y, sample_weight)
        run = self._start_run(X, y, data)
        labeled = _phases.labeled_part(X, data, y)  # what a2 trains on
        plan = MODES[self.phases]
        # An interrupted phase keeps what it trained; the phases after it are skipped.
        with contextlib.suppress(_phases.FitInterrupted):
            # Panel a: pre-training.
            if "a1" in plan:
                a1 = _phases.pretrain(run, X)                                           # a1
                self.encoder_net_, self.pretrain_history_ = a1.net, a1.history
                encoder, projection, features = a1.encoder, a1.projection, a1.net
                # How wrong the given labels look from a1's features sets a2's warm-up.
                a1_noise = _phases.given_label_noise(run, features, labeled)
                warmup = self.warmup_epochs_ = _phases.a2_warmup_epochs(run, a1_noise)
            else:
                self.encoder_net_, self.pretrain_history_ = None, []
                encoder, projection, a1_noise = _phases.random_encoder(run), None, None
                self.warmup_epochs_, warmup = 0, None  # a random encoder trains throughout
            a2 = _phases.train_classifier(                                             # a2
                run, "a2", encoder if self.noise_cv is None else copy.deepcopy(encoder),
                labeled.data, labeled.y, warmup_epochs=warmup)
            self.classifier_net_ = self.pseudo_label_net_ = a2
            outputs = _phases.classifier_outputs(run, a2, data, labeled)
            pseudo = outputs.pseudo_labels
            self.pseudo_labels_ = self.classes_[pseudo.numpy()]
            self.label_quality_, self.label_issues_ = outputs.label_quality, outputs.label_issues
            noise = _phases.label_noise(run, a1_noise, encoder, labeled, outputs,
                                        warmup_epochs=warmup)
            self.noise_matrix_, self.noise_rate_ = noise.noise_matrix, noise.noise_rate
            self.out_of_fold_proba_ = noise.pred_probs
            self.out_of_fold_true_proba_ = noise.true_probs
            self.phase_b_decision_ = _phases.phase_b_decision(
                self.phases, noise, int((~self.labeled_).sum()))

            # Panel b: fine-tuning; the pseudo-labels are the new ground truth.
            self.sample_weights_, self.selection_net_ = _phases.pseudo_label_weights(  # b1
                run, a2, data, pseudo)
            if "bootstrap" in plan:  # section 6.4 instead of b2-b3, on the given labels
                self.classifier_net_, noise_prob = _phases.dynamic_bootstrapping(
                    run, a2, labeled.data, labeled.y)
                if noise_prob is not None:
                    self.bootstrap_noise_prob_ = labeled.spread(noise_prob, np.nan)
            if "b2" in plan and self.phase_b_decision_["run_phase_b"]:
                self.encoder_net_, encoder = _phases.supervised_contrastive(            # b2
                    run, a2, projection, data, pseudo, self.sample_weights_)
                self.classifier_net_ = _phases.train_classifier(                      # b3
                    run, "b3", copy.deepcopy(encoder), data, pseudo,
                    warmup_epochs=_phases.resolve_warmup_epochs(
                        self.warmup_epochs, None, self.max_epochs))
        self.interrupted_phase_ = run.interrupted
        if run.checkpoint is not None and run.interrupted is None:
            run.checkpoint.remove()  # finished: nothing to resume
        return self

    def _prepare_fit_input(self, X, y, sample_weight):
        """Validate and lay out ``fit``'s input; set the input's fitted attributes.

        Returns the samples (an array or a streamed Dataset), the encoded
        labels as a tensor and the nets' dict input.
        """
        fit_input = _input.prepare_fit_input(self, X, y, self._check_encoder)
        if fit_input.kept is not None and sample_weight is not None:
            # One weight per item of the Dataset X; the skipped items' go with them.
            sample_weight = _check_sample_weight(sample_weight, X,
                                                 dtype=np.float32)[fit_input.kept]
        X = fit_input.X
        self.skipped_items_ = list(fit_input.skipped)
        self.input_shape_ = fit_input.input_shape
        self._input_spec, self._resize_to = fit_input.spec, fit_input.resize_to
        self._mean, self._scale = fit_input.mean, fit_input.scale
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
        self.labeled_, self.classes_ = fit_input.labeled, fit_input.classes
        self._unlabeled_label = self.unlabeled_label  # score and find_label_issues read it
        y_enc = np.full(len(self.labeled_), -1, dtype=np.int64)  # -1: unlabeled
        y_enc[self.labeled_] = np.searchsorted(self.classes_, fit_input.y[self.labeled_])
        return X, torch.as_tensor(y_enc, dtype=torch.long), _input.net_data(X, sample_weight)

    def _start_run(self, X, y, data):
        """Resolve device, precision, checkpoint and seed; clear an earlier fit -> the
        phases' Run."""
        self._device = resolve_device(self.device)
        self.precision_ = resolve_precision(self.precision, self._device)
        checkpoint = None
        if self.checkpoint_dir is not None:
            checkpoint = _checkpoint.FitCheckpoint(self.checkpoint_dir,
                                                   self._checkpoint_key(X, y, data))
        draw = self._base_seed if checkpoint is None else (
            lambda: checkpoint.seed(self._base_seed))
        # Data-parallel fit (noisyclf/_distributed.py): every process uses rank 0's seed.
        self._seed = _distributed.broadcast_object(draw())
        for attr in _FITTED:  # nothing of an earlier fit may survive an interrupted one
            self.__dict__.pop(attr, None)
        hp = types.SimpleNamespace(**self.get_params(deep=False))
        hp.pretrain_epochs = self.pretrain_epochs_ = _phases.resolve_pretrain_epochs(
            self.pretrain_epochs, self.input_shape_, len(y))
        run = _phases.Run(
            hp=hp, seed=self._seed,
            device=self._device, precision=self.precision_, input_shape=self.input_shape_,
            mean=self._mean, scale=self._scale, n_classes=len(self.classes_),
            encoder_kind=self.encoder_kind_, encoder_spec=self._encoder_spec(),
            channels_last=self.channels_last_,
            value_range=_input.value_range(self._input_spec), checkpoint=checkpoint)
        self.history_, self.gmm_losses_ = run.history, run.gmm_losses
        self.diverged_phases_, self.interrupted_phase_ = run.diverged, None
        return run

    def _checkpoint_key(self, X, y, data):
        """Digest of what makes a fit: data, labels, weights, hyperparameters, device."""
        params = self.get_params(deep=False)
        for name in ("verbose", "memory", "checkpoint_dir", "num_workers", "data_parallel"):
            params.pop(name)
        params["encoder"] = _cache.encoder_cache_key(*self._encoder_spec())
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        return _checkpoint.fit_key(
            X.digest if isinstance(X, _streaming.ImageStream) else X, y.numpy(),
            self.classes_, data["sample_weight"].numpy(), params, self._device,
            self.precision_, _distributed.world())

    def _base_seed(self):
        if self.random_state is None:
            # Fresh OS entropy: does not consume numpy's global RNG.
            return int(np.random.SeedSequence().generate_state(1)[0])
        rng = check_random_state(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    def _check_encoder(self, input_shape, mean, scale):
        """Set ``encoder_kind_`` for samples of ``input_shape`` and build a user's encoder
        once, so that a module that cannot take this input fails before any training.

        ``ValueError`` for ``encoder__*`` parameters without an encoder class, for a
        conv encoder on tabular input and for ``tta="flip"`` on tabular input.
        """
        self._check_tta(input_shape)
        self.encoder_kind_ = encoder_kind(self.encoder, input_shape, self._encoder_params())
        module = None
        if self.encoder_kind_ == "custom":
            # Dry forward passes (make_encoder's, and one per memory format); the caller's
            # RNG is left alone.
            encoder, kwargs = self._encoder_spec()
            with torch.random.fork_rng(devices=[]):
                module = make_encoder(encoder, input_shape, mean, scale, **kwargs)
        self.channels_last_ = runs_channels_last(module, input_shape, self.encoder_kind_)

    def _check_tta(self, input_shape):
        """``ValueError`` for test-time flips of samples that are not images."""
        if self.tta == "flip" and len(input_shape) != 3:
            raise ValueError(
                f"tta='flip' mirrors images, but the samples have shape "
                f"{tuple(input_shape)}; pass image_shape=(C, H, W) for 2-D image X, "
                f"or tta=None."
            )

    def _encoder_spec(self):
        """``(encoder, kwargs)`` for :func:`~noisyclf.modules.make_encoder`: a name, or the
        user's module and the ``encoder__*`` parameters without their prefix."""
        if self.encoder_kind_ != "custom":
            return self.encoder_kind_, {}
        kwargs = {key[len("encoder__"):]: value
                  for key, value in self._encoder_params().items()}
        return self.encoder, kwargs

    # -------------------------------------------------------------- predict
    def __sklearn_is_fitted__(self):
        return hasattr(self, "classifier_net_")

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
        X = _input.predict_input(self, X)
        self._check_tta(self.input_shape_)
        return _phases.predict_probabilities(self.classifier_net_, _input.net_input(X),
                                             flip=self.tta == "flip")

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
        that differs from the one used in ``fit``.  Samples whose ``y`` is
        ``unlabeled_label`` (-1) are left out, as a semi-supervised user
        expects (``ValueError`` when no sample is labeled).

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
        y, labeled = _input.score_labels(self, X, y)
        predicted = self.predict(X)
        check_consistent_length(predicted, y, sample_weight)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, y)[labeled]
        return accuracy_score(y[labeled], predicted[labeled], sample_weight=sample_weight)

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
        X = _input.predict_input(self, X)
        return _phases.embed(self.classifier_net_, X)

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
            * ``is_unlabeled`` (bool), only when ``fit`` saw unlabeled samples
              (``unlabeled_label``): such a sample has ``is_label_issue``
              False, ``label_quality`` NaN and, with ``y``, its marker as
              ``given_label``.

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
        labeled = self.labeled_
        if y is not None:
            y = _input.check_training_labels(y, "y", n_samples)
            if not np.array_equal(_input.labeled_mask(y, self._unlabeled_label), labeled):
                raise ValueError(
                    f"y marks other samples as unlabeled ({self._unlabeled_label!r}) than "
                    f"the labels given to fit; pass those labels.")
            _input.check_seen_labels(
                y[labeled], self.classes_,
                f"pass the labels given to fit (classes {self.classes_.tolist()}).")
            given = self.classes_[np.searchsorted(self.classes_, y[labeled])]
            if not labeled.all():  # the unlabeled samples keep their marker
                marked = np.array(y, dtype=object)
                marked[labeled] = given
                given = marked
            columns["given_label"] = given
        columns["predicted_label"] = np.asarray(self.pseudo_labels_)
        if not labeled.all():
            columns["is_unlabeled"] = ~labeled
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
