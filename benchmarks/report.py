"""Write the benchmark results page and the README's headline table from the CSV files.

Every number on ``docs/benchmarks.rst``, in the README's results table and in its demo
output comes from the files the benchmark scripts write to ``benchmarks/results/``; this
script turns them into text, so nothing is typed by hand::

    python benchmarks/report.py            # rewrite docs/benchmarks.rst and the README blocks
    python benchmarks/report.py --check    # exit 1 if either differs from what it would write

The output depends on the CSV files only, so running it twice writes the same bytes.
"""

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
import cifar10_50k  # noqa: E402
from _common import CLEANLAB_METHOD  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.rst"
README = ROOT / "README.md"
#: The README lines between these two markers are this script's headline table.
BEGIN = "<!-- headline table: written by benchmarks/report.py -->"
END = "<!-- end of headline table -->"
#: ... and between these two, the demo's output as ``bench_demo.py`` saved it.
DEMO_BEGIN = "<!-- demo output: written by benchmarks/report.py -->"
DEMO_END = "<!-- end of demo output -->"
#: Image paths on the docs page, relative to docs/.
FIGURES = "../benchmarks/results"
#: Row order of the CIFAR-10 tables: synthetic noise, then the CIFAR-10N human labels.
CIFAR_ORDER = ["sym0.2", "sym0.4", "sym0.6", "sym0.8", "asy0.2", "asy0.4",
               "aggre_label", "random_label1", "worse_label"]
CIFAR10N = ["aggre_label", "random_label1", "worse_label"]
MODES = ["baseline", "pretrain", "full"]


# ----------------------------------------------------------------------------- formatting

def _pm(mean, std):
    return f"{mean:.3f} ± {std:.3f}" if pd.notna(std) else f"{mean:.3f}"


def _cell(values):
    """Mean ± std of a series (mean alone for one value, a dash for none)."""
    values = values.dropna()
    if values.empty:
        return "–"
    return _pm(values.mean(), values.std() if len(values) > 1 else float("nan"))


def _range(values, fmt="{:.2f}"):
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo} to {hi}"


def para(text):
    """One paragraph, wrapped at 96 columns (inline literals may span lines in rst)."""
    return textwrap.fill(" ".join(text.split()), width=96, break_long_words=False,
                         break_on_hyphens=False)


def table(header, rows, caption=None):
    """An rst list-table (one cell per line, so wide tables keep short lines), after its
    caption as a paragraph."""
    out = [para(caption + ":"), ""] if caption else []
    out += [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        cells = [str(c) if str(c).strip() not in ("", "nan") else "–" for c in row]
        out.append(f"   * - {cells[0]}")
        out += [f"     - {c}" for c in cells[1:]]
    return "\n".join(out)


def figure(name, caption, alt):
    path = RESULTS / name
    if not path.exists():
        return ""
    return "\n".join([f".. figure:: {FIGURES}/{name}", f"   :alt: {alt}", "",
                      textwrap.indent(para(caption), "   ")])


def section(label, title, *blocks):
    body = "\n\n".join(b for b in blocks if b)
    return f".. _{label}:\n\n{title}\n{'-' * len(title)}\n\n{body}\n"


def _csv(name):
    path = RESULTS / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def _machine(df):
    """What a timing CSV records of its machine: CPU model where recorded (every model
    its rows name), cores, threads."""
    r = df.iloc[0]
    cpu = next((" and ".join([*dict.fromkeys(df[c].dropna().astype(str))]
                             + (["a CPU not recorded"] if df[c].isna().any() else []))
                for c in ("cpu_model", "cpu_name", "cpu") if c in df and df[c].notna().any()),
               None)
    parts = [f"CPU {cpu}" if cpu else "CPU model not recorded"]

    def recorded(column):
        return column in df and pd.notna(r[column])

    if recorded("cpu_count"):
        parts.append(f"{int(r['cpu_count'])} logical CPUs")
    if recorded("cpu_bf16"):
        parts.append("native bf16" if bool(r["cpu_bf16"]) else "no native bf16")
    if recorded("torch_threads"):
        parts.append(f"{int(r['torch_threads'])} torch thread(s)")
    if recorded("torch"):
        parts.append(f"torch {r['torch']}")
    return "; ".join(parts)


_ENCODERS = {"cnn": "the small CNN", "airbench": "the AirbenchCNN",
             "resnet18": "the CIFAR ResNet-18"}


def _encoder(runs, markup="``"):
    """The network of a CIFAR-10 CSV's rows, e.g. 'the small CNN (``encoder="cnn"``)'."""
    names = sorted(set(runs["encoder"]))
    return " and ".join(f'{_ENCODERS.get(n, n)} ({markup}encoder="{n}"{markup})' for n in names)


def _seeds_text(n):
    return f"{n} seed" + ("s" if n != 1 else "")


# ----------------------------------------------------------------------------- digits

def _summary_cols(s):
    s = s.assign(col=s["method"] + (" (" + s["loss"] + ")").where(s["loss"] != "-", ""))
    return s, list(dict.fromkeys(s["col"]))


def digits_tables(name):
    """Accuracy per noise setting and method, and the GMMs' scores of the full framework."""
    s = pd.read_csv(RESULTS / f"{name}_summary.csv")
    s, cols = _summary_cols(s)
    n = int(s["n_seeds"].max())
    rows = []
    for setting, g in s.groupby("setting", sort=False):
        g = g.set_index("col")
        cells = []
        for c in cols:
            r = g.loc[c]
            cell = _pm(r["accuracy_mean"], r["accuracy_std"])
            if r["method"] in MODES:
                cell += f" [{r['accuracy_min']:.3f}]"
            cells.append(cell)
        rows.append([setting] + cells)
    acc = table(["noise"] + cols, rows,
                f"Test accuracy on clean labels, mean ± std over {_seeds_text(n)} "
                "(worst seed in brackets for the framework)")
    full = s[s["method"] == "full"]
    if "auc_pseudo_mean" in s:
        header = ["noise", "loss", "ROC AUC of ``label_quality_``", "precision", "recall",
                  "pseudo-label accuracy", "ROC AUC of ``sample_weights_``"]
        keys = ["auc_mean", "precision_mean", "recall_mean", "pseudo_accuracy_mean",
                "auc_pseudo_mean"]
        caption = ("Full framework, mean over seeds: ``label_quality_`` and "
                   "``label_issues_`` against the flipped given labels; b1's "
                   "``sample_weights_`` against wrong pseudo-labels")
    else:
        header = ["noise", "loss", "ROC AUC of ``label_quality_``", "precision", "recall"]
        keys = ["auc_mean", "precision_mean", "recall_mean"]
        caption = ("Full framework, mean over seeds: ``label_quality_`` and "
                   "``label_issues_`` against the flipped given labels")
    gmm = table(header, [[r["setting"], r["loss"]] + [f"{r[k]:.3f}" for k in keys]
                         for _, r in full.iterrows()], caption)
    return s, acc, gmm


def _settings(name):
    runs = _csv(name)
    if runs is None or "settings" not in runs:
        return ""
    return para(f"Recorded settings: ``{runs['settings'].dropna().iloc[0]}``.")


def digits_section():
    s, acc, gmm = digits_tables("digits")
    m = s[s["loss"] == "elr"].set_index(["setting", "method"])["accuracy_mean"]
    hi = "symm 0.8"
    full = s[s["method"] == "full"]
    peers = s[s["method"].isin(["kNN", "logreg"])].groupby("setting")["accuracy_mean"].max()
    ahead = sum(m[(st, "full")] > peers[st] for st in full["setting"])
    text = para(
        "``python benchmarks/bench_digits.py``: for each seed, a 70/30 stratified split of "
        "scikit-learn's digits (8x8 images), the training labels corrupted with that seed "
        "(asymmetric noise maps class c to c+1 mod 10), the estimator with its default "
        "hyperparameters, ``image_shape=(1, 8, 8)`` and loss ``elr``; kNN (k=10) and "
        "logistic regression are trained on the same noisy labels. Test accuracy is on the "
        "clean test labels (the paper's Table 1 at CPU scale).")
    notes = para(
        f"Pre-training pays off most at high noise: at {hi}, baseline "
        f"{m[(hi, 'baseline')]:.3f}, pretrain {m[(hi, 'pretrain')]:.3f}, full "
        f"{m[(hi, 'full')]:.3f}. The full framework is ahead of both kNN and logistic "
        f"regression in {ahead} of {len(full)} settings. ``label_quality_`` ranks the "
        "flipped given labels with a ROC AUC of "
        f"{_range(full['auc_mean'], '{:.3f}')}; at the fixed 0.5 threshold the recall of "
        "``label_issues_`` drops where most labels are wrong, so rank by "
        "``label_quality_`` there.")
    return section("bench-digits", "Digits: default hyperparameters", text, _settings("digits"),
                   acc, gmm, notes,
                   figure("digits.png", "Test accuracy per noise setting and method "
                          "(bench_digits.py).", "digits accuracy per method"))


def losses_section():
    _, acc, gmm = digits_tables("digits_losses")
    text = para(
        "``python benchmarks/bench_digits.py --losses ce nfl+rce --seeds 0 1 2 --name "
        "digits_losses``: the protocol of the section above with the two other losses, in "
        "a run of its own (compare the losses within this table; the ELR column of the "
        "section above is another run). Plain cross-entropy memorises the noise; NFL+RCE "
        "resists it; the full framework helps both at high noise. This run records the "
        "given-label scores only.")
    return section("bench-losses", "Digits: the other losses", text, _settings("digits_losses"),
                   acc, gmm,
                   figure("digits_losses.png", "Test accuracy per noise setting, method and "
                          "loss (digits_losses).", "digits accuracy for ce and nfl+rce"))


def precision_section():
    x = pd.read_csv(RESULTS / "digits_fp32_summary.csv")
    y = pd.read_csv(RESULTS / "digits_bf16_summary.csv")
    x = x[x["method"].isin(MODES)]
    m = x.merge(y, on=["setting", "method", "loss"], suffixes=("_fp32", "_bf16"))
    n = int(min(m["n_seeds_fp32"].min(), m["n_seeds_bf16"].min()))
    rows = []
    for _, r in m.iterrows():
        d = r["accuracy_mean_bf16"] - r["accuracy_mean_fp32"]
        rows.append([r["setting"], r["method"], _pm(r["accuracy_mean_fp32"],
                     r["accuracy_std_fp32"]), _pm(r["accuracy_mean_bf16"],
                     r["accuracy_std_bf16"]), f"{d:+.3f}"])
    diff = (m["accuracy_mean_bf16"] - m["accuracy_mean_fp32"])
    worst = m.loc[diff.abs().idxmax()]
    text = para(
        "``python benchmarks/bench_digits.py --params precision=fp32 --name digits_fp32`` "
        "and the same with ``precision=bf16 --name digits_bf16``: the digits protocol "
        "(loss ``elr``, defaults) trained in float32 and in bfloat16 autocast, same seeds.")
    notes = para(
        f"Largest absolute difference bf16 - fp32 over the {len(m)} cells: {diff.abs().max():.3f} "
        f"({worst['setting']}, {worst['method']}); the standard deviation over seeds there "
        f"is {worst['accuracy_std_fp32']:.3f} (fp32) and {worst['accuracy_std_bf16']:.3f} "
        "(bf16). ``precision=\"auto\"`` trains in bf16 where the device computes it natively.")
    return section("bench-precision", "Digits: float32 against bfloat16", text,
                   table(["noise", "mode", "fp32", "bf16", "bf16 - fp32"], rows,
                         f"Test accuracy, mean ± std over {_seeds_text(n)}"), notes)


def phase_b_section():
    paths = sorted(p for p in RESULTS.glob("phase_b_*.csv") if not p.stem.endswith("_summary"))
    runs = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    s = (runs.groupby(["setting", "supcon_weighting", "finetune_temperature"], sort=False)
         .agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
              n_seeds=("seed", "nunique")).reset_index())
    temps = sorted(s["finetune_temperature"].unique())
    n = int(s["n_seeds"].min())
    rows = []
    for (setting, weighting), g in s.groupby(["setting", "supcon_weighting"], sort=False):
        g = g.set_index("finetune_temperature")
        rows.append([setting, weighting] + [
            _pm(g.loc[t, "accuracy_mean"], g.loc[t, "accuracy_std"]) if t in g.index else "–"
            for t in temps])
    per_cell = table(["noise", "eq. 8 reading"] + [f"τ={t:g}" for t in temps], rows,
                     f"Full framework, test accuracy, mean ± std over {_seeds_text(n)}")
    means = s.groupby(["supcon_weighting", "finetune_temperature"])["accuracy_mean"].mean()
    weightings = list(dict.fromkeys(s["supcon_weighting"]))
    mean_rows = [[w] + [f"{means.get((w, t), float('nan')):.3f}" for t in temps]
                 for w in weightings]
    mean_table = table(["eq. 8 reading"] + [f"τ={t:g}" for t in temps], mean_rows,
                       "Mean over the noise settings")
    blocks = []
    acc = runs.pivot_table(index=["seed", "setting", "finetune_temperature"],
                           columns="supcon_weighting", values="accuracy")
    if {"paper", "authors"} <= set(acc.columns):
        d = (acc["authors"] - acc["paper"]).dropna()
        blocks.append(para(
            f"Paired over the {len(d)} (seed, setting, temperature) cells, the authors' "
            f"reading minus the paper's is {d.mean():+.4f} on average (standard error "
            f"{d.std() / len(d) ** 0.5:.4f}; {(d > 0).sum()} higher, {(d < 0).sum()} lower, "
            f"{(d == 0).sum()} equal). The defaults are ``supcon_weighting=\"paper\"`` "
            "(eq. 8 as published) and ``finetune_temperature=0.1``, between SupContrast's "
            "0.07 and SimCLR's 0.5."))
    text = para(
        "``python benchmarks/bench_phase_b.py --weightings paper --name phase_b_paper`` and "
        "the same with ``authors``: the full framework on digits (defaults otherwise) for "
        "each b2 temperature (``finetune_temperature``) and each reading of eq. 8 "
        "(``supcon_weighting``, see :ref:`paper-choices`).")
    figs = [figure(f"{p.stem}.png", f"Test accuracy against the b2 temperature, "
                   f"{p.stem[len('phase_b_'):]} reading ({p.stem}).", p.stem) for p in paths]
    return section("bench-phase-b", "Phase b: b2 temperature and the two readings of eq. 8",
                   text, per_cell, mean_table, *blocks, *figs)


