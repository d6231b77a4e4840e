"""The main job: the framework on sklearn's digits with noisy labels (``python -m noisyclf``).

Splits the embedded digits data 70/30, corrupts the training labels with
symmetric noise (0.2, 0.4, 0.6, 0.8) and one asymmetric setting, and compares,
on the clean test labels, kNN and logistic regression trained on the same
noisy labels with the modes of :class:`ContrastiveNoisyClassifier`:
``baseline`` (a2 from scratch), ``pretrain`` (a1 + a2), the paper's ``full``
(a1 + a2 + b1-b3) and the default ``auto``.  ``auto`` runs phase b only
where it expects the pseudo-labels to beat the given labels, and then
predicts exactly as ``full`` does, else exactly as ``pretrain`` (every phase
is seeded on its own); its column is therefore the ``full`` or the
``pretrain`` fit, as the decision that the ``full`` fit records in
``phase_b_decision_`` picks, rather than a fourth fit.  It also reports how
well ``label_issues_`` find the flipped labels (precision / recall), the ROC
AUC of ``label_quality_`` for given-label correctness, and the ROC AUC of
``sample_weights_`` (b1's GMM) for pseudo-label correctness.

SimCLR pre-training (a1) is label-free, so it runs once and is reused through
``memory`` by every noise setting and mode.  The other fits are independent
and run on ``--jobs`` worker processes of one torch thread each (8x8 images
make tiny tensor operations, for which two single-threaded processes do far
more work than one process with two threads); every fit is seeded, so the
results do not depend on ``--jobs``.  To finish in well under a minute on two
CPU cores the demo shortens the schedule (:data:`DEMO_PARAMS`); ``--defaults``
runs the estimator's default hyperparameters instead, as
``benchmarks/bench_digits.py`` does over several seeds.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .estimator import ContrastiveNoisyClassifier
from .noise import make_noisy_labels

SETTINGS = [("symmetric", 0.2), ("symmetric", 0.4), ("symmetric", 0.6),
            ("symmetric", 0.8), ("asymmetric", 0.4)]
MODES = ["baseline", "pretrain", "full"]
#: The demo's shortened schedule (the estimator's defaults are 100 / 40 / 20 epochs).
DEMO_PARAMS = dict(pretrain_epochs=50, max_epochs=20, finetune_epochs=10)


def _fit_one(mode, loss, X_tr, y_noisy, y_tr, X_te, y_te, *, memory, random_state, verbose,
             params, threads):
    """One framework fit and its row (runs in a worker process when ``n_jobs > 1``)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        clf = ContrastiveNoisyClassifier(
            phases=mode, loss=loss, image_shape=(1, 8, 8), memory=memory,
            random_state=random_state, verbose=verbose, **(params or {}))
        clf.fit(X_tr, y_noisy)
        acc = clf.score(X_te, y_te)
    finally:
        torch.set_num_threads(previous)
    flipped = y_noisy != y_tr
    issues = clf.label_issues_
    pseudo_wrong = clf.pseudo_labels_ != y_tr
    return dict(
        method=mode, accuracy=acc,
        precision=precision_score(flipped, issues, zero_division=0.0),
        recall=recall_score(flipped, issues, zero_division=0.0),
        auc=roc_auc_score(flipped, 1 - clf.label_quality_),
        pseudo_accuracy=1.0 - pseudo_wrong.mean(),
        auc_pseudo=(roc_auc_score(pseudo_wrong, 1 - clf.sample_weights_)
                    if 0 < pseudo_wrong.sum() < len(pseudo_wrong) else np.nan),
        seconds=time.perf_counter() - start,
        auto_runs_phase_b=clf.phase_b_decision_["auto_runs_phase_b"],
    )


