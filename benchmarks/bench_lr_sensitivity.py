"""Learning-rate sensitivity (the paper's Figure 5) on digits with 80% symmetric noise.

For every ``lr`` in {0.001, 0.01, 0.1, 1.0}, ``phases`` in {baseline, pretrain}
and ``loss`` in {ce, nfl+rce, elr}, the classifier is fitted on the *noisy*
training labels and scored on a *clean* held-out test set, for several seeds
(each seed draws its own 70/30 split, its own noisy labels and its own model
seeds).  This is what the paper plots (test accuracy).  A plain
``GridSearchCV`` would instead score each point on noisy validation folds, so
the study is a loop over :class:`sklearn.model_selection.ParameterGrid` with
:func:`sklearn.base.clone`.  SimCLR pre-training (a1) is cached with
``memory``, so it runs once per seed and is shared by all 12 "pretrain" points.

A second, smaller part checks that ``GridSearchCV`` itself gets through a grid
holding learning rates that blow up: it searches ``lr`` over the paper's four
values plus ``lr=1000`` (added because on this data even ``lr=1.0`` may not
produce a NaN/inf loss), with ``error_score="raise"``; every fit that diverges
emits :class:`noisyclf.DivergenceWarning`, keeps the weights of its last
finite epoch, and is scored like any other point.  (Those scores are on noisy
validation folds: this part only shows robustness.)

Run ``python benchmarks/bench_lr_sensitivity.py`` (about 10-15 minutes on 2
CPU cores); ``--quick`` runs a tiny configuration for smoke tests.  Writes
``lr_sensitivity.csv`` (mean/std per point), ``lr_sensitivity_runs.csv`` (one
row per fit), ``lr_sensitivity_gridsearch.csv`` and ``lr_sensitivity.png`` to
``benchmarks/results/`` (or ``--out``).
"""

import sys
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import (
    GridSearchCV, ParameterGrid, StratifiedKFold, train_test_split,
)

from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning, make_noisy_labels

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    environment, epochs_label, make_parser, parse_args, pyplot, run_main, save_figure, write_csv,
)

LOSSES = ["ce", "nfl+rce", "elr"]

FULL = dict(lrs=[0.001, 0.01, 0.1, 1.0], losses=LOSSES, phases=["baseline", "pretrain"],
            seeds=[0, 1, 2], noise_rate=0.8, n_train=None, batch_size=128,
            pretrain_epochs=40, max_epochs=20, warmup_epochs=5,
            gs_lrs=[0.001, 0.01, 0.1, 1.0, 1000.0], gs_cv=3, gs_max_epochs=3)
QUICK = dict(lrs=[0.01, 1.0], losses=["ce"], phases=["baseline", "pretrain"],
             seeds=[0], noise_rate=0.8, n_train=150, batch_size=32,
             pretrain_epochs=1, max_epochs=1, warmup_epochs=0,
             gs_lrs=[0.01, 1000.0], gs_cv=2, gs_max_epochs=2)

SUMMARY_COLUMNS = [
    "loss", "phases", "lr", "test_accuracy_mean", "test_accuracy_std", "n_seeds",
    "n_fits_diverged", "noisy_train_accuracy_mean", "fit_s_mean",
    "dataset", "n_train", "n_test", "noise", "pretrain_epochs", "max_epochs", "warmup_epochs",
    "batch_size", "seeds",
    "torch_threads", "openmp_threads", "cpu_count", "python", "torch", "sklearn",
    "noisyclf",
]
RUN_COLUMNS = ["seed", "loss", "phases", "lr", "test_accuracy", "noisy_train_accuracy",
               "diverged_phases", "fit_s"]
GS_COLUMNS = ["lr", "mean_test_score_noisy_folds", "std_test_score_noisy_folds",
              "rank_test_score", "n_fits", "n_fits_diverged", "diverged_phases", "loss",
              "phases", "max_epochs", "cv", "n_train", "noise", "divergence_warnings_total",
              "best_lr", "torch_threads"]


def _split(seed, cfg):
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=seed)
    if cfg["n_train"] is not None:
        X_tr, y_tr = X_tr[:cfg["n_train"]], y_tr[:cfg["n_train"]]
    y_noisy = make_noisy_labels(y_tr, "symmetric", cfg["noise_rate"], random_state=seed)
    return X_tr, y_noisy, X_te, y_te


def _base(cfg):
    return ContrastiveNoisyClassifier(
        image_shape=(1, 8, 8), pretrain_epochs=cfg["pretrain_epochs"],
        max_epochs=cfg["max_epochs"], warmup_epochs=cfg["warmup_epochs"],
        batch_size=cfg["batch_size"], device="cpu")


