"""Checkpoints of a fit, so that a killed fit resumes where it stopped (private).

With ``checkpoint_dir``, ``fit`` keeps its progress in one folder per fit,
``<checkpoint_dir>/<key>/``, where ``key`` is a digest of the data (images,
labels, sample weights), the hyperparameters, the device and the precision:
a checkpoint of other data or other parameters is never used, and one
location serves many fits (a grid search, a benchmark grid).  The folder
holds:

* ``seed.pkl`` -- the fit's seed (drawn once when ``random_state`` is None),
  so the resumed fit continues the same random streams;
* ``<phase>.pkl`` -- what each finished phase produced (its nets, weights,
  GMM inputs and log);
* ``<phase>.epoch.pkl`` -- the phase's net at the end of its last saved epoch
  (module, optimiser, learning-rate schedule, ELR targets, recorded losses,
  BatchNorm statistics, frozen parameters) with torch's RNG state, saved at
  the end of an epoch when the time since the last save is long enough for
  saving to cost at most :data:`MAX_SAVE_OVERHEAD` of the training time.

Every file is written to a temporary name and renamed (atomic on POSIX):
a kill during a save leaves the previous file readable.  An unreadable file
is skipped with a warning and its work redone.  The folder is removed when
``fit`` finishes; an interrupted or killed fit leaves it for the next call.
"""

import contextlib
import os
import pickle
import shutil
import tempfile
import time
import warnings

import torch
from skorch.callbacks import Callback, LRScheduler

from . import _distributed

__all__ = ["EpochCheckpoint", "FitCheckpoint", "MAX_SAVE_OVERHEAD", "fit_key",
           "load_epoch", "set_rng_state"]

#: A phase's net is saved at the end of an epoch once the time since its last
#: save is at least the last save's duration divided by this fraction, so
#: that saving costs at most this fraction of the training time (``inf``:
#: every epoch).  The first save comes at the end of the first epoch.
MAX_SAVE_OVERHEAD = 0.02


def _write_atomic(path, obj):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path):
    """The object pickled at ``path``; None when there is none or it cannot be read."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as exc:  # truncated, corrupt, or written by another version
        warnings.warn(
            f"The checkpoint {path} could not be read ({type(exc).__name__}: {exc}); it is "
            f"ignored and its work is done again.", UserWarning, stacklevel=3)
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None


def fit_key(*what):
    """The folder name of a fit: a digest of everything that makes it (data, labels,
    weights, hyperparameters, device, precision, process rank)."""
    import joblib

    return joblib.hash(what)


class FitCheckpoint:
    """The checkpoint folder of one fit: ``<directory>/<key>/``."""

    def __init__(self, directory, key):
        self.path = os.path.join(os.fspath(directory), key)
        os.makedirs(self.path, exist_ok=True)

    def file(self, name):
        return os.path.join(self.path, f"{name}.pkl")

    def load(self, name):
        return _read(self.file(name))

    def save(self, name, obj):
        _write_atomic(self.file(name), obj)

    def epoch_file(self, phase):
        """Where the nets of ``phase`` are saved at the end of an epoch."""
        return self.file(f"{phase}.epoch")

    def seed(self, draw):
        """The fit's seed: the saved one, else ``draw()`` saved."""
        seed = self.load("seed")
        if seed is None:
            seed = draw()
            self.save("seed", seed)
        return seed

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def _rng_state(device):
    state = {"cpu": torch.get_rng_state()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def set_rng_state(state, device):
    """Restore torch's RNG state saved with a net (:func:`load_epoch`)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))


def load_epoch(path):
    """``(net, rng_state)`` saved by :class:`EpochCheckpoint` at ``path``, or None."""
    saved = _read(path) if path else None
    if saved is None:
        return None
    return saved["net"], saved["rng"]


class EpochCheckpoint(Callback):
    """Save the net, with torch's RNG state, at the end of its epochs (skorch callback).

    Saves when saving costs at most :data:`MAX_SAVE_OVERHEAD` of the time
    since the last save, never after the last epoch (the phase's result is
    saved then), and nothing once its training ended.  A net resumed from
    such a file continues its learning-rate schedule exactly: skorch's
    ``LRScheduler`` rebuilds its scheduler at ``on_train_begin``, and this
    callback, which runs after it, loads the schedule saved with the net.
    """

    def __init__(self, path, total):
        self.path = path
        self.total = total

    def on_train_begin(self, net, **kwargs):
        self.last_save_, self.save_seconds_ = time.monotonic(), 0.0
        schedule = getattr(self, "schedule_", None)
        if schedule is not None:  # resumed: continue the saved learning-rate schedule
            scheduler = self._scheduler(net)
            scheduler.load_state_dict(schedule["state"])
            for group, lr in zip(net.optimizer_.param_groups, schedule["lrs"]):
                group["lr"] = lr
            self.schedule_ = None

    @staticmethod
    def _scheduler(net):
        for _, callback in net.callbacks_:
            if isinstance(callback, LRScheduler):
                return callback.lr_scheduler_
        return None

    def on_epoch_end(self, net, **kwargs):
        done = len(net.history)
        if self.path is None:  # its phase finished: nothing more to keep
            return
        since = time.monotonic() - self.last_save_
        due = not since * MAX_SAVE_OVERHEAD < self.save_seconds_
        # Data-parallel: rank 0 decides, so every process saves the same epochs.
        if done >= self.total or not _distributed.broadcast_object(due):
            return
        start = time.monotonic()
        scheduler = self._scheduler(net)
        self.schedule_ = (None if scheduler is None else {
            "state": scheduler.state_dict(),
            "lrs": [group["lr"] for group in net.optimizer_.param_groups]})
        # The weights at the start of the epoch, for a divergence in it: not needed
        # any more (the next epoch takes its own copy), so not saved.
        net.__dict__.pop("_last_finite_state", None)
        try:
            _write_atomic(self.path, {"net": net, "rng": _rng_state(net.device)})
        finally:
            self.schedule_ = None
        self.last_save_ = time.monotonic()
        self.save_seconds_ = self.last_save_ - start

    def on_train_end(self, net, **kwargs):
        # The phase finished (or was interrupted, its last save kept): a net trained
        # further after the fit, by the user, writes nothing.
        self.path = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items()
                if k not in ("last_save_", "save_seconds_")}
