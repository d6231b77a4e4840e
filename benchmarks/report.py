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


def precision_table(a="digits_fp32", b="digits_bf16"):
    """Digits accuracy in fp32 against bf16 (issue 9: within 0.5 points in every cell)."""
    paths = [RESULTS / f"{n}_summary.csv" for n in (a, b)]
    if not all(p.exists() for p in paths):
        return "(" + " or ".join(p.name for p in paths) + " not found)"
    x, y = (pd.read_csv(p) for p in paths)
    x = x[~x["method"].isin(["kNN", "logreg"])]
    m = x.merge(y, on=["setting", "method", "loss"], suffixes=("_fp32", "_bf16"))
    n = int(min(m["n_seeds_fp32"].min(), m["n_seeds_bf16"].min()))
    lines = [f"Test accuracy, mean ± std over {n} seeds, defaults (loss elr):", "",
             "| noise | mode | fp32 | bf16 | bf16 - fp32 |",
             "|---|---|---|---|---|"]
    for _, r in m.iterrows():
        d = r["accuracy_mean_bf16"] - r["accuracy_mean_fp32"]
        lines.append(f"| {r['setting']} | {r['method']} | "
                     f"{_pm(r['accuracy_mean_fp32'], r['accuracy_std_fp32'])} | "
                     f"{_pm(r['accuracy_mean_bf16'], r['accuracy_std_bf16'])} | {d:+.3f} |")
    worst = (m["accuracy_mean_bf16"] - m["accuracy_mean_fp32"]).abs().max()
    lines += ["", f"Largest |bf16 - fp32| over the {len(m)} cells: {worst:.3f}."]
    return "\n".join(lines)


