"""The paper's own ground at CPU scale: CIFAR-10 with synthetic and real (CIFAR-10N) label noise.

Protocol (every setting is written beside every result row):

* a stratified subset of ``--n-train`` CIFAR-10 training images (seed
  ``--subset-seed``) and the full 10,000-image test set (clean labels), both
  from ``--data`` (default ``../shared/data/cifar10_jpeg.npz`` relative to
  the repository, with ``cifar10n_labels.npz`` next to it; JPEG quality 75:
  up to about one point below the original PNGs), decoded once and cached;
* label settings: symmetric 0.2/0.4/0.6/0.8, asymmetric 0.2/0.4 with the
  paper's CIFAR-10 class map (truck->automobile, bird->airplane, cat<->dog,
  deer->horse), and the CIFAR-10N human labels ``worse_label``,
  ``aggre_label`` and ``random_label1`` of the same images;
* ``--seeds``: noise seeds of the synthetic settings (the tables give mean
  ± std over them); the CIFAR-10N labels are fixed, so they run with the
  first seed only.  Every seed reuses the one a1 and gets its own
  logistic-regression probes;
* the estimator with its default hyperparameters (the small CNN, bf16 where
  the CPU has it) except ``pretrain_epochs`` (``--pretrain-epochs``): one
  SimCLR pre-training (a1) per subset, shared through ``memory=`` by every
  label setting and loss (it is label-free);
* for each label setting and loss (CE, NFL+RCE, ELR) one fit per ``--jobs``
  entry: ``baseline`` (the same network from scratch), ``pretrain`` (a1 +
  a2) and ``full`` (a1 + a2 + b1..b3).  Every phase is seeded on its own,
  so the full fit's a2 is the pretrain fit's, and the full fit's
  ``label_issues_`` are those of the pretrain fit.  ``default`` is one
  ``phases="full"`` fit that gives three rows: ``pretrain`` (its a2
  classifier), ``full`` (its b3) and ``default`` (the default mode,
  ``phases="auto"``: b3 where ``phase_b_decision_["auto_runs_phase_b"]``,
  else a2), so a large training set pays for one fit, not three;
* peers on the same subset, labels and network: cleanlab's ``CleanLearning``
  wrapping the CE baseline (out-of-sample ``pred_probs`` by
  ``--cleanlab-folds``-fold cross-validation, then a refit on the kept
  labels), and a logistic-regression probe on the frozen SimCLR features
  (``encoder_net_`` of a ``phases="pretrain"`` fit: a1's net);
* finding the wrong labels: precision, recall, F1 of ``label_issues_`` and
  ROC AUC of ``label_quality_`` against the known flips (the CIFAR-10N
  labels against ``clean_label``), beside cleanlab's ``find_label_issues``
  on its cross-validated ``pred_probs``.

Test accuracy is that of the final epoch (never the best one).  Cells are
claimed through lock files by ``--workers`` worker processes (one torch
thread each) and appended to ``benchmarks/results/cifar10.csv`` as soon as
they finish, so a run can be stopped and resumed; the per-sample GMM inputs
of each pretrain, full and default fit (one file per setting, loss and seed:
the three share a2 and b1) go to ``results/<name>_losses/`` for the Figure 4
plot, with what the phase-b decision reads (git ignores these folders: a run
writes them again).

All 50,000 training images (the paper's size): ``--n-train 50000`` with the
estimator's defaults, one worker on both cores, a1 shared with
``bench_unlabeled.py`` through ``--a1-cache``, and every fit checkpointed
(``--checkpoint-dir``) so that a stopped run resumes inside the fit it was
in.  ``benchmarks/cifar10_50k.py`` runs that grid cell by cell, the most
informative cells first, and resumes where it stopped.

Usage::

    python benchmarks/bench_cifar10.py                 # the grid (hours on 2 cores)
    python benchmarks/cifar10_50k.py                   # 50,000 images (many hours)
    python benchmarks/bench_cifar10.py --plot-only     # figures from the CSV
    python benchmarks/bench_cifar10.py --quick         # smoke test (seconds)
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    CLEANLAB_METHOD, add_data_argument, environment, limit_threads, make_parser,
    pretrain_and_full_accuracy, pyplot, save_figure,
)

import noisyclf  # noqa: E402
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels  # noqa: E402
from noisyclf.datasets import CIFAR10N_LABEL_KEYS, load_cifar10  # noqa: E402
from noisyclf.modules import encoder_kind  # noqa: E402

#: Label settings, most informative first (claim (i) at symmetric 0.8, the
#: cleanlab target on worse_label), so that a run cut short has those.
SETTINGS = [
    ("symmetric", 0.8), ("cifar10n", "worse_label"), ("symmetric", 0.4),
    ("asymmetric", 0.4), ("cifar10n", "aggre_label"), ("symmetric", 0.2),
    ("symmetric", 0.6), ("cifar10n", "random_label1"), ("asymmetric", 0.2),
]
LOSSES = ["ce", "elr", "nfl+rce"]
#: Settings where cleanlab's CleanLearning runs (its cross-validation costs
#: ``folds + 1`` baseline fits).
CLEANLAB_SETTINGS = [("cifar10n", "worse_label"), ("symmetric", 0.4), ("symmetric", 0.8),
                     ("cifar10n", "aggre_label")]
#: The rows a ``default`` job writes, from one ``phases="full"`` fit.
DEFAULT_JOB_METHODS = ["pretrain", "full", "default"]
#: The framework's rows, in plot order.
FRAMEWORK_METHODS = ["baseline", "pretrain", "full", "default"]
COLUMNS = [
    "setting", "noise_type", "noise", "actual_noise", "loss", "method", "seed",
    "n_train", "n_test", "test_accuracy", "given_accuracy", "pseudo_accuracy",
    "issues_precision", "issues_recall", "issues_f1", "issues_auc", "n_issues",
    "weights_auc", "wall_s", "params", "torch_threads", "noisyclf", "torch", "finished",
    "encoder", "cpu_model",
]


def setting_name(kind, value):
    if kind in ("cifar10n", "probe"):
        return value
    return f"{kind[:3]}{value}"


def parse_setting(name):
    """``(kind, value)`` of a setting name: ``sym0.5``, ``asy0.4`` (any rate) or a
    CIFAR-10N label set such as ``worse_label``."""
    if name in CIFAR10N_LABEL_KEYS and name != "clean_label":
        return "cifar10n", name
    kinds = {"sym": "symmetric", "asy": "asymmetric"}
    try:
        rate = float(name[3:])
    except ValueError:
        rate = None
    if name[:3] not in kinds or rate is None or not 0 < rate < 1:
        human = sorted(set(CIFAR10N_LABEL_KEYS) - {"clean_label"})
        raise ValueError(f"unknown label setting {name!r}: use symR or asyR with a rate R "
                         f"in (0, 1), or one of {human}")
    return kinds[name[:3]], rate


def _setting_rank(name):
    """Plot order: the settings of :data:`SETTINGS` first, as listed, then the others."""
    names = [setting_name(k, v) for k, v in SETTINGS]
    return (names.index(name), "") if name in names else (len(names), name)


# ----------------------------------------------------------------- data
def load(args):
    """Training subset (uint8, channels last), its clean labels, the test set,
    and the CIFAR-10N labels of the subset, decoded once (``joblib.Memory``)."""
    cache = str(Path(args.cache) / "decoded")
    if args.quick and not _have_cifar10(args.data):
        return synthetic(args, CIFAR10N_LABEL_KEYS)
    X, y = load_cifar10(args.data, n_samples=args.n_train, random_state=args.subset_seed,
                        memory=cache)
    Xte, yte = load_cifar10(args.data, subset="test", memory=cache,
                            n_samples=None if args.n_test >= 10000 else args.n_test,
                            random_state=0)
    human = {}
    for key in CIFAR10N_LABEL_KEYS:
        _, y_key, y_clean = load_cifar10(args.data, n_samples=args.n_train,
                                         random_state=args.subset_seed, label_noise=key,
                                         memory=cache)
        assert np.array_equal(y_clean, y)
        human[key] = y_key
    return X, y, Xte, yte, human


def _have_cifar10(path):
    try:
        load_cifar10(path, n_samples=10, random_state=0, label_noise="worse_label")
    except (FileNotFoundError, OSError):
        return False
    return True


def synthetic(args, keys):
    """``--quick`` without the CIFAR-10 files: random images and labels of the
    same shapes (a smoke test of the script, not of the method)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (args.n_train, 32, 32, 3), dtype=np.uint8)
    Xte = rng.integers(0, 256, (args.n_test, 32, 32, 3), dtype=np.uint8)
    y, yte = np.arange(args.n_train) % 10, np.arange(args.n_test) % 10
    human = {k: np.where(rng.random(len(y)) < 0.3, rng.integers(0, 10, len(y)), y)
             for k in keys}
    human["clean_label"] = y.copy()
    print("NOTE: CIFAR-10 files not found; --quick runs on random images", flush=True)
    return X, y, Xte, yte, human


