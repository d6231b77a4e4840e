"""Progress at ``verbose >= 1``: a tqdm bar per phase on a terminal, else one line per phase.

pytest's capture makes ``sys.stdout`` no terminal, so the one-line mode is what
``capsys`` sees; a fake terminal (a ``StringIO`` whose ``isatty`` is True) and a
recording ``tqdm`` class check the bars.  Fits are tiny; torch runs on one
thread (``conftest.py``).
"""

import contextlib
import io
import pickle
import re

import numpy as np
import pytest
from sklearn.datasets import make_classification
from tqdm import auto as tqdm_auto

from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning

TINY = dict(phases="full", pretrain_epochs=2, max_epochs=3, finetune_epochs=1, warmup_epochs=1,
            gmm_epochs=2, batch_size=32, projection_dim=16, loss="ce", device="cpu",
            random_state=0)
NAMES = {"a1": "a1 SimCLR pre-training", "a2": "a2 classifier (ce)",
         "b1": "b1 pseudo-label head (ce)", "b2": "b2 contrastive training",
         "b3": "b3 classifier (ce)"}
LINE = re.compile(r"\[noisyclf\] (?P<name>.+): (?P<done>\d+)(?:/(?P<total>\d+))? epochs?, "
                  r"loss (?P<loss>-?\d+\.\d{4}|nan), \d+\.\d s(?: \((?P<note>\w+)\))?")


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**TINY, **params})


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=60, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=0)
    return X.astype(np.float32), y


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def terminal():
    """A fake terminal to redirect ``sys.stdout`` to, inside the test (pytest's
    capture puts its own stream back after the fixtures are set up)."""
    return FakeTerminal()


