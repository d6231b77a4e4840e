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

CIFAR-10 (``--dataset cifar10``): the ``--n-labeled`` images of the 4,000-image
grid (the same stratified subset, ``--subset-seed``) keep their noisy labels (each
``--settings`` entry: symmetric noise drawn with the seed, or CIFAR-10N's human
labels), the other ``--n-train`` - ``--n-labeled`` training images are unlabeled;
the two noisyclf methods only (the grid's ``phases="full"`` fits, default
hyperparameters), a1 cached under ``--cache``/a1/cifar10_n<n-train>_s<subset-seed>,
where the benchmark with every CIFAR-10 label shares it.

Rows append to ``results/<name>.csv`` (default ``unlabeled_<dataset>``) as each
finishes; a rerun skips the rows already there.

Usage::

    python benchmarks/bench_unlabeled.py --seeds 0 1 2 3 4 --threads 2
    python benchmarks/bench_unlabeled.py --dataset cifar10 --data ../shared/data \
        --n-labeled 4000 --settings sym0.4 worse_label --seeds 0 --threads 2 \\
        --checkpoint-dir ../noisyclf_checkpoints
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
from _common import (  # noqa: E402
    add_data_argument, append_row, environment, make_parser, parse_args, pretrain_and_full_accuracy,
)
from bench_cifar10 import SETTINGS as CIFAR_SETTINGS  # noqa: E402
from bench_cifar10 import noisy_labels, setting_name  # noqa: E402

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels  # noqa: E402
from noisyclf.datasets import _stratified_indices, load_cifar10  # noqa: E402

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


def cifar_split(args, setting, seed):
    """As :func:`split` for CIFAR-10: every ``--n-train`` image, the noisy labels of the
    grid's ``--n-labeled`` subset and -1 for the others."""
    cache = str(Path(args.cache) / "decoded")
    X, y = load_cifar10(args.data, n_samples=args.n_train, random_state=args.subset_seed,
                        memory=cache)
    X_te, y_te = load_cifar10(args.data, subset="test", n_samples=500 if args.quick else None,
                              random_state=0, memory=cache)
    # The grid's subset: load_cifar10(n_samples=n_labeled, random_state=subset_seed).
    labeled = _stratified_indices(y, args.n_labeled, np.random.RandomState(args.subset_seed))
    kind, value = {setting_name(k, v): (k, v) for k, v in CIFAR_SETTINGS}[setting]
    human = {}
    if kind == "cifar10n":
        human[value] = load_cifar10(args.data, n_samples=args.n_train,
                                    random_state=args.subset_seed, label_noise=value,
                                    memory=cache)[1][labeled]
    given = np.full(len(y), -1)
    given[labeled] = noisy_labels(kind, value, y[labeled], human, seed)
    return X, given, y, X_te, y_te, labeled


def noisyclf_row(args, X, given, X_te, y_te, seed, memory=None, checkpoint_dir=None):
    """One ``phases="full"`` fit: a2's and b3's test accuracy and what "auto" predicts."""
    params = (dict(phases="full", image_shape=(1, 8, 8), random_state=seed)
              if args.dataset == "digits" else
              dict(phases="full", random_state=args.model_seed, memory=memory))
    if args.quick:
        params.update(QUICK_PARAMS)
    clf = ContrastiveNoisyClassifier(**params, checkpoint_dir=checkpoint_dir).fit(X, given)
    accuracy = pretrain_and_full_accuracy(clf, X_te, y_te)
    pretrain, full = accuracy["a2"], accuracy["b3"]
    runs_b = clf.phase_b_decision_["auto_runs_phase_b"]  # what "auto" decides
    return dict(accuracy=full if runs_b else pretrain, pretrain_accuracy=pretrain,
                full_accuracy=full, auto_runs_phase_b=runs_b,
                params=json.dumps({k: str(v) if k == "memory" else v
                                   for k, v in params.items()}))