def run_study(cfg, memory, *, out=sys.stdout):
    """Fit on noisy labels, score on the clean test set: one row per (seed, point)."""
    grid = ParameterGrid({"loss": cfg["losses"], "phases": cfg["phases"], "lr": cfg["lrs"]})
    base = _base(cfg)
    rows = []
    for seed in cfg["seeds"]:
        X_tr, y_noisy, X_te, y_te = _split(seed, cfg)
        for params in grid:
            est = clone(base).set_params(**params, memory=memory, random_state=seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)  # recorded below
                est.fit(X_tr, y_noisy)
            fit_s = time.perf_counter() - start
            rows.append(dict(
                seed=seed, loss=params["loss"], phases=params["phases"], lr=params["lr"],
                test_accuracy=round(float(est.score(X_te, y_te)), 4),
                noisy_train_accuracy=round(float(est.score(X_tr, y_noisy)), 4),
                diverged_phases=" ".join(est.diverged_phases_), fit_s=round(fit_s, 2)))
            r = rows[-1]
            print(f"  seed {seed} {r['loss']:7s} {r['phases']:8s} lr {r['lr']:<6g} "
                  f"test acc {r['test_accuracy']:.4f}  ({fit_s:.1f} s)"
                  + (f"  diverged: {r['diverged_phases']}" if r["diverged_phases"] else ""),
                  file=out, flush=True)
    return rows


def summarize(rows, cfg, n_train, n_test):
    env = environment()
    summary = []
    keys = list(dict.fromkeys((r["loss"], r["phases"], r["lr"]) for r in rows))
    for loss, phases, lr in keys:
        sel = [r for r in rows if (r["loss"], r["phases"], r["lr"]) == (loss, phases, lr)]
        acc = np.array([r["test_accuracy"] for r in sel])
        summary.append(dict(
            loss=loss, phases=phases, lr=lr,
            test_accuracy_mean=round(float(acc.mean()), 4),
            test_accuracy_std=round(float(acc.std()), 4), n_seeds=len(sel),
            n_fits_diverged=sum(bool(r["diverged_phases"]) for r in sel),
            noisy_train_accuracy_mean=round(float(np.mean(
                [r["noisy_train_accuracy"] for r in sel])), 4),
            fit_s_mean=round(float(np.mean([r["fit_s"] for r in sel])), 2),
            dataset="digits", n_train=n_train, n_test=n_test,
            noise=f"symmetric {cfg['noise_rate']}", pretrain_epochs=cfg["pretrain_epochs"],
            max_epochs=cfg["max_epochs"], warmup_epochs=cfg["warmup_epochs"],
            batch_size=cfg["batch_size"], seeds=" ".join(map(str, cfg["seeds"])), **env))
    return summary


def run_gridsearch_check(cfg, *, out=sys.stdout):
    """GridSearchCV over lr, including learning rates that diverge; nothing may crash."""
    X_tr, y_noisy, _, _ = _split(cfg["seeds"][0], cfg)
    log = []

    def scorer(est, X, y):
        # Called once per (candidate, fold) on the fitted estimator: record
        # which phases diverged, then score as GridSearchCV would.
        log.append((est.lr, list(est.diverged_phases_)))
        return est.score(X, y)

    est = _base(cfg).set_params(phases="baseline", loss="ce", max_epochs=cfg["gs_max_epochs"],
                                random_state=cfg["seeds"][0])
    search = GridSearchCV(
        est, {"lr": cfg["gs_lrs"]}, scoring=scorer, error_score="raise", n_jobs=1,
        cv=StratifiedKFold(cfg["gs_cv"], shuffle=True, random_state=cfg["seeds"][0]))
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", DivergenceWarning)
        search.fit(X_tr, y_noisy)
    n_warn = sum(issubclass(w.category, DivergenceWarning) for w in records)
    res = search.cv_results_
    rows = []
    for i, lr in enumerate(cfg["gs_lrs"]):
        fits = [d for (fit_lr, d) in log if fit_lr == lr]
        phases = sorted({p for d in fits for p in d})
        rows.append(dict(
            lr=lr, mean_test_score_noisy_folds=round(float(res["mean_test_score"][i]), 4),
            std_test_score_noisy_folds=round(float(res["std_test_score"][i]), 4),
            rank_test_score=int(res["rank_test_score"][i]), n_fits=len(fits),
            n_fits_diverged=sum(bool(d) for d in fits), diverged_phases=" ".join(phases),
            loss="ce", phases="baseline", max_epochs=cfg["gs_max_epochs"], cv=cfg["gs_cv"],
            n_train=len(X_tr), noise=f"symmetric {cfg['noise_rate']}",
            divergence_warnings_total=n_warn, best_lr=search.best_params_["lr"],
            torch_threads=torch.get_num_threads()))
        r = rows[-1]
        print(f"  GridSearchCV lr {lr:<7g} mean CV score (noisy folds) "
              f"{r['mean_test_score_noisy_folds']:.4f}  diverged in "
              f"{r['n_fits_diverged']}/{r['n_fits']} fits", file=out, flush=True)
    return rows


