"""The default mode ("auto") against its own "pretrain" and the paper's "full", one fit per cell.

Every cell (data set, label setting, loss, noise seed) is one ``phases="full"``
fit with default hyperparameters (the default encoder; a1 label-free and
cached through ``memory=``, so it runs once per training set).  The fit keeps
a2's classifier (``pseudo_label_net_``, what ``phases="pretrain"`` predicts
with: every phase is seeded on its own) beside b3's (``classifier_net_``), so
one fit gives the "pretrain" and the "full" column; "auto" predicts exactly
as one of the two, the one its decision picks.  Each finished cell appends a
row to ``results/<name>.csv`` (default ``auto_mode_<dataset>``; a rerun
skips the cells already there) and writes its per-sample arrays to
``results/<name>_arrays/`` (git-ignored): given and true labels, a2's and
b3's probabilities on the training and the test set, ``label_quality_``,
``sample_weights_``, the fit's ``out_of_fold_proba_``, and once per training
set a1's features.  ``--noise-cv K`` fits with ``noise_cv=K`` (a2
cross-fitted for the noise estimates; default name ``auto_mode_<dataset>_cvK``),
``--noise-cv-epochs E`` with ``noise_cv_epochs=E`` as well (``..._cvKeE``).
``--analyse`` then computes, for every saved cell, the estimates that the
fit makes (``noise_matrix_``, ``noise_rate_``, ``phase_b_decision_``, from
its out-of-fold probabilities and a1's features) against the truth, the
accuracy of "auto", and what "auto" would pick with the out-of-fold
``p(given | x)`` as the posterior's prior instead of the forward-corrected
``P(true | x)``, into ``results/<name>_analysis.csv`` (a cell whose arrays
are gone, run on another machine, keeps its row of the earlier analysis).
``--settings`` runs only the named label settings of the grid.  ``--cleanlab`` gives cleanlab's
noise matrix on a2's cross-validated probabilities, against which the default's
estimate (a logistic regression on a1's features) is compared; ``--baseline`` gives the
``phases="baseline"`` fit's accuracy for the settings it names (no a1, no phase b).
``--a1-store DIR`` carries a1 across machines: ``DIR/<training set>.tar`` is extracted
into the a1 cache before the cells and written from it once a1 has run (commit it; see
``_common.store_cache``).

Data sets:

* ``cifar10``: a stratified subset of ``--n-train`` CIFAR-10 training images
  (``--subset-seed``), the 10,000 test images, the label settings of
  ``bench_cifar10.py`` (symmetric 0.2-0.8, asymmetric 0.2/0.4 with the
  CIFAR-10 class map, CIFAR-10N ``worse_label``, ``aggre_label``,
  ``random_label1``; the human labels with the first seed only);
* ``digits``: scikit-learn's digits, a 70/30 stratified split per seed (as
  ``python -m noisyclf``), symmetric 0.2-0.8 and asymmetric 0.2/0.4 with
  ``c -> c + 1``.

Usage::

    python benchmarks/bench_auto_mode.py --dataset cifar10 --data ../shared/data
    python benchmarks/bench_auto_mode.py --dataset digits --seeds 0 1 2 3 4 --threads 2
    python benchmarks/bench_auto_mode.py --dataset digits --analyse
    python benchmarks/bench_auto_mode.py --dataset digits --seeds 0 1 2 3 4 --losses elr \
        --noise-cv 5
    python benchmarks/bench_auto_mode.py --quick --out /tmp/x
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    add_data_argument, append_row, environment, make_parser, parse_args,
    pretrain_and_full_proba, restore_cache, store_cache,
)
from bench_cifar10 import SETTINGS as CIFAR_SETTINGS  # noqa: E402
from bench_cifar10 import noisy_labels, setting_name  # noqa: E402

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels  # noqa: E402
from noisyclf._phases import Seed, phase_seed  # noqa: E402
from noisyclf.confident_learning import (  # noqa: E402
    estimate_label_noise, noise_matrix_from_joint, out_of_fold_probabilities,
)
from noisyclf.datasets import CIFAR10N_LABEL_KEYS, load_cifar10  # noqa: E402

DIGITS_SETTINGS = [("symmetric", 0.2), ("symmetric", 0.4), ("symmetric", 0.6),
                   ("symmetric", 0.8), ("asymmetric", 0.2), ("asymmetric", 0.4)]
LOSSES = ["elr", "ce", "nfl+rce"]
QUICK_PARAMS = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
                    gmm_epochs=1)


# ----------------------------------------------------------------- data
def training_sets(args):
    """``(train_id, X, y, X_test, y_test, human)`` per training set: one CIFAR-10
    subset, or one digits split per seed."""
    if args.dataset == "digits":
        X, y = load_digits(return_X_y=True)
        for seed in args.seeds:
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                                      random_state=seed)
            yield f"digits_s{seed}", X_tr, y_tr, X_te, y_te, {}, [seed]
        return
    cache = str(Path(args.cache) / "decoded")
    n_test = 500 if args.quick else None
    X, y = load_cifar10(args.data, n_samples=args.n_train, random_state=args.subset_seed,
                        memory=cache)
    X_te, y_te = load_cifar10(args.data, subset="test", n_samples=n_test, random_state=0,
                              memory=cache)
    human = {}
    for key in CIFAR10N_LABEL_KEYS:
        human[key] = load_cifar10(args.data, n_samples=args.n_train,
                                  random_state=args.subset_seed, label_noise=key,
                                  memory=cache)[1]
    yield f"cifar10_n{args.n_train}_s{args.subset_seed}", X, y, X_te, y_te, human, args.seeds


def settings(args):
    if args.dataset == "digits":
        return DIGITS_SETTINGS
    return CIFAR_SETTINGS


def given_labels(args, kind, value, y, human, seed):
    if args.dataset == "digits":
        return make_noisy_labels(y, kind, value, random_state=seed)
    return noisy_labels(kind, value, y, human, seed)


def estimator_params(args, loss, seed, train_id):
    params = dict(phases="full", loss=loss, memory=str(Path(args.cache) / "a1" / train_id),
                  random_state=seed if args.dataset == "digits" else args.model_seed)
    if args.dataset == "digits":
        params["image_shape"] = (1, 8, 8)
    if args.noise_cv is not None:
        params["noise_cv"] = args.noise_cv
    if args.noise_cv_epochs is not None:
        params["noise_cv_epochs"] = args.noise_cv_epochs
    if args.quick:
        params.update(QUICK_PARAMS)
    return params


# ------------------------------------------------------------- one cell
def a1_features(args, train_id, X, X_te, seed):
    """Frozen a1 features of the training and test set (a2 for one epoch, its
    encoder frozen: ``transform`` then embeds with a1's encoder)."""
    params = estimator_params(args, "ce", seed, train_id)
    params.update(phases="pretrain", max_epochs=1)
    params["warmup_epochs"] = max(1, params.get("warmup_epochs", 5))
    clf = ContrastiveNoisyClassifier(**params).fit(X, np.arange(len(X)) % 2)
    return clf.transform(X), clf.transform(X_te)


def run_cell(args, train_id, data, kind, value, loss, seed, arrays):
    X, y, X_te, y_te, human = data
    y_given = given_labels(args, kind, value, y, human, seed)
    params = estimator_params(args, loss, seed, train_id)
    start = time.perf_counter()
    cpu = time.process_time()
    clf = ContrastiveNoisyClassifier(**params).fit(X, y_given)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    probs = {f"{name}_{part}": p for part, data_ in [("train", X), ("test", X_te)]
             for name, p in pretrain_and_full_proba(clf, data_).items()}
    classes = clf.classes_
    acc = {k: float(np.mean(classes[p.argmax(1)] == y_te))
           for k, p in probs.items() if k.endswith("test")}
    pseudo = clf.pseudo_labels_
    row = dict(
        dataset=args.dataset, train_id=train_id, setting=setting_name(kind, value),
        noise_type=kind, noise=value, loss=loss, seed=seed, n_train=len(X), n_test=len(X_te),
        given_accuracy=float(np.mean(y_given == y)), pseudo_accuracy=float(np.mean(pseudo == y)),
        b3_train_accuracy=float(np.mean(classes[probs["b3_train"].argmax(1)] == y)),
        pretrain_accuracy=acc["a2_test"], full_accuracy=acc["b3_test"],
        full_minus_pretrain=acc["b3_test"] - acc["a2_test"],
        mean_label_quality=float(np.mean(clf.label_quality_)),
        mean_sample_weight=float(np.mean(clf.sample_weights_)), fit_noise_rate=clf.noise_rate_,
        encoder=clf.encoder_kind_, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
        params=json.dumps(dict({k: v for k, v in params.items() if k != "memory"},
                               pretrain_epochs_=clf.pretrain_epochs_,
                               warmup_epochs_=clf.warmup_epochs_)),
        finished=time.strftime("%Y-%m-%d %H:%M:%S"), **environment(),
    )
    np.savez_compressed(
        arrays / f"{cell_name(train_id, kind, value, loss, seed)}.npz",
        given=y_given, true=y, test_true=y_te, pseudo=pseudo, classes=classes,
        label_quality=clf.label_quality_, sample_weights=clf.sample_weights_,
        gmm_given=clf.gmm_losses_["given"], gmm_pseudo=clf.gmm_losses_["pseudo"],
        out_of_fold_proba=clf.out_of_fold_proba_,
        **{k: v.astype(np.float32) for k, v in probs.items()})
    return row


def cell_name(train_id, kind, value, loss, seed):
    return f"{train_id}__{setting_name(kind, value)}__{loss}__s{seed}".replace("+", "")


# -------------------------------------------------------------- analysis
def true_noise_matrix(given, true, n_classes):
    """The corruption actually applied: ``P(given = i | true = j)``."""
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (given, true), 1)
    return noise_matrix_from_joint(joint / len(given))