def bootstrap_section():
    paths = sorted(p for p in RESULTS.glob("digits_bootstrap_*.csv")
                   if not p.stem.endswith("_summary"))
    runs = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    runs = runs[runs["method"].isin(["pretrain", "bootstrap"])]
    rows = []
    gains = {}
    for (loss, setting), g in runs.groupby(["loss", "setting"], sort=False):
        acc = g.pivot_table(index="seed", columns="method", values="accuracy").dropna()
        if not {"pretrain", "bootstrap"} <= set(acc.columns) or acc.empty:
            continue
        gain = acc["bootstrap"] - acc["pretrain"]
        gains[(loss, setting)] = gain.mean()
        rows.append([setting, loss, len(acc), _cell(acc["pretrain"]), _cell(acc["bootstrap"]),
                     f"{gain.mean():+.3f} ({(gain > 0).sum()}/{len(gain)})"])
    ce = [v for (loss, _), v in gains.items() if loss == "ce"]
    hi = [v for (_, setting), v in gains.items() if setting == "symm 0.8"]
    text = para(
        "``phases=\"bootstrap\"`` runs a1, a2 (and b1), then trains a copy of a2's "
        "classifier on the given labels with dynamic bootstrapping and mixup (section 6.4 "
        "of the paper, Figure 7). ``python benchmarks/bench_digits.py --modes pretrain "
        "bootstrap --losses ce nfl+rce --name digits_bootstrap_ce_nfl_rce`` and the same "
        "with ``--losses elr --name digits_bootstrap_elr`` (defaults, "
        "``bootstrap_variant=\"hard\"``). Gain = bootstrap - pretrain, the mean of the "
        "paired per-seed differences (in brackets: seeds where bootstrapping is higher).")
    notes = para(
        f"As in the paper's Figure 7, bootstrapping helps cross-entropy in every setting "
        f"({_range(ce, '{:+.3f}')}) and every loss at symmetric 0.8 "
        f"({_range(hi, '{:+.3f}')}); it adds little or loses with ELR and NFL+RCE at low "
        "noise.")
    figs = [figure(f"{p.stem}.png", f"Pretrain against bootstrap per noise setting "
                   f"({p.stem}).", p.stem) for p in paths]
    return section("bench-bootstrap", "Dynamic bootstrapping after pre-training", text,
                   table(["noise", "loss", "seeds", "pretrain", "bootstrap", "gain"], rows,
                         "Test accuracy, mean ± std over seeds"), notes, *figs)


def tabular_section():
    t = _csv("tabular")
    methods = list(dict.fromkeys(t["method"]))
    rows = []
    for (data, rate), g in t.groupby(["dataset", "noise_rate"], sort=False):
        g = g.set_index("method")
        rows.append([data, f"sym {rate}"] + [_pm(g.loc[m, "accuracy_mean"],
                                                 g.loc[m, "accuracy_std"]) for m in methods])
    n = int(t["n_seeds"].max())
    text = para(
        "``python benchmarks/bench_tabular.py``: breast cancer and wine (both ship with "
        "scikit-learn), 70/30 split, symmetric noise, the estimator's defaults behind a "
        "``StandardScaler`` (MLP encoder, SCARF-style feature corruption as the contrastive "
        "augmentation), against logistic regression and histogram gradient boosting "
        "trained on the same noisy labels.")
    return section("bench-tabular", "Tabular data", text,
                   table(["data", "noise"] + methods, rows,
                         f"Test accuracy on clean labels, mean ± std over {_seeds_text(n)}"),
                   figure("tabular.png", "Test accuracy per data set, noise rate and method "
                          "(bench_tabular.py).", "tabular accuracy"))


def lr_section():
    d = _csv("lr_sensitivity")
    lrs = sorted(d["lr"].unique())
    rows = []
    for (loss, phases), g in d.groupby(["loss", "phases"], sort=False):
        g = g.set_index("lr")
        rows.append([loss, phases] + [_pm(g.loc[lr, "test_accuracy_mean"],
                                          g.loc[lr, "test_accuracy_std"]) for lr in lrs])
    r = d.iloc[0]
    text = para(
        f"``python benchmarks/bench_lr_sensitivity.py`` (the paper's Figure 5): digits, "
        f"{r['noise']} noise, seeds {r['seeds']}, a1 {int(r['pretrain_epochs'])} epochs, a2 "
        f"{int(r['max_epochs'])} epochs, each point fitted on the noisy labels and scored "
        "on clean test labels. "
        ":ref:`sphx_glr_auto_examples_plot_lr_sensitivity.py` runs a reduced version as "
        "one ``GridSearchCV`` scored on clean labels through metadata routing.")
    gs = _csv("lr_sensitivity_gridsearch")
    blocks = []
    if gs is not None:
        g0 = gs.iloc[0]
        blocks.append(para(
            f"The same script's ``GridSearchCV`` check ({g0['loss']}, {g0['phases']}, "
            f"cv={int(g0['cv'])}, ``error_score=\"raise\"``) adds an ``lr`` large enough to "
            "make the loss non-finite: such fits emit ``noisyclf.DivergenceWarning``, keep "
            "the weights of their last finished epoch and are scored like any other point "
            "(scores on the noisy validation folds; see :ref:`reliability`)."))
        blocks.append(table(
            ["lr", "mean CV score (noisy folds)", "rank", "fits", "fits diverged",
             "diverged phases"],
            [[f"{x['lr']:g}", f"{x['mean_test_score_noisy_folds']:.3f}",
              int(x["rank_test_score"]), int(x["n_fits"]), int(x["n_fits_diverged"]),
              x["diverged_phases"] if pd.notna(x["diverged_phases"]) else ""]
             for _, x in gs.iterrows()], "GridSearchCV over lr (lr_sensitivity_gridsearch)"))
    return section("bench-lr", "Learning-rate sensitivity", text,
                   table(["loss", "phases"] + [f"lr={lr:g}" for lr in lrs], rows,
                         "Test accuracy on clean labels, mean ± std over seeds"),
                   figure("lr_sensitivity.png", "Test accuracy against lr per loss, baseline "
                          "and pretrain (bench_lr_sensitivity.py).", "learning-rate curves"),
                   *blocks)


def memory_section():
    m = _csv("memory_cache")
    r = m.iloc[0]
    text = para(
        f"``python benchmarks/bench_memory_cache.py``: ``GridSearchCV`` over ``lr`` in "
        f"{{{r['lr_grid'].replace(' ', ', ')}}} (cv={int(r['cv'])}, "
        f"``phases=\"{r['phases']}\"``) on digits with {r['noise']} noise, with and without "
        "``memory=``, in one run. SimCLR (a1) is label-free, so with ``memory`` it runs "
        "once per fold instead of once per fit. \"cold\" starts with an empty cache, "
        "\"warm\" reuses the cache the cold search filled; \"identical model\" compares "
        f"``predict_proba`` bit for bit. Machine: {_machine(m)}.")
    rows = [[x["setting"], f"{x['wall_s']:.1f}", f"{x['ratio']:.2f}x", x["identical"]]
            for _, x in m.iterrows()]
    return section("bench-memory", "Cached pre-training in a grid search", text,
                   table(["run", "wall time (s)", "speed-up vs uncached", "identical model"],
                         rows),
                   figure("memory_cache.png", f"GridSearchCV wall time with and without "
                          f"memory= ({_machine(m)}).", "grid search wall times"))


# ----------------------------------------------------------------------------- CIFAR-10

def _pretrain_epochs(runs):
    return json.loads(runs["params"].iloc[0].split("}")[0] + "}").get("pretrain_epochs")