def run_cell(args, method, seed, setting):
    if args.dataset == "digits":
        X, given, y_true, X_te, y_te, labeled = split(seed, args.n_labeled, args.noise)
        memory = {}
    else:
        X, given, y_true, X_te, y_te, labeled = cifar_split(args, setting, seed)
        a1 = Path(args.cache) / "a1"
        memory = {"noisyclf + unlabeled": a1 / f"cifar10_n{len(X)}_s{args.subset_seed}",
                  "noisyclf, labels only": a1 / f"cifar10_n{len(labeled)}_s{args.subset_seed}"}
    checkpoint = (None if args.checkpoint_dir is None else
                  Path(args.checkpoint_dir) / "_".join(
                      [args.dataset, setting, method.replace(",", "").replace(" ", "-"),
                       f"s{seed}"]))
    start = time.perf_counter()
    if method == "noisyclf + unlabeled":
        row = noisyclf_row(args, X, given, X_te, y_te, seed, memory.get(method), checkpoint)
    elif method == "noisyclf, labels only":
        row = noisyclf_row(args, X[labeled], given[labeled], X_te, y_te, seed,
                           memory.get(method), checkpoint)
    else:
        model = (SelfTrainingClassifier(LogisticRegression(max_iter=1000))
                 if method == "SelfTrainingClassifier" else LabelSpreading(kernel="knn"))
        model.fit(X / 16.0, given)
        row = dict(accuracy=model.score(X_te / 16.0, y_te), pretrain_accuracy=np.nan,
                   full_accuracy=np.nan, auto_runs_phase_b=np.nan, params=json.dumps(
            {k: str(v) for k, v in model.get_params(deep=False).items()}))
    n_unlabeled = int((given == -1).sum())
    return dict(dataset=args.dataset, setting=setting, method=method, seed=seed,
                n_labeled=len(labeled),
                n_unlabeled=n_unlabeled if method != "noisyclf, labels only" else 0,
                noise=args.noise if args.dataset == "digits" else np.nan,
                given_accuracy=float(np.mean(given[labeled] == y_true[labeled])),
                n_test=len(y_te), **row, wall_s=round(time.perf_counter() - start, 1),
                **environment())


def main(argv=None):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--dataset", choices=["digits", "cifar10"], default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-labeled", type=int, default=None,
                        help="labeled training samples (default 150 digits, 4000 CIFAR-10)")
    parser.add_argument("--noise", type=float, default=0.3, help="digits: symmetric noise")
    parser.add_argument("--settings", nargs="+", default=["sym0.4", "worse_label"],
                        help="CIFAR-10 label settings (bench_cifar10.py's names)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="CIFAR-10 training images, labeled or not (default: all)")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--cache", default=str(Path(_HERE).parent / ".noisyclf_cache"))
    parser.add_argument("--methods", nargs="+", default=None, choices=METHODS)
    parser.add_argument("--checkpoint-dir", default=None,
                        help="the noisyclf fits save their progress here (checkpoint_dir): "
                             "a killed run resumes where it stopped when run again")
    parser.add_argument("--name", default=None, help="CSV stem (default unlabeled_<dataset>)")
    args = parse_args(parser, argv)
    cifar = args.dataset == "cifar10"
    if args.n_labeled is None:
        args.n_labeled = 4000 if cifar else 150
    if args.methods is None:
        args.methods = METHODS[:2] if cifar else METHODS
    if args.quick:
        args.seeds = args.seeds[:1]
        if cifar:
            args.n_train, args.n_labeled, args.settings = 300, 100, args.settings[:1]
    settings = args.settings if cifar else [f"sym{args.noise}"]
    name = args.name or f"unlabeled_{args.dataset}"
    path = args.out / f"{name}.csv"
    done = set()
    if path.exists():
        old = pd.read_csv(path)
        done = set(zip(old["setting"], old["method"], old["seed"]))
    for seed in args.seeds:
        for setting in settings:
            for method in args.methods:
                if (setting, method, seed) in done:
                    continue
                row = run_cell(args, method, seed, setting)
                append_row(path, row)
                print(f"{setting:>12} {method:>24} s{seed}: {row['accuracy']:.4f} "
                      f"({row['wall_s']:.0f} s)", flush=True)
    plot(pd.read_csv(path), args.out / f"{name}.png")


def plot(runs, path):
    """Test accuracy per label setting and method, one point per seed and the mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(setting, m) for setting in dict.fromkeys(runs["setting"]) for m in METHODS
              if ((runs["setting"] == setting) & (runs["method"] == m)).any()]
    several = runs["setting"].nunique() > 1
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(groups)), 3.2))
    for i, (setting, method) in enumerate(groups):
        acc = runs.loc[(runs["setting"] == setting) & (runs["method"] == method), "accuracy"]
        ax.scatter(np.full(len(acc), i), acc, color="0.6", s=12, zorder=2)
        ax.hlines(acc.mean(), i - 0.3, i + 0.3, color="C0", lw=2, zorder=3)
    ax.set_xticks(range(len(groups)),
                  [f"{s}\n{m}" if several else m for s, m in groups], rotation=12, fontsize=8)
    ax.set_ylabel("test accuracy (clean labels)")
    ax.set_title(f"{runs['dataset'].iloc[0]}: {int(runs['n_labeled'].iloc[0])} noisy labels, "
                 f"{int(runs['n_unlabeled'].max())} unlabeled samples", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