def _csv(name):
    path = RESULTS / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def speed_tables():
    """The speed sections of bench_speed.py (speed_*.csv)."""
    out = []
    a1 = _csv("speed_a1")
    if a1 is not None:
        env = a1.iloc[0]
        out += [f"Seconds per epoch, {int(env['torch_threads'])} torch threads, batch 128, "
                f"median of {int(env['rounds'])} round-robin epochs; speed-up against the "
                "first row of each image size and phase (NCHW fp32, one pass per view, as "
                "before issue 9; every row uses the package's SmallCNN layout, see the "
                "layout table below):", "",
                "| phase | images | n | precision | channels-last | 2N pass | loop "
                "| s/epoch | images/s | speed-up |", "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in a1.iterrows():
            joint = "" if pd.isna(r["joint_views"]) else str(r["joint_views"])
            out.append(f"| {r['phase']} | {r['images']} {r['shape']} | {r['n']} | "
                       f"{r['precision']} | {r['channels_last']} | {joint} | {r['loop']} | "
                       f"{r['sec_per_epoch']:.2f} | {r['images_per_s']:.0f} | "
                       f"{r['speedup']:.2f}x |")
    lay = _csv("speed_layout")
    if lay is not None:
        out += ["", "SmallCNN block layout, channels-last, median of "
                f"{int(lay['rounds'].iloc[0])} round-robin epochs; speed-up against "
                "conv-BN-ReLU-pool (the code before); same weights = one a1 epoch from the "
                "same start ends with the package layout's weights:", "",
                "| phase | images | precision | layout | s/epoch | speed-up | same weights |",
                "|---|---|---|---|---|---|---|"]
        for _, r in lay.iterrows():
            out.append(f"| {r['phase']} | {r['images']} {r['shape']} | {r['precision']} | "
                       f"{r['layout']} | "
                       f"{r['sec_per_epoch']:.2f} | {r['speedup']:.2f}x | "
                       f"{r['same_weights_as_package_layout']} |")
    comp = _csv("speed_compile")
    if comp is not None:
        out += ["", "torch.compile (skorch's `compile=True`), a1 on "
                f"{int(comp['n'].iloc[0])} images, {comp['precision'].iloc[0]}:", "",
                "| compiled | first epoch (s) | later epochs (s) |", "|---|---|---|"]
        for _, r in comp.iterrows():
            out.append(f"| {r['compiled']} | {r['first_epoch_s']:.1f} | "
                       f"{r['later_epoch_s']:.2f} |")
        c = comp[comp["compiled"]].iloc[0]
        out += ["", f"Compiled later epochs: {c['later_speedup']:.2f}x; compiling pays off "
                f"after {c['break_even_epochs']:.0f} epochs of this size."]
    pred = _csv("speed_predict")
    if pred is not None:
        out += ["", "`predict_proba` throughput (fitted small CNN, 32x32 RGB):", "",
                "| batch | ms per call | images/s |", "|---|---|---|"]
        for _, r in pred.iterrows():
            out.append(f"| {r['batch']} | {1000 * r['seconds_per_call']:.2f} | "
                       f"{r['images_per_s']:.0f} |")
    sc = _csv("speed_scaling")
    if sc is not None:
        out += ["", f"a1 epoch time against data size ({sc['precision'].iloc[0]}):", "",
                "| n | s/epoch | ms/image |", "|---|---|---|"]
        for _, r in sc.iterrows():
            out.append(f"| {r['n']} | {r['sec_per_epoch']:.2f} | {r['ms_per_image']:.3f} |")
        r = sc.iloc[0]
        out += ["", f"Least-squares fit: {r['intercept_s']:.2f} s + "
                f"{r['slope_ms_per_image']:.3f} ms x n."]
    mem = _csv("speed_memory")
    if mem is not None:
        r = mem.iloc[0]
        out += ["", f"Peak memory growth of `fit` on {int(r['n'])} uint8 images "
                f"({r['images']}, {r['uint8_mb']:.0f} MB): {r['peak_growth_mb']:.0f} MB = "
                f"{r['growth_over_uint8']:.2f}x their uint8 size (a float32 copy alone "
                f"would be {r['float32_copy_mb']:.0f} MB); one epoch per phase, "
                f"{r['fit_seconds']:.0f} s."]
    for name, title in [("speed_demo", "Main job"), ("speed_fit4000", "Default fit")]:
        d = _csv(name)
        if d is not None:
            layout = "layout" in d
            out += ["", f"{title}:", "", "| job | precision |" + (" SmallCNN layout |" * layout)
                    + " wall (s) |", "|---|---|" + "---|" * layout + "---|"]
            for _, r in d.iterrows():
                out.append(f"| {r['job']} | {r['precision']} ({r['resolved']}) | "
                           + (f"{r['layout']} | " if layout else "") + f"{r['wall_s']:.0f} |")
    gpu = _csv("speed_gpu")
    if gpu is not None and "sec_per_epoch" in gpu:
        out += ["", f"GPU ({gpu['gpu'].iloc[0]}), CIFAR ResNet-18 a1 on "
                f"{int(gpu['n'].iloc[0])} images ({gpu['images'].iloc[0]}):", "",
                "| batch | precision | loop | s/epoch | images/s | vs fp32 "
                "| skorch / hand-written |", "|---|---|---|---|---|---|---|"]
        for _, r in gpu.iterrows():
            batch = r["batch_size"] if "batch_size" in gpu else 128
            out.append(f"| {batch} | {r['precision']} | {r['loop']} | "
                       f"{r['sec_per_epoch']:.2f} | {r['images_per_s']:.0f} | "
                       f"{r['vs_fp32']:.2f}x | {r['skorch_over_hand']:.2f} |")
    return "\n".join(out) if out else "(speed_*.csv not found)"


def bootstrap_table(pattern="digits_bootstrap_*.csv"):
    """Figure 7's shape: bootstrapping's gain over pre-training alone, per loss and noise
    (one run CSV per group of losses, ``bench_digits.py --modes pretrain bootstrap``)."""
    paths = sorted(p for p in RESULTS.glob(pattern) if not p.stem.endswith("_summary"))
    if not paths:
        return f"({pattern} not found)"
    runs = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    runs = runs[runs["method"].isin(["pretrain", "bootstrap"])]
    lines = ["Test accuracy, mean ± std over seeds; gain = bootstrap - pretrain, mean of the "
             "paired per-seed differences (seeds where bootstrapping is higher):", "",
             "| noise | loss | seeds | pretrain | bootstrap | gain |", "|---|---|---|---|---|---|"]
    for (loss, setting), g in runs.groupby(["loss", "setting"], sort=False):
        acc = g.pivot_table(index="seed", columns="method", values="accuracy").dropna()
        if not {"pretrain", "bootstrap"} <= set(acc.columns) or acc.empty:
            continue
        gain = acc["bootstrap"] - acc["pretrain"]
        lines.append(f"| {setting} | {loss} | {len(acc)} | "
                     f"{_pm(acc['pretrain'].mean(), acc['pretrain'].std())} | "
                     f"{_pm(acc['bootstrap'].mean(), acc['bootstrap'].std())} | "
                     f"{gain.mean():+.3f} ({(gain > 0).sum()}/{len(gain)}) |")
    return "\n".join(lines)


#: Row order of the CIFAR-10 tables (bench_cifar10.SETTINGS, most informative first
#: there; here in the paper's order).
CIFAR_ORDER = ["sym0.2", "sym0.4", "sym0.6", "sym0.8", "asy0.2", "asy0.4",
               "aggre_label", "random_label1", "worse_label"]


def _cell(values):
    values = values.dropna()
    if values.empty:
        return "–"
    return _pm(values.mean(), values.std() if len(values) > 1 else float("nan"))


def cifar10_tables(name="cifar10"):
    """Table 1's shape on CIFAR-10 / CIFAR-10N, the peers, the label-issue
    scores and the targets of issue 10, from ``bench_cifar10.py``'s CSV."""
    runs = _csv(name)
    if runs is None:
        return f"({name}.csv not found)"
    first = runs.iloc[0]
    fw = runs[runs["method"].isin(["baseline", "pretrain", "full"])]
    settings = [s for s in CIFAR_ORDER if s in set(runs["setting"])]
    losses = [l for l in ("ce", "nfl+rce", "elr") if l in set(fw["loss"])]
    seeds = fw.groupby(["setting", "loss", "method"])["seed"].nunique()
    n_seeds = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    lines = [f"{int(first['n_train'])} training images, {int(first['n_test'])} test images, "
             f"{n_seeds} noise seed(s) (mean ± std when more than one); test accuracy of the "
             "final epoch on clean labels; gain = full - pretrain:", "",
             "| noise (actual) | " + " | ".join(
                 f"{l} base | {l} pre-t | {l} full | {l} gain" for l in losses) + " |",
             "|---|" + "---|" * (4 * len(losses))]
    for setting in settings:
        g = fw[fw["setting"] == setting]
        if g.empty:
            continue
        cells = []
        for loss in losses:
            gl = g[g["loss"] == loss]
            acc = {m: gl[gl["method"] == m].set_index("seed")["test_accuracy"]
                   for m in ("baseline", "pretrain", "full")}
            gain = (acc["full"] - acc["pretrain"]).dropna()
            cells += [_cell(acc["baseline"]), _cell(acc["pretrain"]), _cell(acc["full"]),
                      f"{gain.mean():+.3f}" if len(gain) else "–"]
        lines.append(f"| {setting} ({g['actual_noise'].mean():.3f}) | " + " | ".join(cells)
                     + " |")
    # Peers on the same subset, labels and network.
    peers = [("CE from scratch", "baseline", "ce"), ("cleanlab CleanLearning",
             "cleanlab CleanLearning", "ce"), ("SimCLR + logreg", "SimCLR + logreg", "-")]
    peers += [(f"{m} ({l})", m, l) for l in losses for m in ("pretrain", "full")]
    peers = [p for p in peers if ((runs["method"] == p[1]) & (runs["loss"] == p[2])).any()]
    lines += ["", "Peers (same subset, labels and network):", "",
              "| noise | " + " | ".join(p[0] for p in peers) + " |",
              "|---|" + "---|" * len(peers)]
    for setting in ["clean"] + settings:
        g = runs[runs["setting"] == setting]
        if g.empty:
            continue
        cells = [_cell(g[(g["method"] == m) & (g["loss"] == l)]["test_accuracy"])
                 for _, m, l in peers]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    clean = runs[runs["method"] == "pretrain (clean labels)"]
    if len(clean):
        lines += ["", f"pretrain (CE) on the clean labels: {clean['test_accuracy'].mean():.3f} "
                  "(the ceiling of the pre-t column on this subset)."]
    # Finding the wrong labels.
    li = runs[runs["method"].isin(["full", "cleanlab CleanLearning"])]
    if len(li):
        lines += ["", "Finding the wrong given labels: `label_issues_` (precision / recall / F1) "
                  "and `label_quality_` (ROC AUC) against the known flips (CIFAR-10N: against "
                  "`clean_label`), beside cleanlab's `find_label_issues` on cross-validated "
                  "`pred_probs` of the CE baseline network:", "",
                  "| noise | method | precision | recall | F1 | ROC AUC |",
                  "|---|---|---|---|---|---|"]
        for setting in settings:
            g = li[li["setting"] == setting]
            for (method, loss), h in g.groupby(["method", "loss"], sort=False):
                label = "cleanlab" if method.startswith("cleanlab") else f"noisyclf ({loss})"
                lines.append(f"| {setting} | {label} | " + " | ".join(
                    f"{h[c].mean():.3f}" for c in ("issues_precision", "issues_recall",
                                                    "issues_f1", "issues_auc")) + " |")
    lines += ["", cifar10_targets(runs)]
    return "\n".join(lines)


def cifar10_tuning_table(reference="cifar10", pattern="cifar10_tuning_*.csv"):
    """The a2/b3 fine-tuning variants tried on CIFAR-10 (``--params``), against the
    reference run's cells with the same setting, loss and seed."""
    ref = _csv(reference)
    paths = sorted(RESULTS.glob(pattern))
    if ref is None or not paths:
        return "(no tuning runs found)"
    ref = ref[ref["method"].isin(["pretrain", "full"])]
    lines = ["| variant | noise | loss | pretrain | full | pretrain - reference | "
             "full - reference |", "|---|---|---|---|---|---|---|"]
    for path in paths:
        runs = pd.read_csv(path)
        runs = runs[runs["method"].isin(["pretrain", "full"])]
        variant = path.stem[len("cifar10_tuning_"):]
        for (setting, loss), g in runs.groupby(["setting", "loss"], sort=False):
            r = ref[(ref["setting"] == setting) & (ref["loss"] == loss)
                    & ref["seed"].isin(g["seed"])]
            acc = g.groupby("method")["test_accuracy"].mean()
            base = r.groupby("method")["test_accuracy"].mean()
            diff = [f"{acc[m] - base[m]:+.3f}" if m in acc and m in base else "–"
                    for m in ("pretrain", "full")]
            lines.append(f"| {variant} | {setting} | {loss} | "
                         + " | ".join(f"{acc[m]:.3f}" if m in acc else "–"
                                      for m in ("pretrain", "full"))
                         + f" | {diff[0]} | {diff[1]} |")
    return "\n".join(lines)


def cifar10_phase_b_table(name="cifar10"):
    """Phase b against the quality of its input: per full fit, the accuracy of the
    given labels and of a2's pseudo-labels on the training subset, and full -
    pretrain (test), sorted by pseudo - given; then the count of gains on each side."""
    runs = _csv(name)
    if runs is None:
        return f"({name}.csv not found)"
    key = ["setting", "loss", "seed"]
    full = runs[runs["method"] == "full"].set_index(key)
    pre = runs[runs["method"] == "pretrain"].set_index(key)["test_accuracy"]
    t = full[["given_accuracy", "pseudo_accuracy"]].assign(
        diff=full["pseudo_accuracy"] - full["given_accuracy"],
        gain=full["test_accuracy"] - pre).dropna()
    t = t.groupby(["setting", "loss"]).mean().sort_values("diff")
    lines = ["| noise | loss | given labels correct | pseudo-labels correct | pseudo - given | "
             "full - pretrain (test) |", "|---|---|---|---|---|---|"]
    for (setting, loss), r in t.iterrows():
        lines.append(f"| {setting} | {loss} | {r['given_accuracy']:.3f} | "
                     f"{r['pseudo_accuracy']:.3f} | {r['diff']:+.3f} | {r['gain']:+.3f} |")
    worse, better = t[t["diff"] < 0], t[t["diff"] >= 0]
    lines += ["", f"full >= pretrain where the pseudo-labels are worse than the given labels: "
              f"{(worse['gain'] >= 0).sum()}/{len(worse)}; where they are at least as good: "
              f"{(better['gain'] >= 0).sum()}/{len(better)} (cells averaged over seeds)."]
    return "\n".join(lines)


def digits_paired_table(name, reference="digits", loss="elr", methods=("pretrain", "full")):
    """A digits variant (``bench_digits.py --params ... --name name``) against the
    default run, paired by (setting, seed): mean accuracy and mean difference."""
    ref, new = _csv(reference), _csv(name)
    if ref is None or new is None:
        return f"({name}.csv not found)"
    ref = ref[ref["loss"] == loss]
    lines = ["| noise | method | default | variant | variant - default (wins/seeds) |",
             "|---|---|---|---|---|"]
    for method in methods:
        a = ref[ref["method"] == method].set_index(["setting", "seed"])["accuracy"]
        b = new[(new["method"] == method) & (new["loss"] == loss)].set_index(
            ["setting", "seed"])["accuracy"]
        d = (b - a).dropna()
        for setting in dict.fromkeys(d.index.get_level_values(0)):
            ds = d.loc[setting]
            lines.append(f"| {setting} | {method} | {a.loc[setting].mean():.3f} | "
                         f"{b.loc[setting].mean():.3f} | {ds.mean():+.3f} "
                         f"({(ds > 0).sum()}/{len(ds)}) |")
    return "\n".join(lines)


def cifar10_targets(runs):
    """Issue 10's targets, checked on the CSV (the numbers to beat come from the same run)."""
    fw = runs[runs["method"].isin(["baseline", "pretrain", "full"])]
    acc = fw.pivot_table(index=["setting", "loss"], columns="method", values="test_accuracy")
    out = ["Targets (issue 10), from the same run:", ""]
    if {"baseline", "pretrain"} <= set(acc.columns):
        both = acc.dropna(subset=["baseline", "pretrain"])
        ok = both["pretrain"] >= both["baseline"]
        bad = [f"{s} {l}" for (s, l), v in ok.items() if not v]
        out.append(f"- pretrain >= baseline in {ok.sum()}/{len(ok)} cells"
                   + (f" (not in: {', '.join(bad)})" if bad else ""))
        if "sym0.8" in both.index.get_level_values(0):
            g = both.loc["sym0.8"]
            gains = ", ".join(f"{l} {v:+.3f}" for l, v in (g["pretrain"] - g["baseline"]).items())
            out.append(f"- pretrain - baseline at sym0.8 (target >= +0.15 for every loss): {gains}")
    if {"full", "pretrain"} <= set(acc.columns):
        both = acc.dropna(subset=["full", "pretrain"])
        ok = both["full"] >= both["pretrain"]
        out.append(f"- full >= pretrain in {ok.sum()}/{len(ok)} cells = "
                   f"{ok.mean():.0%} (target >= 65 %)")
    cl = runs[(runs["method"] == "cleanlab CleanLearning")].set_index("setting")
    if "worse_label" in cl.index and "worse_label" in acc.index.get_level_values(0):
        c = float(cl.loc[["worse_label"], "test_accuracy"].mean())
        out.append(f"- worse_label: cleanlab {c:.3f}; framework (full) " + ", ".join(
            f"{l} {acc.loc[('worse_label', l), 'full']:.3f} ({acc.loc[('worse_label', l), 'full'] - c:+.3f})"
            for l in acc.loc["worse_label"].index if pd.notna(acc.loc[("worse_label", l), "full"]))
                   + " (target: >= +0.05)")
    full = runs[runs["method"] == "full"]
    if len(cl) and len(full):
        pairs = []
        for setting in cl.index.unique():
            f1 = full[full["setting"] == setting].groupby("loss")["issues_f1"].mean()
            if len(f1):
                pairs.append(f"{setting}: cleanlab {cl.loc[[setting], 'issues_f1'].mean():.3f}, "
                             "noisyclf " + ", ".join(
                                 f"{l}{' (default)' if l == 'elr' else ''} {v:.3f}"
                                 for l, v in f1.items()))
        out.append("- label-issue F1 (target >= cleanlab's): " + "; ".join(pairs))
    return "\n".join(out)


def main():
    for title, text in [("digits (bench_digits.py)", digits_table()),
                        ("digits before / after issue 8", before_after_table()),
                        ("phase b: temperature and eq. 8 (bench_phase_b.py)", phase_b_table()),
                        ("digits, other losses", digits_table("digits_losses")),
                        ("tabular (bench_tabular.py)", tabular_table()),
                        ("memory cache (bench_memory_cache.py)", memory_table()),
                        ("learning-rate sensitivity (bench_lr_sensitivity.py)", lr_table()),
                        ("precision: fp32 against bf16 (bench_digits.py)", precision_table()),
                        ("speed (bench_speed.py)", speed_tables()),
                        ("dynamic bootstrapping (bench_digits.py --modes pretrain bootstrap)",
                         bootstrap_table()),
                        ("CIFAR-10 / CIFAR-10N (bench_cifar10.py)", cifar10_tables()),
                        ("CIFAR-10: phase b against pseudo-label quality",
                         cifar10_phase_b_table()),
                        ("CIFAR-10: fine-tuning variants (bench_cifar10.py --params)",
                         cifar10_tuning_table()),
                        ("digits: encoder frozen in a2/b3 (warmup_epochs=40)",
                         digits_paired_table("digits_tuning_frozen")),
                        ("digits: SmallCNN with BatchNorm after the pooling (not adopted)",
                         digits_paired_table("digits_pool_first", reference="digits_bf16",
                                             methods=("baseline", "pretrain", "full")))]:
        print(f"### {title}\n\n{text}\n")


if __name__ == "__main__":
    main()