def run(settings=SETTINGS, modes=MODES, *, loss="elr", random_state=0, verbose=0,
        memory=None, params=None, n_jobs=1, out=sys.stdout):
    """Run the digits comparison and return its rows as a list of dicts.

    Parameters
    ----------
    settings : list of (noise_type, noise_rate)
    modes : list of {"baseline", "pretrain", "full"}
        With both "pretrain" and "full", an "auto" row follows each "full" row.
    loss : {"elr", "nfl+rce", "ce"}
    random_state : int
        Seeds the split, the noise and every model.
    verbose : int
        Passed to the estimators.
    memory : joblib.Memory, str or None
        Cache for SimCLR pre-training; a temporary folder when None.
    params : dict or None
        Extra hyperparameters for every :class:`ContrastiveNoisyClassifier`.
    n_jobs : int, default=1
        Worker processes for the fits (joblib), one torch thread each; the
        first fit that pre-trains runs beside the baselines (which need no
        a1), before the other fits, so that they find a1 in ``memory``.
        ``verbose > 0`` runs everything in this process.
    out : file-like
        Where progress lines go.

    Returns
    -------
    rows : list of dict
        One per (setting, method) with ``accuracy`` and, for the framework,
        ``precision`` and ``recall`` of ``label_issues_`` at finding the
        flipped labels, ``auc`` (ROC AUC of ``1 - label_quality_`` for them),
        ``pseudo_accuracy`` (pseudo-labels against the true labels) and
        ``auc_pseudo`` (ROC AUC of ``1 - sample_weights_`` for wrong
        pseudo-labels; NaN when all pseudo-labels are right).
    """
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=random_state)
    tmp = None
    if memory is None:
        tmp = tempfile.TemporaryDirectory(prefix="noisyclf-demo-")
        memory = tmp.name
    rows = []
    try:
        jobs = []
        for noise_type, rate in settings:
            y_noisy = make_noisy_labels(y_tr, noise_type, rate, random_state=random_state)
            setting = f"{noise_type[:4]} {rate:.1f}"
            for name, model in [
                ("kNN", KNeighborsClassifier(n_neighbors=10)),
                ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
            ]:
                acc = model.fit(X_tr, y_noisy).score(X_te, y_te)
                rows.append(dict(setting=setting, method=name, accuracy=acc))
            for mode in modes:
                rows.append(dict(setting=setting, method=mode))  # filled in below
                jobs.append((len(rows) - 1, delayed(_fit_one)(
                    mode, loss, X_tr, y_noisy, y_tr, X_te, y_te, memory=memory,
                    random_state=random_state, verbose=verbose, params=params,
                    threads=None if n_jobs == 1 else 1)))

        def report(i, row):
            rows[i].update(row)
            print(f"  {rows[i]['setting']:10s} {rows[i]['method']:8s} accuracy "
                  f"{row['accuracy']:.3f} ({row['seconds']:.1f} s)", file=out, flush=True)

        if n_jobs == 1 or verbose:
            for i, job in jobs:
                report(i, _call(job))
        else:
            # a1 is label-free and cached: the first fit that needs it pre-trains
            # while the baselines (no a1) run beside it; then the other fits fan
            # out and find a1 in memory.
            first = next((k for k, (i, _) in enumerate(jobs)
                          if rows[i]["method"] != "baseline"), 0)
            stage1 = [jobs[first]] + [(i, job) for k, (i, job) in enumerate(jobs)
                                      if k != first and rows[i]["method"] == "baseline"]
            taken = {i for i, _ in stage1}
            stage2 = [(i, job) for i, job in jobs if i not in taken]
            with Parallel(n_jobs=n_jobs, return_as="generator") as parallel:
                for stage in (stage1, stage2):
                    for k, row in enumerate(parallel(job for _, job in stage)):
                        report(stage[k][0], row)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return _with_auto(rows)


def _with_auto(rows):
    """Add an ``auto`` row per setting: the ``full`` or the ``pretrain`` row, as the
    decision recorded by the ``full`` fit picks (``auto`` predicts exactly as that fit)."""
    out = []
    by_key = {(r["setting"], r["method"]): r for r in rows}
    for r in rows:
        out.append(r)
        full, pretrain = by_key.get((r["setting"], "full")), by_key.get((r["setting"], "pretrain"))
        if r is full and pretrain is not None:
            chosen = full if full["auto_runs_phase_b"] else pretrain
            out.append(dict(chosen, method="auto", seconds=np.nan))
    return out


def _call(job):
    func, args, kwargs = job
    return func(*args, **kwargs)


def format_table(rows):
    """Markdown tables: accuracy per method, then the GMM's label-issue detection."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    acc = {(r["setting"], r["method"]): r["accuracy"] for r in rows}
    lines = ["Test accuracy on clean labels (digits, 70/30 split, noisy training labels)", "",
             "| noise | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for s in settings:
        lines.append(f"| {s} | " + " | ".join(f"{acc[(s, m)]:.3f}" for m in methods) + " |")
    lines += ["", "Full framework: label_issues_ against the flipped given labels, and b1's",
              "sample_weights_ against wrong pseudo-labels", "",
              "| noise | precision | recall | ROC AUC (given) | pseudo-label acc. "
              "| ROC AUC (pseudo) | auto: phase b |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] == "full":
            lines.append(f"| {r['setting']} | {r['precision']:.3f} | {r['recall']:.3f} "
                         f"| {r['auc']:.3f} | {r['pseudo_accuracy']:.3f} "
                         f"| {r['auc_pseudo']:.3f} "
                         f"| {'ran' if r['auto_runs_phase_b'] else 'skipped'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m noisyclf", description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="elr", choices=["elr", "nfl+rce", "ce"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--defaults", action="store_true",
                        help="use the estimator's default epochs instead of the demo's "
                             "shorter ones")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while the demo runs (default 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes for the fits, one torch thread each "
                             "(default: 2, or 1 on a one-core machine)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="the estimator's precision (default auto)")
    parser.add_argument("--quick", action="store_true",
                        help="one noise setting, a tiny schedule (a smoke test)")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    params = dict({} if args.defaults else DEMO_PARAMS, precision=args.precision)
    settings = SETTINGS
    if args.quick:
        params.update(pretrain_epochs=2, max_epochs=2, finetune_epochs=1, gmm_epochs=1,
                      warmup_epochs=1)
        settings = SETTINGS[1:2]
    print(f"noisyclf demo: sklearn digits (70/30 split), loss={args.loss}, seed={args.seed}, "
          f"image_shape=(1, 8, 8), {params or 'default hyperparameters'}", flush=True)
    start = time.perf_counter()
    # 8x8 images make tiny tensor operations: one thread beats several on a
    # small machine (and is far faster when other processes share the cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        rows = run(settings=settings, loss=args.loss, random_state=args.seed,
                   verbose=args.verbose, params=params, n_jobs=args.jobs)
    finally:
        torch.set_num_threads(threads)
    print()
    print(format_table(rows))
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s")
    if args.csv:
        import csv
        keys = ["setting", "method", "accuracy", "precision", "recall", "auc",
                "pseudo_accuracy", "auc_pseudo", "seconds"]
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: r.get(k, "") for k in keys})
    return rows


if __name__ == "__main__":
    main()