def matrix_errors(estimate, truth):
    """RMSE over all entries, mean absolute error of the diagonal, and in how many of the
    columns with a flip target (an off-diagonal entry over twice every other one) the
    estimate's largest off-diagonal entry is that target."""
    off_est = estimate - np.diag(np.diag(estimate))
    off_true = truth - np.diag(np.diag(truth))
    top2 = np.sort(off_true, axis=0)[-2:]
    flips = top2[1] > 2 * top2[0]
    return dict(rmse=float(np.sqrt(np.mean((estimate - truth) ** 2))),
                diag_mae=float(np.mean(np.abs(np.diag(estimate) - np.diag(truth)))),
                flips_found=int(np.sum(off_est.argmax(0)[flips] == off_true.argmax(0)[flips])),
                flips=int(flips.sum()))


def analyse_cell(arrays_file, features, random_state):
    """The estimates of the fit (confident learning on its out-of-fold
    probabilities; Bayes' rule with the forward-corrected probe on a1's
    ``features`` as prior), against the truth, and what "auto" predicts with.
    A cell saved without the fit's probabilities gets them again: the
    default's cross-validated logistic regression on a1's ``features``.  The
    folds are the fit's (those of ``random_state``)."""
    a = np.load(arrays_file)
    classes = a["classes"]
    given = np.searchsorted(classes, a["given"])
    true = np.searchsorted(classes, a["true"])
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    folds = phase_seed(seed, Seed.NOISE_FOLDS) % 2**32
    if "out_of_fold_proba" in a:
        probs = a["out_of_fold_proba"]
    else:
        probs = out_of_fold_probabilities(features, given, len(classes), random_state=folds)
    pseudo = np.searchsorted(classes, a["pseudo"])
    found = estimate_label_noise(given, probs, pseudo, features=features, random_state=folds)
    plain = estimate_label_noise(given, probs, pseudo)  # prior: p(given | x)
    errors = matrix_errors(found.noise_matrix, true_noise_matrix(given, true, len(classes)))
    return dict(est_noise_rate=found.noise_rate, noise_rate=float(np.mean(given != true)),
                expected_given_accuracy=found.given_accuracy,
                expected_pseudo_accuracy=found.pseudo_accuracy,
                auto_runs_phase_b=found.pseudo_accuracy > found.given_accuracy,
                given_prior_runs_phase_b=plain.pseudo_accuracy > plain.given_accuracy,
                **errors)