def noisy_labels(kind, value, y, human, seed):
    if kind == "cifar10n":
        return human[value]
    if kind == "asymmetric":
        return make_noisy_labels(y, "asymmetric", value, mapping="cifar10", n_classes=10,
                                 random_state=seed)
    return make_noisy_labels(y, "symmetric", value, n_classes=10, random_state=seed)


# ------------------------------------------------------------ the models
def simclr_features(clf, X):
    """Frozen SimCLR (a1) features of uint8 channels-last images ``X``, fp32, eval mode.

    ``clf`` is fitted with ``phases="pretrain"``: its ``encoder_net_`` is then
    a1's net with the SimCLR weights (a2 trained a copy of the encoder).
    """
    if clf.phases != "pretrain":
        raise ValueError(f"encoder_net_ is a1's net after phases='pretrain' only; "
                         f"got phases={clf.phases!r}")
    enc = clf.encoder_net_.module_.encoder.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), 1000):
            x = torch.from_numpy(np.ascontiguousarray(
                X[start:start + 1000].transpose(0, 3, 1, 2))).float().div_(255.0)
            out.append(enc(x).float())
    return torch.cat(out).numpy()


def estimator_params(args, loss, job):
    """The estimator's parameters for one ``--jobs`` entry (``default`` is a
    ``phases="full"`` fit read three ways)."""
    params = dict(phases="full" if job == "default" else job, loss=loss,
                  pretrain_epochs=args.pretrain_epochs, random_state=args.model_seed,
                  memory=str(args.a1_cache or Path(args.cache) / "a1"))
    if args.checkpoint_dir is not None:
        params["checkpoint_dir"] = str(args.checkpoint_dir)
    params.update(args.params)
    return params


