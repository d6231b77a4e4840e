"""Progress of a fit (``verbose >= 1``): one bar or one line per phase (private).

Every phase is a skorch net; :class:`PhaseProgress` is the callback that shows
its progress, like skorch's ``ProgressBar`` but one bar per phase (epochs, not
batches), and one line per phase where no terminal or notebook shows a bar.
"""

import sys
import time

from skorch.callbacks import Callback
from tqdm import auto as tqdm_auto

__all__ = ["PhaseProgress", "finish_progress", "n_epochs", "say"]


def _in_notebook():
    """Whether ``tqdm.auto`` chose its notebook (widget) bar: a Jupyter kernel."""
    return getattr(tqdm_auto, "notebook_tqdm", None) is not getattr(tqdm_auto, "std_tqdm", None)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def n_epochs(n):
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} epoch{'' if n == 1 else 's'}"


def say(message):
    """Write one ``[noisyclf]`` line to ``sys.stdout``."""
    print(f"[noisyclf] {message}", file=sys.stdout, flush=True)


class PhaseProgress(Callback):
    """Progress of one phase's skorch net (``verbose >= 1``), written to ``sys.stdout``.

    Two modes, chosen when the phase starts:

    * **bar** (``verbose == 1`` and ``sys.stdout`` is a terminal, or a Jupyter
      notebook): a ``tqdm.auto`` bar per phase, ``total`` epochs, with the
      phase name, epoch n/total, the last epoch's loss as postfix, rate and
      ETA; left on screen when the phase ends.
    * **line** (otherwise: output redirected to a file or a pipe, captured
      by a test, or ``verbose >= 2`` where skorch's tables already show every
      epoch): nothing while the phase runs, then one line when it ends,
      ``[noisyclf] <name>: <n> epochs, loss <last loss>, <seconds> s``
      (``<done>/<total> epochs`` and ``(diverged)``/``(interrupted)`` when
      it stopped early).

    ``sys.stdout`` is looked up at each phase start (so redirections and
    pytest's capture apply), the stream of skorch's own per-epoch tables.
    """

    def __init__(self, name, total, verbose=1):
        self.name = name
        self.total = total
        self.verbose = verbose

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = len(net.history)  # > 0 for a net resumed from a checkpoint
        self.loss_ = float("nan")
        self.start_ = time.perf_counter()
        self.finished_ = False
        self.bar_ = None
        stream = sys.stdout
        if self.verbose == 1 and (_in_notebook() or _isatty(stream)):
            try:
                self.bar_ = tqdm_auto.tqdm(
                    total=self.total, initial=self.epochs_, desc=f"[noisyclf] {self.name}",
                    unit="epoch",
                    file=stream, leave=True, dynamic_ncols=True)
            except Exception:  # e.g. a notebook without ipywidgets: one line instead
                self.bar_ = None

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        self.loss_ = float(net.history[-1].get("train_loss", float("nan")))
        if self.bar_ is not None:
            self.bar_.set_postfix_str(f"loss={self.loss_:.4f}", refresh=False)
            self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.finish("interrupted" if getattr(net, "interrupted_", False) else None)

    def finish(self, note=None):
        """Close the bar or write the phase's line (once); ``note`` says why it stopped."""
        if getattr(self, "finished_", True):
            return
        self.finished_ = True
        bar, self.bar_ = getattr(self, "bar_", None), None
        if bar is not None:
            if note:
                bar.set_postfix_str(f"loss={self.loss_:.4f}, {note}", refresh=False)
            bar.close()
            return
        done = (n_epochs(self.epochs_) if self.epochs_ == self.total
                else f"{self.epochs_}/{self.total} epochs")
        line = (f"[noisyclf] {self.name}: {done}, loss {self.loss_:.4f}, "
                f"{time.perf_counter() - self.start_:.1f} s")
        print(line + (f" ({note})" if note else ""), file=sys.stdout, flush=True)

    def __getstate__(self):
        # A tqdm bar holds its stream and a lock: never pickled with a net.
        return {k: v for k, v in self.__dict__.items() if k != "bar_"}


def finish_progress(net, note):
    """Close the progress of a net whose training stopped without ``on_train_end``."""
    for _, callback in getattr(net, "callbacks_", None) or []:
        if isinstance(callback, PhaseProgress):
            callback.finish(note)
