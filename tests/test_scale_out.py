"""A grid search across machines: dask.distributed and Ray.

``GridSearchCV`` runs its fits on the workers of an existing engine through
joblib: ``joblib.parallel_config(backend="dask")`` with a ``dask.distributed``
client (a ``LocalCluster`` of 2 worker processes here), and Ray's joblib
backend (``ray.util.joblib.register_ray``, a local Ray instance of 2 CPUs).
Each test checks that

* the cross-validation scores are those of ``n_jobs=1`` in this process;
* the label-free a1 pre-training, cached on a ``memory=`` path that every
  worker sees, runs once per fold and is loaded by the other candidates,
  not once per (candidate, fold), when the grid varies later-phase
  parameters only (``lr``, ``loss``);
* each fit runs on one torch thread in its worker (``noisyclf._parallel``).

:class:`CountingEncoder` counts the a1 runs that really trained: it logs to
a file every worker appends to when it is built inside ``_phases.run_simclr``,
and each torch thread count its forward passes see.  The workers import it
from this module: dask's spawned workers inherit ``sys.path``, Ray's get this
folder on ``PYTHONPATH`` through ``runtime_env``.

Tiny on purpose (120 digits, 1 epoch per phase): the engines' start-up
dominates.  Skipped without dask.distributed or Ray (``pip install -e ".[scale]"``).
"""

import builtins
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from torch import nn

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf._parallel import task_cpus, worker_torch_threads

TESTS_DIR = str(Path(__file__).resolve().parent)
N_FOLDS = 2
GRID = {"lr": [0.02, 0.05], "loss": ["ce", "elr"]}  # later-phase parameters only
FAST = dict(phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=1, max_epochs=1,
            warmup_epochs=0, gmm_epochs=1, batch_size=32, device="cpu", precision="fp32",
            random_state=0)


def _append(path, line):
    with open(path, "a") as fh:  # one short write in append mode: safe across processes
        fh.write(line + "\n")


class CountingEncoder(nn.Module):
    """A tiny 8x8-image encoder that logs a1 runs and torch thread counts to ``log``."""

    def __init__(self, log, width=16):
        super().__init__()
        self.log = log
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU())
        self.seen = set()
        frame = sys._getframe(1)
        while frame is not None:  # built by a pre-training that runs (not one loaded)
            if frame.f_code.co_name == "run_simclr":
                _append(log, f"a1 {os.getpid()}")
                break
            frame = frame.f_back

    def forward(self, x):
        threads = torch.get_num_threads()
        if threads not in self.seen:
            self.seen.add(threads)
            _append(self.log, f"threads {threads} {os.getpid()}")
        return self.body(x)


def _read_log(log):
    path = Path(log)
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _a1_runs(log):
    return sum(1 for fields in _read_log(log) if fields[0] == "a1")


def _threads_seen(log):
    return {int(fields[1]) for fields in _read_log(log) if fields[0] == "threads"}


def _pids(log):
    return {int(fields[-1]) for fields in _read_log(log)}


def _a1_cache_entries(location):
    """Results stored by joblib.Memory for a1 (one folder per distinct call)."""
    return len(list(Path(location).glob("joblib/**/run_simclr/*/output.pkl")))


def _clf(log, memory=None):
    return ContrastiveNoisyClassifier(encoder=CountingEncoder, encoder__log=str(log),
                                      memory=memory, **FAST)


def _search(log, memory, n_jobs):
    cv = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=0)
    return GridSearchCV(_clf(log, memory), GRID, cv=cv, n_jobs=n_jobs, refit=False,
                        error_score="raise")


def _fit_with_threads(X, y, log, threads):
    """Raise torch's threads in this worker, fit, and return the count after fit."""
    torch.set_num_threads(threads)
    _clf(log).fit(X, y)
    return torch.get_num_threads()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X, y = X[:120].astype(np.float32), y[:120]
    return X, make_noisy_labels(y, "symmetric", 0.2, random_state=0)


@pytest.fixture(scope="module")
def sequential(digits, tmp_path_factory):
    """The reference: the same search with ``n_jobs=1`` in this process."""
    tmp = tmp_path_factory.mktemp("sequential")
    search = _search(tmp / "log", tmp / "cache", n_jobs=1).fit(*digits)
    assert _a1_runs(tmp / "log") == N_FOLDS
    return search


