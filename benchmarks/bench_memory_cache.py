"""How much ``memory=joblib.Memory(...)`` saves in a grid search over ``lr``.

SimCLR pre-training (phase a1) is label-free and does not depend on ``lr``, so
with ``memory`` a grid over ``lr`` pre-trains once per CV fold (plus once for
the refit) instead of once per (grid point, fold).  This script runs the same
``GridSearchCV`` three times in one process:

* ``uncached``: ``memory=None``;
* ``cached (cold)``: ``memory=joblib.Memory(<empty temporary folder>)``;
* ``cached (warm)``: the same search again with the cache the cold run filled
  (what a second search, e.g. over another ``loss``, costs).

It reports the speed ratio uncached / cached (not an absolute time: it
depends on the machine and on how much of the work is pre-training) and
checks that caching changes nothing: the same best parameters, the same CV
scores, and bit-identical ``predict_proba`` of the refitted ``best_estimator_``
on a held-out test set (``np.array_equal``).

Run ``python benchmarks/bench_memory_cache.py`` (a few minutes on 2 CPU cores);
``--quick`` runs a tiny configuration for smoke tests.  Writes
``memory_cache.csv`` and ``memory_cache.png`` to ``benchmarks/results/``
(or ``--out``).
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    environment, epochs_label, make_parser, parse_args, pyplot, run_main, save_figure, write_csv,
)

FULL = dict(lrs=[0.003, 0.01, 0.03, 0.1], cv=3, n_train=None, noise_rate=0.4,
            pretrain_epochs=15, max_epochs=10, warmup_epochs=5)
QUICK = dict(lrs=[0.01, 0.1], cv=2, n_train=240, noise_rate=0.4,
             pretrain_epochs=1, max_epochs=1, warmup_epochs=0)

COLUMNS = ["setting", "wall_s", "ratio", "identical", "best_lr", "best_cv_score",
           "test_accuracy_clean", "dataset", "n_train", "n_test", "noise", "lr_grid", "cv",
           "phases", "loss", "pretrain_epochs", "max_epochs", "warmup_epochs", "batch_size",
           "random_state", "n_jobs",
           "torch_threads", "openmp_threads", "cpu_count", "loadavg_1min_before",
           "python", "torch", "sklearn", "noisyclf"]


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return float("nan")


def run(cfg, *, random_state=0, out=sys.stdout):
    """Run the three grid searches; return (rows, searches)."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=random_state)
    if cfg["n_train"] is not None:
        X_tr, y_tr = X_tr[:cfg["n_train"]], y_tr[:cfg["n_train"]]
    y_noisy = make_noisy_labels(y_tr, "symmetric", cfg["noise_rate"],
                                random_state=random_state)
    base = ContrastiveNoisyClassifier(
        phases="pretrain", loss="elr", image_shape=(1, 8, 8),
        pretrain_epochs=cfg["pretrain_epochs"], max_epochs=cfg["max_epochs"],
        warmup_epochs=cfg["warmup_epochs"], device="cpu", random_state=random_state)
    cv = StratifiedKFold(n_splits=cfg["cv"], shuffle=True, random_state=random_state)
    grid = {"lr": cfg["lrs"]}

    # Warm-up outside the timings: the first fit in a process pays one-off costs
    # (torch kernels, allocator) that would otherwise be charged to "uncached".
    clone(base).set_params(pretrain_epochs=1, max_epochs=1, warmup_epochs=0).fit(
        X_tr[:200], y_noisy[:200])

    rows, searches = [], {}
    with tempfile.TemporaryDirectory(prefix="noisyclf-bench-cache-") as tmp:
        memory = joblib.Memory(tmp, verbose=0)
        for setting, mem in [("uncached", None), ("cached (cold)", memory),
                             ("cached (warm)", memory)]:
            load = _loadavg()
            search = GridSearchCV(clone(base).set_params(memory=mem), grid, cv=cv, n_jobs=1,
                                  error_score="raise")
            start = time.perf_counter()
            search.fit(X_tr, y_noisy)
            wall = time.perf_counter() - start
            searches[setting] = search
            rows.append(dict(
                setting=setting, wall_s=round(wall, 2),
                best_lr=search.best_params_["lr"],
                best_cv_score=round(float(search.best_score_), 4),
                test_accuracy_clean=round(float(search.best_estimator_.score(X_te, y_te)), 4),
                loadavg_1min_before=load,
            ))
            print(f"  {setting:14s} {wall:8.2f} s   best lr {search.best_params_['lr']}",
                  file=out, flush=True)

    ref = searches["uncached"]
    ref_proba = ref.best_estimator_.predict_proba(X_te)
    for row in rows:
        search = searches[row["setting"]]
        row["ratio"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
        row["identical"] = bool(
            search.best_params_ == ref.best_params_
            and np.array_equal(search.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"])
            and np.array_equal(search.best_estimator_.predict_proba(X_te), ref_proba))
        row.update(
            dataset="digits", n_train=len(X_tr), n_test=len(X_te),
            noise=f"symmetric {cfg['noise_rate']}", lr_grid=" ".join(map(str, cfg["lrs"])),
            cv=cfg["cv"], phases="pretrain", loss="elr",
            pretrain_epochs=cfg["pretrain_epochs"], max_epochs=cfg["max_epochs"],
            warmup_epochs=cfg["warmup_epochs"], batch_size=base.batch_size,
            random_state=random_state, n_jobs=1, **environment())
    return rows, searches


def plot(rows, path):
    plt = pyplot()

    r0 = rows[0]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    names = [r["setting"] for r in rows]
    walls = [r["wall_s"] for r in rows]
    bars = ax.bar(names, walls, color=["#999999", "#1f77b4", "#2ca02c"][:len(rows)])
    for bar, r in zip(bars, rows):
        ax.annotate(f"{r['wall_s']:.1f} s\nx{r['ratio']:.2f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("GridSearchCV wall time (s)")
    ax.set_ylim(0, max(walls) * 1.25)
    ax.set_title(
        f"memory= cache, lr grid {r0['lr_grid']} x cv={r0['cv']}\n"
        f"digits n={r0['n_train']}, {r0['noise']}, phases=pretrain, "
        f"{epochs_label(r0, 'ep')}, "
        f"{r0['torch_threads']} thread(s)", fontsize=8)
    save_figure(fig, path)


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, argv)
    cfg = QUICK if args.quick else FULL
    out = args.out
    print(f"bench_memory_cache: digits, GridSearchCV lr={cfg['lrs']} cv={cfg['cv']}, "
          f"phases=pretrain, {epochs_label(cfg)}, torch threads {torch.get_num_threads()}",
          flush=True)
    start = time.perf_counter()
    rows, _ = run(cfg, random_state=args.seed)
    write_csv(rows, COLUMNS, out / "memory_cache.csv")
    plot(rows, out / "memory_cache.png")
    print("\n| setting | wall (s) | ratio uncached/this | identical to uncached | best lr |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['wall_s']} | {r['ratio']} | {r['identical']} "
              f"| {r['best_lr']} |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s; wrote {out / 'memory_cache.csv'}")
    return rows


if __name__ == "__main__":
    run_main(main)
