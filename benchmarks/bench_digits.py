"""Accuracy of the framework on sklearn's digits with noisy labels, over several seeds.

The paper's Table 1 at CPU scale: for each seed (70/30 stratified split, noise
drawn with that seed), symmetric noise 0.2-0.8 and asymmetric 0.4 (c -> c+1),
compares kNN and logistic regression on the noisy labels with the framework's
``baseline`` / ``pretrain`` / ``full`` modes for each loss, all with default
hyperparameters except ``image_shape=(1, 8, 8)`` (and any ``--params``).
Test accuracy is on the clean labels; ``label_issues_``'s precision / recall
and ``label_quality_``'s ROC AUC at finding the flipped labels, the
pseudo-label accuracy and the ROC AUC of ``sample_weights_`` (b1) for wrong
pseudo-labels are recorded too.  Rows are written after every seed; a rerun
with the same ``--name`` skips the (loss, seed) pairs already in the CSV.

Writes ``benchmarks/results/digits.csv`` (one row per run),
``digits_summary.csv`` (mean and std over seeds) and ``digits.png``.

Usage::

    python benchmarks/bench_digits.py                 # 5 seeds, loss elr
    python benchmarks/bench_digits.py --losses ce nfl+rce --seeds 0 1 2 --name digits_losses
    python benchmarks/bench_digits.py --modes full --params supcon_weighting=authors \
        --name digits_eq8_authors
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from noisyclf.demo import MODES, SETTINGS, run

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import RESULTS, pyplot, save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--losses", nargs="+", default=["elr"])
    parser.add_argument("--quick", action="store_true",
                        help="one seed, one setting, tiny epochs (smoke test)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default="digits", help="stem of the output files")
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--memory", default=None,
                        help="a1 cache folder kept across losses and runs (SimCLR is "
                             "label-free: one pre-training per seed); default: a temporary "
                             "folder per (loss, seed)")
    parser.add_argument("--params", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra estimator hyperparameters, e.g. finetune_temperature=0.07")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings, params, seeds = SETTINGS, _parse_params(args.params), args.seeds
    if args.quick:
        settings, seeds = [("symmetric", 0.4)], seeds[:1]
        params.update(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1)
    env = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
           f"{os.cpu_count()} CPUs, {platform.machine()}")
    csv_path = out / f"{args.name}.csv"
    label = ("defaults, image_shape=(1, 8, 8)" + (f", {params}" if params else "")
             + f"; {env}")
    done = pd.read_csv(csv_path) if csv_path.exists() else None
    rows = [] if done is None else done.to_dict("records")
    start = time.perf_counter()
    for loss in args.losses:
        for seed in seeds:
            if done is not None and ((done["loss"] == loss) & (done["seed"] == seed)).any():
                print(f"skipping loss={loss} seed={seed}: already in {csv_path}")
                continue
            with tempfile.TemporaryDirectory() as tmp:
                cache = args.memory or tmp
                for r in run(settings, args.modes, loss=loss, random_state=seed,
                             memory=cache, params=params, out=sys.stdout):
                    rows.append(dict(r, loss=loss, seed=seed, settings=label))
            df = pd.DataFrame(rows)
            df.to_csv(csv_path, index=False)  # after every seed: a rerun resumes
    df = pd.DataFrame(rows)
    df["loss"] = np.where(df["method"].isin(["kNN", "logreg"]), "-", df["loss"])
    df = df.drop_duplicates(subset=["setting", "method", "loss", "seed"])
    summary = (df.groupby(["setting", "method", "loss"], sort=False)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                    accuracy_min=("accuracy", "min"), auc_mean=("auc", "mean"),
                    precision_mean=("precision", "mean"), recall_mean=("recall", "mean"),
                    pseudo_accuracy_mean=("pseudo_accuracy", "mean"),
                    auc_pseudo_mean=("auc_pseudo", "mean"),
                    seconds_mean=("seconds", "mean"), n_seeds=("seed", "nunique"))
               .reset_index())
    summary.to_csv(out / f"{args.name}_summary.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"total {time.perf_counter() - start:.0f} s; {env}")
    _plot(summary, out / f"{args.name}.png", len(seeds))
    return summary


def _parse_params(pairs):
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (numbers parsed, strings kept)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--params expects KEY=VALUE, got {pair!r}")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        params[key] = value
    return params


def _plot(summary, path, n_seeds):
    plt = pyplot()

    losses = [loss for loss in summary["loss"].unique() if loss != "-"]
    fig, axes = plt.subplots(1, len(losses), figsize=(6 * len(losses), 4), squeeze=False)
    settings = list(dict.fromkeys(summary["setting"]))
    for ax, loss in zip(axes[0], losses):
        sub = summary[(summary["loss"] == loss) | (summary["loss"] == "-")]
        methods = list(dict.fromkeys(sub["method"]))
        width = 0.8 / len(methods)
        for k, m in enumerate(methods):
            s = sub[sub["method"] == m].set_index("setting").reindex(settings)
            ax.bar(np.arange(len(settings)) + k * width, s["accuracy_mean"], width,
                   yerr=s["accuracy_std"].fillna(0), label=m, capsize=2)
        ax.set_xticks(np.arange(len(settings)) + 0.4 - width / 2)
        ax.set_xticklabels(settings)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy (clean labels)")
        ax.set_title(f"digits, loss={loss}, mean ± std over {n_seeds} seeds")
        ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main()
