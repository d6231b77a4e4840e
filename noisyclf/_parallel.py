"""Torch threads of a ``fit`` that runs as a task of a dask.distributed or Ray worker.

A grid search spread over a cluster (``joblib.parallel_config(backend="dask")``
or Ray's joblib backend) runs one ``fit`` per task, several tasks per machine.
If each fit used torch's default of one thread per core, the workers of a
machine would oversubscribe its cores.  Both engines size the thread pools
of the libraries they run through ``OMP_NUM_THREADS``, which torch reads when
it starts:

* dask's nanny sets it before it spawns a worker process (config
  ``distributed.nanny.pre-spawn-environ``, 1 by default: a task holds one
  of its worker's ``nthreads`` slots, one core);
* Ray sets it in a worker process to the CPUs of the task or actor, 1 when
  none are reserved (the actors of Ray's joblib backend reserve none);
* either keeps a value the user exported before starting the cluster.

Where that does not happen (a worker started without a nanny, the threads of
a ``LocalCluster(processes=False)`` in the client process, or any code that
raised torch's thread count in the worker), :func:`worker_torch_threads`
caps torch's threads at the same value for the duration of ``fit``:
``OMP_NUM_THREADS`` when it is set, otherwise the engine's default (the dask
config's value above, the Ray task's CPUs or 1).  It only ever lowers the
count, restores it afterwards, and does nothing outside a dask or Ray task,
e.g. in the main process or in joblib's own loky workers (which set
``OMP_NUM_THREADS`` to their share of the cores themselves).

``torch.set_num_threads`` sets the OpenMP team size of the calling thread
(and the default of threads started later), so concurrent fits in the
threads of one dask worker each cap and restore their own.
"""

import contextlib
import functools
import math
import os
import sys

import torch

__all__ = ["task_cpus", "worker_torch_threads", "limit_worker_threads"]


def _omp_num_threads():
    """``OMP_NUM_THREADS`` as an int (its first level), or None when unset or invalid."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


def _in_dask_task():
    distributed = sys.modules.get("distributed")  # never imported here
    if distributed is None:
        return False
    try:
        distributed.get_worker()  # ValueError outside a task's thread
    except Exception:
        return False
    return True


def _dask_default():
    try:
        import dask

        value = dask.config.get("distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS", 1)
        return max(1, int(value))
    except Exception:
        return 1


def _ray_task_cpus():
    """The CPUs reserved by the current Ray task or actor (at least 1), or None outside one."""
    ray = sys.modules.get("ray")  # never imported here
    if ray is None:
        return None
    try:
        if not ray.is_initialized():
            return None
        context = ray.get_runtime_context()
        if context.worker.mode != ray.WORKER_MODE:  # the driver (asking it for a task warns)
            return None
        cpus = context.get_assigned_resources().get("CPU")
    except Exception:
        return None
    return 1 if not cpus else max(1, math.floor(cpus))


def task_cpus():
    """Torch threads a ``fit`` may use in the current dask or Ray task; None outside one.

    ``OMP_NUM_THREADS`` when it is set (what the engine, or the user, gave
    the worker process), else the engine's default: the dask config's
    ``distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS`` (1), or the
    Ray task's reserved CPUs (1 when none).
    """
    if _in_dask_task():
        return _omp_num_threads() or _dask_default()
    ray_cpus = _ray_task_cpus()
    if ray_cpus is not None:
        return _omp_num_threads() or ray_cpus
    return None


@contextlib.contextmanager
def worker_torch_threads():
    """Cap torch's threads at :func:`task_cpus` in a dask or Ray task; restore them after."""
    cap = task_cpus()
    previous = torch.get_num_threads()
    if cap is None or previous <= cap:
        yield
        return
    torch.set_num_threads(cap)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def limit_worker_threads(method):
    """Decorator: run ``method`` under :func:`worker_torch_threads`."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with worker_torch_threads():
            return method(*args, **kwargs)
    return wrapper
