"""Phase b's settings on digits: b2 temperature x the two readings of eq. 8.

For each seed (70/30 stratified split, noise drawn with that seed) and noise
setting, fits the full framework (default hyperparameters, ``image_shape=(1,
8, 8)``) for every ``finetune_temperature`` in ``--temperatures`` and every
``supcon_weighting`` in ``--weightings`` ("paper": eq. 8 as the paper's text;
"authors": the authors' code), and records the clean test accuracy.  a1 is
label-free and cached per seed, so it runs once per seed.  Every finished fit
is appended to ``benchmarks/results/<name>.csv`` at once (``--name``, default
``phase_b``); a rerun skips the cells already there.  ``<name>_summary.csv``
and ``<name>.png`` give the mean over seeds; ``benchmarks/report.py`` merges
every ``phase_b_*.csv`` (e.g. one run per reading, in parallel).  This is the
measurement behind the defaults of ``finetune_temperature`` and
``supcon_weighting``.

Usage::

    python benchmarks/bench_phase_b.py                     # 5 seeds, full grid
    python benchmarks/bench_phase_b.py --weightings paper --name phase_b_paper &
    python benchmarks/bench_phase_b.py --weightings authors --name phase_b_authors
    python benchmarks/bench_phase_b.py --quick --out /tmp/x
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    append_row, environment, make_parser, parse_args, pyplot, run_main, save_figure,
)

SETTINGS = [("symmetric", 0.4), ("symmetric", 0.8), ("asymmetric", 0.4)]
KEY = ["seed", "setting", "supcon_weighting", "finetune_temperature"]


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.07, 0.1, 0.2, 0.5])
    parser.add_argument("--weightings", nargs="+", default=["paper", "authors"])
    parser.add_argument("--name", default="phase_b", help="stem of the output files")
    args = parse_args(parser, argv)
    out = args.out
    settings, seeds, params = SETTINGS, args.seeds, {}
    if args.quick:
        settings, seeds = settings[:1], seeds[:1]
        params = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1)
    path = out / f"{args.name}.csv"
    done = set()
    if path.exists():
        written = pd.read_csv(path)
        done = set(zip(*(written[k] for k in KEY)))
    X, y = load_digits(return_X_y=True)
    env = environment()
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                                  random_state=seed)
        with tempfile.TemporaryDirectory() as cache:
            for noise_type, rate in settings:
                setting = f"{noise_type[:4]} {rate:.1f}"
                y_noisy = make_noisy_labels(y_tr, noise_type, rate, random_state=seed)
                for weighting in args.weightings:
                    for temp in args.temperatures:
                        if (seed, setting, weighting, temp) in done:
                            continue
                        start = time.perf_counter()
                        clf = ContrastiveNoisyClassifier(
                            image_shape=(1, 8, 8), supcon_weighting=weighting,
                            finetune_temperature=temp, memory=cache, random_state=seed,
                            **params).fit(X_tr, y_noisy)
                        row = dict(seed=seed, setting=setting, supcon_weighting=weighting,
                                   finetune_temperature=temp,
                                   accuracy=clf.score(X_te, y_te),
                                   pseudo_accuracy=np.mean(clf.pseudo_labels_ == y_tr),
                                   seconds=time.perf_counter() - start,
                                   settings=f"defaults, image_shape=(1, 8, 8), {params}",
                                   **env)
                        append_row(path, row)
                        print(f"seed {seed} {setting} {weighting:7s} tau={temp:<5g} "
                              f"accuracy {row['accuracy']:.3f}", flush=True)
    df = pd.read_csv(path)
    summary = (df.groupby(["setting", "supcon_weighting", "finetune_temperature"], sort=False)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                    accuracy_min=("accuracy", "min"), n_seeds=("seed", "nunique"))
               .reset_index())
    summary.to_csv(out / f"{args.name}_summary.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    _plot(summary, out / f"{args.name}.png")
    return summary


def _plot(summary, path):
    plt = pyplot()
    settings = list(dict.fromkeys(summary["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3.5),
                             squeeze=False)
    for ax, setting in zip(axes[0], settings):
        sub = summary[summary["setting"] == setting]
        for weighting, g in sub.groupby("supcon_weighting", sort=False):
            ax.errorbar(g["finetune_temperature"], g["accuracy_mean"],
                        yerr=g["accuracy_std"].fillna(0), marker="o", capsize=3,
                        label=f"eq. 8: {weighting}")
        ax.set_xscale("log")
        ax.set_xlabel("finetune_temperature (b2)")
        ax.set_ylabel("test accuracy (clean labels)")
        ax.set_title(f"digits, full, {setting}")
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    run_main(main)