def cifar10_section():
    runs = _csv("cifar10")
    first = runs.iloc[0]
    fw = runs[runs["method"].isin(MODES)]
    settings = [s for s in CIFAR_ORDER if s in set(runs["setting"])]
    losses = [x for x in ("ce", "nfl+rce", "elr") if x in set(fw["loss"])]
    seeds = fw.groupby("setting")["seed"].nunique()
    second = [s for s in settings if seeds.get(s, 0) > 1]
    epochs = _pretrain_epochs(runs)
    text = para(
        f"``python benchmarks/bench_cifar10.py`` (CSV ``benchmarks/results/cifar10.csv``, "
        f"one row per fit with its settings, versions and wall time): a stratified subset "
        f"of {int(first['n_train']):,} CIFAR-10 training images, the full "
        f"{int(first['n_test']):,}-image test set with clean labels, {_encoder(runs)} "
        f"and default hyperparameters except ``pretrain_epochs={epochs}``: one SimCLR "
        "pre-training (a1) of the subset, cached with ``memory=`` and shared by every label "
        "setting, loss and seed. ``pretrain`` is the a2 classifier of the ``full`` fit "
        "(every phase is seeded on its own, so it is what ``phases=\"pretrain\"`` "
        "predicts). Test accuracy is that of the final epoch. The images are JPEG "
        "re-encodings (quality 75), which costs up to about one point against the original "
        "PNGs. Every label setting has noise seed 0; "
        + (f"``python benchmarks/bench_cifar10.py --seeds 1 --settings {' '.join(second)}`` "
           f"adds a second noise seed for these {len(second)} settings (mean ± std over the "
           "two). " if second else "")
        + "The CIFAR-10N labels are fixed, so they have one run each.")
    # Table 1's shape.
    rows = []
    for setting in settings:
        g = fw[fw["setting"] == setting]
        cells = []
        for loss in losses:
            gl = g[g["loss"] == loss]
            acc = {m: gl[gl["method"] == m].set_index("seed")["test_accuracy"] for m in MODES}
            gain = (acc["full"] - acc["pretrain"]).dropna()
            cells += [_cell(acc["baseline"]), _cell(acc["pretrain"]), _cell(acc["full"]),
                      f"{gain.mean():+.3f}" if len(gain) else "–"]
        rows.append([f"{setting} ({g['actual_noise'].mean():.3f})"] + cells)
    header = ["noise (actual)"] + [f"{x} {c}" for x in losses
                                   for c in ("base", "pre-t", "full", "gain")]
    grid = table(header, rows, "Test accuracy on clean labels; gain = full - pretrain")
    # Peers.
    peers = [("CE from scratch", "baseline", "ce"),
             (CLEANLAB_METHOD, CLEANLAB_METHOD, "ce"),
             ("SimCLR + logreg", "SimCLR + logreg", "-")]
    peers += [(f"{m} ({x})", m, x) for x in losses for m in ("pretrain", "full")]
    peers = [p for p in peers if ((runs["method"] == p[1]) & (runs["loss"] == p[2])).any()]
    peer_rows = []
    for setting in ["clean"] + settings:
        g = runs[runs["setting"] == setting]
        if not g.empty:
            peer_rows.append([setting] + [_cell(g[(g["method"] == m) & (g["loss"] == x)]
                                                ["test_accuracy"]) for _, m, x in peers])
    peer_text = para(
        "Peers on the same subset, labels and network: cleanlab's ``CleanLearning`` "
        "wrapping the CE baseline (3-fold cross-validated ``pred_probs``, then a refit on "
        "the kept labels) and a logistic regression on the frozen SimCLR features "
        "(SimCLR + logreg; the \"clean\" row is trained on the clean labels).")
    ceiling = []
    clean = runs[runs["method"] == "pretrain (clean labels)"]
    short = _csv("cifar10_a1_100")
    if len(clean):
        line = (f"Cross-entropy on the clean labels over the pre-trained encoder (the ceiling "
                f"of the pre-t column on this subset) reaches "
                f"{clean['test_accuracy'].mean():.3f} after {epochs} SimCLR epochs")
        if short is not None:
            line += (f" and {short['test_accuracy'].mean():.3f} after "
                     f"{_pretrain_epochs(short)} (``python benchmarks/bench_cifar10.py "
                     f"--probe-only --pretrain-epochs {_pretrain_epochs(short)} --name "
                     "cifar10_a1_100``)")
        ceiling.append(para(line + "."))
    # Finding the wrong labels.
    li = runs[runs["method"].isin(["full", CLEANLAB_METHOD])]
    issue_rows = []
    for setting in settings:
        for (method, loss), h in li[li["setting"] == setting].groupby(["method", "loss"],
                                                                     sort=False):
            label = "cleanlab" if method.startswith("cleanlab") else f"noisyclf ({loss})"
            issue_rows.append([setting, label] + [f"{h[c].mean():.3f}" for c in (
                "issues_precision", "issues_recall", "issues_f1", "issues_auc")])
    issues_text = para(
        "Finding the wrong given labels: ``label_issues_`` (precision, recall, F1) and "
        "``label_quality_`` (ROC AUC) of the full framework against the known flips "
        "(CIFAR-10N: against ``clean_label``), beside cleanlab's ``find_label_issues`` on "
        "the cross-validated ``pred_probs`` of the CE baseline network.")
    figs = [figure("cifar10.png", "Test accuracy per label setting, loss and mode.",
                   "CIFAR-10 accuracy per mode"),
            figure("cifar10_finetune_gain.png", "full - pretrain per cell (the idea of the "
                   "paper's Figure 6).", "phase b gain per cell"),
            figure("cifar10_pseudo_labels.png", "Accuracy of a2's pseudo-labels against that "
                   "of the given labels on the training subset (the idea of the paper's "
                   "Figure 3).", "pseudo-label against given-label accuracy"),
            figure("cifar10_gmm.png", "a2's normalised losses of clean and wrong given labels "
                   "with the two GMM components, loss elr (the idea of the paper's "
                   "Figure 4).", "GMM on a2's losses")]
    return section("bench-cifar10", "CIFAR-10 and CIFAR-10N", text, grid, figs[0],
                   cifar10_claims(runs), peer_text,
                   table(["noise"] + [p[0] for p in peers], peer_rows,
                         "Test accuracy on clean labels"),
                   *ceiling, cifar10_phase_b(runs), figs[1], figs[2], issues_text,
                   table(["noise", "method", "precision", "recall", "F1", "ROC AUC"],
                         issue_rows), figs[3])


def cifar10_claims(runs):
    """The paper's claims, counted on this grid."""
    fw = runs[runs["method"].isin(MODES)]
    acc = fw.pivot_table(index=["setting", "loss"], columns="method", values="test_accuracy")
    out = []
    both = acc.dropna(subset=["baseline", "pretrain"])
    ok = both["pretrain"] >= both["baseline"]
    bad = [f"{s} {x}" for (s, x), v in ok.items() if not v]
    out.append(f"* Pre-training helps (pretrain >= baseline): {ok.sum()} of {len(ok)} cells"
               + (f" (not in: {', '.join(bad)})" if bad else "") + ".")
    if "sym0.8" in both.index.get_level_values(0):
        g = both.loc["sym0.8"]
        gains = ", ".join(f"{x} {v:+.3f}" for x, v in (g["pretrain"] - g["baseline"]).items())
        out.append(f"* pretrain - baseline at symmetric 0.8: {gains}.")
    both = acc.dropna(subset=["full", "pretrain"])
    ok = both["full"] >= both["pretrain"]
    out.append(f"* Phase b adds to pre-training (full >= pretrain): {ok.sum()} of {len(ok)} "
               f"cells ({ok.mean():.0%}).")
    cl = runs[runs["method"] == CLEANLAB_METHOD].set_index("setting")
    if "worse_label" in cl.index and "worse_label" in acc.index.get_level_values(0):
        c = float(cl.loc[["worse_label"], "test_accuracy"].mean())
        w = acc.loc["worse_label", "full"].dropna()
        out.append(f"* ``worse_label``, test accuracy: cleanlab {c:.3f}; full framework "
                   + ", ".join(f"{x} {v:.3f} ({v - c:+.3f})" for x, v in w.items()) + ".")
    full = runs[runs["method"] == "full"]
    pairs = []
    for setting in [s for s in CIFAR_ORDER if s in cl.index]:
        f1 = full[full["setting"] == setting].groupby("loss")["issues_f1"].mean()
        pairs.append(f"{setting}: cleanlab {cl.loc[[setting], 'issues_f1'].mean():.3f}, "
                     + ", ".join(f"{x} {v:.3f}" for x, v in f1.items()))
    if pairs:
        out.append("* Label-issue F1, cleanlab against the full framework per loss: "
                   + "; ".join(pairs) + ".")
    return "The paper's claims, counted on this grid (cells averaged over seeds):\n\n" + \
        "\n".join(textwrap.fill(x, 96, subsequent_indent="  ", break_on_hyphens=False)
                  for x in out)


def cifar10_phase_b(runs):
    """Phase b against the quality of its input, per (setting, loss)."""
    key = ["setting", "loss", "seed"]
    full = runs[runs["method"] == "full"].set_index(key)
    pre = runs[runs["method"] == "pretrain"].set_index(key)["test_accuracy"]
    t = full[["given_accuracy", "pseudo_accuracy"]].assign(
        diff=full["pseudo_accuracy"] - full["given_accuracy"],
        gain=full["test_accuracy"] - pre).dropna()
    t = t.groupby(["setting", "loss"]).mean().sort_values("diff")
    rows = [[s, x, f"{r['given_accuracy']:.3f}", f"{r['pseudo_accuracy']:.3f}",
             f"{r['diff']:+.3f}", f"{r['gain']:+.3f}"] for (s, x), r in t.iterrows()]
    worse, better = t[t["diff"] < 0], t[t["diff"] >= 0]
    text = para(
        "Why phase b gains where it does: phase b takes a2's predictions on the training "
        "set as its ground truth, on the paper's premise that they are more accurate than "
        "the given labels (section 4, Figure 3). Per (setting, loss), the training-set "
        "accuracy of the given labels and of a2's pseudo-labels against the true labels, "
        "and full - pretrain on the test set:")
    notes = para(
        f"full >= pretrain where the pseudo-labels are less accurate than the given labels: "
        f"{(worse['gain'] >= 0).sum()} of {len(worse)} cells; where they are at least as "
        f"accurate: {(better['gain'] >= 0).sum()} of {len(better)}. The small CNN on these "
        "images has a clean-label ceiling far below the paper's ResNet-18 on 50,000 images, "
        "so at low noise its pseudo-labels are worse than the given labels and phase b has "
        "nothing to gain from them.")
    return "\n\n".join([text, table(["noise", "loss", "given labels correct",
                                     "pseudo-labels correct", "pseudo - given",
                                     "full - pretrain (test)"], rows), notes])


#: Published results at the paper's size, with their networks and protocols.
CIFAR10_ANCHORS = {
    "sym0.2": "Co-teaching: standard 0.763, Co-teaching 0.823 (9-layer CNN, mean of the "
              "last 10 epochs; Han et al. 2018)",
    "sym0.5": "Co-teaching: standard 0.489, Co-teaching 0.740 (9-layer CNN, mean of the "
              "last 10 epochs)",
    "sym0.8": "the paper, ELR: 0.183 without and 0.848 with pre-training (ResNet-18, GPU; "
              "Ciortan et al.)",
    "asy0.4": "Co-teaching at pair 0.45 (a harder map than this one): standard 0.495, "
              "Co-teaching 0.726 (9-layer CNN)",
    "worse_label": "CIFAR-10N: CE 0.777 (ResNet-34; Wei et al. 2022)",
}
CIFAR10_50K_ORDER = ["sym0.2", "sym0.4", "sym0.5", "sym0.8", "asy0.4", "aggre_label",
                     "random_label1", "worse_label"]


