"""A few noisy labels and many unlabeled samples: the estimator with its unlabeled samples
(``y == -1``) against itself on the labeled samples alone and against scikit-learn's
semi-supervised estimators.

Digits, per seed: a 70/30 stratified split (as ``python -m noisyclf``);
``--n-labeled`` training samples (stratified, drawn with the seed) keep a label, of
which ``--noise`` are flipped to another class (symmetric); the rest of the training
split is unlabeled.  Each row is one method on one seed, scored on the clean test
split:

* ``noisyclf + unlabeled``: the default estimator on the whole training split with
  ``-1`` for the unlabeled samples ("auto" runs phase b: the unlabeled samples have
  no given label); from the same ``phases="full"`` fit, its a2 (``pretrain``) and
  b3 (``full``) columns;
* ``noisyclf, labels only``: the default estimator on the labeled samples alone
  (``auto`` decides by its own estimates; ``pretrain`` and ``full`` as above);
* ``SelfTrainingClassifier``: ``SelfTrainingClassifier(LogisticRegression(max_iter=1000))``
  on the pixels scaled to [0, 1], the same ``-1`` labels;
* ``LabelSpreading``: ``LabelSpreading(kernel="knn")`` on the same input (the default
  RBF kernel with ``gamma=20`` gives every pair of digits a weight of 0).

Rows append to ``results/<name>.csv`` (default ``unlabeled_digits``) as each
finishes; a rerun skips the rows already there.

Usage::

    python benchmarks/bench_unlabeled.py --seeds 0 1 2 3 4 --threads 2
    python benchmarks/bench_unlabeled.py --quick --out /tmp/x
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import environment, make_parser, parse_args  # noqa: E402

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels  # noqa: E402

QUICK_PARAMS = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
                    gmm_epochs=1)
METHODS = ["noisyclf + unlabeled", "noisyclf, labels only", "SelfTrainingClassifier",
           "LabelSpreading"]


def split(seed, n_labeled, noise):
    """Training images, their labels with ``-1`` for the unlabeled ones, the clean
    training labels, the test split and the labeled positions."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=seed)
    labeled, _ = train_test_split(np.arange(len(y_tr)), train_size=n_labeled, stratify=y_tr,
                                  random_state=seed)
    labeled = np.sort(labeled)
    given = np.full(len(y_tr), -1)
    given[labeled] = make_noisy_labels(y_tr[labeled], "symmetric", noise, random_state=seed)
    return X_tr, given, y_tr, X_te, y_te, labeled


def noisyclf_row(args, X, given, X_te, y_te, seed):
    """One ``phases="full"`` fit: a2's and b3's test accuracy and what "auto" predicts."""
    params = dict(phases="full", image_shape=(1, 8, 8), random_state=seed)
    if args.quick:
        params.update(QUICK_PARAMS)
    clf = ContrastiveNoisyClassifier(**params).fit(X, given)
    full = clf.score(X_te, y_te)
    clf.classifier_net_ = clf.pseudo_label_net_
    pretrain = clf.score(X_te, y_te)
    decision = clf.phase_b_decision_
    runs_b = "'auto' would run it" in decision["reason"]
    return dict(accuracy=full if runs_b else pretrain, pretrain_accuracy=pretrain,
                full_accuracy=full, auto_runs_phase_b=runs_b,
                params=json.dumps(params))


def run_cell(args, method, seed):
    X, given, y_true, X_te, y_te, labeled = split(seed, args.n_labeled, args.noise)
    start = time.perf_counter()
    if method == "noisyclf + unlabeled":
        row = noisyclf_row(args, X, given, X_te, y_te, seed)
    elif method == "noisyclf, labels only":
        row = noisyclf_row(args, X[labeled], given[labeled], X_te, y_te, seed)
    else:
        model = (SelfTrainingClassifier(LogisticRegression(max_iter=1000))
                 if method == "SelfTrainingClassifier" else LabelSpreading(kernel="knn"))
        model.fit(X / 16.0, given)
        row = dict(accuracy=model.score(X_te / 16.0, y_te), pretrain_accuracy=np.nan,
                   full_accuracy=np.nan, auto_runs_phase_b=np.nan, params=json.dumps(
            {k: str(v) for k, v in model.get_params(deep=False).items()}))
    n_unlabeled = int((given == -1).sum())
    return dict(dataset="digits", method=method, seed=seed, n_labeled=len(labeled),
                n_unlabeled=n_unlabeled if method != "noisyclf, labels only" else 0,
                noise=args.noise,
                given_accuracy=float(np.mean(given[labeled] == y_true[labeled])),
                n_test=len(y_te), **row, wall_s=round(time.perf_counter() - start, 1),
                **environment())


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-labeled", type=int, default=150)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--name", default="unlabeled_digits")
    args = parse_args(parser, argv)
    if args.quick:
        args.seeds = args.seeds[:1]
    path = args.out / f"{args.name}.csv"
    done = set()
    if path.exists():
        old = pd.read_csv(path)
        done = set(zip(old["method"], old["seed"]))
    for seed in args.seeds:
        for method in args.methods:
            if (method, seed) in done:
                continue
            row = run_cell(args, method, seed)
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False)
            print(f"{method:>24} s{seed}: {row['accuracy']:.4f} ({row['wall_s']:.0f} s)",
                  flush=True)
    plot(pd.read_csv(path), args.out / f"{args.name}.png")


def plot(runs, path):
    """Test accuracy per method, one point per seed and the mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in set(runs["method"])]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for i, method in enumerate(methods):
        acc = runs.loc[runs["method"] == method, "accuracy"]
        ax.scatter(np.full(len(acc), i), acc, color="0.6", s=12, zorder=2)
        ax.hlines(acc.mean(), i - 0.3, i + 0.3, color="C0", lw=2, zorder=3)
    ax.set_xticks(range(len(methods)), methods, rotation=12, fontsize=8)
    r = runs.iloc[0]
    ax.set_ylabel("test accuracy (clean labels)")
    ax.set_title(f"digits: {int(r['n_labeled'])} labels "
                 f"({1 - runs['given_accuracy'].mean():.0%} wrong), "
                 f"{int(runs['n_unlabeled'].max())} unlabeled", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
