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
    lines += ["", "GMM (b1) at finding the flipped labels, full framework, mean over seeds:", "",
              "| noise | loss | ROC AUC | precision | recall |", "|---|---|---|---|---|"]
    for _, r in full.iterrows():
        lines.append(f"| {r['setting']} | {r['loss']} | {r['auc_mean']:.3f} | "
                     f"{r['precision_mean']:.3f} | {r['recall_mean']:.3f} |")
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
                        ("digits, other losses", digits_table("digits_losses")),
                        ("tabular (bench_tabular.py)", tabular_table()),
                        ("memory cache (bench_memory_cache.py)", memory_table()),
                        ("learning-rate sensitivity (bench_lr_sensitivity.py)", lr_table())]:
        print(f"### {title}\n\n{text}\n")


if __name__ == "__main__":
    main()
