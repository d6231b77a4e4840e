"""Speed-up of a grid search on 2 workers of dask.distributed or Ray against 1 worker.

The same ``GridSearchCV`` (digits, a grid over ``lr`` and ``loss``, which
leave the label-free a1 pre-training unchanged) runs five times, each with
a fresh, empty ``memory=`` folder that every worker reads and writes:

``sequential``
    ``n_jobs=1`` in this process (one torch thread): the reference scores.
``dask, 1 worker``
    the whole search as one task on a worker of a
    ``LocalCluster(n_workers=2, threads_per_worker=1)``, the other idle.
    (joblib runs ``GridSearchCV`` under the dask backend of a cluster with a
    single worker thread in this process, as ``n_jobs=1``: a search on one
    worker is timed as one task instead.)
``dask, 2 workers``
    ``GridSearchCV(n_jobs=2)`` under ``joblib.parallel_config(backend="dask")``
    on that cluster: the fits spread over both workers.
``ray, 1 worker`` / ``ray, 2 workers``
    the same on a local Ray instance of 2 CPUs: the whole search as one Ray
    task of one CPU, then ``GridSearchCV(n_jobs=2)`` under Ray's joblib
    backend (``ray.util.joblib.register_ray``), whose actor pool starts
    anew, and imports torch, for every search.

Every fit runs on one torch thread (what the engines give a task, and
what ``fit`` caps torch at in a dask or Ray task); ``worker_torch_threads``
is the thread count seen inside a ``fit`` run as a task of the engine.
``speedup`` is the wall time of the engine's
1-worker search over its 2-worker one (``speedup_vs_sequential`` against
the first row), measured side by side in one run; ``identical`` says the
CV scores equal the sequential ones; ``a1_pretrainings`` counts the results
stored in the ``memory=`` folder, which caches a1 only (one per fold, not one per
candidate and fold; ``refit=False``, so no refit on the whole set).  A
pre-training repeated concurrently on two workers would store the same
result twice under one name and count once: with no more workers than
folds, as here, the first candidate's pre-training of a fold has finished
before another candidate reaches that fold (``tests/test_scale_out.py``
counts the pre-trainings that ran, through an encoder that logs them).
``mean_fit_s`` is GridSearchCV's own fit + score time per fit, and
``concurrency`` the sum of those times over the wall time: about 2 when
both workers were busy throughout.  ``cpu_s`` is the CPU time this process
and the dask workers used during the search (empty for Ray, whose pool
actors exit with the search), ``cores_used`` that over the wall time: a
2-worker search with a concurrency of about 2 but about 1 core used ran
its two workers on one free core's worth of CPU.  The machine's 1-minute load average before and
after each search is in the row: on a machine shared with other jobs the
2-worker speed-up is depressed.

Run ``python benchmarks/bench_scale_out.py`` (about 3 minutes on 2 CPU cores);
``--quick`` runs a tiny configuration for smoke tests; ``--engines dask``
leaves Ray out.  Needs ``pip install -e ".[scale]"``.  Writes
``scale_out.csv`` to ``benchmarks/results/`` (or ``--out``).
"""

import builtins
import os
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from torch import nn

from noisyclf import ContrastiveNoisyClassifier

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    environment, epochs_label, make_parser, parse_args, run_main, write_csv,
)
from bench_lr_sensitivity import _split  # noqa: E402

FULL = dict(lrs=[0.01, 0.03, 0.1], losses=["ce", "elr"], cv=3, n_train=None, noise_rate=0.4,
            pretrain_epochs=10, max_epochs=10, warmup_epochs=2)
QUICK = dict(lrs=[0.02, 0.05], losses=["elr"], cv=2, n_train=150, noise_rate=0.4,
             pretrain_epochs=1, max_epochs=1, warmup_epochs=0)
ENGINES = ("dask", "ray")

COLUMNS = ["setting", "engine", "workers", "wall_s", "speedup", "speedup_vs_sequential",
           "identical", "a1_pretrainings", "n_fits", "n_candidates", "cv", "best_cv_score",
           "mean_fit_s", "concurrency", "cpu_s", "cores_used",
           "worker_torch_threads", "loadavg_1min_before", "loadavg_1min_after",
           "dataset", "n_train", "noise", "lr_grid", "loss_grid", "phases",
           "pretrain_epochs", "max_epochs", "warmup_epochs", "batch_size", "random_state",
           "torch_threads", "openmp_threads", "cpu_count", "python", "torch", "sklearn",
           "noisyclf", "joblib", "dask", "distributed", "ray"]


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return float("nan")


def _versions(engines):
    out = {"joblib": joblib.__version__}
    if "dask" in engines:
        import dask
        import distributed
        out.update(dask=dask.__version__, distributed=distributed.__version__)
    if "ray" in engines:
        import ray
        out["ray"] = ray.__version__
    return out


def _a1_pretrainings(location):
    """Results joblib.Memory stored under ``location`` (one per distinct call): the
    estimator's ``memory=`` caches the a1 pre-training only."""
    return len(list(Path(location).glob("joblib/**/output.pkl")))