@pytest.fixture
def bars(monkeypatch):
    """Every bar the estimator opens, with what it showed when it was closed."""
    made = []

    class RecordingTqdm(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.init_kwargs = kwargs
            self.updates = []
            made.append(self)

        def update(self, n=1):
            self.updates.append((self.n + n, self.postfix))
            return super().update(n)

        def close(self):
            self.closed_at = (self.n, self.total, self.desc, self.postfix)
            return super().close()

    monkeypatch.setattr(tqdm_auto, "tqdm", RecordingTqdm)
    return made


def _loss(clf, phase):
    return clf.history_[phase][-1]["train_loss"]


# --------------------------------------------------------------- terminal
def test_one_bar_per_phase_on_a_terminal(data, terminal, bars):
    X, y = data
    with contextlib.redirect_stdout(terminal):
        clf = _clf(verbose=1).fit(X, y)
    assert [bar.desc for bar in bars] == [f"[noisyclf] {NAMES[p]}" for p in NAMES]
    for phase, bar in zip(NAMES, bars):
        epochs = len(clf.history_[phase])
        assert bar.init_kwargs["unit"] == "epoch" and bar.init_kwargs["file"] is terminal
        assert bar.init_kwargs["leave"] is True
        n, total, desc, postfix = bar.closed_at  # every bar was closed, full
        assert total == epochs and n == epochs
        assert postfix == f"loss={_loss(clf, phase):.4f}"
        # One update per epoch, each showing that epoch's loss.
        assert bar.updates == [
            (i + 1, f"loss={row['train_loss']:.4f}")
            for i, row in enumerate(clf.history_[phase])]
    out = terminal.getvalue()
    assert "\r" in out  # updated in place
    final = [chunk for chunk in re.split(r"[\r\n]", out) if "100%" in chunk]
    assert final and all(re.search(r"\d+/\d+ \[\d\d:\d\d<\d\d:\d\d, .*epoch.*, loss=", f)
                         for f in final)  # n/total, elapsed<ETA, rate, loss
    assert not LINE.search(out)  # no one-line summaries on a terminal
    # No bar lingers in a fitted net: the estimator pickles.
    assert pickle.loads(pickle.dumps(clf)).predict(X).shape == y.shape


@pytest.mark.parametrize("phases, loss", [("baseline", "ce"), ("pretrain", "ce"),
                                         ("full", "elr")])
def test_one_line_per_phase_when_redirected(phases, loss, data, capsys, bars):
    # Written when each phase ends: name, epochs, the last epoch's loss, seconds.
    X, y = data
    clf = _clf(verbose=1, phases=phases, loss=loss).fit(X, y)
    assert bars == []
    captured = capsys.readouterr()
    assert "\r" not in captured.out and "%|" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert len(lines) == len(clf.history_), captured.out
    for phase, line in zip(clf.history_, lines):
        match = LINE.fullmatch(line)
        assert match, line
        assert match["name"] == NAMES[phase].replace("(ce)", f"({loss})")
        assert int(match["done"]) == len(clf.history_[phase])
        assert match["total"] is None and match["note"] is None
        assert match["loss"] == f"{_loss(clf, phase):.4f}"  # ELR's loss can be negative


@pytest.mark.parametrize("on_terminal", [True, False], ids=["terminal", "redirected"])
def test_silent_at_verbose_0(on_terminal, data, terminal, bars, capsys):
    X, y = data
    with contextlib.redirect_stdout(terminal) if on_terminal else contextlib.nullcontext():
        _clf(verbose=0, phases="pretrain").fit(X, y)
    captured = capsys.readouterr()
    assert bars == [] and terminal.getvalue() == ""
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("on_terminal", [True, False], ids=["terminal", "redirected"])
def test_verbose_2_has_skorch_tables_and_lines_not_bars(on_terminal, data, terminal, bars,
                                                         capsys):
    X, y = data
    with contextlib.redirect_stdout(terminal) if on_terminal else contextlib.nullcontext():
        _clf(verbose=2, phases="baseline").fit(X, y)
    assert bars == []
    out = terminal.getvalue() if on_terminal else capsys.readouterr().out
    assert "train_loss" in out  # skorch's tables
    assert [m["name"] for m in LINE.finditer(out)] == [NAMES["a2"], NAMES["b1"]]
    summaries = [line for line in out.splitlines() if line.startswith("[noisyclf]")]
    assert [LINE.fullmatch(line)["name"] for line in summaries] == [NAMES["a2"], NAMES["b1"]]


def test_bar_in_a_notebook_even_without_a_terminal(data, capsys, bars, monkeypatch):
    X, y = data

    class Widget:  # stands for tqdm.notebook.tqdm
        pass

    monkeypatch.setattr(tqdm_auto, "notebook_tqdm", Widget)
    _clf(verbose=1, phases="baseline").fit(X, y)
    assert [bar.desc for bar in bars] == [f"[noisyclf] {NAMES[p]}" for p in ("a2", "b1")]
    assert not LINE.search(capsys.readouterr().out)


def test_a_bar_that_fails_to_open_falls_back_to_the_line(data, terminal, monkeypatch):
    X, y = data

    def broken(*args, **kwargs):
        raise ImportError("IProgress not found")  # a notebook without ipywidgets

    monkeypatch.setattr(tqdm_auto, "tqdm", broken)
    with contextlib.redirect_stdout(terminal):
        _clf(verbose=1, phases="baseline").fit(X, y)
    assert [m["name"] for m in LINE.finditer(terminal.getvalue())] == [NAMES["a2"], NAMES["b1"]]


# --------------------------------------------------------- how phases end
def test_diverged_phase_says_so(data, terminal, bars):
    X, y = data
    with pytest.warns(DivergenceWarning), contextlib.redirect_stdout(terminal):
        clf = _clf(verbose=1, phases="pretrain", pretrain_lr=1e6, pretrain_epochs=3).fit(X, y)
    assert "a1" in clf.diverged_phases_
    a1 = bars[0]
    n, total, desc, postfix = a1.closed_at
    assert desc == f"[noisyclf] {NAMES['a1']}" and total == 3 and n < 3
    assert postfix.endswith(", diverged")


def test_diverged_phase_line(data, capsys):
    X, y = data
    with pytest.warns(DivergenceWarning):
        _clf(verbose=1, phases="pretrain", pretrain_lr=1e6, pretrain_epochs=3).fit(X, y)
    first = LINE.fullmatch(capsys.readouterr().out.splitlines()[0])
    assert first["name"] == NAMES["a1"] and first["note"] == "diverged"
    assert first["total"] == "3" and int(first["done"]) < 3


class _Net:
    def __init__(self):
        self.history = []
        self.interrupted_ = False


def test_callback_line_for_an_interrupted_phase(capsys):
    from noisyclf._progress import PhaseProgress

    progress = PhaseProgress("a2 classifier (ce)", 4)
    net = _Net()
    progress.on_train_begin(net)
    for loss in (0.5, 0.25):
        net.history.append({"train_loss": loss})
        progress.on_epoch_end(net)
    net.history.append({})  # the interrupted epoch has a row without a loss
    net.interrupted_ = True
    progress.on_train_end(net)
    progress.finish("diverged")  # once only
    line = capsys.readouterr().out
    assert re.fullmatch(r"\[noisyclf\] a2 classifier \(ce\): 2/4 epochs, loss 0\.2500, "
                        r"\d+\.\d s \(interrupted\)\n", line), line


def test_callback_bar_and_pickling_mid_phase(terminal, bars):
    from noisyclf._progress import PhaseProgress

    progress = PhaseProgress("b2 contrastive training", 3)
    net = _Net()
    with contextlib.redirect_stdout(terminal):
        progress.on_train_begin(net)
    bar = bars[0]
    assert bar.total == 3 and bar.desc == "[noisyclf] b2 contrastive training" and bar.n == 0
    net.history.append({"train_loss": 1.5})
    progress.on_epoch_end(net)
    assert bar.n == 1 and bar.postfix == "loss=1.5000"
    clone = pickle.loads(pickle.dumps(progress))  # without its bar
    assert clone.epochs_ == 1 and getattr(clone, "bar_", None) is None
    progress.on_train_end(net)
    assert bar.closed_at == (1, 3, "[noisyclf] b2 contrastive training", "loss=1.5000")
    assert progress.bar_ is None


# ------------------------------------------------------ a1 that did not run
def test_a1_skipped_and_loaded_from_memory_say_so(data, capsys, tmp_path):
    X, y = data
    _clf(verbose=1, phases="pretrain", pretrain_epochs=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[noisyclf] a1 SimCLR pre-training: skipped (pretrain_epochs=0)"
    assert [LINE.fullmatch(line)["name"] for line in lines[1:]] == [NAMES["a2"], NAMES["b1"]]

    first = _clf(verbose=1, phases="pretrain", memory=tmp_path).fit(X, y)
    assert LINE.fullmatch(capsys.readouterr().out.splitlines()[0])["name"] == NAMES["a1"]
    _clf(verbose=1, phases="pretrain", memory=tmp_path).fit(X, y)
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (f"[noisyclf] a1 SimCLR pre-training: 2 epochs, loss "
                    f"{_loss(first, 'a1'):.4f} (loaded from memory)")
    _clf(verbose=0, phases="pretrain", memory=tmp_path).fit(X, y)
    assert capsys.readouterr().out == ""