def _params_json(params, **extra):
    """The parameters written beside a row: not where the cache and checkpoints live."""
    return json.dumps(dict({k: v for k, v in params.items()
                            if k not in ("memory", "checkpoint_dir")}, **extra))


def label_issue_metrics(flipped, is_issue, quality):
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
    out = dict(issues_precision=precision_score(flipped, is_issue, zero_division=0),
               issues_recall=recall_score(flipped, is_issue, zero_division=0),
               issues_f1=f1_score(flipped, is_issue, zero_division=0),
               n_issues=int(np.sum(is_issue)))
    if 0 < flipped.sum() < len(flipped):
        out["issues_auc"] = roc_auc_score(flipped, -np.asarray(quality))
    return out


# --------------------------------------------------------------- the cells
def cells(args):
    """(setting kind, value, loss, job, seed) in the order they are claimed."""
    out = [] if args.no_probe else [("probe", "clean", "ce", "probe", args.model_seed)]
    for seed in args.seeds:
        if seed != args.model_seed and not args.no_probe:
            # The probe cell's logistic regressions use the model seed's noise;
            # another noise seed gets its own (a1 comes from the cache).
            out.append(("probe", "noisy", "-", "logreg", seed))
        if args.probe_only:
            continue
        for kind, value in args.settings:
            if kind == "cifar10n" and seed != args.seeds[0]:
                continue  # human labels: another noise seed would repeat the same fit
            for loss in args.losses:
                out += [(kind, value, loss, job, seed) for job in args.jobs if job != "cleanlab"]
            if (kind, value) in args.cleanlab_settings and not args.no_cleanlab:
                out.append((kind, value, "ce", "cleanlab", seed))
    return out