def _check_distributed_search(search, sequential, tmp_path):
    log = tmp_path / "log"
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               sequential.cv_results_["mean_test_score"], atol=1e-12)
    np.testing.assert_allclose(search.cv_results_["split0_test_score"],
                               sequential.cv_results_["split0_test_score"], atol=1e-12)
    n_candidates = len(search.cv_results_["params"])
    assert n_candidates == 4
    # 8 fits, but one pre-training per fold: the other candidates loaded it
    # from the shared memory= folder, whichever worker they ran on.
    assert _a1_cache_entries(tmp_path / "cache") == N_FOLDS
    assert _a1_runs(log) == N_FOLDS
    assert os.getpid() not in _pids(log)  # every fit ran in a worker
    assert _threads_seen(log) == {1}


# ------------------------------------------------------------------------ dask
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_grid_search_on_dask_workers(dask_client, digits, sequential, tmp_path):
    search = _search(tmp_path / "log", tmp_path / "cache", n_jobs=2)
    with joblib.parallel_config(backend="dask"):
        search.fit(*digits)
    _check_distributed_search(search, sequential, tmp_path)


def test_fit_in_a_dask_worker_caps_raised_torch_threads(dask_client, digits, tmp_path):
    # Something raised torch's threads in the worker process (the nanny had
    # set OMP_NUM_THREADS=1): fit runs on 1 thread and restores them after.
    log = tmp_path / "log"
    after = dask_client.submit(_fit_with_threads, *digits, str(log), 2, pure=False).result()
    assert _threads_seen(log) == {1}
    assert after == 2


@pytest.mark.parametrize("omp, expected", [(None, 1), ("2", 2)])
def test_fit_in_a_dask_thread_of_this_process(monkeypatch, digits, tmp_path, omp, expected):
    # LocalCluster(processes=False): the worker's threads live in this
    # process, whose torch has 3 threads and no OMP_NUM_THREADS from a nanny.
    distributed = pytest.importorskip("dask.distributed")
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    log = tmp_path / "log"
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster) as client:
            after = client.submit(_fit_with_threads, *digits, str(log), 3, pure=False).result()
        assert torch.get_num_threads() == 3  # this thread was never capped
    finally:
        torch.set_num_threads(before)
    assert _threads_seen(log) == {expected}
    assert after == 3


# ------------------------------------------------------------------------- ray
@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    # Ray's driver replaces builtins.print (for its tqdm_ray bars) unless
    # RAY_TQDM_PATCH_PRINT=0, and leaves it replaced after ray.shutdown();
    # skorch's PrintLog then prints its tables whatever the net's verbose.
    # Keep it from doing so, and restore print anyway, for the later tests.
    saved_print, saved_env = builtins.print, os.environ.get("RAY_TQDM_PATCH_PRINT")
    os.environ["RAY_TQDM_PATCH_PRINT"] = "0"
    # Ray's workers do not inherit sys.path: put this folder on their
    # PYTHONPATH so that they can import CountingEncoder.
    pythonpath = os.pathsep.join(p for p in [TESTS_DIR, os.environ.get("PYTHONPATH")] if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=80 * 2**20,
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        register_ray()
        yield ray
    finally:
        ray.shutdown()
        builtins.print = saved_print
        if saved_env is None:
            os.environ.pop("RAY_TQDM_PATCH_PRINT", None)
        else:
            os.environ["RAY_TQDM_PATCH_PRINT"] = saved_env


def test_grid_search_on_ray_workers(ray_backend, digits, sequential, tmp_path):
    search = _search(tmp_path / "log", tmp_path / "cache", n_jobs=2)
    with joblib.parallel_config(backend="ray"):
        search.fit(*digits)
    _check_distributed_search(search, sequential, tmp_path)


def test_fit_in_the_ray_driver_stays_silent(ray_backend, digits, tmp_path, capsys):
    # The refit of a search runs in the driver: verbose=0 must print nothing.
    _clf(tmp_path / "log").fit(*digits)
    assert capsys.readouterr().out == ""


def test_fit_in_a_ray_worker_caps_raised_torch_threads(ray_backend, digits, tmp_path):
    log = tmp_path / "log"
    with joblib.parallel_config(backend="ray"):
        after = joblib.Parallel(n_jobs=2)(
            joblib.delayed(_fit_with_threads)(*digits, str(log), 2) for _ in range(2))
    assert _threads_seen(log) == {1}  # Ray's OMP_NUM_THREADS=1 for a task without CPUs
    assert after == [2, 2]


# ---------------------------------------------------------------- no engine
def test_outside_a_worker_nothing_is_capped(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    assert task_cpus() is None
    with worker_torch_threads():
        pass
    assert calls == []
