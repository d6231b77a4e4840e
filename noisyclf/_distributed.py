"""Data-parallel training of every phase over several processes.

One ``fit`` runs in ``W`` processes started together, e.g. by ``torchrun
--nproc_per_node W script.py``, each of which has called
:func:`torch.distributed.init_process_group` (``"gloo"`` on CPU, ``"nccl"``
on CUDA) and passes the same ``X`` and ``y``.  Nothing here is active unless
such a process group with ``W > 1`` exists: a single process runs exactly
the code it ran before.  The design, chosen so that ``W`` processes
reproduce one process with the same (global) ``batch_size``:

* **Batches.**  Every process draws the same shuffled order (same seed: the
  estimator broadcasts rank 0's base seed) and reads the whole global batch;
  each keeps its contiguous part (:func:`local_part`).  The augmentations are
  drawn for the whole global batch from the same seeded RNG on every
  process, which then keeps its part, so the views are those one process
  would make and the RNGs of all processes stay in step (augmentation is
  cheap next to the encoder; only the forward and backward passes are
  split).
* **Gradients.**  After each backward pass the gradients are averaged over
  the processes (:func:`average_gradients`, one ``all_reduce`` of the
  flattened gradients) instead of wrapping the modules in
  :class:`~torch.nn.parallel.DistributedDataParallel`: the skorch nets keep
  their plain ``module_`` (parameter names for ``Freezer``/``Unfreezer`` and
  the optimiser's groups, pickling, the encoder copies handed from phase to
  phase), at the price of no overlap of communication and backward pass.
  The weights are broadcast from rank 0 when each phase starts.  Each
  process's loss is scaled so that the averaged gradient is that of the
  mean loss over the global batch (see :func:`global_mean`).
* **Contrastive losses** (eq. 6 NT-Xent, eq. 8 weighted SupCon): the
  projections of all processes are gathered with a gradient-carrying
  all-gather (:func:`gather`, the pattern of lightly's
  ``gather_distributed``), so the negatives (and positives) of every anchor
  span the global batch; each process evaluates the loss of the whole global
  batch (labels and weights are already there: every process read it).
* **BatchNorm** normalises with the statistics of the global batch
  (:func:`global_batchnorm`): torch's :class:`~torch.nn.SyncBatchNorm` only
  runs on accelerators, so the BatchNorm layers' ``forward`` is swapped,
  for the duration of a training step, for one that all-reduces the
  per-channel sums (with gradients) and updates the running statistics
  with the global mean and unbiased variance.
* **ELR** (eqs. 4-5): each process updates the targets of its own samples;
  the updated rows are then gathered so every process holds the same table
  (:func:`sync_rows`).
* **Recorded losses** (the GMMs' input) and other eval-mode passes: each
  process evaluates whole eval batches ``rank, rank + W, ...``
  (:func:`eval_positions`) and the per-sample values are gathered
  (:func:`gather_positions`), so every process holds the full vector and
  every sample was computed in the same eval batch as in one process.
* **GMMs** are fitted on rank 0 only and their result broadcast
  (:func:`on_rank0`).
* **Failures.**  The collectives of a fit run on a process group of their
  own, created when the fit starts (:func:`data_parallel`) with a timeout of
  :func:`timeout_seconds` (``NOISYCLF_DDP_TIMEOUT``, :data:`TIMEOUT_S` by
  default) and destroyed when it ends.  A process whose fit raises records
  its error in the process group's store and closes its connections, so
  the others' pending collective fails at once; a process that stops
  responding makes the others' collective time out.  Either way the others
  raise :class:`CollectiveError`, naming the failed rank and its error where
  it was recorded.

The helpers take and return tensors on the caller's device; the
collectives run on the fit's process group (the default process group
outside a fit).
"""

import contextlib
import datetime
import math
import os
import threading

import torch
import torch.distributed as dist
from torch import nn

from .exceptions import CollectiveError