def analyse(csv_path, arrays, previous=None):
    """One row per cell: the fit's row, the estimates and the accuracy of "auto".

    A cell whose arrays are not in ``arrays`` (a grid whose cells ran on several
    machines) keeps its row of ``previous``, an earlier analysis table; a cell in
    neither raises ``FileNotFoundError`` naming it."""
    df = pd.read_csv(csv_path)
    kept = {}
    if previous is not None:
        kept = {(r["train_id"], r["setting"], r["loss"], r["seed"]): r
                for r in previous.to_dict("records")}
    rows, features = [], {}
    for r in df.to_dict("records"):
        kind = r["noise_type"]
        value = r["noise"] if kind == "cifar10n" else float(r["noise"])
        cell = cell_name(r["train_id"], kind, value, r["loss"], r["seed"])
        key = (r["train_id"], r["setting"], r["loss"], r["seed"])
        if not (arrays / f"{cell}.npz").exists():
            if key not in kept:
                raise FileNotFoundError(f"cell {cell}: no arrays in {arrays} and no row in "
                                        "the earlier analysis")
            print(f"{cell}: no arrays here, its earlier analysis row is kept", flush=True)
            rows.append(kept[key])
            continue
        if r["train_id"] not in features:
            features[r["train_id"]] = np.load(arrays / f"{r['train_id']}__a1_features.npz")[
                "train"]
        found = analyse_cell(arrays / f"{cell}.npz", features[r["train_id"]],
                             json.loads(r["params"])["random_state"])
        auto = r["full_accuracy"] if found["auto_runs_phase_b"] else r["pretrain_accuracy"]
        given_prior = (r["full_accuracy"] if found["given_prior_runs_phase_b"]
                       else r["pretrain_accuracy"])
        rows.append(dict(r, **found, auto_accuracy=auto,
                         auto_minus_pretrain=auto - r["pretrain_accuracy"],
                         given_prior_minus_pretrain=given_prior - r["pretrain_accuracy"]))
    return pd.DataFrame(rows)