class ThreadLog(nn.Module):
    """A tiny 8x8-image encoder that notes torch's thread count in every forward pass."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.threads = set()

    def forward(self, x):
        self.threads.add(torch.get_num_threads())
        return self.body(x)


def fit_threads(X, y):
    """The most torch threads a short ``fit`` ran on where this is called (e.g. in a
    dask or Ray task)."""
    clf = ContrastiveNoisyClassifier(encoder=ThreadLog, phases="pretrain",
                                     image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=1,
                                     warmup_epochs=0, device="cpu", random_state=0).fit(X, y)
    return max(clf.classifier_net_.module_.encoder[1].threads)


def _data(cfg, random_state):
    """The noisy training split of bench_lr_sensitivity (same split, same noise)."""
    X_tr, y_noisy, _, _ = _split(random_state, cfg)
    return X_tr, y_noisy


def _search(cfg, memory, n_jobs, random_state):
    base = ContrastiveNoisyClassifier(
        phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=cfg["pretrain_epochs"],
        max_epochs=cfg["max_epochs"], warmup_epochs=cfg["warmup_epochs"], device="cpu",
        memory=memory, random_state=random_state)
    cv = StratifiedKFold(n_splits=cfg["cv"], shuffle=True, random_state=random_state)
    return GridSearchCV(base, {"lr": cfg["lrs"], "loss": cfg["losses"]}, cv=cv,
                        n_jobs=n_jobs, refit=False, error_score="raise")


def _timed(setting, engine, workers, run, cfg, random_state, tmp, out, cpu_clock=None):
    """Run one search with a fresh ``memory=`` folder; its row and the fitted search.

    ``cpu_clock()``, when given, is the CPU seconds used so far by every
    process that runs fits (this one and the engine's workers).
    """
    memory = tempfile.mkdtemp(prefix="cache-", dir=tmp)
    search = _search(cfg, memory, 2 if workers == 2 else 1, random_state)
    load = _loadavg()
    cpu = cpu_clock() if cpu_clock is not None else None
    start = time.perf_counter()
    search = run(search)
    wall = time.perf_counter() - start
    cpu = cpu_clock() - cpu if cpu_clock is not None else None
    results = search.cv_results_
    fit_s = (np.sum(results["mean_fit_time"]) + np.sum(results["mean_score_time"])) * cfg["cv"]
    n_fits = len(results["params"]) * cfg["cv"]
    row = dict(setting=setting, engine=engine, workers=workers, wall_s=round(wall, 2),
               mean_fit_s=round(float(fit_s / n_fits), 3),
               concurrency=round(float(fit_s / wall), 2),
               cpu_s="" if cpu is None else round(cpu, 2),
               cores_used="" if cpu is None else round(cpu / wall, 2),
               a1_pretrainings=_a1_pretrainings(memory),
               n_fits=n_fits,
               n_candidates=len(search.cv_results_["params"]),
               best_cv_score=round(float(np.max(search.cv_results_["mean_test_score"])), 4),
               loadavg_1min_before=load, loadavg_1min_after=_loadavg())
    print(f"  {setting:16s} {wall:8.2f} s   {row['mean_fit_s']:.2f} s per fit, "
          f"concurrency {row['concurrency']:.2f}, a1 pre-trainings {row['a1_pretrainings']}, "
          f"load {load} -> {row['loadavg_1min_after']}", file=out, flush=True)
    return row, search


def _tiny_clf():
    """For a warm-up fit: the first fit in a process pays one-off costs (imports, kernels).

    The workers get its bound ``fit`` (picklable by reference, unlike a
    function of this script when it is loaded by path).
    """
    return ContrastiveNoisyClassifier(phases="pretrain", image_shape=(1, 8, 8),
                                      pretrain_epochs=1, max_epochs=1, warmup_epochs=0,
                                      device="cpu", random_state=0)


def _dask_rows(cfg, X, y, random_state, tmp, out):
    import distributed

    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        client.run(_tiny_clf().fit, X[:64], y[:64])  # in each worker, outside the timings
        threads = client.submit(fit_threads, X[:64], y[:64], pure=False).result()

        def cpu_clock():  # this process and both worker processes
            return time.process_time() + sum(t.user + t.system
                                             for t in client.run(os.times).values())

        def one_worker(search):  # the whole (sequential) search as one task
            return client.submit(search.fit, X, y, workers=workers[:1], pure=False).result()

        def two_workers(search):
            with joblib.parallel_config(backend="dask"):
                return search.fit(X, y)

        for setting, n, run in [("dask, 1 worker", 1, one_worker),
                                ("dask, 2 workers", 2, two_workers)]:
            row, search = _timed(setting, "dask", n, run, cfg, random_state, tmp, out,
                                 cpu_clock=cpu_clock)
            rows.append((dict(row, worker_torch_threads=threads), search))
    return rows


def _ray_rows(cfg, X, y, random_state, tmp, out):
    import ray
    from ray.util.joblib import register_ray

    rows = []
    started = not ray.is_initialized()
    # Ray's driver replaces builtins.print for its progress bars unless
    # RAY_TQDM_PATCH_PRINT=0, after which skorch prints its epoch tables
    # whatever verbose is; put print back afterwards anyway.
    saved_print, saved_env = builtins.print, os.environ.get("RAY_TQDM_PATCH_PRINT")
    os.environ["RAY_TQDM_PATCH_PRINT"] = "0"
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=100 * 2**20)
    register_ray()
    try:
        remote_fit = ray.remote(num_cpus=1)(GridSearchCV.fit)
        ray.get(ray.remote(num_cpus=1)(ContrastiveNoisyClassifier.fit).remote(
            _tiny_clf(), X[:64], y[:64]))  # warm-up, outside the timings
        threads = ray.get(ray.remote(num_cpus=1)(fit_threads).remote(X[:64], y[:64]))

        def one_worker(search):  # the whole (sequential) search as one Ray task
            return ray.get(remote_fit.remote(search, X, y))

        def two_workers(search):
            with joblib.parallel_config(backend="ray"):
                return search.fit(X, y)

        for setting, n, run in [("ray, 1 worker", 1, one_worker),
                                ("ray, 2 workers", 2, two_workers)]:
            row, search = _timed(setting, "ray", n, run, cfg, random_state, tmp, out)
            rows.append((dict(row, worker_torch_threads=threads), search))
    finally:
        if started:
            ray.shutdown()
        builtins.print = saved_print
        if saved_env is None:
            os.environ.pop("RAY_TQDM_PATCH_PRINT", None)
        else:
            os.environ["RAY_TQDM_PATCH_PRINT"] = saved_env
    return rows


def run(cfg, engines=ENGINES, *, random_state=0, out=sys.stdout):
    """Time the searches; return (rows, searches) in the order of the rows."""
    X, y = _data(cfg, random_state)
    _tiny_clf().fit(X[:64], y[:64])  # warm-up, outside the timings
    results = []
    with tempfile.TemporaryDirectory(prefix="noisyclf-bench-scale-") as tmp:
        row, search = _timed("sequential", "none", 1, lambda s: s.fit(X, y), cfg,
                             random_state, tmp, out, cpu_clock=time.process_time)
        results.append((dict(row, worker_torch_threads=fit_threads(X[:64], y[:64])), search))
        if "dask" in engines:
            results += _dask_rows(cfg, X, y, random_state, tmp, out)
        if "ray" in engines:
            results += _ray_rows(cfg, X, y, random_state, tmp, out)

    rows = [r for r, _ in results]
    searches = [s for _, s in results]
    ref = searches[0].cv_results_["mean_test_score"]
    one = {}
    for row, search in results:
        if row["workers"] == 1 and row["engine"] != "none":
            one[row["engine"]] = row["wall_s"]
        if row["workers"] == 2:
            row["speedup"] = round(one[row["engine"]] / row["wall_s"], 2)
        row["speedup_vs_sequential"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
        row["identical"] = bool(np.array_equal(search.cv_results_["mean_test_score"], ref))
        row.update(
            cv=cfg["cv"], dataset="digits", n_train=len(X), noise=f"symmetric {cfg['noise_rate']}",
            lr_grid=" ".join(map(str, cfg["lrs"])), loss_grid=" ".join(cfg["losses"]),
            phases="pretrain", pretrain_epochs=cfg["pretrain_epochs"],
            max_epochs=cfg["max_epochs"], warmup_epochs=cfg["warmup_epochs"],
            batch_size=searches[0].estimator.batch_size, random_state=random_state,
            **environment(), **_versions(engines))
    return rows, searches


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="engines to time (default: dask ray)")
    args = parse_args(parser, argv)
    cfg = QUICK if args.quick else FULL
    out = args.out
    n_candidates = len(cfg["lrs"]) * len(cfg["losses"])
    print(f"bench_scale_out: digits, GridSearchCV lr={cfg['lrs']} loss={cfg['losses']} "
          f"cv={cfg['cv']} ({n_candidates * cfg['cv']} fits), phases=pretrain, "
          f"{epochs_label(cfg)}, "
          f"engines {' '.join(args.engines)}, {os.cpu_count()} CPUs, "
          f"load {_loadavg()}", flush=True)
    start = time.perf_counter()
    rows, _ = run(cfg, args.engines, random_state=args.seed)
    write_csv(rows, COLUMNS, out / "scale_out.csv")
    print("\n| setting | wall (s) | speed-up 2 vs 1 worker | vs sequential | s per fit "
          "| concurrency | cores used | same scores | a1 pre-trainings | load before/after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['wall_s']} | {r.get('speedup', '')} "
              f"| {r['speedup_vs_sequential']} | {r['mean_fit_s']} | {r['concurrency']} "
              f"| {r['cores_used']} "
              f"| {r['identical']} | {r['a1_pretrainings']} "
              f"| {r['loadavg_1min_before']} / {r['loadavg_1min_after']} |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s; wrote {out / 'scale_out.csv'}")
    return rows


if __name__ == "__main__":
    run_main(main)
