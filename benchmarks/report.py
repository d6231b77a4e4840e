"""Render the README's result tables from the CSV files in ``benchmarks/results/``.

The README's numbers are copied from this script's output, never typed by hand::

    python benchmarks/report.py
"""

from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def _pm(mean, std):
    return f"{mean:.3f} ± {std:.3f}" if pd.notna(std) else f"{mean:.3f}"


def digits_table(name="digits"):
    path = RESULTS / f"{name}_summary.csv"
    if not path.exists():
        return f"({path.name} not found)"
    s = pd.read_csv(path)
    s["col"] = s["method"] + (" (" + s["loss"] + ")").where(s["loss"] != "-", "")
    cols = list(dict.fromkeys(s["col"]))
    n = int(s["n_seeds"].max())
    lines = [f"Test accuracy on clean labels, mean ± std over {n} seeds "
             f"(worst seed in brackets for the framework):", "",
             "| noise | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for setting, g in s.groupby("setting", sort=False):
        g = g.set_index("col")
        cells = []
        for c in cols:
            r = g.loc[c]
            cell = _pm(r["accuracy_mean"], r["accuracy_std"])
            if r["method"] not in ("kNN", "logreg"):
                cell += f" [{r['accuracy_min']:.3f}]"
            cells.append(cell)
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    full = s[s["method"] == "full"]
    if "auc_pseudo_mean" not in s:  # results from before the b1 fix (issue 8)
        lines += ["", "GMM at finding the flipped labels, full framework, mean over seeds:", "",
                  "| noise | loss | ROC AUC | precision | recall |", "|---|---|---|---|---|"]
        for _, r in full.iterrows():
            lines.append(f"| {r['setting']} | {r['loss']} | {r['auc_mean']:.3f} | "
                         f"{r['precision_mean']:.3f} | {r['recall_mean']:.3f} |")
        return "\n".join(lines)
    lines += ["", "Full framework, mean over seeds: `label_quality_` / `label_issues_` against "
              "the flipped given labels, and b1's `sample_weights_` against wrong "
              "pseudo-labels:", "",
              "| noise | loss | ROC AUC of label_quality_ | precision | recall "
              "| pseudo-label accuracy | ROC AUC of sample_weights_ |",
              "|---|---|---|---|---|---|---|"]
    for _, r in full.iterrows():
        lines.append(f"| {r['setting']} | {r['loss']} | {r['auc_mean']:.3f} | "
                     f"{r['precision_mean']:.3f} | {r['recall_mean']:.3f} | "
                     f"{r['pseudo_accuracy_mean']:.3f} | {r['auc_pseudo_mean']:.3f} |")
    return "\n".join(lines)


def before_after_table(before="digits_before_issue8", after="digits"):
    """The three modes before and after phase b followed the paper (issue 8)."""
    paths = [RESULTS / f"{n}_summary.csv" for n in (before, after)]
    if not all(p.exists() for p in paths):
        return "(" + " or ".join(p.name for p in paths) + " not found)"
    b, a = (pd.read_csv(p) for p in paths)
    modes = ["baseline", "pretrain", "full"]
    lines = ["| noise | " + " | ".join(f"{m} before | {m} after" for m in modes) + " |",
             "|---|" + "---|" * (2 * len(modes))]
    for setting in dict.fromkeys(a["setting"]):
        cells = []
        for m in modes:
            for d in (b, a):
                r = d[(d["setting"] == setting) & (d["method"] == m)]
                cells.append(_pm(r["accuracy_mean"].iloc[0], r["accuracy_std"].iloc[0])
                             if len(r) else "-")
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def phase_b_table(pattern="phase_b_*.csv"):
    """b2 temperature x reading of eq. 8 (bench_phase_b.py; one run CSV per reading)."""
    paths = sorted(p for p in RESULTS.glob(pattern) if not p.stem.endswith("_summary"))
    if not paths:
        return f"({pattern} not found)"
    runs = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    s = (runs.groupby(["setting", "supcon_weighting", "finetune_temperature"], sort=False)
         .agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
              n_seeds=("seed", "nunique")).reset_index())
    temps = sorted(s["finetune_temperature"].unique())
    n = int(s["n_seeds"].min())
    lines = [f"Full framework, test accuracy, mean ± std over {n} seeds:", "",
             "| noise | eq. 8 reading | " + " | ".join(f"τ={t:g}" for t in temps) + " |",
             "|---|---|" + "---|" * len(temps)]
    for (setting, weighting), g in s.groupby(["setting", "supcon_weighting"], sort=False):
        g = g.set_index("finetune_temperature")
        cells = [_pm(g.loc[t, "accuracy_mean"], g.loc[t, "accuracy_std"]) if t in g.index
                 else "-" for t in temps]
        lines.append(f"| {setting} | {weighting} | " + " | ".join(cells) + " |")
    means = s.groupby(["supcon_weighting", "finetune_temperature"])["accuracy_mean"].mean()
    lines += ["", "Mean over the three noise settings:", "",
              "| eq. 8 reading | " + " | ".join(f"τ={t:g}" for t in temps) + " |",
              "|---|" + "---|" * len(temps)]
    for weighting in dict.fromkeys(s["supcon_weighting"]):
        lines.append(f"| {weighting} | " + " | ".join(
            f"{means.get((weighting, t), float('nan')):.3f}" for t in temps) + " |")
    return "\n".join(lines)