def cifar10_50k_section():
    """All 50,000 training images: the grid of ``benchmarks/cifar10_50k.py``."""
    runs = _csv("cifar10_n50000")
    if runs is None:
        return ""
    done = {(r.setting, r.loss, r.method) for r in runs.itertuples()}
    plan = cifar10_50k.planned_cells()
    planned, finished = len(plan), sum(cell in done for cell in plan)
    settings = [s for s in CIFAR10_50K_ORDER if s in set(runs["setting"])]

    def acc(setting, method, loss):
        g = runs[(runs["setting"] == setting) & (runs["method"] == method)
                 & (runs["loss"] == loss)]
        return float(g["test_accuracy"].mean()) if len(g) else float("nan")

    def fmt(v, sign=False):
        return "–" if np.isnan(v) else (f"{v:+.3f}" if sign else f"{v:.3f}")

    rows, claims = [], []
    for setting in settings:
        g = runs[runs["setting"] == setting]
        ce, pre, full, dflt = (acc(setting, "baseline", "ce"), acc(setting, "pretrain", "elr"),
                               acc(setting, "full", "elr"), acc(setting, "default", "elr"))
        ours = g[(g["method"] == "default") & (g["loss"] == "elr")]
        pseudo = float(ours["pseudo_accuracy"].mean()) if len(ours) else float("nan")
        ran = (json.loads(ours.iloc[0]["params"]).get("phase_b_ran_in_default")
               if len(ours) else None)
        rows.append([f"{setting} ({g['actual_noise'].mean():.3f})", fmt(ce), fmt(pre),
                     fmt(full), fmt(dflt), "–" if ran is None else ("b3" if ran else "a2"),
                     fmt(dflt - pre, sign=True), fmt(pre - ce, sign=True),
                     fmt(float(g["given_accuracy"].mean())), fmt(pseudo),
                     fmt(acc(setting, CLEANLAB_METHOD, "ce")),
                     fmt(acc(setting, "default", "nfl+rce")),
                     CIFAR10_ANCHORS.get(setting, "")])
    pairs = [(s, acc(s, "pretrain", "elr") - acc(s, "baseline", "ce")) for s in settings]
    pairs = [(s, d) for s, d in pairs if not np.isnan(d)]
    if pairs:
        bad = [s for s, d in pairs if d <= 0]
        claims.append(f"* Pre-training beats CE from scratch: {len(pairs) - len(bad)} of "
                      f"{len(pairs)} settings" + (f" (not in {', '.join(bad)})" if bad else "")
                      + "; at symmetric 0.8 by " + next(
                          (f"{d:+.3f} (target +0.15)" for s, d in pairs if s == "sym0.8"),
                          "– (not measured yet)") + ".")
    keep = [(s, acc(s, "default", x) - acc(s, "pretrain", x)) for s in settings
            for x in ("elr", "nfl+rce")]
    keep = [(s, d) for s, d in keep if not np.isnan(d)]
    if keep:
        claims.append(f"* The default is never below its pretrain column by more than 0.005: "
                      f"{sum(d >= -0.005 for _, d in keep)} of {len(keep)} cells "
                      f"(lowest {min(d for _, d in keep):+.3f}).")
    gains, missed = 0, []
    for r in runs[runs["method"] == "default"].itertuples():
        gain = acc(r.setting, "full", r.loss) - acc(r.setting, "pretrain", r.loss)
        if gain > 0.005:
            gains += 1
            note = json.loads(r.params)
            if not note.get("phase_b_ran_in_default"):
                missed.append(
                    f"{r.setting} ({r.loss}) full - pretrain {gain:+.3f}: the fit expected its "
                    f"pseudo-labels {note['expected_pseudo_accuracy']:.3f} correct and the "
                    f"given labels {note['expected_given_accuracy']:.3f}, the truth is "
                    f"{r.pseudo_accuracy:.3f} and {r.given_accuracy:.3f}")
    if gains:
        claims.append(f"* Where phase b gains (full - pretrain > 0.005) the default keeps the "
                      f"gain in {gains - len(missed)} of {gains} cells"
                      + (f"; it skips phase b at {'; '.join(missed)}" if missed else "") + ".")
    w = acc("worse_label", "default", "elr") - acc("worse_label", CLEANLAB_METHOD, "ce")
    claims.append("* ``worse_label``: default - cleanlab on the same network "
                  + ("– (not measured yet)" if np.isnan(w) else f"{w:+.3f}")
                  + " (target +0.05).")
    c = acc("sym0.5", "default", "elr")
    counts = [json.loads(p).get("n_parameters") for p in runs[runs["method"] == "default"]
              ["params"]]
    counts = [c for c in counts if c]
    size = f", {counts[0] / 1e6:.1f} M parameters" if counts else ""
    claims.append("* Symmetric 0.5: the default " + ("– (not measured yet)" if np.isnan(c)
                                                     else f"{c:.3f}")
                  + " against Co-teaching's 0.740 (its 9-layer CNN against "
                  f"{_encoder(runs)}{size} here).")
    issue_rows = []
    for setting in settings:
        for (method, loss), h in runs[(runs["setting"] == setting) & runs["method"].isin(
                ["default", CLEANLAB_METHOD])].groupby(["method", "loss"], sort=False):
            label = "cleanlab" if method.startswith("cleanlab") else f"noisyclf ({loss})"
            issue_rows.append([setting, label] + [f"{h[c].mean():.3f}" for c in (
                "issues_precision", "issues_recall", "issues_f1", "issues_auc")])
    small = _csv("auto_mode_cifar10")
    beside = []
    if small is not None:
        small = small[small["loss"] == "elr"]
        for setting in [s for s in CIFAR_ORDER if s in set(small["setting"])]:
            g4, g50 = small[small["setting"] == setting], runs[runs["setting"] == setting]
            beside.append([setting, fmt(float(g4["pretrain_accuracy"].mean())),
                           fmt(acc(setting, "pretrain", "elr")),
                           fmt(float(g4["full_accuracy"].mean())), fmt(acc(setting, "full", "elr")),
                           fmt(float(g4["pseudo_accuracy"].mean())),
                           fmt(float(g50[g50["method"] == "default"]["pseudo_accuracy"].mean())
                               if (g50["method"] == "default").any() else float("nan"))])
    first = runs.iloc[0]
    clean = runs[runs["method"] == "pretrain (clean labels)"]
    text = para(
        "``python benchmarks/cifar10_50k.py`` (``bench_cifar10.py --n-train 50000``; CSV "
        "``benchmarks/results/cifar10_n50000.csv``, the columns of ``cifar10.csv``): all "
        f"{int(first['n_train']):,} CIFAR-10 training images, the {int(first['n_test']):,} "
        f"test images, {_encoder(runs)}, the estimator's default hyperparameters "
        f"(``pretrain_epochs={_pretrain_epochs(runs)}``), noise seed 0, one process with "
        f"{int(first['torch_threads'])} torch thread(s) ({first['cpu_model']}). One "
        "``phases=\"full\"`` fit per cell gives three columns: pretrain (its a2 classifier), "
        "full (its b3) and the default (``phases=\"auto\"``, which predicts as b3 where the "
        "fit's ``phase_b_decision_[\"auto_runs_phase_b\"]``, else as a2). CE is the same "
        "network from scratch (``phases=\"baseline\"``); cleanlab's ``CleanLearning`` "
        "wraps that network (3-fold cross-validation, then a refit on the kept labels: "
        "about four CE fits). "
        f"{finished} of the {planned} planned cells are in"
        + (f"; {clean['test_accuracy'].mean():.3f} is a2 on the clean labels (the pretrain "
           "column's ceiling)" if len(clean) else "") + ".")
    header = ["noise (actual)", "CE scratch", "pretrain", "full", "default", "default uses",
              "default - pretrain", "pretrain - CE", "given labels correct",
              "pseudo-labels correct", "cleanlab", "NFL+RCE default", "published (network)"]
    figs = [figure("cifar10_n50000.png", "Test accuracy per label setting, loss and column, "
                   "50,000 training images.", "CIFAR-10 at 50,000 images"),
            figure("cifar10_n50000_pseudo_labels.png", "a2's pseudo-labels against the given "
                   "labels on the training set (the idea of the paper's Figure 3).",
                   "pseudo-label against given-label accuracy at 50,000 images"),
            figure("cifar10_n50000_clean_subset.png", "Pseudo-label accuracy on the whole "
                   "training set and on the subset b1's GMM calls clean, and that subset's "
                   "size (the idea of the paper's Figure 4).", "GMM clean subset"),
            figure("cifar10_n50000_finetune_gain.png", "full - pretrain per cell (the idea "
                   "of the paper's Figure 6).", "phase b gain at 50,000 images")]
    return section(
        "bench-cifar10-50k", "CIFAR-10 at the paper's size: 50,000 training images", text,
        table(header, rows, "Test accuracy on clean labels (ELR unless named); published "
              "numbers come from larger networks and other protocols, named beside them"),
        "The targets, counted on this grid:\n\n" + "\n".join(
            textwrap.fill(x, 96, subsequent_indent="  ", break_on_hyphens=False)
            for x in claims),
        figs[0], figs[1], figs[2], figs[3],
        table(["noise", "method", "precision", "recall", "F1", "ROC AUC"], issue_rows,
              "Finding the wrong given labels against the known flips (CIFAR-10N: against "
              "``clean_label``): the fit's ``label_issues_`` and ``label_quality_`` beside "
              "cleanlab's ``find_label_issues`` on its cross-validated ``pred_probs``")
        if issue_rows else "",
        table(["noise", "pretrain 4,000", "pretrain 50,000", "full 4,000", "full 50,000",
               "pseudo-labels correct 4,000", "pseudo-labels correct 50,000"], beside,
              "What size buys: the same default network and protocol on the 4,000-image "
              "subset (:ref:`bench-auto-mode`, loss ELR, seed 0)") if beside else "")


def auto_mode_tables(name, caption):
    """Per (loss, setting): truth, the fit's estimates (the expected accuracies that the
    decision compares in brackets) and the three modes' accuracy."""
    runs = _csv(name)
    rows = []
    for (loss, setting), g in runs.groupby(["loss", "setting"], sort=False):
        ran = int(g["auto_runs_phase_b"].sum())
        rows.append([loss, setting, len(g), f"{g['noise_rate'].mean():.3f}",
                     f"{g['est_noise_rate'].mean():.3f}", f"{g['rmse'].mean():.3f}",
                     f"{g['diag_mae'].mean():.3f}",
                     f"{int(g['flips_found'].sum())} of {int(g['flips'].sum())}"
                     if g["flips"].sum() else "–",
                     f"{g['pseudo_accuracy'].mean():.3f} "
                     f"({g['expected_pseudo_accuracy'].mean():.3f})",
                     f"{g['given_accuracy'].mean():.3f} "
                     f"({g['expected_given_accuracy'].mean():.3f})",
                     f"{ran} of {len(g)}", f"{g['pretrain_accuracy'].mean():.3f}",
                     f"{g['full_accuracy'].mean():.3f}", f"{g['auto_accuracy'].mean():.3f}",
                     f"{g['auto_minus_pretrain'].mean():+.3f}"])
    header = ["loss", "labels", "runs", "noise rate", "``noise_rate_``", "``noise_matrix_`` RMSE",
              "diagonal MAE", "flip targets found",
              "pseudo-labels correct (expected)", "given correct (expected)", "auto ran b",
              "pretrain", "full",
              "auto", "auto - pretrain"]
    return runs, table(header, rows, caption)


def _against_baseline(runs, baseline, data):
    """The modes of the grid's cells beside the ``phases="baseline"`` fit (no a1, no phase b)
    on the same labels (``bench_auto_mode.py --baseline``)."""
    keys = ["train_id", "setting", "loss", "seed"]
    cells = runs.set_index(keys)
    rows = []
    for r in baseline.to_dict("records"):
        key = tuple(r[k] for k in keys)
        if key not in cells.index:
            continue
        c = cells.loc[key]
        rows.append([r["setting"], r["loss"], r["seed"], f"{r['baseline_accuracy']:.3f}",
                     f"{c['pretrain_accuracy']:.3f}", f"{c['full_accuracy']:.3f}",
                     f"{c['auto_accuracy']:.3f}",
                     f"{c['auto_accuracy'] - r['baseline_accuracy']:+.3f}"])
    if not rows:
        return []
    return [table(["labels", "loss", "seed", "baseline", "pretrain", "full", "auto",
                   "auto - baseline"], rows,
                  f"{data}: the default mode against the baseline, the same network trained "
                  "on the given labels without a1 or phase b (``--baseline``)")]


def _noise_matrix_against_cleanlab(runs, cleanlab, data, cv_runs):
    """``noise_matrix_`` of the default fit and of ``noise_cv=5`` (where that grid has the
    cell) beside cleanlab's on the same network's cross-validated probabilities."""
    keys = ["train_id", "setting", "loss", "seed"]
    ours = runs.set_index(keys)
    cv = None if cv_runs is None else cv_runs.set_index(keys)
    rows = []
    for r in cleanlab.to_dict("records"):
        key = tuple(r[k] for k in keys)
        o = ours.loc[key]
        c = cv.loc[key] if cv is not None and key in cv.index else None
        values = [o["rmse"], np.nan if c is None else c["rmse"], r["cleanlab_rmse"],
                  o["diag_mae"], np.nan if c is None else c["diag_mae"],
                  r["cleanlab_diag_mae"]]
        flips = (f"{int(o['flips_found'])} / {'–' if c is None else int(c['flips_found'])} / "
                 f"{int(r['cleanlab_flips_found'])} of {int(o['flips'])}"
                 if o["flips"] else "–")
        rows.append([r["train_id"], r["setting"]] + [f"{v:.3f}" for v in values] + [flips])
    default = sum(float(row[2]) <= float(row[4]) for row in rows)
    folds = int(cleanlab["folds"].iloc[0])
    return [
        para(f"{data}: ``noise_matrix_`` of the default fit (confident learning on a "
             "logistic regression on a1's features, then the joint that the decision's "
             "posterior implies) beside cleanlab's ``estimate_latent`` on "
             f"{folds}-fold cross-validated probabilities of the same network (a2 "
             f"cross-fitted: the ``out_of_fold_proba_`` of a ``phases=\"pretrain\"`` fit "
             f"with ``noise_cv={folds}``; ``--cleanlab``), loss ``elr``. The "
             f"``noise_cv={folds}`` column is the fit's own ``noise_matrix_`` with those "
             "probabilities (confident learning on them, which gives cleanlab's values, then "
             f"the same posterior step) where the ``noise_cv={folds}`` grid has the cell. "
             f"The default is at least as close (RMSE) in {default} of {len(rows)}."),
        table(["training set", "labels", "RMSE (default)", f"RMSE (noise_cv={folds})",
               "RMSE (cleanlab)", "diagonal MAE (default)", f"diagonal MAE (noise_cv={folds})",
               "diagonal MAE (cleanlab)", "flip targets found (default / cv / cleanlab)"],
              rows)]