def cell_id(cell):
    kind, value, loss, job, seed = cell
    return f"{setting_name(kind, value)}__{loss}__{job}__s{seed}".replace("+", "")


def run_cell(cell, data, args):
    kind, value, loss, job, seed = cell
    X, y, Xte, yte, human = data
    if job == "probe":
        return run_probe(data, args, seed)
    if job == "logreg":
        return run_logreg(data, args, seed)
    y_noisy = noisy_labels(kind, value, y, human, seed)
    flipped = y_noisy != y
    base = dict(setting=setting_name(kind, value), noise_type=kind, noise=value,
                actual_noise=float(flipped.mean()), loss=loss, seed=seed,
                given_accuracy=float(1 - flipped.mean()))
    start = time.perf_counter()
    if job == "cleanlab":
        return run_cleanlab(X, y_noisy, Xte, yte, flipped, args, base, start)
    params = estimator_params(args, loss, job)
    clf = ContrastiveNoisyClassifier(**params).fit(X, y_noisy)
    wall = time.perf_counter() - start
    issues = label_issue_metrics(flipped, clf.label_issues_, clf.label_quality_)
    pseudo_ok = clf.pseudo_labels_ == y
    wauc = {}
    if 0 < pseudo_ok.sum() < len(pseudo_ok):
        from sklearn.metrics import roc_auc_score
        wauc["weights_auc"] = roc_auc_score(~pseudo_ok, -clf.sample_weights_)
    common = dict(base, pseudo_accuracy=float(pseudo_ok.mean()), wall_s=round(wall, 1),
                  params=_params_json(params), **issues, **wauc)
    if job in ("full", "default", "pretrain"):  # the same a2 and b1 in the three
        save_losses(clf, y_noisy, y, base, args)
    if job != "default":
        return [dict(common, method=job, test_accuracy=clf.score(Xte, yte))]
    accuracy = pretrain_and_full_accuracy(clf, Xte, yte)
    decision = clf.phase_b_decision_
    accuracy["default"] = accuracy["b3" if decision["auto_runs_phase_b"] else "a2"]
    note = dict(phase_b_ran_in_default=bool(decision["auto_runs_phase_b"]),
                expected_given_accuracy=float(decision["expected_given_accuracy"]),
                expected_pseudo_accuracy=float(decision["expected_pseudo_accuracy"]),
                noise_rate=round(float(clf.noise_rate_), 4),
                warmup_epochs_=int(clf.warmup_epochs_),
                n_parameters=sum(int(t.numel()) for t in clf.classifier_net_.module_.parameters()))
    common["params"] = _params_json(params, **note)
    return [dict(common, method=method, test_accuracy=accuracy[source])
            for method, source in zip(DEFAULT_JOB_METHODS, ["a2", "b3", "default"])]


def run_probe(data, args, seed):
    """SimCLR features + logistic regression, on the clean labels (the
    representation's quality) and, per label setting, on the noisy ones."""
    X, y, Xte, yte, human = data
    start = time.perf_counter()
    # phases="pretrain" on the clean labels: a1 (cached for every later cell)
    # and a2 on clean labels, the ceiling of the pretrain column.
    params = estimator_params(args, "ce", "pretrain")
    clf = ContrastiveNoisyClassifier(**params).fit(X, y)
    wall = time.perf_counter() - start
    F, Fte = simclr_features(clf, X), simclr_features(clf, Xte)
    pjson = _params_json(params)
    rows = [dict(setting="clean", noise_type="clean", noise=0.0, actual_noise=0.0, loss="ce",
                 method="pretrain (clean labels)", seed=seed, given_accuracy=1.0,
                 test_accuracy=clf.score(Xte, yte), wall_s=round(wall, 1), params=pjson)]
    return rows + logreg_rows(F, Fte, data, [("clean", 0.0)] + list(args.settings), seed,
                              pjson)