def cleanlab_cell(args, train_id, data, kind, value, loss, seed, folds=5):
    """cleanlab's noise matrix (``estimate_latent`` of its confident joint) on the same
    network's cross-validated probabilities: the ``out_of_fold_proba_`` of one
    ``phases="pretrain"`` fit with ``noise_cv=folds`` (a1 from the cache).  It is the
    confident-learning matrix that the fit starts from (:mod:`noisyclf.confident_learning`
    gives cleanlab's values); the fit's ``noise_matrix_`` is the joint of its posterior."""
    from cleanlab.count import compute_confident_joint, estimate_latent

    X, y, _, _, human = data
    y_given = given_labels(args, kind, value, y, human, seed)
    params = dict(estimator_params(args, loss, seed, train_id), phases="pretrain",
                  noise_cv=folds)
    start = time.perf_counter()
    clf = ContrastiveNoisyClassifier(**params).fit(X, y_given)
    given = np.searchsorted(clf.classes_, y_given)
    true = np.searchsorted(clf.classes_, y)
    truth = true_noise_matrix(given, true, len(clf.classes_))
    theirs = estimate_latent(compute_confident_joint(given, clf.out_of_fold_proba_), given)[1]
    return dict(dataset=args.dataset, train_id=train_id, setting=setting_name(kind, value),
                loss=loss, seed=seed, folds=folds, wall_s=round(time.perf_counter() - start, 1),
                **{f"cleanlab_{k}": v for k, v in matrix_errors(theirs, truth).items()},
                **environment())


