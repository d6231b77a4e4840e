"""The tabular path on noisy labels: breast cancer (and wine), against scikit-learn baselines.

2-D ``X`` without ``image_shape`` makes :class:`ContrastiveNoisyClassifier`
use an MLP encoder and SCARF-style feature corruption as the contrastive
augmentation.  For every dataset, symmetric noise rate and seed, the script
draws a 70/30 stratified split, corrupts the training labels (symmetric noise;
on the binary breast cancer data this flips exactly that fraction of labels to
the other class) and reports accuracy on the *clean* test labels of:

* ``logreg``: ``make_pipeline(StandardScaler(), LogisticRegression())``;
* ``hgb``: ``HistGradientBoostingClassifier()``;
* ``baseline`` / ``pretrain`` / ``full``: the three modes of
  ``make_pipeline(StandardScaler(), ContrastiveNoisyClassifier(...))``,

all trained on the same noisy labels.  SimCLR pre-training is label-free, so
it is cached with ``memory`` and runs once per (dataset, seed).  Only datasets
that ship with scikit-learn are used (no download).

Run ``python benchmarks/bench_tabular.py`` (a few minutes on 2 CPU cores);
``--quick`` runs a tiny configuration for smoke tests.  Writes
``tabular.csv`` (mean and std over seeds), ``tabular_runs.csv`` (one row per
fit) and ``tabular.png`` to ``benchmarks/results/`` (or ``--out``).
"""

import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    environment, make_parser, parse_args, pyplot, run_main, save_figure, write_csv,
)

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine}
METHODS = ["logreg", "hgb", "baseline", "pretrain", "full"]

# The framework runs with the estimator's defaults (FULL's params is empty), so the
# results follow any change of defaults; the values actually used are written
# to the CSV.  --quick overrides the epochs to keep smoke tests fast.
TUNED = ("lr", "pretrain_epochs", "max_epochs", "finetune_epochs", "warmup_epochs",
         "batch_size")
FULL = dict(datasets=["breast_cancer", "wine"], rates=[0.2, 0.4], seeds=[0, 1, 2, 3, 4],
            loss="elr", params={}, n_train=None)
QUICK = dict(datasets=["breast_cancer"], rates=[0.4], seeds=[0], loss="elr",
             params=dict(pretrain_epochs=1, max_epochs=1, finetune_epochs=1, warmup_epochs=0),
             n_train=120)

SUMMARY_COLUMNS = [
    "dataset", "noise_rate", "method", "accuracy_mean", "accuracy_std", "n_seeds",
    "fit_s_mean", "n_train", "n_test", "n_features", "n_classes", "noise", "loss",
    "lr", "pretrain_epochs", "max_epochs", "finetune_epochs", "warmup_epochs", "batch_size",
    "seeds",
    "torch_threads", "openmp_threads", "cpu_count", "python", "torch", "sklearn", "noisyclf",
]
RUN_COLUMNS = ["dataset", "noise_rate", "seed", "method", "accuracy", "actual_noise", "fit_s"]


def resolved_params(cfg):
    """The framework's hyperparameters in ``TUNED`` as used (defaults + overrides)."""
    params = ContrastiveNoisyClassifier(**cfg["params"]).get_params()
    return {k: params[k] for k in TUNED}


def make_models(cfg, seed, memory):
    """The five methods, fresh and seeded."""
    def cnc(phases):
        return make_pipeline(StandardScaler(), ContrastiveNoisyClassifier(
            phases=phases, loss=cfg["loss"], memory=memory, device="cpu",
            random_state=seed, **cfg["params"]))

    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "hgb": HistGradientBoostingClassifier(random_state=seed),
        "baseline": cnc("baseline"),
        "pretrain": cnc("pretrain"),
        "full": cnc("full"),
    }


def run(cfg, memory, *, out=sys.stdout):
    rows, meta = [], {}
    for name in cfg["datasets"]:
        X, y = DATASETS[name](return_X_y=True)
        for seed in cfg["seeds"]:
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.3, stratify=y, random_state=seed)
            if cfg["n_train"] is not None:
                X_tr, y_tr = X_tr[:cfg["n_train"]], y_tr[:cfg["n_train"]]
            meta[name] = dict(n_train=len(X_tr), n_test=len(X_te), n_features=X.shape[1],
                              n_classes=len(np.unique(y)))
            for rate in cfg["rates"]:
                y_noisy = make_noisy_labels(y_tr, "symmetric", rate, random_state=seed)
                actual = float(np.mean(y_noisy != y_tr))
                for method, model in make_models(cfg, seed, memory).items():
                    start = time.perf_counter()
                    model.fit(X_tr, y_noisy)
                    fit_s = time.perf_counter() - start
                    acc = float(model.score(X_te, y_te))
                    rows.append(dict(dataset=name, noise_rate=rate, seed=seed, method=method,
                                     accuracy=round(acc, 4), actual_noise=round(actual, 4),
                                     fit_s=round(fit_s, 2)))
                    print(f"  {name:13s} noise {rate:.1f} seed {seed} {method:8s} "
                          f"accuracy {acc:.4f} ({fit_s:.1f} s)", file=out, flush=True)
    return rows, meta