def run_logreg(data, args, seed):
    """The probe's logistic regressions for another noise seed: the a1 features
    come from the cache (a one-epoch a2 is fitted only to reach them)."""
    X, y, Xte, yte, human = data
    params = estimator_params(args, "ce", "pretrain")
    clf = ContrastiveNoisyClassifier(**dict(params, max_epochs=1, warmup_epochs=0,
                                            gmm_epochs=1)).fit(X, y)
    F, Fte = simclr_features(clf, X), simclr_features(clf, Xte)
    pjson = _params_json(params)
    return logreg_rows(F, Fte, data, [s for s in args.settings if s[0] != "cifar10n"], seed,
                       pjson)


def logreg_rows(F, Fte, data, settings, seed, pjson):
    """One row per label setting: logistic regression on the frozen a1 features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y, Xte, yte, human = data
    rows = []
    for kind, value in settings:
        yn = y if kind == "clean" else noisy_labels(kind, value, y, human, seed)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        t0 = time.perf_counter()
        probe.fit(F, yn)
        rows.append(dict(setting="clean" if kind == "clean" else setting_name(kind, value),
                         noise_type=kind, noise=value, actual_noise=float(np.mean(yn != y)),
                         loss="-", method="SimCLR + logreg", seed=seed,
                         given_accuracy=float(np.mean(yn == y)),
                         test_accuracy=probe.score(Fte, yte),
                         wall_s=round(time.perf_counter() - t0, 1),
                         params=pjson + " + StandardScaler + LogisticRegression(C=0.1)"))
    return rows


def run_cleanlab(X, y_noisy, Xte, yte, flipped, args, base, start):
    from cleanlab.classification import CleanLearning
    params = estimator_params(args, "ce", "baseline")
    params.pop("memory")  # a baseline has no a1; each fold's fit checkpoints apart
    cl = CleanLearning(ContrastiveNoisyClassifier(**params), cv_n_folds=args.cleanlab_folds,
                       seed=base["seed"], verbose=False)
    issues_df = cl.find_label_issues(X, y_noisy)
    cl.fit(X, y_noisy, label_issues=issues_df)
    wall = time.perf_counter() - start
    issues = label_issue_metrics(flipped, issues_df["is_label_issue"].to_numpy(),
                                 issues_df["label_quality"].to_numpy())
    return [dict(base, method=CLEANLAB_METHOD, test_accuracy=cl.score(Xte, yte),
                 wall_s=round(wall, 1), **issues,
                 params=_params_json(params, cv_n_folds=args.cleanlab_folds))]


def save_losses(clf, y_noisy, y, base, args):
    """The fit's GMM inputs and outputs and what its phase-b decision reads (the given,
    true and pseudo-labels, ``out_of_fold_proba_``), so that the decision can be
    recomputed offline without a refit."""
    folder = Path(args.out) / f"{args.name}_losses"  # one folder per run name
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / f"{base['setting']}__{base['loss'].replace('+', '')}__s{base['seed']}.npz",
        given=clf.gmm_losses_["given"].astype(np.float32),
        pseudo=clf.gmm_losses_["pseudo"].astype(np.float32),
        flipped=y_noisy != y, pseudo_correct=clf.pseudo_labels_ == y,
        label_quality=clf.label_quality_.astype(np.float32),
        sample_weights=clf.sample_weights_.astype(np.float32),
        given_label=y_noisy, true_label=y, pseudo_label=clf.pseudo_labels_,
        out_of_fold_proba=clf.out_of_fold_proba_.astype(np.float32))


# --------------------------------------------------------------- plumbing
def append_rows(rows, path, encoder):
    """Append ``rows`` to the CSV ``path``, with the machine, versions and ``encoder`` (the
    estimator's ``encoder_kind_`` on these images)."""
    import csv
    env = environment()
    with open(path, "a", newline="") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        new = fh.tell() == 0
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for r in rows:
            r = dict(r, torch_threads=env["torch_threads"], noisyclf=env["noisyclf"],
                     torch=env["torch"], finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                     encoder=encoder, cpu_model=env["cpu_model"])
            r.setdefault("n_train", ROW_N[0])
            r.setdefault("n_test", ROW_N[1])
            writer.writerow({k: (f"{r[k]:.4f}" if isinstance(r.get(k), float)
                                 and k not in ("noise", "wall_s") else r.get(k, ""))
                             for k in COLUMNS})
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


ROW_N = [0, 0]


def claim(cell, locks):
    """The open lock file of ``cell`` when this process takes it, else None.

    The claim is an exclusive ``flock`` on ``<cell>.lock``, held while the cell
    runs; the kernel drops it when the process ends, so the cells of a stopped run
    are taken again by the next one.  A ``<cell>.done`` marker (written after the
    cell's rows) skips cells already in the CSV; it is checked again once the lock
    is held, as another worker may have finished the cell meanwhile.
    """
    name = cell_id(cell)
    done = locks / f"{name}.done"
    if done.exists():
        return None
    fh = open(locks / f"{name}.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    if done.exists():
        fh.close()
        return None
    fh.truncate(0)
    fh.write(f"{os.getpid()}\n")  # who runs it, for a person looking
    fh.flush()
    return fh


def worker(args):
    data = load(args)
    ROW_N[:] = [len(data[1]), len(data[3])]
    out = Path(args.out)
    locks = Path(args.cache) / f"locks_{args.name}"
    locks.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{args.name}.csv"
    encoder = encoder_kind(estimator_params(args, "ce", "full").get("encoder", "auto"),
                           (data[0].shape[-1], *data[0].shape[1:3]))
    todo = cells(args)
    probe = ("probe", "clean", "ce", "probe", args.model_seed)
    probe_done = locks / f"{cell_id(probe)}.done"
    for cell in todo:
        # a1 first: the probe cell pre-trains once for every other cell.
        while cell[3] != "probe" and not args.no_probe and not probe_done.exists():
            time.sleep(5)
        lock = claim(cell, locks)
        if lock is None:
            continue
        t0 = time.perf_counter()
        print(f"[{os.getpid()}] {cell_id(cell)} ...", flush=True)
        threads = torch.get_num_threads()
        if cell[3] == "probe" and args.worker:  # the other workers wait: every core
            torch.set_num_threads(os.cpu_count() or 1)
        with lock:  # released when the cell is done or fails
            try:
                rows = run_cell(cell, data, args)
            finally:
                torch.set_num_threads(threads)
            append_rows(rows, csv_path, encoder)
            (locks / f"{cell_id(cell)}.done").touch()
        accs = ", ".join(f"{r['method']} {r['test_accuracy']:.3f}" for r in rows[:4])
        print(f"[{os.getpid()}] {cell_id(cell)}: {accs} ({time.perf_counter() - t0:.0f} s)",
              flush=True)


# ------------------------------------------------------------------ plots
def plot(args):
    import pandas as pd
    out = Path(args.out)
    csv_path = out / f"{args.name}.csv"
    if not csv_path.exists():
        return
    df = pd.read_csv(csv_path)
    plt = pyplot()
    fw = df[df["method"].isin(FRAMEWORK_METHODS)]
    if len(fw):
        order = sorted(set(fw.setting), key=_setting_rank)
        losses = [name for name in LOSSES if name in set(fw["loss"])]
        methods = [m for m in FRAMEWORK_METHODS if m in set(fw["method"])]
        width = 0.8 / len(methods)
        fig, axes = plt.subplots(1, len(losses), figsize=(4.5 * len(losses), 3.6), sharey=True,
                                 squeeze=False)
        for ax, loss in zip(axes[0], losses):
            g = fw[fw["loss"] == loss].groupby(["setting", "method"])["test_accuracy"].mean()
            xs = np.arange(len(order))
            for i, m in enumerate(methods):
                vals = [g.get((s, m), np.nan) for s in order]
                ax.bar(xs + (i - (len(methods) - 1) / 2) * width, vals, width, label=m)
            ax.set_xticks(xs)
            ax.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"loss {loss}")
            ax.set_ylim(0, 1)
        axes[0][0].set_ylabel("test accuracy (final epoch)")
        axes[0][0].legend(fontsize=8)
        save_figure(fig, out / f"{args.name}.png")
        # Figure 6's idea: full - pretrain per cell; Figure 3's: pseudo vs given accuracy.
        piv = fw.pivot_table(index=["setting", "loss", "seed"], columns="method",
                             values="test_accuracy").reset_index()
        if {"full", "pretrain"} <= set(piv.columns):
            piv["gain"] = piv["full"] - piv["pretrain"]
            fig, ax = plt.subplots(figsize=(7, 3.4))
            gains = piv.groupby(["setting", "loss"])["gain"].mean()
            labels = [f"{s} {loss}" for s, loss in gains.index]
            ax.bar(range(len(gains)), gains.values,
                   color=["tab:green" if v >= 0 else "tab:red" for v in gains.values])
            ax.set_xticks(range(len(gains)))
            ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_ylabel("full - pretrain accuracy")
            save_figure(fig, out / f"{args.name}_finetune_gain.png")
        full = fw[fw["method"] == "full"]
        if len(full):
            fig, ax = plt.subplots(figsize=(4.2, 4))
            for loss, g in full.groupby("loss"):
                ax.scatter(g["given_accuracy"], g["pseudo_accuracy"], label=loss, s=20)
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set_xlabel("given-label accuracy")
            ax.set_ylabel("pseudo-label accuracy (a2)")
            ax.legend(fontsize=8)
            save_figure(fig, out / f"{args.name}_pseudo_labels.png")
    plot_gmm(out, args.name)
    plot_clean_subset(out, args.name)


def plot_gmm(out, name):
    """Figure 4's idea: a2's normalised losses against the given labels, clean
    and flipped, with the two fitted GMM components."""
    from sklearn.mixture import GaussianMixture
    files = sorted((out / f"{name}_losses").glob("*__elr__s*.npz"))
    if not files:
        return
    plt = pyplot()
    files = files[:6]
    fig, axes = plt.subplots(1, len(files), figsize=(3.3 * len(files), 3), squeeze=False)
    for ax, f in zip(axes[0], files):
        d = np.load(f)
        losses = d["given"].astype(np.float64)
        bins = np.linspace(0, 1, 41)
        ax.hist(losses[~d["flipped"]], bins, alpha=0.6, density=True, label="clean label")
        ax.hist(losses[d["flipped"]], bins, alpha=0.6, density=True, label="wrong label")
        # The settings of noisyclf.selection.gmm_clean_probability (DivideMix's).
        gmm = GaussianMixture(2, max_iter=100, tol=1e-3, reg_covar=5e-4, random_state=0)
        gmm.fit(losses.reshape(-1, 1))
        grid = np.linspace(0, 1, 200)
        for k in range(2):
            mu, var, w = gmm.means_[k, 0], gmm.covariances_[k].ravel()[0], gmm.weights_[k]
            ax.plot(grid, w * np.exp(-(grid - mu) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var),
                    "k-" if k == 0 else "k--", lw=1)
        ax.set_title(f.stem.split("__")[0] + " (elr)", fontsize=9)
        ax.set_xlabel("normalised loss")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, out / f"{name}_gmm.png")