def tabular_table():
    path = RESULTS / "tabular.csv"
    if not path.exists():
        return f"({path.name} not found)"
    t = pd.read_csv(path)
    methods = list(dict.fromkeys(t["method"]))
    lines = ["| data | noise | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for (data, rate), g in t.groupby(["dataset", "noise_rate"], sort=False):
        g = g.set_index("method")
        lines.append(f"| {data} | sym {rate} | " + " | ".join(
            _pm(g.loc[m, "accuracy_mean"], g.loc[m, "accuracy_std"]) for m in methods) + " |")
    return "\n".join(lines)


def memory_table():
    path = RESULTS / "memory_cache.csv"
    if not path.exists():
        return f"({path.name} not found)"
    m = pd.read_csv(path)
    lines = ["| run | wall time (s) | speed-up vs uncached | identical model |", "|---|---|---|---|"]
    for _, r in m.iterrows():
        lines.append(f"| {r['setting']} | {r['wall_s']:.1f} | {r['ratio']:.2f}x | {r['identical']} |")
    return "\n".join(lines)


def lr_table():
    path = RESULTS / "lr_sensitivity.csv"
    if not path.exists():
        return f"({path.name} not found)"
    d = pd.read_csv(path)
    lrs = sorted(d["lr"].unique())
    lines = ["| loss | phases | " + " | ".join(f"lr={lr:g}" for lr in lrs) + " |",
             "|---|---|" + "---|" * len(lrs)]
    for (loss, phases), g in d.groupby(["loss", "phases"], sort=False):
        g = g.set_index("lr")
        lines.append(f"| {loss} | {phases} | " + " | ".join(
            _pm(g.loc[lr, "test_accuracy_mean"], g.loc[lr, "test_accuracy_std"]) for lr in lrs)
            + " |")
    return "\n".join(lines)


def main():
    for title, text in [("digits (bench_digits.py)", digits_table()),
                        ("digits before / after issue 8", before_after_table()),
                        ("phase b: temperature and eq. 8 (bench_phase_b.py)", phase_b_table()),
                        ("digits, other losses", digits_table("digits_losses")),
                        ("tabular (bench_tabular.py)", tabular_table()),
                        ("memory cache (bench_memory_cache.py)", memory_table()),
                        ("learning-rate sensitivity (bench_lr_sensitivity.py)", lr_table())]:
        print(f"### {title}\n\n{text}\n")


if __name__ == "__main__":
    main()