def baseline_cell(args, train_id, data, kind, value, loss, seed):
    """Test accuracy of the ``phases="baseline"`` fit on the cell's given labels: the
    framework's classifier without a1 and without phase b (the paper's baseline)."""
    X, y, X_te, y_te, human = data
    y_given = given_labels(args, kind, value, y, human, seed)
    params = dict(estimator_params(args, loss, seed, train_id), phases="baseline")
    start, cpu = time.perf_counter(), time.process_time()
    clf = ContrastiveNoisyClassifier(**params).fit(X, y_given)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return dict(dataset=args.dataset, train_id=train_id, setting=setting_name(kind, value),
                loss=loss, seed=seed, baseline_accuracy=clf.score(X_te, y_te),
                encoder=clf.encoder_kind_, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
                params=json.dumps({k: v for k, v in params.items() if k != "memory"}),
                finished=time.strftime("%Y-%m-%d %H:%M:%S"), **environment())


def cells(args, seeds):
    """Cells in the order they run: the default loss first, the first seed first (only
    the settings of ``--settings`` where it is given)."""
    for seed in seeds:
        for loss in args.losses:
            for kind, value in settings(args):
                if args.settings and setting_name(kind, value) not in args.settings:
                    continue
                if kind == "cifar10n" and seed != seeds[0]:
                    continue  # fixed human labels: another seed repeats the fit
                yield kind, value, loss, seed


def main(argv=None):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--dataset", choices=["cifar10", "digits"], default="cifar10")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--losses", nargs="+", default=LOSSES)
    parser.add_argument("--settings", nargs="+", default=None, metavar="SETTING",
                        help="run only these label settings of the grid (e.g. sym0.8)")
    parser.add_argument("--name", default=None, help="CSV stem (default auto_mode_<dataset>)")
    parser.add_argument("--cache", default=str(Path(_HERE).parent / ".noisyclf_cache"))
    parser.add_argument("--cleanlab", nargs="*", default=None, metavar="SETTING",
                        help="no grid: cleanlab's noise matrix on 5-fold cross-validated "
                             "probabilities of the same network for these settings (e.g. "
                             "asy0.4 sym0.6 worse_label), loss elr, the first seed; rows to "
                             "<name>_cleanlab.csv")
    parser.add_argument("--baseline", nargs="*", default=None, metavar="SETTING",
                        help="no grid: the phases=\"baseline\" fit (no a1, no phase b) for "
                             "these settings, the first loss and seed; rows to "
                             "<name>_baseline.csv")
    parser.add_argument("--noise-cv", type=int, default=None,
                        help="fit with noise_cv=K (a2 cross-fitted for the noise estimates)")
    parser.add_argument("--noise-cv-epochs", type=int, default=None,
                        help="fit with noise_cv_epochs=E (each cross-fitted a2 trains E epochs)")
    parser.add_argument("--analyse", action="store_true",
                        help="no fits: write <name>_analysis.csv from the saved cells")
    parser.add_argument("--a1-store", type=Path, default=None, metavar="DIR",
                        help="a1 caches as DIR/<training set>.tar: extracted into --cache "
                             "before the cells, written once a1 has run")
    args = parse_args(parser, argv)
    if args.quick:
        args.n_train, args.seeds, args.losses = 200, args.seeds[:1], args.losses[:1]
    name = args.name or f"auto_mode_{args.dataset}" + (
        f"_cv{args.noise_cv}" if args.noise_cv else "") + (
        f"e{args.noise_cv_epochs}" if args.noise_cv and args.noise_cv_epochs else "")
    csv_path = args.out / f"{name}.csv"
    arrays = args.out / f"{name}_arrays"
    arrays.mkdir(exist_ok=True)
    if args.analyse:
        analysis_path = args.out / f"{name}_analysis.csv"
        previous = pd.read_csv(analysis_path) if analysis_path.exists() else None
        table = analyse(csv_path, arrays, previous)
        table.to_csv(analysis_path, index=False)
        return table
    if args.cleanlab is not None:
        return run_side_cells(args, name, "cleanlab", args.cleanlab, cleanlab_cell)
    if args.baseline is not None:
        return run_side_cells(args, name, "baseline", args.baseline, baseline_cell)
    named_settings(args, args.settings or [])
    done = set()
    if csv_path.exists():
        old = pd.read_csv(csv_path)
        done = {(t, s, lo, se) for t, s, lo, se in
                zip(old.train_id, old.setting, old.loss, old.seed)}
    for train_id, X, y, X_te, y_te, human, seeds in training_sets(args):
        a1_store(args, train_id, "restore")
        feature_file = arrays / f"{train_id}__a1_features.npz"
        if not feature_file.exists():
            F, F_te = a1_features(args, train_id, X, X_te, seeds[0])
            np.savez_compressed(feature_file, train=F, test=F_te)
        a1_store(args, train_id, "store")
        for kind, value, loss, seed in cells(args, seeds):
            if (train_id, setting_name(kind, value), loss, seed) in done:
                continue
            row = run_cell(args, train_id, (X, y, X_te, y_te, human), kind, value, loss, seed,
                           arrays)
            append_row(csv_path, row)
            print(f"{row['setting']:>14} {loss:>8} s{seed}: pretrain {row['pretrain_accuracy']:.4f}"
                  f" full {row['full_accuracy']:.4f} (given {row['given_accuracy']:.3f}, "
                  f"pseudo {row['pseudo_accuracy']:.3f}) {row['wall_s']:.0f} s", flush=True)
            a1_store(args, train_id, "store")