def plot(summary, path):
    plt = pyplot()

    losses = list(dict.fromkeys(r["loss"] for r in summary))
    fig, axes = plt.subplots(1, len(losses), figsize=(3.6 * len(losses), 3.4),
                             sharey=True, squeeze=False)
    colors = {"ce": "#1f77b4", "nfl+rce": "#ff7f0e", "elr": "#2ca02c"}
    for ax, loss in zip(axes[0], losses):
        for phases, style in [("baseline", "--"), ("pretrain", "-")]:
            sel = sorted((r for r in summary if r["loss"] == loss and r["phases"] == phases),
                         key=lambda r: r["lr"])
            if not sel:
                continue
            ax.errorbar([r["lr"] for r in sel], [r["test_accuracy_mean"] for r in sel],
                        yerr=[r["test_accuracy_std"] for r in sel], ls=style, marker="o",
                        capsize=3, color=colors.get(loss), label=phases)
            for r in sel:
                if r["n_fits_diverged"]:
                    ax.plot(r["lr"], r["test_accuracy_mean"], "kx", ms=9)
        ax.set_xscale("log")
        ax.set_title(loss)
        ax.set_xlabel("learning rate (a2)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("clean test accuracy")
    r0 = summary[0]
    fig.suptitle(
        f"LR sensitivity, digits {r0['noise']} noise, mean ± std over seeds {r0['seeds']}; "
        f"{epochs_label(r0, 'ep')} "
        f"(warm-up {r0['warmup_epochs']}), {r0['torch_threads']} thread(s)", fontsize=9)
    save_figure(fig, path)


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    args = parse_args(parser, argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.max_epochs is not None:
        cfg["max_epochs"] = args.max_epochs
    if args.pretrain_epochs is not None:
        cfg["pretrain_epochs"] = args.pretrain_epochs
    out = args.out
    print(f"bench_lr_sensitivity: digits, symmetric {cfg['noise_rate']}, lr {cfg['lrs']}, "
          f"losses {cfg['losses']}, phases {cfg['phases']}, seeds {cfg['seeds']}, "
          f"{epochs_label(cfg)} "
          f"(warm-up {cfg['warmup_epochs']}), torch threads {torch.get_num_threads()}",
          flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noisyclf-bench-lr-") as tmp:
        rows = run_study(cfg, joblib.Memory(tmp, verbose=0))
    X_tr, _, X_te, _ = _split(cfg["seeds"][0], cfg)
    summary = summarize(rows, cfg, len(X_tr), len(X_te))
    study_s = time.perf_counter() - start
    gs_rows = run_gridsearch_check(cfg)
    write_csv(summary, SUMMARY_COLUMNS, out / "lr_sensitivity.csv")
    write_csv(rows, RUN_COLUMNS, out / "lr_sensitivity_runs.csv")
    write_csv(gs_rows, GS_COLUMNS, out / "lr_sensitivity_gridsearch.csv")
    plot(summary, out / "lr_sensitivity.png")

    print(f"\nClean test accuracy, mean ± std over seeds {cfg['seeds']} "
          f"(digits, symmetric {cfg['noise_rate']} noise on the training labels)\n")
    print("| loss | phases | " + " | ".join(f"lr={lr:g}" for lr in cfg["lrs"]) + " |")
    print("|---|---|" + "---|" * len(cfg["lrs"]))
    for loss in cfg["losses"]:
        for phases in cfg["phases"]:
            cells = []
            for lr in cfg["lrs"]:
                r = next(s for s in summary
                         if (s["loss"], s["phases"], s["lr"]) == (loss, phases, lr))
                cells.append(f"{r['test_accuracy_mean']:.4f} ± {r['test_accuracy_std']:.4f}"
                             + (f" ({r['n_fits_diverged']} diverged)"
                                if r["n_fits_diverged"] else ""))
            print(f"| {loss} | {phases} | " + " | ".join(cells) + " |")
    print(f"\nGridSearchCV (phases=baseline, loss=ce, {cfg['gs_max_epochs']} epochs, "
          f"cv={cfg['gs_cv']}, error_score='raise') over lr {cfg['gs_lrs']}: completed; "
          f"{gs_rows[0]['divergence_warnings_total']} DivergenceWarning(s); best lr "
          f"{gs_rows[0]['best_lr']}")
    for r in gs_rows:
        print(f"  lr {r['lr']:<7g} mean CV score on noisy folds "
              f"{r['mean_test_score_noisy_folds']:.4f}, diverged fits "
              f"{r['n_fits_diverged']}/{r['n_fits']}"
              + (f" ({r['diverged_phases']})" if r["diverged_phases"] else ""))
    print(f"\nStudy time: {study_s:.0f} s; total time: {time.perf_counter() - start:.0f} s; "
          f"wrote {out / 'lr_sensitivity.csv'}")
    return summary


if __name__ == "__main__":
    run_main(main)
