"""CIFAR-10 at the paper's size: all 50,000 training images, the estimator's defaults.

One ``bench_cifar10.py`` process per step, one worker on both cores.  Many
hours on 2 cores: run it in the background from a tree you do not edit; every
finished cell is appended to ``<out>/cifar10_n50000.csv``, every fit is
checkpointed, and a rerun resumes where the last one stopped (inside the fit it
was in).  After a1 the most informative cells come first: the claims at symmetric 0.8
and on ``worse_label``, then the others.  a1 is cached where
``bench_unlabeled.py`` caches it for the same 50,000 images, so the two
benchmarks pre-train once.  :func:`steps` is the plan; ``report.py`` counts the
finished cells against :func:`planned_cells`.

a1 on 50,000 images takes one and a half hours on 2 cores, so it runs first
(the probe step: a1, a2 on the clean labels, the logistic-regression probes) and
can outlive the machine: with ``--a1-store FILE`` (a tar file) the script
extracts ``FILE`` into the a1 cache before the steps (a1 is then loaded, not
trained) and writes the a1 cache to ``FILE`` after each step that added to it.
Commit ``FILE`` and a fresh machine skips a1.  joblib keys the cache on the
images, the a1 hyperparameters and the source of
``noisyclf._phases.run_simclr``: when that source changes, a1 runs again (a
change in the code it calls does not show: the store holds the a1 of the commit
that made it).

Usage::

    python benchmarks/cifar10_50k.py [bench_cifar10.py options, e.g. --out DIR --data FILE]
    python benchmarks/cifar10_50k.py --a1-store benchmarks/a1_store/cifar10_n50000_s0.tar
    python benchmarks/cifar10_50k.py --dry-run     # print the steps

Environment: ``CACHE`` (default ``.noisyclf_cache``; ``bench_unlabeled.py``'s
``--cache``, to share its a1), ``THREADS`` (default 2).  A failed step is
reported and the grid goes on (a rerun tries it again); the exit status is 1
when a step failed.
"""

import os
import subprocess
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from _common import restore_cache, store_cache  # noqa: E402

#: Label settings, in the order their cells run.
SETTINGS = ("sym0.8", "worse_label", "sym0.5", "asy0.4", "aggre_label", "random_label1",
            "sym0.2")
#: Where the targets name cleanlab's CleanLearning (on the CE network: 3-fold
#: cross-validation, then a refit; about four CE fits).
CLEANLAB_SETTINGS = ("worse_label", "sym0.5")
#: Where the paper's claims are sharpest: NFL+RCE beside ELR.
NFL_RCE_SETTINGS = ("sym0.8", "worse_label")


def steps():
    """The ``bench_cifar10.py`` arguments of each step, in order."""
    def fit(*args):
        return ["--no-probe", *args]
    # a1's probes and the clean ceiling: a1 first, so that it is cached (and stored) early.
    out = [["--probe-only", "--settings", *SETTINGS]]
    for setting in SETTINGS:
        # The default (ELR; its pretrain and full columns come from the same fit) and CE
        # from scratch.
        out.append(fit("--settings", setting, "--losses", "elr", "--jobs", "default",
                       "--no-cleanlab"))
        out.append(fit("--settings", setting, "--losses", "ce", "--jobs", "baseline",
                       "--no-cleanlab"))
        if setting in CLEANLAB_SETTINGS:
            out.append(fit("--settings", setting, "--jobs", "cleanlab",
                           "--cleanlab-settings", setting))
    out.append(fit("--settings", *NFL_RCE_SETTINGS, "--losses", "nfl+rce", "--jobs",
                   "default", "--no-cleanlab"))
    # Symmetric 0.4 with every label, beside bench_unlabeled.py's 4,000 labels + 46,000
    # unlabeled images.
    out.append(fit("--settings", "sym0.4", "--losses", "elr", "--jobs", "default",
                   "--no-cleanlab"))
    return out


def common_arguments(cache=None):
    """The arguments every step shares: 50,000 images, the estimator's default a1 length
    for them, as a number (``bench_unlabeled.py`` uses the defaults: the same a1 key),
    the shared a1 cache (``cache``, else ``CACHE``) and the fits' checkpoints."""
    from noisyclf import ContrastiveNoisyClassifier
    from noisyclf._phases import resolve_pretrain_epochs
    cache = cache_root(cache)
    epochs = resolve_pretrain_epochs(ContrastiveNoisyClassifier().pretrain_epochs,
                                     (3, 32, 32), 50000)
    return ["--n-train", "50000", "--pretrain-epochs", str(epochs),
            "--workers", "1", "--threads", os.environ.get("THREADS", "2"),
            "--name", "cifar10_n50000",
            "--cache", cache, "--a1-cache", a1_cache(cache),
            "--checkpoint-dir", f"{cache}/checkpoints_cifar10_n50000"]


def planned_cells():
    """``(setting, loss, method)`` of every row the steps write (the probes' aside), as
    ``bench_cifar10.py`` names them."""
    import bench_cifar10
    methods = {"default": "default", "baseline": "baseline",
               "cleanlab": bench_cifar10.CLEANLAB_METHOD}
    cells = []
    for step in steps():
        args = bench_cifar10.parse(common_arguments(cache="/cache") + step)
        cells += [(bench_cifar10.setting_name(kind, value), loss, methods[job])
                  for kind, value, loss, job, _ in bench_cifar10.cells(args) if job != "probe"]
    return cells


def cache_root(cache=None):
    """``cache``, else the ``CACHE`` environment variable, else ``.noisyclf_cache``."""
    return cache or os.environ.get("CACHE", ".noisyclf_cache")


def a1_cache(cache=None):
    """The a1 cache folder of the 50,000 images (``bench_unlabeled.py``'s too)."""
    return f"{cache_root(cache)}/a1/cifar10_n50000_s0"


def _pop_option(argv, name):
    """``argv`` without ``name VALUE``, and the value (None when absent)."""
    if name not in argv:
        return argv, None
    i = argv.index(name)
    if i + 1 >= len(argv):
        raise SystemExit(f"cifar10_50k.py: {name} needs a file")
    return argv[:i] + argv[i + 2:], argv[i + 1]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    dry_run = "--dry-run" in argv
    extra, store = _pop_option([a for a in argv if a != "--dry-run"], "--a1-store")
    common = [sys.executable, str(_HERE / "bench_cifar10.py"), *common_arguments(), *extra]
    if store is not None and not dry_run:
        print(f"cifar10_50k.py: {restore_cache(store, a1_cache())} a1 cache files from {store}",
              flush=True)
    failed = []
    for step in steps():
        command = common + step
        if dry_run:
            print(subprocess.list2cmdline(command[1:]))
            continue
        if subprocess.run(command, env=dict(os.environ, PYTHONUNBUFFERED="1")).returncode:
            print(f"cifar10_50k.py: FAILED: {subprocess.list2cmdline(step)}", file=sys.stderr)
            failed.append(step)
        if store is not None and store_cache(a1_cache(), store):
            print(f"cifar10_50k.py: a1 cache stored in {store}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