def summarize(rows, cfg, meta):
    env = environment()
    summary = []
    keys = list(dict.fromkeys((r["dataset"], r["noise_rate"], r["method"]) for r in rows))
    for dataset, rate, method in keys:
        sel = [r for r in rows if (r["dataset"], r["noise_rate"], r["method"])
               == (dataset, rate, method)]
        acc = np.array([r["accuracy"] for r in sel])
        summary.append(dict(
            dataset=dataset, noise_rate=rate, method=method,
            accuracy_mean=round(float(acc.mean()), 4), accuracy_std=round(float(acc.std()), 4),
            n_seeds=len(sel), fit_s_mean=round(float(np.mean([r["fit_s"] for r in sel])), 2),
            noise="symmetric", loss=cfg["loss"], **resolved_params(cfg),
            seeds=" ".join(map(str, cfg["seeds"])), **meta[dataset], **env))
    return summary


def plot(summary, path):
    plt = pyplot()

    datasets = list(dict.fromkeys(r["dataset"] for r in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.9),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sub = [r for r in summary if r["dataset"] == dataset]
        rates = list(dict.fromkeys(r["noise_rate"] for r in sub))
        methods = list(dict.fromkeys(r["method"] for r in sub))
        width = 0.8 / len(methods)
        for j, method in enumerate(methods):
            vals = [next(r for r in sub if r["noise_rate"] == rate and r["method"] == method)
                    for rate in rates]
            ax.bar(np.arange(len(rates)) + (j - (len(methods) - 1) / 2) * width,
                   [v["accuracy_mean"] for v in vals], width,
                   yerr=[v["accuracy_std"] for v in vals], capsize=2, label=method)
        ax.set_xticks(np.arange(len(rates)), [f"symmetric {r}" for r in rates])
        lo = min(r["accuracy_mean"] - r["accuracy_std"] for r in sub)
        ax.set_ylim(max(0.0, lo - 0.05), 1.0)
        ax.set_ylabel("clean test accuracy")
        ax.set_title(f"{dataset} (n_train={sub[0]['n_train']}, {sub[0]['n_features']} "
                     f"features)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    r0 = summary[0]
    fig.suptitle(f"Tabular, noisy training labels: mean ± std over seeds {r0['seeds']}; "
                 f"loss={r0['loss']}, lr={r0['lr']}, a1 {r0['pretrain_epochs']} / a2,b3 "
                 f"{r0['max_epochs']} / b2 {r0['finetune_epochs']} epochs, "
                 f"{r0['torch_threads']} thread(s)",
                 fontsize=9)
    save_figure(fig, path, rect=(0, 0.07, 1, 1))


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--loss", choices=["elr", "nfl+rce", "ce"], default=None)
    args = parse_args(parser, argv)
    cfg = dict(QUICK if args.quick else FULL)
    for key in ("datasets", "seeds", "loss"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    out = args.out
    hp = resolved_params(cfg)
    print(f"bench_tabular: {cfg['datasets']}, symmetric noise {cfg['rates']}, seeds "
          f"{cfg['seeds']}, loss={cfg['loss']}, lr={hp['lr']}, a1 {hp['pretrain_epochs']} / "
          f"a2,b3 {hp['max_epochs']} / b2 {hp['finetune_epochs']} epochs, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noisyclf-bench-tab-") as tmp:
        rows, meta = run(cfg, joblib.Memory(tmp, verbose=0))
    summary = summarize(rows, cfg, meta)
    write_csv(summary, SUMMARY_COLUMNS, out / "tabular.csv")
    write_csv(rows, RUN_COLUMNS, out / "tabular_runs.csv")
    plot(summary, out / "tabular.png")

    print(f"\nClean test accuracy, mean ± std over seeds {cfg['seeds']} (70/30 stratified "
          f"split, symmetric noise on the training labels)")
    for dataset in cfg["datasets"]:
        sub = [r for r in summary if r["dataset"] == dataset]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        print(f"\n{dataset} (n_train={sub[0]['n_train']}, n_test={sub[0]['n_test']})\n")
        print("| noise | " + " | ".join(methods) + " |")
        print("|---|" + "---|" * len(methods))
        for rate in cfg["rates"]:
            cells = [next(r for r in sub if r["noise_rate"] == rate and r["method"] == m)
                     for m in methods]
            print(f"| symmetric {rate} | " + " | ".join(
                f"{c['accuracy_mean']:.4f} ± {c['accuracy_std']:.4f}" for c in cells) + " |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s; wrote {out / 'tabular.csv'}")
    return summary


if __name__ == "__main__":
    run_main(main)