def auto_mode_section():
    blocks = [para(
        "``python benchmarks/bench_auto_mode.py --dataset digits`` and ``--dataset cifar10``, "
        "then ``--analyse``: one ``phases=\"full\"`` fit per cell with default "
        "hyperparameters (on CIFAR-10 an a1 of 100 epochs, whose cache "
        "``benchmarks/a1_store/cifar10_n4000_s0.tar`` holds beside the 200-epoch one; a "
        "row's ``params`` names the a1 length as ``pretrain_epochs_`` where it is "
        "recorded), which holds both "
        "a2's and b3's classifier; \"auto\" predicts exactly "
        "as the one its decision picks, computed from the fit's saved out-of-fold probabilities "
        "(cells saved without them: recomputed with the fit's own seeds) and a1's saved "
        "features (the forward-corrected prior). Variants: "
        "``--noise-cv 5`` (a2 cross-fitted for the estimates), ``--noise-cv 5 "
        "--noise-cv-epochs 10`` (each fold a quarter of a2's epochs), and the digits grid again "
        "with ``--threads 2 --losses elr --name auto_mode_digits_t2`` and a fresh a1 cache "
        "(the reference digits benchmark ran on 2 threads). Truth: the share of wrong given "
        "labels and of correct pseudo-labels on the "
        "training set, the test accuracy on clean labels. ``noise_rate_`` and "
        "``noise_matrix_`` are the fit's estimates against the corruption actually applied: "
        "RMSE over all entries, mean absolute error of the diagonal, and in how many columns "
        "with a flip target (asymmetric noise) the largest off-diagonal entry is that target.")]
    for name, data in [("auto_mode_digits_analysis", "digits (70/30 split per seed)"),
                       ("auto_mode_digits_t2_analysis",
                        "digits (70/30 split per seed), 2 threads"),
                       ("auto_mode_digits_cv5_analysis",
                        "digits (70/30 split per seed), noise_cv=5"),
                       ("auto_mode_digits_cv5e10_analysis",
                        "digits (70/30 split per seed), noise_cv=5, noise_cv_epochs=10"),
                       ("auto_mode_cifar10_analysis", "CIFAR-10"),
                       ("auto_mode_cifar10_cv5_analysis", "CIFAR-10, noise_cv=5"),
                       ("auto_mode_cifar10_cv5e10_analysis",
                        "CIFAR-10, noise_cv=5, noise_cv_epochs=10")]:
        if not (RESULTS / f"{name}.csv").exists():
            continue
        runs, tab = auto_mode_tables(name, f"{data}: the default mode against its own "
                                           "pretrain and the paper's full (means over runs)")
        ok = runs["auto_minus_pretrain"] >= -0.005
        first = runs.iloc[0]
        pseudo_wins = runs["pseudo_accuracy"] > runs["given_accuracy"]
        right = pseudo_wins == runs["auto_runs_phase_b"]
        plain_ok = runs["given_prior_minus_pretrain"] >= -0.005
        plain_right = pseudo_wins == runs["given_prior_runs_phase_b"]
        blocks.append(para(
            f"{data}: {len(runs)} cells, {int(first['n_train']):,} training images, "
            f"{_encoder(runs)}; "
            f"auto >= pretrain - 0.005 in {ok.sum()} of {len(runs)} cells; auto ran phase b "
            f"in {int(runs['auto_runs_phase_b'].sum())} and picked the more accurate labels "
            f"in {right.sum()}. With p(given | x) as the prior instead: >= pretrain - 0.005 "
            f"in {plain_ok.sum()}, ran phase b in "
            f"{int(runs['given_prior_runs_phase_b'].sum())}, picked the more accurate labels "
            f"in {plain_right.sum()}, mean accuracy "
            f"{(runs['pretrain_accuracy'] + runs['given_prior_minus_pretrain']).mean():.4f} "
            f"against {runs['auto_accuracy'].mean():.4f}. {_machine(runs).split(';')[0]}."))
        blocks.append(tab)
        baseline = _csv(name.replace("_analysis", "_baseline"))
        if baseline is not None:
            blocks += _against_baseline(runs, baseline, data)
        cleanlab = RESULTS / f"{name.replace('_analysis', '')}_cleanlab.csv"
        if cleanlab.exists():
            blocks += _noise_matrix_against_cleanlab(
                runs, pd.read_csv(cleanlab), data,
                _csv(name.replace("_analysis", "_cv5_analysis")))
    return section("bench-auto-mode", "The default mode: when phase b runs", *blocks)


def unlabeled_section():
    runs = _csv("unlabeled_digits")
    if runs is None:
        return ""
    methods = list(dict.fromkeys(runs["method"]))
    acc = runs.pivot(index="seed", columns="method", values="accuracy")
    rows = []
    for m in methods:
        g = runs[runs["method"] == m]
        phases = (f"{g['pretrain_accuracy'].mean():.3f} / {g['full_accuracy'].mean():.3f}"
                  if g["full_accuracy"].notna().all() else "–")
        ran = (f"{int(g['auto_runs_phase_b'].astype(bool).sum())} of {len(g)}"
               if g["auto_runs_phase_b"].notna().all() else "–")
        rows.append([m, _pm(g["accuracy"].mean(), g["accuracy"].std()), phases, ran])
    ours = "noisyclf + unlabeled"
    gains = [f"{(acc[ours] - acc[m]).mean():+.3f} over {m} (worse on "
             f"{int((acc[ours] < acc[m]).sum())} of {len(acc)} seeds)"
             for m in methods if m != ours]
    r = runs.iloc[0]
    text = para(
        "``python benchmarks/bench_unlabeled.py``: digits, a 70/30 stratified split per "
        f"seed; {int(r['n_labeled'])} training samples keep a label, flipped to another "
        f"class with symmetric noise {r['noise']} (whole flips per class: "
        f"{1 - runs['given_accuracy'].mean():.1%} of the labels wrong), the other "
        f"{int(runs['n_unlabeled'].max())} training samples are unlabeled (``y = -1``). "
        "The estimator with its defaults on all training samples, the same estimator on the "
        "labeled samples alone, ``SelfTrainingClassifier(LogisticRegression(max_iter=1000))`` "
        "and ``LabelSpreading(kernel=\"knn\")`` on the pixels scaled to [0, 1] with the same "
        "labels. The noisyclf rows come from one ``phases=\"full\"`` fit each, which holds "
        "a2's (pretrain) and b3's (full) classifier; the accuracy is what the default "
        "(``phases=\"auto\"``) predicts with.")
    summary = para(f"With its unlabeled samples the default gains {'; '.join(gains)}. "
                   f"{_machine(runs).split(';')[0]}.")
    return section("bench-unlabeled", "Few labels, many unlabeled samples", text,
                   table(["method", "test accuracy", "pretrain / full", "auto ran b"], rows,
                         f"Test accuracy on clean labels, mean ± std over "
                         f"{_seeds_text(len(acc))}"),
                   summary,
                   figure("unlabeled_digits.png", "Test accuracy per method and seed "
                          "(bench_unlabeled.py).", "accuracy with unlabeled samples"),
                   *unlabeled_cifar10())


def unlabeled_cifar10():
    """The CIFAR-10 rows of ``bench_unlabeled.py``: the grid's noisy labels with and
    without the other training images, unlabeled (mean over noise seeds)."""
    runs = _csv("unlabeled_cifar10")
    if runs is None:
        return []
    ours, alone = "noisyclf + unlabeled", "noisyclf, labels only"
    big = _csv("cifar10_n50000")
    mean = runs.groupby(["setting", "method"]).mean(numeric_only=True)
    rows, gains = [], []
    for setting in [s for s in CIFAR_ORDER if s in set(runs["setting"])]:
        g = mean.loc[setting]
        both = {ours, alone} <= set(g.index)
        if both:
            gains.append(g.loc[ours, "accuracy"] - g.loc[alone, "accuracy"])
        for m in [x for x in (ours, alone) if x in g.index]:
            r = g.loc[m]
            rows.append([setting, m, f"{r['n_labeled']:,.0f}", f"{r['n_unlabeled']:,.0f}",
                         f"{r['given_accuracy']:.3f}", f"{r['accuracy']:.3f}",
                         f"{r['pretrain_accuracy']:.3f} / {r['full_accuracy']:.3f}",
                         f"{gains[-1]:+.3f}" if both and m == ours else "",
                         f"{r['wall_s'] / 60:.0f}"])
        every = big[(big["setting"] == setting) & (big["method"] == "default")
                    & (big["loss"] == "elr")] if big is not None else []
        if len(every):
            e = every.iloc[0]
            rows.append([setting, f"noisyclf, all {int(e['n_train']):,} labeled "
                         "(:ref:`bench-cifar10-50k`)", f"{int(e['n_train']):,}", "0",
                         f"{e['given_accuracy']:.3f}", f"{e['test_accuracy']:.3f}", "", "",
                         f"{e['wall_s'] / 60:.0f}"])
    r = runs.iloc[0]
    labeled = int(r["n_labeled"])
    total = labeled + int(runs["n_unlabeled"].max())
    text = para(
        f"CIFAR-10 (``python benchmarks/bench_unlabeled.py --dataset cifar10 --n-labeled "
        f"{labeled}``): the {labeled:,} images of the CIFAR-10 grid keep their noisy labels "
        f"(the grid's label settings), the other {total - labeled:,} training images are "
        f"unlabeled; the estimator with its defaults on all {total:,} (a1 on every image, a2 "
        f"on the labeled ones, phase b on all) against the same estimator on the "
        f"{labeled:,} alone; the {int(r['n_test']):,} test images; "
        f"{_seeds_text(runs['seed'].nunique())} (mean), {r['cpu_model']}, "
        f"{int(r['torch_threads'])} torch thread(s). A fit's minutes include a1 only where "
        f"that fit trained it instead of reading it from the a1 cache (``memory``), which the "
        f"first fit on an image set does.")
    summary = para(f"The gain over the labels alone is at least +0.08 (the target) in "
                   f"{sum(g >= 0.08 for g in gains)} of {len(gains)} label settings.")
    return [text, table(["noise", "method", "labeled", "unlabeled", "given labels correct",
                         "test accuracy (default)", "pretrain / full",
                         "gain over the labels alone", "fit (min)"], rows,
                        "Test accuracy on clean labels"), summary,
            figure("unlabeled_cifar10.png", "Test accuracy per label setting and method "
                   "(bench_unlabeled.py, CIFAR-10).", "CIFAR-10 accuracy with unlabeled images")]


def tuning_section():
    ref = _csv("cifar10")
    ref = ref[ref["method"].isin(["pretrain", "full"])]
    rows = []
    commands = []
    for path in sorted(RESULTS.glob("cifar10_tuning_*.csv")):
        if path.stem.endswith(_AIRBENCH):
            continue  # a2_regime_table's
        runs = pd.read_csv(path)
        extra = {k: v for k, v in json.loads(runs["params"].iloc[0]).items()
                 if k not in ("phases", "loss", "pretrain_epochs", "random_state")}
        commands.append("``--params " + " ".join(f"{k}={v}" for k, v in extra.items())
                        + f" --name {path.stem}``")
        runs = runs[runs["method"].isin(["pretrain", "full"])]
        variant = ", ".join(f"{k}={v}" for k, v in extra.items())
        for (setting, loss), g in runs.groupby(["setting", "loss"], sort=False):
            r = ref[(ref["setting"] == setting) & (ref["loss"] == loss)
                    & ref["seed"].isin(g["seed"])]
            acc = g.groupby("method")["test_accuracy"].mean()
            base = r.groupby("method")["test_accuracy"].mean()
            rows.append([variant, setting, loss] + [f"{acc[m]:.3f}" for m in ("pretrain",
                         "full")] + [f"{acc[m] - base[m]:+.3f}" for m in ("pretrain", "full")])
    text = para(
        "Fine-tuning the whole encoder at ``lr`` on mostly wrong labels can erode what a1 "
        "learned. Two variants of a2/b3, each run with ``bench_cifar10.py`` ("
        + " and ".join(commands) + ") and compared with the grid's cells of the same "
        "setting, loss and seed: a tenfold smaller ``encoder_lr`` (the pre-trained "
        "encoder's own learning rate; the head keeps ``lr``) and an encoder frozen "
        "throughout a2 and b3 (``warmup_epochs`` equal to ``max_epochs``).")
    digits = digits_paired("digits_tuning_frozen")
    digits_text = para(
        "The frozen encoder on digits: ``python benchmarks/bench_digits.py --modes pretrain "
        "full --params warmup_epochs=40 --name digits_tuning_frozen``, paired by seed with "
        "the default run (:ref:`bench-digits`), loss ``elr``.")
    notes = para(
        "Neither setting serves every noise level: on CIFAR-10 both help at symmetric 0.8 "
        "and cost accuracy on ``worse_label``, and the frozen encoder costs accuracy on "
        "digits, so the default fine-tunes the "
        "encoder at ``lr`` after a frozen warm-up, and ``encoder_lr`` is there for data "
        "where most labels are expected to be wrong.")
    return section("bench-tuning", "Fine-tuning variants", text,
                   table(["variant", "noise", "loss", "pretrain", "full",
                          "pretrain - grid", "full - grid"], rows,
                         "CIFAR-10, test accuracy and difference to the grid's cell"),
                   digits_text, digits, notes,
                   figure("digits_tuning_frozen.png", "Digits with the encoder frozen in a2 "
                          "and b3 (digits_tuning_frozen).", "digits, frozen encoder"),
                   *a2_regime_table(), *warmup_auto_table())


_AIRBENCH = "_airbench"
_SETTING_ORDER = ["sym0.2", "sym0.4", "sym0.6", "sym0.8", "asy0.4", "worse_label"]