__all__ = ["world", "is_active", "shard", "local_part", "gather", "all_reduce_sum",
           "global_mean", "average_gradients", "broadcast_module", "sync_rows",
           "eval_positions", "gather_positions", "broadcast_object", "on_rank0",
           "global_batchnorm", "check_batch_size", "data_parallel", "group_size",
           "CollectiveError", "TIMEOUT_S", "TIMEOUT_ENV", "timeout_seconds"]

_STATE = threading.local()

#: Seconds a collective of a data-parallel fit waits for the other processes.
TIMEOUT_S = 300.0
#: Environment variable that overrides :data:`TIMEOUT_S` (seconds; rank 0's value applies).
TIMEOUT_ENV = "NOISYCLF_DDP_TIMEOUT"
_FAILED_KEY = "noisyclf.failed"  # + "/<rank>", in the fit group's store


def timeout_seconds():
    """Timeout of a data-parallel fit's collectives, in seconds.

    ``NOISYCLF_DDP_TIMEOUT`` when set (a positive number), else :data:`TIMEOUT_S`.
    """
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return float(TIMEOUT_S)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{TIMEOUT_ENV}={value!r}: expected a positive number of seconds.")
    return seconds


def group_size():
    """Processes in the initialised default process group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


@contextlib.contextmanager
def data_parallel(enabled):
    """Within the block, :func:`world` sees the process group only if ``enabled``.

    The estimator's ``data_parallel=False`` fits inside a process group as a
    single process would (every helper here then does nothing), e.g. when each
    process of a ``torchrun`` job fits its own model.

    With ``enabled`` and a default process group of 2 or more processes, the
    block is one data-parallel fit, entered by every process: on entry the
    processes wait for each other (as long as the default group's timeout
    allows) and create the fit's process group, whose collectives time out
    after :func:`timeout_seconds` (rank 0's value); on exit it is destroyed.
    When the block raises (other than :class:`CollectiveError`), the error is
    recorded in the store for the other processes' message before the
    group's connections close.  Nested blocks share the outer block's group.
    """
    previous = getattr(_STATE, "disabled", False)
    _STATE.disabled = not enabled
    fit = _Fit() if enabled and _fit() is None and group_size() > 1 else None
    try:
        if fit is not None:
            _STATE.fit = fit
            fit.open()
        yield
    except BaseException as exc:
        if fit is not None:
            if not isinstance(exc, CollectiveError):
                with contextlib.suppress(Exception):
                    fit.record_failure(exc)
            with contextlib.suppress(Exception):
                fit.close()
        raise
    else:
        if fit is not None:
            fit.close()
    finally:
        if fit is not None:
            fit.group = None
            _STATE.fit = None
        _STATE.disabled = previous


class _Fit:
    """The process group of one data-parallel fit and its timeout.

    Autograd nodes keep this holder (their backward pass may run in another
    thread), never the group itself: :meth:`close` drops the last reference
    to the group, whose connections then close.
    """

    def __init__(self):
        self.group, self.timeout = None, None

    def open(self):
        """Create the group (every process calls this, in the same order)."""
        seconds = None
        if dist.get_rank() == 0:
            try:
                seconds = timeout_seconds()
            except ValueError as exc:
                seconds = str(exc)
        box = [None] * dist.get_world_size()
        try:
            # Default group: the processes start the fit together, with rank 0's timeout.
            dist.all_gather_object(box, seconds)
        except RuntimeError as exc:
            raise _collective_error("starting the data-parallel fit", exc, self) from None
        if isinstance(box[0], str):
            raise ValueError(f"rank 0: {box[0]}")
        self.timeout = box[0]
        try:
            self.group = dist.new_group(timeout=datetime.timedelta(seconds=self.timeout))
        except RuntimeError as exc:
            raise _collective_error("creating the fit's process group", exc, self) from None

    def close(self):
        group, self.group = self.group, None
        if group is not None and dist.is_initialized():
            dist.destroy_process_group(group)

    def record_failure(self, exc):
        """Leave this process's error in the group's store for the others' message."""
        if self.group is not None:
            text = f"{type(exc).__name__}: {exc}".strip()[:2000]
            self.group.get_group_store().set(f"{_FAILED_KEY}/{dist.get_rank()}", text)

    def recorded_failures(self):
        """``[(rank, error text)]`` recorded by the other processes."""
        found = []
        if self.group is None:
            return found
        with contextlib.suppress(Exception):
            store = self.group.get_group_store()
            for rank in range(dist.get_world_size()):
                key = f"{_FAILED_KEY}/{rank}"
                if rank != dist.get_rank() and store.check([key]):
                    found.append((rank, store.get(key).decode("utf-8", "replace")))
        return found


def _fit():
    """The data-parallel fit running in this thread (``None`` outside one)."""
    return getattr(_STATE, "fit", None)


def _collective_error(what, exc, fit):
    """:class:`CollectiveError` for the failure ``exc`` of the collective ``what``."""
    rank, world_size = dist.get_rank(), dist.get_world_size()
    group_timeout = fit.timeout if fit is not None else None
    seconds = group_timeout
    if seconds is None:
        try:
            seconds = timeout_seconds()
        except ValueError:
            seconds = TIMEOUT_S
    text = str(exc).strip()
    how = "failed"
    if "timed out" in text.lower() or "timeout" in text.lower():
        # Before the fit's group exists, the default group's timeout applies.
        how = f"timed out after {group_timeout:g} s" if group_timeout else "timed out"
    failures = fit.recorded_failures() if fit is not None else []
    if failures:
        cause = "; ".join(f"rank {r} failed with {error}" for r, error in failures)
        cause += " (its error output has the traceback)"
    else:
        cause = ("another process of the group probably failed or stopped responding "
                 "(see its error output)")
    detail = text.splitlines()[0][:300] if text else type(exc).__name__
    return CollectiveError(
        f"data-parallel fit, rank {rank} of {world_size}: {what} {how}: {cause}.  The "
        f"collectives of a data-parallel fit time out after {seconds:g} s ({TIMEOUT_ENV}).  "
        f"[{detail}]")


def _call(name, fn, *args, fit=None, **kwargs):
    """``fn(*args, group=..., **kwargs)`` on ``fit``'s group (the running fit's by
    default; the default group outside a fit); a failure raises :class:`CollectiveError`.

    The original error's traceback is dropped (its text is in the message): its
    frames would keep the group, and its connections, alive.
    """
    fit = fit or _fit()
    try:
        return fn(*args, group=None if fit is None else fit.group, **kwargs)
    except CollectiveError:
        raise
    except RuntimeError as exc:
        exc.__traceback__ = None
        raise _collective_error(name, exc, fit) from None


def world():
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one
    (or inside ``data_parallel(False)``)."""
    if (not getattr(_STATE, "disabled", False) and dist.is_available()
            and dist.is_initialized()):
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_active():
    """Whether a process group of more than one process is initialised."""
    return world()[1] > 1


def shard(n, rank=None, world_size=None):
    """Contiguous part ``slice(rank * n // W, (rank + 1) * n // W)`` of ``n`` items.

    The parts of ranks ``0..W-1`` are in order and cover ``range(n)``; their
    sizes differ by at most one.

    Examples
    --------
    >>> [shard(5, r, 2) for r in range(2)]
    [slice(0, 2, None), slice(2, 5, None)]
    """
    if rank is None or world_size is None:
        rank, world_size = world()
    return slice(rank * n // world_size, (rank + 1) * n // world_size)


def local_part(n):
    """This process's :func:`shard` of a global batch of ``n``; ``None`` when inactive."""
    return shard(n) if is_active() else None


def check_batch_size(batch_size):
    """``ValueError`` when a global batch cannot give every process a sample."""
    _, world_size = world()
    if world_size > 1 and batch_size not in (-1, None) and batch_size < world_size:
        raise ValueError(
            f"batch_size={batch_size} is the global batch of all {world_size} processes of "
            f"the process group; it must be at least the number of processes.")


# ----------------------------------------------------------------- collectives
class _AllGather(torch.autograd.Function):
    """All-gather whose backward sums every process's gradient for this process's
    tensor (lightly's ``GatherLayer``): the gradient of ``sum_r loss_r``."""

    @staticmethod
    def forward(ctx, tensor):
        ctx.fit = _fit()  # the backward pass may run in another thread
        out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        _call("all_gather", dist.all_gather, out, tensor.contiguous(), fit=ctx.fit)
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        stacked = torch.stack(grads).contiguous()
        _call("all_reduce (backward of all_gather)", dist.all_reduce, stacked, fit=ctx.fit)
        return stacked[dist.get_rank()]


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the backward pass sums the gradients too."""

    @staticmethod
    def forward(ctx, tensor):
        ctx.fit = _fit()
        out = tensor.clone().contiguous()
        _call("all_reduce", dist.all_reduce, out, fit=ctx.fit)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone().contiguous()
        _call("all_reduce (backward)", dist.all_reduce, grad, fit=ctx.fit)
        return grad


def _sizes(n, device):
    """Every process's ``n`` (first-dimension size), in rank order."""
    local = torch.tensor([n], dtype=torch.int64, device=device)
    out = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    _call("all_gather of the sizes", dist.all_gather, out, local)
    return [int(t.item()) for t in out]


def gather(tensor):
    """Concatenate every process's ``tensor`` along dim 0, in rank order, with gradients.

    The tensors may differ in their first dimension (they are padded for the
    collective).  Gradients flow back to each process's own rows, summed over
    the processes whose losses used them.  Without an active process group
    ``tensor`` is returned as it is.

    Parameters
    ----------
    tensor : torch.Tensor of shape (n_r, ...)

    Returns
    -------
    torch.Tensor of shape (sum_r n_r, ...)
    """
    if not is_active():
        return tensor
    sizes = _sizes(tensor.shape[0], tensor.device)
    longest = max(sizes)
    if tensor.shape[0] < longest:
        pad = tensor.new_zeros((longest - tensor.shape[0],) + tuple(tensor.shape[1:]))
        tensor = torch.cat([tensor, pad])
    if tensor.requires_grad:
        parts = _AllGather.apply(tensor)
    else:
        parts = [torch.empty_like(tensor) for _ in sizes]
        _call("all_gather", dist.all_gather, parts, tensor.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def all_reduce_sum(tensor):
    """Sum of ``tensor`` over the processes, differentiable; ``tensor`` when inactive."""
    if not is_active():
        return tensor
    return _AllReduceSum.apply(tensor)


def global_mean(local_mean, n_local, n_global):
    """Losses for a data-parallel step from this process's mean over its ``n_local`` samples.

    Returns ``(to_backward, reported)``: ``to_backward = W * n_local /
    n_global * local_mean``, whose gradients, averaged over the ``W``
    processes (:func:`average_gradients`), are the gradients of the mean loss
    over the global batch of ``n_global`` samples; ``reported`` is that mean
    loss itself (detached, the same on every process).
    """
    _, world_size = world()
    # A process without samples (a last batch smaller than W) has a NaN mean.
    local_sum = local_mean * n_local if n_local else torch.nan_to_num(local_mean) * 0.0
    total = local_sum.detach().clone()
    _call("all_reduce of the loss", dist.all_reduce, total)
    return local_sum * (world_size / n_global), total / n_global


def average_gradients(parameters):
    """Average the ``.grad`` of ``parameters`` over the processes (one all-reduce)."""
    _, world_size = world()
    grads = [p.grad for p in parameters if p.grad is not None]
    if world_size == 1 or not grads:
        return
    flat = torch._utils._flatten_dense_tensors(grads)
    _call("all_reduce of the gradients", dist.all_reduce, flat)
    flat.div_(world_size)
    for grad, value in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        grad.copy_(value)


def broadcast_module(module, src=0):
    """Copy rank ``src``'s parameters and buffers to every process (in place)."""
    if not is_active():
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            _call("broadcast of the weights", dist.broadcast, tensor.data, src)


def sync_rows(table, index):
    """Give every process the rows ``table[index]`` that each process updated.

    ELR's targets (eq. 5) are updated by each process for the samples of its
    part of the batch; after this every process's ``table`` holds all of them.
    """
    if not is_active():
        return
    index = torch.as_tensor(index, device=table.device, dtype=torch.long)
    all_index = gather(index)
    all_rows = gather(table[index].detach())
    with torch.no_grad():
        table[all_index] = all_rows


def eval_positions(n, batch_size):
    """Sample positions this process evaluates in an eval pass over ``n`` samples.

    The eval batches of ``batch_size`` are dealt out round-robin (batch ``b``
    to rank ``b % W``), so that a forward pass over the positions in batches
    of ``batch_size`` puts every sample in the same batch as one process
    would.
    """
    rank, world_size = world()
    batch_size = n if batch_size in (-1, None) else int(batch_size)
    n_batches = -(-n // batch_size)
    parts = [torch.arange(b * batch_size, min(n, (b + 1) * batch_size))
             for b in range(rank, n_batches, world_size)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def gather_positions(values, positions, n):
    """The full ``(n, ...)`` tensor from every process's ``values`` at its ``positions``."""
    all_values = gather(values.contiguous())
    all_positions = gather(torch.as_tensor(positions, device=values.device))
    out = all_values.new_empty((n,) + tuple(all_values.shape[1:]))
    out[all_positions] = all_values
    return out


def broadcast_object(obj, src=0):
    """Rank ``src``'s ``obj`` (picklable) on every process; ``obj`` when inactive."""
    if not is_active():
        return obj
    box = [obj]
    _call("broadcast_object_list", dist.broadcast_object_list, box, src)
    return box[0]


def all_equal(value):
    """Whether every process has the same ``value`` (picklable); True when inactive."""
    if not is_active():
        return True
    values = [None] * world()[1]
    _call("all_gather_object", dist.all_gather_object, values, value)
    return all(v == values[0] for v in values)


def on_rank0(fn):
    """``fn()`` computed on rank 0 only and broadcast to every process.

    An exception on rank 0 is re-raised there and reported on the other
    ranks as a ``RuntimeError`` (so they do not wait forever).
    """
    if not is_active():
        return fn()
    rank, _ = world()
    if rank == 0:
        try:
            result = ("ok", fn())
        except Exception as exc:
            broadcast_object(("error", repr(exc)))
            raise
        return broadcast_object(result)[1]
    status, value = broadcast_object(None)
    if status == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


# ----------------------------------------------------------------- BatchNorm
def _global_batchnorm_forward(bn, x):
    """Training-mode BatchNorm over the global batch (all processes' samples)."""
    if not (bn.training and is_active()):
        return type(bn).forward(bn, x)
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # autocast
    count = torch.tensor([float(xf.numel() // max(xf.shape[1], 1))], device=x.device,
                         dtype=torch.float64)
    _call("all_reduce of the BatchNorm count", dist.all_reduce, count)
    n = float(count.item())
    mean = all_reduce_sum(xf.sum(dims)) / n
    centred = xf - mean.view(shape)
    var = all_reduce_sum((centred * centred).sum(dims)) / n
    y = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                      else bn.momentum)
            unbiased = var.detach() * (n / max(n - 1.0, 1.0))
            bn.running_mean.mul_(1 - factor).add_(factor * mean.detach())
            bn.running_var.mul_(1 - factor).add_(factor * unbiased)
    return y.to(x.dtype)


@contextlib.contextmanager
def global_batchnorm(module):
    """Within the block, ``module``'s BatchNorm layers normalise over the global batch.

    Each :class:`~torch.nn.modules.batchnorm._BatchNorm` gets an instance
    ``forward`` (removed on exit, so nothing of it is pickled) that, in
    training mode, all-reduces the per-channel sum and sum of squared
    deviations with gradients; eval mode is unchanged.  Does nothing without
    an active process group.
    """
    if not is_active():
        yield
        return
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in layers:
        bn.forward = _bound(bn)
    try:
        yield
    finally:
        for bn in layers:
            bn.__dict__.pop("forward", None)


def _bound(bn):
    def forward(x):
        return _global_batchnorm_forward(bn, x)
    return forward