def plot_clean_subset(out, name):
    """Figure 4's idea at the end of b1: the accuracy of the pseudo-labels on the whole
    training set and on the subset that b1's GMM calls clean (weight > 0.5), and that
    subset's size, per label setting (loss ELR)."""
    files = sorted((out / f"{name}_losses").glob("*__elr__s*.npz"))
    if not files:
        return
    rows = []
    for f in files:
        d = np.load(f)
        clean = d["sample_weights"] > 0.5
        ok = d["pseudo_correct"]
        rows.append((f.stem.split("__")[0], ok.mean(),
                     ok[clean].mean() if clean.any() else np.nan, clean.mean()))
    rows.sort(key=lambda r: _setting_rank(r[0]))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(rows)), 3.4))
    xs = np.arange(len(rows))
    for i, (label, color) in enumerate([("all pseudo-labels", "tab:blue"),
                                        ("GMM-clean subset", "tab:red"),
                                        ("clean subset size", "tab:green")]):
        ax.bar(xs + (i - 1) * 0.27, [r[i + 1] for r in rows], 0.27, label=label, color=color)
    ax.set_xticks(xs)
    ax.set_xticklabels([r[0] for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy / fraction")
    ax.legend(fontsize=7)
    save_figure(fig, out / f"{name}_clean_subset.png")


# ------------------------------------------------------------------- main
def parse(argv):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="noise seeds (synthetic noise); every seed reuses the one a1")
    parser.add_argument("--losses", nargs="+", default=LOSSES)
    parser.add_argument("--settings", nargs="+", default=None,
                        help="e.g. sym0.8 worse_label (default: all)")
    parser.add_argument("--pretrain-epochs", type=_epochs, default=200,
                        help='a1 epochs, or "auto" (the estimator\'s rule)')
    parser.add_argument("--cleanlab-folds", type=int, default=3)
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse_suppress())
    parser.add_argument("--jobs", nargs="+", default=["full", "pretrain", "baseline"],
                        choices=["full", "pretrain", "baseline", "default", "cleanlab"],
                        help="fits per (setting, loss), one per phases value; default: one "
                             "full fit giving the pretrain, full and default-mode rows; "
                             "cleanlab alone: only the cleanlab cells")
    parser.add_argument("--cleanlab-settings", nargs="+", default=None,
                        help="settings with a cleanlab CleanLearning cell (default: "
                             + " ".join(setting_name(k, v) for k, v in CLEANLAB_SETTINGS) + ")")
    parser.add_argument("--a1-cache", default=None,
                        help="memory= of the fits (a1's cache; default: <cache>/a1)")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="checkpoint_dir= of the fits: a stopped run resumes inside a fit")
    parser.add_argument("--no-probe", action="store_true",
                        help="skip the probe cell (a1 must then be cached or is run per fit)")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--probe-only", action="store_true",
                        help="only a1 and its probes (e.g. to compare --pretrain-epochs)")
    parser.add_argument("--name", default="cifar10")
    parser.add_argument("--cache", default=str(Path(_HERE).parent / ".noisyclf_cache" / "cifar10"))
    parser.add_argument("--params", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads with --workers 1 (default: as torch has it)")
    args = parser.parse_args(argv)
    if args.quick and args.settings is None:
        args.settings = ["sym0.4", "worse_label"]
    try:
        args.settings = (SETTINGS if args.settings is None
                         else [parse_setting(s) for s in args.settings])
        args.cleanlab_settings = (CLEANLAB_SETTINGS if args.cleanlab_settings is None
                                  else [parse_setting(s) for s in args.cleanlab_settings])
    except ValueError as exc:
        parser.error(str(exc))
    args.params = {k: _value(v) for k, v in (p.split("=", 1) for p in args.params)}
    if args.quick:
        args.n_train, args.n_test, args.pretrain_epochs, args.cleanlab_folds = 200, 200, 1, 2
        args.losses = ["elr"]
        args.name = args.name + "_quick"
        args.params.update(max_epochs=2, finetune_epochs=1, warmup_epochs=1, gmm_epochs=1)
        if args.cache == parser.get_default("cache"):
            args.cache = str(Path(args.out) / ".cache_quick")
    return args


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def _epochs(text):
    return text if text == "auto" else int(text)


def _value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        return plot(args)
    if args.worker or args.workers <= 1:
        limit_threads(1 if args.workers > 1 or args.worker
                      else args.threads or torch.get_num_threads())
        worker(args)
    else:
        # The first worker pre-trains a1 (the probe cell) with every thread;
        # the others wait for it, then all run one torch thread each.
        procs = [subprocess.Popen([sys.executable, __file__, *argv, "--worker"])
                 for _ in range(args.workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"a worker failed: exit codes {codes}")
    if not args.worker:
        plot(args)
        print(f"wrote {Path(args.out) / (args.name + '.csv')} "
              f"(noisyclf {noisyclf.__version__})")


if __name__ == "__main__":
    main()