def _a2_regime_runs():
    """The ``bench_cifar10.py --jobs pretrain`` runs of ``cifar10_tuning_<variant>_airbench``
    by ``(a1 epochs, whether the variant is the 5-epoch warm-up, variant name)``: a2's rows,
    indexed by setting."""
    columns = {}
    for path in sorted(RESULTS.glob(f"cifar10_tuning_*{_AIRBENCH}.csv")):
        runs = pd.read_csv(path)
        runs = runs[runs["method"] == "pretrain"]
        for a1, g in runs.groupby(runs["params"].map(
                lambda p: json.loads(p).get("pretrain_epochs"))):
            extra = {k: v for k, v in json.loads(g["params"].iloc[0]).items()
                     if k not in ("phases", "loss", "pretrain_epochs", "random_state")}
            name = ", ".join(f"{k}={v}" for k, v in extra.items())
            # The 5-epoch warm-up, which every other variant changes one thing of.
            columns[(int(a1), extra == {"warmup_epochs": 5}, name)] = g.set_index("setting")
    return columns


def a2_regime_table():
    """a2's regime with the default encoder: one column per variant and a1 length of
    :func:`_a2_regime_runs`, the 5-epoch warm-up first."""
    columns = _a2_regime_runs()
    if not columns:
        return []
    order = sorted(columns, key=lambda c: (-c[0], not c[1], c[2]))
    given = pd.concat(columns.values()).groupby(level=0)["given_accuracy"]
    given = given.first()
    rows = [[setting, f"{given[setting]:.3f}"]
            + [_num(columns[c]["test_accuracy"].get(setting), "{:.3f}") for c in order]
            for setting in _SETTING_ORDER if setting in given.index]
    header = ["labels", "given labels correct"] + [f"{name}, a1 {a1}" for a1, _, name in order]
    first = next(iter(columns.values())).iloc[0]
    return [para(
        "a2's regime with the default encoder "
        f"({first['encoder']}): ``python benchmarks/bench_cifar10.py --n-train "
        f"{int(first['n_train'])} --jobs pretrain --losses elr --seeds 0 --no-probe "
        "--no-cleanlab --pretrain-epochs <a1> --params <variant> --name "
        "cifar10_tuning_<variant>_airbench``, one a1 per length (cached), noise seed 0. "
        "``max_epochs=20`` stops a2 at half its default length; ``warmup_epochs=40`` keeps "
        "the encoder frozen throughout a2 (a linear head on a1's features), "
        "``warmup_epochs=20`` for its first half, a variant that names none for its first "
        "5 epochs; "
        "``encoder_lr=0.005`` fine-tunes the encoder at a quarter of the head's rate. "
        f"Machine: {_machine(pd.DataFrame([first]))}"),
        table(header, rows, "a2's test accuracy (``phases=\"pretrain\"``, ELR) per variant")]


def warmup_auto_table(name="cifar10_warmup_auto_airbench"):
    """``warmup_epochs="auto"`` on CIFAR-10: the noise estimate it decides by, the warm-up
    it chose, a2 beside a2 with the fixed warm-ups (``a2_regime_table``'s runs), and the
    default's phase b."""
    runs = _csv(name)
    if runs is None:
        return []
    regimes = _a2_regime_runs()
    fixed = {variant: regimes[key]["test_accuracy"]
             for variant, key in [("finetuned", (200, True, "warmup_epochs=5")),
                                  ("warmup20", (200, False, "warmup_epochs=20"))]
             if key in regimes}
    by = {m: g.set_index("setting") for m, g in runs.groupby("method")}
    rows = []
    for setting in _SETTING_ORDER:
        if setting not in by.get("pretrain", pd.DataFrame()).index:
            continue
        params = json.loads(by["pretrain"].loc[setting, "params"])
        rows.append([setting, f"{by['pretrain'].loc[setting, 'given_accuracy']:.3f}",
                     f"{params['noise_rate']:.2f}", str(params["warmup_epochs_"])]
                    + [_num(fixed.get(v, {}).get(setting), "{:.3f}")
                       for v in ("finetuned", "warmup20")]
                    + [f"{by[m].loc[setting, 'test_accuracy']:.3f}"
                       for m in ("pretrain", "full", "default")])
    first = runs.iloc[0]
    return [para(
        "``warmup_epochs=\"auto\"`` (the default) keeps a2's encoder frozen for half of "
        "``max_epochs`` where the share of wrong given labels that a1's features estimate "
        "(before a2; with ``noise_cv=None`` it is ``noise_rate_``) is at least 0.65, else for "
        f"5 epochs: ``python benchmarks/bench_cifar10.py --n-train {int(first['n_train'])} "
        "--jobs default --losses elr --seeds 0 --no-probe --no-cleanlab --pretrain-epochs 200 "
        f"--name {name}`` (one ``phases=\"full\"`` fit per setting, read as a2, b3 and the "
        "default's choice between them), the a2 columns with a fixed warm-up from the table "
        f"above. Machine: {_machine(runs)}"),
        table(["labels", "given labels correct", "estimated share wrong (a1 features)",
               "a2 warm-up epochs (auto)", "a2, warm-up 5", "a2, warm-up 20", "a2, auto",
               "full (paper's phase b)", "default"], rows,
              "Test accuracy, ELR, 4,000 CIFAR-10 images, noise seed 0")]


def digits_paired(name, reference="digits", loss="elr", methods=("pretrain", "full")):
    """A digits variant against the default run, paired by (setting, seed)."""
    ref, new = _csv(reference), _csv(name)
    ref = ref[ref["loss"] == loss]
    rows = []
    for method in methods:
        a = ref[ref["method"] == method].set_index(["setting", "seed"])["accuracy"]
        b = new[(new["method"] == method) & (new["loss"] == loss)].set_index(
            ["setting", "seed"])["accuracy"]
        d = (b - a).dropna()
        for setting in dict.fromkeys(d.index.get_level_values(0)):
            ds = d.loc[setting]
            rows.append([setting, method, f"{a.loc[setting].mean():.3f}",
                         f"{b.loc[setting].mean():.3f}",
                         f"{ds.mean():+.3f} ({(ds > 0).sum()}/{len(ds)})"])
    return table(["noise", "method", "default", "variant", "variant - default (wins/seeds)"],
                 rows, "Test accuracy, mean over seeds")


# ----------------------------------------------------------------------------- speed

def speed_section():
    cpu = {name: _csv(name) for name in ("speed_a1", "speed_layout", "speed_predict",
                                         "speed_scaling", "speed_memory", "speed_demo",
                                         "speed_fit4000")}
    machines = {_machine(d) for d in cpu.values() if d is not None}

    def where(df, lead=""):
        """The machine of one table, unless every CPU table shares the one said on top."""
        return "" if len(machines) == 1 else f"{lead}Machine: {_machine(df)}. "

    blocks = [para(
        "``python benchmarks/bench_speed.py`` (CSV files ``benchmarks/results/speed_*.csv``; "
        "``--sections`` picks the parts). Every ratio is measured side by side in one run, "
        "the variants trained round-robin so that a slow spell of a shared machine hits "
        "each alike. ``precision=\"auto\"`` (the default) trains in bf16 with "
        "``torch.autocast`` where the device computes bf16 natively, else fp32; weights, "
        "losses, similarity logits, ELR targets, GMMs and every eval-mode pass stay fp32. "
        "The built-in conv encoders run channels-last; uint8 images stay uint8 in host "
        "memory and become float on the device, per batch."
        + (f" Every CPU table below comes from one machine: {next(iter(machines))}."
           if len(machines) == 1 else ""))]
    a1 = _csv("speed_a1")
    env = a1.iloc[0]
    rows = []
    for _, r in a1.iterrows():
        rows.append([r["phase"], f"{r['images']} {r['shape']}", r["n"], r["precision"],
                     r["channels_last"], r["loop"], f"{r['sec_per_epoch']:.2f}",
                     f"{r['images_per_s']:.0f}", f"{r['speedup']:.2f}x"])
    blocks += [para(
        f"Phases a1 and a2 (``--sections a1``). {where(a1)}Seconds per epoch, "
        f"batch 128, median of {int(env['rounds'])} round-robin epochs; speed-up against "
        "the first row of each image size and phase (NCHW fp32). \"hand-written\" is a "
        "plain PyTorch loop over the same module, channels-last, one pass per view."),
        table(["phase", "images", "n", "precision", "channels-last", "loop",
               "s/epoch", "images/s", "speed-up"], rows)]
    summary = []
    for images in dict.fromkeys(a1["images"]):
        g = a1[(a1["images"] == images) & (a1["loop"] == "skorch") & a1["channels_last"]]
        for phase in ("a1", "a2"):
            h = g[g["phase"] == phase]
            t = h.set_index("precision")["sec_per_epoch"]
            if {"fp32", "bf16"} <= set(t.index):
                best = h[h["precision"] == "bf16"]["speedup"].iloc[0]
                summary.append(f"{phase} on {images}: bf16 {t['fp32'] / t['bf16']:.2f}x "
                               f"faster than fp32 (both channels-last), {best:.2f}x faster "
                               "than NCHW fp32")
    hand = a1[(a1["phase"] == "a1") & a1["channels_last"]]
    ratio = hand.pivot_table(index=["images", "precision"], columns="loop",
                             values="sec_per_epoch")
    if {"skorch", "hand-written"} <= set(ratio.columns):
        r = ratio["hand-written"] / ratio["skorch"]
        summary.append(f"skorch's loop runs at {_range(r)}x the speed of the hand-written "
                       "one")
    blocks.append(para("; ".join(summary) + "."))
    lay = _csv("speed_layout")
    if lay is not None:
        rows = [[r["phase"], f"{r['images']} {r['shape']}", r["precision"], r["layout"],
                 f"{r['sec_per_epoch']:.2f}", f"{r['speedup']:.2f}x",
                 r["same_weights_as_package_layout"]] for _, r in lay.iterrows()]
        pkg = lay[lay["layout"] == lay["layout"].iloc[0]]
        blocks += [para(
            f"The small CNN's pooled blocks (``--sections layout``). {where(lay)}"
            f"Channels-last, median of {int(lay['rounds'].iloc[0])} "
            f"round-robin epochs; speed-up against conv-BN-ReLU-pool with "
            "``adaptive_avg_pool2d``. The package computes conv-BN-pool-ReLU, the same "
            "function as conv-BN-ReLU-pool (ReLU and max-pooling commute, so one a1 epoch "
            "from the same start ends with the same weights) with the ReLU on a quarter of "
            "the values, and pools globally over the channels-last memory; it is "
            f"{_range(pkg[pkg['phase'] == 'a1']['speedup'])}x faster in a1 and "
            f"{_range(pkg[pkg['phase'] == 'a2']['speedup'])}x in a2. conv-pool-BN-ReLU "
            "normalises the pooled map, another function (different weights)."),
            table(["phase", "images", "precision", "layout", "s/epoch", "speed-up",
                   "same weights"], rows)]
    pred = _csv("speed_predict")
    if pred is not None:
        blocks += [para(f"``predict_proba`` throughput of a fitted small CNN on 32x32 RGB "
                        f"images (``--sections predict``). {where(pred)}"),
                   table(["batch", "ms per call", "images/s"],
                         [[r["batch"], f"{1000 * r['seconds_per_call']:.2f}",
                           f"{r['images_per_s']:.0f}"] for _, r in pred.iterrows()])]
    sc = _csv("speed_scaling")
    if sc is not None:
        r = sc.iloc[0]
        blocks += [para(f"a1 epoch time against the number of images "
                        f"({sc['precision'].iloc[0]}, ``--sections scaling``). "
                        f"{where(sc)}Least-squares fit: {r['intercept_s']:.2f} s + "
                        f"{r['slope_ms_per_image']:.3f} ms x n: an epoch is linear in n."),
                   table(["n", "s/epoch", "ms/image"],
                         [[x["n"], f"{x['sec_per_epoch']:.2f}", f"{x['ms_per_image']:.3f}"]
                          for _, x in sc.iterrows()])]
    mem = _csv("speed_memory")
    if mem is not None:
        r = mem.iloc[0]
        blocks.append(para(
            f"Peak memory (``--sections memory``): ``fit`` on {int(r['n']):,} uint8 images "
            f"({r['images']}, {r['uint8_mb']:.0f} MB) grows the process by "
            f"{r['peak_growth_mb']:.0f} MB = {r['growth_over_uint8']:.2f}x their uint8 size "
            f"(a float32 copy alone would be {r['float32_copy_mb']:.0f} MB); one epoch per "
            f"phase, {r['fit_seconds']:.0f} s. {where(mem)}"))
    demo = _csv("speed_demo")
    if demo is not None:
        blocks += [para(f"Wall time of the main job, ``python -m noisyclf`` (``--sections "
                        f"demo``), start-up included. {where(demo)}"),
                   table(["job", "precision", "wall (s)"],
                         [[f"``{r['job']}``", f"{r['precision']} ({r['resolved']})",
                           f"{r['wall_s']:.0f}"] for _, r in demo.iterrows()])]
    fit = _csv("speed_fit4000")
    if fit is not None:
        unknown = "a CPU not recorded"
        fit = fit.assign(cpu_label=fit["cpu_model"].fillna(unknown) if "cpu_model" in fit
                         else unknown)
        means = fit.groupby(["cpu_label", "layout"], sort=False)["wall_s"].mean()
        blocks += [para(
            f"A default-settings ``fit`` on 4,000 28x28 uint8 images (``--sections fit4000 "
            f"--layouts {' '.join(dict.fromkeys(fit['layout']))} --repeats "
            f"{int(fit['repeat'].max()) + 1}``; the layouts alternate; each CPU's rows come "
            f"from one run). {where(fit)}Mean wall time per CPU and layout: "
            + ", ".join(f"{layout} on {cpu} {v:.0f} s" for (cpu, layout), v in means.items())
            + "."),
            table(["CPU", "job", "precision", "SmallCNN layout", "repeat", "wall (s)"],
                  [[r["cpu_label"], r["job"], f"{r['precision']} ({r['resolved']})", r["layout"],
                    r["repeat"], f"{r['wall_s']:.0f}"] for _, r in fit.iterrows()])]
    gpu = _csv("speed_gpu")
    if gpu is not None:
        g0 = gpu.iloc[0]
        has_batch = "batch_size" in gpu
        blocks += [para(
            f"GPU (``bash benchmarks/gpu_check.sh``, ``--sections gpu``): {g0['gpu']}, torch "
            f"{g0['torch']}, the CIFAR ResNet-18's a1 epoch on {int(g0['n']):,} images "
            f"({g0['images']}), skorch against a hand-written loop. fp32, bf16 and fp16 run "
            "at about the same rate: at this size the step is bound by per-step overhead "
            "(kernel launches, per-sample augmentation), not arithmetic."),
            table((["batch"] if has_batch else []) + ["precision", "loop", "s/epoch",
                                                      "images/s", "vs fp32",
                                                      "skorch / hand-written"],
                  [([r["batch_size"]] if has_batch else [])
                   + [r["precision"], r["loop"], f"{r['sec_per_epoch']:.2f}",
                      f"{r['images_per_s']:.0f}", f"{r['vs_fp32']:.2f}x",
                      f"{r['skorch_over_hand']:.2f}"] for _, r in gpu.iterrows()])]
    return section("bench-speed", "Speed", *blocks)