def a1_store(args, train_id, action):
    """With ``--a1-store``: ``"restore"`` extracts ``<store>/<train_id>.tar`` into the a1
    cache of ``train_id``; ``"store"`` writes that cache to it when it has more."""
    if args.a1_store is None:
        return
    archive, cache = args.a1_store / f"{train_id}.tar", Path(args.cache) / "a1" / train_id
    if action == "restore":
        print(f"{restore_cache(archive, cache)} a1 cache files from {archive}", flush=True)
    elif store_cache(cache, archive):
        print(f"a1 cache of {train_id} stored in {archive}", flush=True)


def named_settings(args, wanted_settings):
    """The grid's settings, ``{name: (kind, value)}``; exits naming any of
    ``wanted_settings`` that is not among them."""
    known = {setting_name(kind, value): (kind, value) for kind, value in settings(args)}
    unknown = sorted(set(wanted_settings) - set(known))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; the grid has {sorted(known)}")
    return known


def run_side_cells(args, name, suffix, wanted_settings, cell):
    """One ``cell(args, train_id, data, kind, value, loss, seed)`` row per setting of
    ``wanted_settings`` (the first loss and seed), appended to ``<name>_<suffix>.csv``;
    a rerun skips the settings already there."""
    path = args.out / f"{name}_{suffix}.csv"
    done = set()
    if path.exists():
        old = pd.read_csv(path)
        done = set(zip(old["train_id"], old["setting"]))
    known = named_settings(args, wanted_settings)
    for train_id, X, y, X_te, y_te, human, seeds in training_sets(args):
        a1_store(args, train_id, "restore")
        for setting in wanted_settings:
            if (train_id, setting) in done:
                continue
            kind, value = known[setting]
            row = cell(args, train_id, (X, y, X_te, y_te, human), kind, value,
                       args.losses[0], seeds[0])
            append_row(path, row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