# ----------------------------------------------------------------------------- scaling out

def scale_out_section():
    d = _csv("scale_out")
    r = d.iloc[0]
    text = para(
        f"``python benchmarks/bench_scale_out.py``: the same ``GridSearchCV`` (digits, "
        f"{int(r['n_candidates'])} candidates x {int(r['cv'])} folds = {int(r['n_fits'])} "
        f"fits, ``lr`` in {{{r['lr_grid'].replace(' ', ', ')}}} x ``loss`` in "
        f"{{{r['loss_grid'].replace(' ', ', ')}}}, ``phases=\"{r['phases']}\"``) "
        "sequentially and on 1 and 2 workers of dask.distributed and of Ray, each with an "
        "empty ``memory=`` folder. Concurrency is the fits' own time over the wall time; "
        "\"same scores\" compares ``cv_results_`` with the sequential search. Machine: "
        f"{_machine(d)}; 1-minute load average before the run {r['loadavg_1min_before']:.2f}. "
        "Recipes: :doc:`scaling_out_gridsearch`.")
    rows = [[x["setting"], f"{x['wall_s']:.2f}",
             f"{x['speedup']:.2f}" if pd.notna(x["speedup"]) else "",
             f"{x['speedup_vs_sequential']:.2f}", f"{x['mean_fit_s']:.3f}",
             f"{x['concurrency']:.2f}",
             f"{x['cores_used']:.2f}" if pd.notna(x["cores_used"]) else "",
             "yes" if x["identical"] else "no", int(x["a1_pretrainings"])]
            for _, x in d.iterrows()]
    return section("bench-scale-out", "Grid search across workers", text,
                   table(["setting", "wall (s)", "2 workers vs 1", "vs sequential",
                          "s per fit", "concurrency", "cores used", "same scores",
                          "a1 pre-trainings"], rows))


def streaming_section():
    d = _csv("streaming")
    r = d.iloc[0]
    sizes = sorted(d["n"].unique())
    text = para(
        f"``python benchmarks/bench_streaming.py``: folders of {int(r['source_size'])}x"
        f"{int(r['source_size'])} {r['format'].upper()} images (10 classes), "
        f"``image_size={int(r['image_size'])}``, one epoch per phase, the default CNN, each "
        "fit in a fresh process after a warm-up fit. \"in-memory\" is "
        f"``load_image_folder(root, image_size={int(r['image_size'])})`` then ``fit(X, y)`` "
        "(the same decoding and resizing); \"streamed\" is ``fit(ImageFolder(root))``. Peak "
        "growth is the peak resident memory of the process during load and fit minus its "
        "size before; images/s counts images of the folder turned into a fitted model per "
        "second, loading included; \"same model\" compares with the in-memory fit. "
        f"Machine: {_machine(d)}. Recipe: :doc:`scaling_out_streaming`.")
    rows = []
    for (mode, workers), g in d.groupby(["mode", "num_workers"], sort=False, dropna=False):
        g = g.set_index("n")
        rows.append([mode, "" if pd.isna(workers) else int(workers)]
                    + [f"{g.loc[n, 'peak_growth_mb']:.0f} MB" for n in sizes]
                    + [f"{g.loc[n, 'images_per_s']:.0f}" for n in sizes]
                    + ["" if mode == "in-memory" else
                       ("yes" if g["identical_to_in_memory"].all() else "no")])
    header = (["mode", "num_workers"] + [f"peak growth, {n:,} images" for n in sizes]
              + [f"images/s, {n:,}" for n in sizes] + ["same model as in-memory"])
    return section("bench-streaming", "Streaming a folder of images", text,
                   table(header, rows))


def checkpoint_section():
    cost, resume = _csv("checkpoint_cost"), _csv("checkpoint_resume")
    text = para(
        "``python benchmarks/bench_checkpoint.py``: what ``checkpoint_dir`` costs and saves. "
        "\"cost\": one save of a SimCLR (a1) net -- the skorch net pickled with torch's RNG "
        "state and written with fsync, as ``fit`` saves at the end of an epoch -- against "
        "one a1 epoch of the same net on 32x32 images, timed on a subset and scaled to "
        "50,000 images (an epoch's time is linear in the number of images, a save's is "
        "not). ``fit`` saves when the time since its last save is at least 50 times what "
        "that save took, so saving costs at most 2 % of the training time; the last "
        "column is what a save after every epoch of 50,000 images would cost. "
        f"Machine: {_machine(cost)}.")
    rows = [[r["encoder"], f"{int(r['n']):,} {r['images']}", r["precision"],
             f"{r['epoch_s']:.2f}", f"{r['epoch_s_50k']:.0f}", f"{r['save_s']:.3f}",
             f"{r['size_mb']:.0f}", f"{100 * r['save_over_epoch_50k']:.3f} %"]
            for _, r in cost.iterrows()]
    blocks = [text, table(["encoder", "timed images", "precision", "epoch (s)",
                           "epoch of 50,000 (s)", "save (s)", "file (MB)",
                           "save / epoch of 50,000"], rows)]
    r = resume.iloc[0]
    blocks += [para(
        f"\"resume\": a {r['schedule']}-settings fit on the {r['data']} (noisy labels, "
        "``random_state=0``) in a subprocess; then the same fit with ``checkpoint_dir``, "
        f"killed with SIGKILL at {r['kill_at']:.0%} of the first one's time and started "
        "again. Times include starting Python. "
        f"Machine: {_machine(resume)}."),
        table(["uninterrupted (s)", "started again (s)", "fraction", "files saved when killed",
               "same predictions"],
              [[f"{r['reference_wall_s']:.1f}", f"{r['resumed_wall_s']:.1f}",
                f"{r['resumed_over_reference']:.2f}", f"``{r['saved_files']}``",
                "yes" if r["same_predictions"] else "no"]])]
    return section("bench-checkpoint", "Checkpoints", *blocks)


# ----------------------------------------------------------------------------- encoders

def _encoder_choice(runs, colour):
    """Which cell is best within twice the small CNN's CPU time at the default a1 length,
    per training size, and what ``encoder="auto"`` picks."""
    from noisyclf import ContrastiveNoisyClassifier
    from noisyclf._phases import resolve_pretrain_epochs
    cells = runs.groupby(["n_train", "encoder", "pretrain_epochs"], as_index=False)[
        ["test_accuracy", "cpu_s"]].mean()
    sentences = []
    for n, g in cells.groupby("n_train"):
        epochs = resolve_pretrain_epochs(ContrastiveNoisyClassifier().pretrain_epochs,
                                         (3, 32, 32), n)
        ref = g[g["encoder"] == "cnn"]
        if ref.empty:
            continue
        # The small CNN at the default a1 length, else at the longest one measured.
        ref = ref.iloc[(ref["pretrain_epochs"] - epochs).abs().argmin()]
        within = g[g["cpu_s"] <= 2 * ref["cpu_s"]]
        best = within.loc[within["test_accuracy"].idxmax()]
        default = " the default" if ref["pretrain_epochs"] == epochs else ""
        sentences.append(
            f"On {n:,} images the small CNN with{default} {int(ref['pretrain_epochs'])} "
            "a1 epochs reaches "
            f"{ref['test_accuracy']:.3f} in {ref['cpu_s'] / 3600:.2f} CPU hours; within "
            f"twice that time the most accurate is ``{best['encoder']}`` with "
            f"{int(best['pretrain_epochs'])} a1 epochs, {best['test_accuracy']:.3f} in "
            f"{best['cpu_s'] / 3600:.2f} CPU hours "
            f"({best['test_accuracy'] - ref['test_accuracy']:+.3f}).")
    sentences.append(f"``encoder=\"auto\"`` picks ``{colour}`` (the ``airbench-half`` "
                     "configuration) for colour images and ``cnn`` for grey ones.")
    return para(" ".join(sentences))


def _a2_length(a2):
    """The ``a2`` section of bench_encoders: a2's length on clean and noisy labels, for
    each a1 length."""
    lengths = sorted(a2["max_epochs"].unique())
    rows = []
    for (labels, a1, seed), g in a2.groupby(["labels", "pretrain_epochs", "seed"], sort=False):
        g = g.set_index("max_epochs")
        row = [labels, str(int(seed)), str(int(a1)), f"{g['given_accuracy'].iloc[0]:.3f}"]
        for e in lengths:
            row += ([f"{g.loc[e, 'test_accuracy']:.3f}", f"{g.loc[e, 'flip_tta_accuracy']:.3f}"]
                    if e in g.index else ["–", "–"])
        rows.append(row)
    header = ["labels", "noise seed", "a1 epochs", "given labels correct"] + [
        h for e in lengths for h in (f"a2 for {e} epochs", f"{e} epochs, test-time flips")]
    first = a2.iloc[0]
    gain = a2["flip_tta_accuracy"] - a2["test_accuracy"]
    flips = para(
        f"Test-time flips (``tta=\"flip\"``) change the test accuracy by {gain.min():+.3f} to "
        f"{gain.max():+.3f} in these {len(a2)} fits (higher in {int((gain > 0).sum())}).")
    return [table(header, rows,
                  f"``--sections a2``: a2's length with the default encoder "
                  f"({_encoder(a2)}), ``phases=\"pretrain\"``, loss ``{first['loss']}``, "
                  f"{int(first['n_train']):,} CIFAR-10 images, one cached a1 per length "
                  "(the same a1 for every noise seed); test-time flips average the softmax "
                  f"of each test image and its mirror. Machine: {_machine(a2)}"), flips]


def _num(value, fmt):
    """``fmt`` of ``value``, a dash for a missing one."""
    return fmt.format(value) if value is not None and pd.notna(value) else "–"


def _encoder_speed(speed):
    """a1's speed of every candidate, one table per CPU (the ratios differ between CPUs
    with and without AMX), each candidate's time against the small CNN's on every CPU,
    and the ResNet-18's a1 time on each."""
    blocks, resnet, ratios = [], [], {}
    for cpu, g in speed.groupby("cpu_model", sort=False):
        sec = g.set_index("encoder")["sec_per_epoch"]
        ratios[cpu] = sec / sec["cnn"] if "cnn" in sec else sec * float("nan")
        if "resnet18" in sec:
            rate = g.set_index("encoder")["images_per_s"]["resnet18"]
            resnet.append(f"{rate:.0f} images/s and {50 * 4000 / rate / 60:.0f} minutes on {cpu}")
        rows = [[r["encoder"], f"{int(r['params']):,}", f"{r['fwd_mflops']:.0f}",
                 f"{r['images_per_s']:.0f}", _num(ratios[cpu][r["encoder"]], "{:.1f}"),
                 f"{r['a1_gflops']:.0f}", f"{100 * r['matmul_fraction']:.0f} %"]
                for _, r in g.iterrows()]
        blocks.append(table(
            ["encoder", "parameters", "forward MFLOPs / image", "a1 images / s",
             "a1 time vs cnn", "a1 GFLOP/s", "of the bf16 matmul rate"], rows,
            f"Speed of a1 on {cpu} (bf16, channels-last, {int(g['n'].iloc[0]):,} CIFAR-10 "
            f"images, median of {int(g['rounds'].iloc[0])} epochs after a warm-up; GFLOP/s "
            "counts two views, forward and backward as three forwards), beside this "
            f"machine's bf16 matmul rate of {g['matmul_gflops'].iloc[0]:.0f} GFLOP/s (a "
            f"2048 x 2048 product). Machine: {_machine(g)}"))
    lead = []
    if len(ratios) > 1:
        names = [n for n in dict.fromkeys(speed["encoder"]) if n != "cnn"]
        lead.append(para(
            "a1 time per epoch against the small CNN's on " + " / ".join(ratios) + ": "
            + ", ".join(f"``{n}`` " + " / ".join(_num(r.get(n), "{:.1f}")
                                                 for r in ratios.values()) for n in names)
            + "."))
    if resnet:
        lead.append(para("The ResNet-18's a1 alone, 50 epochs of 4,000 images: "
                         + "; ".join(resnet) + "."))
    return lead + blocks


def encoders_section():
    from noisyclf.modules import encoder_kind
    speed, runs, custom = _csv("encoders_speed"), _csv("encoders"), _csv("encoders_custom")
    if runs is None:
        return ""
    colour = encoder_kind("auto", (3, 32, 32))
    blocks = [para(
        "``python benchmarks/bench_encoders.py``: candidate encoders for colour images, each "
        "with the same a1/a2 recipe (the default hyperparameters with ``phases=\"pretrain\"``, "
        "``loss=\"ce\"``, clean labels, ``random_state=0``), test accuracy on the 10,000 "
        "CIFAR-10 test images against the CPU time of the fit. ``cnn``, ``cnn2x``, "
        "``cnn4x``: :class:`~noisyclf.modules.SmallCNN` with widths (32, 64, 128) and twice "
        "and four times those; ``airbench``: :class:`~noisyclf.modules.AirbenchCNN` with "
        "airbench94's widths (64, 256, 256); ``airbench-half``: widths (32, 128, 128); "
        "``resnet18``: the paper's CIFAR ResNet-18, timed only. "
        f"Machine: {_machine(runs)}.")]
    if speed is not None:
        blocks += _encoder_speed(speed)
    rows = []
    for (n, epochs, name), g in runs.groupby(["n_train", "pretrain_epochs", "encoder"],
                                             sort=True):
        rows.append([f"{n:,}", name, int(epochs), _cell(g["test_accuracy"]),
                     f"{g['cpu_s'].mean() / 3600:.2f}", f"{g['wall_s'].mean() / 60:.1f}",
                     f"{g['a1_s'].mean() / g['wall_s'].mean():.0%}"])
    blocks.append(table(["training images", "encoder", "a1 epochs", "test accuracy",
                         "CPU hours", "wall minutes", "a1's share"], rows,
                        "Clean-label accuracy after a1 + a2 (40 epochs)"))
    blocks.append(figure("encoders.png", "Test accuracy against CPU time of the fit; each "
                         "line joins one encoder's a1 lengths (epochs beside the points).",
                         "accuracy of each encoder against CPU hours"))
    blocks.append(_encoder_choice(runs, colour))
    a2 = _csv("encoders_a2")
    if a2 is not None:
        blocks += _a2_length(a2)
    check = _csv("cifar10_default_check")
    if check is not None:
        first = check.iloc[0]
        rows = [[r["method"], f"{r['test_accuracy']:.3f}",
                 f"{r['pseudo_accuracy']:.3f}" if pd.notna(r["pseudo_accuracy"]) else "–",
                 f"{r['wall_s'] / 60:.1f}"] for _, r in check.iterrows()]
        blocks.append(table(
            ["phases", "test accuracy", "pseudo-labels correct", "wall minutes"], rows,
            f"Default fits with the chosen encoder (``{first['encoder']}``): "
            f"{int(first['n_train']):,} CIFAR-10 training images (a subset and a noise draw "
            f"used nowhere else, ``benchmarks/bench_cifar10.py --n-train "
            f"{int(first['n_train'])} --subset-seed 11 --seeds 11 --settings sym0.6 --jobs "
            "default baseline --pretrain-epochs auto``), "
            f"{first['actual_noise']:.0%} of the labels flipped symmetrically, "
            "``loss=\"elr\"``, default hyperparameters; ``pretrain``, ``full`` and "
            "``default`` are one ``phases=\"full\"`` fit read as a2, b3 and the default's "
            "choice between them, ``baseline`` a fit of its own; wall time of each fit "
            f"(a1 included) on CPU {first['cpu_model']}, {int(first['torch_threads'])} torch "
            "thread(s)"))
    if custom is not None:
        rows = [[r["cpu_model"], r["module"], r["variant"],
                 "yes" if r["channels_last"] else "no",
                 f"{r['images_per_s']:.0f}", f"{r['time_vs_channels_last']:.2f}"]
                for _, r in custom.iterrows()]
        blocks.append(table(
            ["CPU", "module", "forward", "ran channels-last", "a1 images / s",
             "time vs channels-last"], rows,
            "A user's own encoder passed as ``encoder=``: the module as it is runs "
            "channels-last (the estimator's dry run finds the same features in both "
            "layouts); the same module behind a ``.view()`` of its input runs as it is. "
            f"a1, bf16, {int(custom['n'].iloc[0]):,} CIFAR-10 images, "
            f"{int(custom['torch_threads'].iloc[0])} torch threads"))
    return section("bench-encoders", "Encoders for colour images", *blocks)


# ----------------------------------------------------------------------------- outputs

HEADER = """\
.. This page is written by ``python benchmarks/report.py`` from the CSV files in
   benchmarks/results/; edit the script, not this page.

.. _benchmarks:

Benchmark results
=================

Every table and figure on this page comes from a file in ``benchmarks/results/``,
written by the benchmark script named in its section; ``python benchmarks/report.py``
turns the CSV files into this page.  Each CSV row records its settings and library
versions.  Accuracy is always measured on clean test labels; the models are trained on
noisy labels only.  Unless a section says otherwise, the runs are on CPU at a scale that
fits a two-core machine (the paper trains a ResNet-18 for 200 epochs on GPUs).

.. contents::
   :local:
   :depth: 1
"""


def render_page():
    sections = [digits_section(), losses_section(), precision_section(), phase_b_section(),
                bootstrap_section(), tabular_section(), lr_section(), memory_section(),
                cifar10_section(), tuning_section(), encoders_section(), auto_mode_section(),
                unlabeled_section(), cifar10_50k_section(),
                speed_section(), checkpoint_section(),
                scale_out_section(), streaming_section()]
    return HEADER + "\n" + "\n".join(s for s in sections if s)


HEADLINE_MODES = MODES + ["auto"]  # "auto" is the default mode


def _headline_cifar10n():
    """CIFAR-10N rows of the headline (baseline, pretrain, full, default) and their
    caption: the default-mode grid with the default encoder where it has run, with the
    baseline fits of ``bench_auto_mode.py --baseline``; else the small-CNN grid."""
    grid = _csv("auto_mode_cifar10_analysis")
    if grid is not None:
        runs = grid[(grid["loss"] == "elr") & grid["setting"].isin(CIFAR10N)]
        base = _csv("auto_mode_cifar10_baseline")
        base = (base[base["loss"] == "elr"].set_index("setting")["baseline_accuracy"]
                if base is not None else pd.Series(dtype=float))
        rows = []
        for setting in CIFAR10N:
            g = runs[runs["setting"] == setting]
            if len(g):
                rows.append(["CIFAR-10N", f"{setting} ({1 - g['given_accuracy'].mean():.0%} wrong)",
                             _cell(base.reindex([setting])),
                             *(_cell(g[f"{m}_accuracy"]) for m in ("pretrain", "full", "auto"))])
        if rows:
            first = runs.iloc[0]
            return rows, (f"CIFAR-10N: {int(first['n_train']):,} training images with the human "
                          f"labels of CIFAR-10N, the full {int(first['n_test']):,}-image test set, "
                          f"the default encoder, {_encoder(runs, '`')}, one run.")
    runs = _csv("cifar10")
    fw = runs[runs["method"].isin(MODES) & (runs["loss"] == "elr")]
    rows = []
    for setting in CIFAR10N:
        g = fw[fw["setting"] == setting]
        if len(g):
            rows.append(["CIFAR-10N", f"{setting} ({g['actual_noise'].mean():.0%} wrong)"]
                        + [_cell(g[g["method"] == m]["test_accuracy"]) for m in MODES] + ["–"])
    first = runs.iloc[0]
    return rows, (f"CIFAR-10N: {int(first['n_train']):,} training images with the human labels "
                  f"of CIFAR-10N, the full {int(first['n_test']):,}-image test set, "
                  f"{_encoder(runs, '`')} with `pretrain_epochs={_pretrain_epochs(runs)}`, "
                  "one run.")


def render_headline():
    """The README's one table: the modes and the default mode with the default loss, digits
    and CIFAR-10N."""
    s = pd.read_csv(RESULTS / "digits_summary.csv")
    s = s[(s["loss"] == "elr") & s["method"].isin(HEADLINE_MODES)]
    n = int(s["n_seeds"].max())
    rows = []
    for setting, g in s.groupby("setting", sort=False):
        g = g.set_index("method")
        rows.append(["digits", setting] + [
            _pm(g.loc[m, "accuracy_mean"], g.loc[m, "accuracy_std"]) if m in g.index else "–"
            for m in HEADLINE_MODES])
    cifar_rows, cifar_text = _headline_cifar10n()
    lines = [para(f"Test accuracy on clean labels, loss `elr` (the default); \"default\" is "
                  f"the default mode (`phases=\"auto\"`: the paper's phase b where the "
                  f"pseudo-labels are expected to beat the given labels, else pretrain). "
                  f"Digits: scikit-learn's 8x8 digits, 70/30 split, default hyperparameters, "
                  f"mean ± std over {n} seeds. {cifar_text}"), "",
             "| data | labels | baseline | pretrain | full | default |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows + cifar_rows]
    return "\n".join(lines)


def render_demo_output():
    """The demo's output as ``bench_demo.py`` saved it, and the machine it ran on."""
    output = (RESULTS / "demo_output.txt").read_text(encoding="utf-8")
    runs = pd.read_csv(RESULTS / "demo.csv")
    return "\n".join([f"On {_machine(runs).split(';')[0]} ({int(runs['cpu_count'].iloc[0])} "
                      "logical CPUs), as `python benchmarks/bench_demo.py` saved it:", "",
                      "```", output.rstrip("\n"), "```"])


def render_readme(text):
    """``text`` (the README) with the blocks between the markers replaced: the headline
    table and the demo's output."""
    for begin, end, render in [(BEGIN, END, render_headline),
                               (DEMO_BEGIN, DEMO_END, render_demo_output)]:
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no block between {begin!r} and {end!r}")
        text = pattern.sub(lambda _: f"{begin}\n{render()}\n{end}", text, count=1)
    return text


def outputs():
    """{path: text} of everything this script writes."""
    return {PAGE: render_page(),
            README: render_readme(README.read_text(encoding="utf-8"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file differs from what it would be")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
