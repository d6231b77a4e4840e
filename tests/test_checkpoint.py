"""Checkpoints (``checkpoint_dir``): a fit killed for real resumes where it stopped.

Each killed fit runs in a subprocess that sends itself SIGKILL at the end of
an epoch of the phase under test (after that epoch's checkpoint is written,
nothing is cleaned up); a second subprocess runs the same fit again.  Both
record the epochs they trained, so the test sees that finished work is not
redone, and the resumed model is compared with an uninterrupted fit.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import noisyclf._checkpoint as checkpoint_module
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

PARAMS = dict(phases="full", image_shape=(1, 8, 8), pretrain_epochs=4, max_epochs=4,
              warmup_epochs=2, finetune_epochs=4, gmm_epochs=2, batch_size=64, random_state=0)
EPOCHS = {"a1": 4, "a2": 4, "b1": 2, "b2": 4, "b3": 4}

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    import noisyclf._checkpoint as checkpoint_module
    from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
    from noisyclf._checkpoint import EpochCheckpoint

    torch.set_num_threads(1)
    checkpoint_module.MAX_SAVE_OVERHEAD = float("inf")
    directory, kill_phase, kill_epoch, out, params = sys.argv[1:6]
    kill_epoch = int(kill_epoch)
    trained = []
    save = EpochCheckpoint.on_epoch_end

    def on_epoch_end(self, net, **kwargs):
        save(self, net, **kwargs)
        phase = os.path.basename(self.path).split(".")[0]
        trained.append(phase)
        with open(out + ".epochs", "w") as fh:
            json.dump(trained, fh)
        if phase == kill_phase and len(net.history) == kill_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    EpochCheckpoint.on_epoch_end = on_epoch_end
    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    y = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
    clf = ContrastiveNoisyClassifier(checkpoint_dir=directory, **json.loads(params))
    clf.fit(X, y)
    np.save(out, clf.predict_proba(X))
    np.save(out + "_oof", clf.out_of_fold_proba_)
""")


def _data():
    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    return X, make_noisy_labels(y, "symmetric", 0.4, random_state=0)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    path = tmp_path_factory.mktemp("child") / "fit.py"
    path.write_text(CHILD)
    return path


@pytest.fixture(scope="module")
def uninterrupted():
    X, y = _data()
    return ContrastiveNoisyClassifier(**PARAMS).fit(X, y).predict_proba(X)


def _run(child, directory, out, kill_phase="", kill_epoch=0, **params):
    result = subprocess.run(
        [sys.executable, str(child), str(directory), kill_phase, str(kill_epoch), str(out),
         json.dumps({**PARAMS, **params})],
        capture_output=True, text=True, timeout=300)
    epochs_file = f"{out}.epochs"
    trained = json.load(open(epochs_file)) if os.path.exists(epochs_file) else []
    return result, trained


@pytest.mark.parametrize("phase, epoch", [("a1", 2), ("a2", 3), ("b2", 2), ("b3", 3)])
def test_fit_killed_during_a_phase_resumes_to_the_same_model(phase, epoch, child, tmp_path,
                                                             uninterrupted):
    killed, before = _run(child, tmp_path / "ckpt", tmp_path / "first", phase, epoch)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert before[-1] == phase and before.count(phase) == epoch
    resumed, after = _run(child, tmp_path / "ckpt", tmp_path / "second")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "second.npy"), uninterrupted)
    # Finished phases are loaded, the killed one continues after its last epoch.
    order = list(EPOCHS)
    for p in order[:order.index(phase)]:
        assert p not in after
    assert after.count(phase) == EPOCHS[phase] - epoch
    # Finished: nothing is left to resume.
    assert os.listdir(tmp_path / "ckpt") == []


def test_fit_killed_in_a_cross_fitted_fold_resumes_to_the_same_estimates(child, tmp_path):
    """noise_cv: each fold's a2 is a phase of its own ("a2_fold<k>"), saved and resumed."""
    X, y = _data()
    params = dict(phases="pretrain", noise_cv=2)
    whole = ContrastiveNoisyClassifier(**{**PARAMS, **params}).fit(X, y)
    killed, before = _run(child, tmp_path / "ckpt", tmp_path / "first", "a2_fold2", 2,
                          **params)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert before.count("a2_fold1") == EPOCHS["a2"] and before.count("a2_fold2") == 2
    resumed, after = _run(child, tmp_path / "ckpt", tmp_path / "second", **params)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "a2_fold1" not in after and after.count("a2_fold2") == EPOCHS["a2"] - 2
    np.testing.assert_array_equal(np.load(tmp_path / "second_oof.npy"),
                                  whole.out_of_fold_proba_)
    np.testing.assert_array_equal(np.load(tmp_path / "second.npy"), whole.predict_proba(X))


def test_truncated_checkpoint_is_skipped_with_a_warning_and_redone(tmp_path, child,
                                                                   uninterrupted):
    killed, _ = _run(child, tmp_path / "ckpt", tmp_path / "first", "b2", 2)
    assert killed.returncode == -9
    (folder,) = (tmp_path / "ckpt").iterdir()
    a2 = folder / "a2.pkl"
    a2.write_bytes(a2.read_bytes()[:100])
    X, y = _data()
    clf = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path / "ckpt", **PARAMS)
    with pytest.warns(UserWarning, match=r"a2\.pkl could not be read"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), uninterrupted)


def test_fits_sharing_a_location_keep_apart(tmp_path, child, uninterrupted):
    other = dict(lr=0.05)
    for name, params in (("one", {}), ("two", other)):
        killed, _ = _run(child, tmp_path / "ckpt", tmp_path / name, "a2", 3, **params)
        assert killed.returncode == -9
    assert len(os.listdir(tmp_path / "ckpt")) == 2  # one folder per fit
    X, y = _data()
    first = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path / "ckpt", **PARAMS).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), uninterrupted)
    assert len(os.listdir(tmp_path / "ckpt")) == 1  # it resumed (and removed) its own
    second = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path / "ckpt",
                                        **{**PARAMS, **other}).fit(X, y)
    expected = ContrastiveNoisyClassifier(**{**PARAMS, **other}).fit(X, y)
    np.testing.assert_array_equal(second.predict_proba(X), expected.predict_proba(X))
    assert os.listdir(tmp_path / "ckpt") == []


def test_other_data_never_uses_a_checkpoint(tmp_path, child, monkeypatch, capsys):
    killed, _ = _run(child, tmp_path / "ckpt", tmp_path / "first", "a2", 3)
    assert killed.returncode == -9
    X, y = _data()
    monkeypatch.setattr(checkpoint_module, "MAX_SAVE_OVERHEAD", float("inf"))
    y_other = y.copy()
    y_other[0] = (y_other[0] + 1) % 10
    clf = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path / "ckpt", verbose=1, **PARAMS)
    clf.fit(X, y_other)
    assert "loaded from checkpoint" not in capsys.readouterr().out
    assert len(os.listdir(tmp_path / "ckpt")) == 1  # the killed fit's folder, untouched
    np.testing.assert_array_equal(
        clf.predict_proba(X),
        ContrastiveNoisyClassifier(**PARAMS).fit(X, y_other).predict_proba(X))


def test_keyboard_interrupt_keeps_the_checkpoint_and_the_next_fit_resumes(
        tmp_path, monkeypatch, uninterrupted, capsys):
    import noisyclf._phases as phases_module

    X, y = _data()
    original = phases_module.ContrastiveNet.train_step

    def interrupt_b2(self, batch, **kwargs):
        if self.criterion.__name__ == "WeightedSupConLoss":
            raise KeyboardInterrupt
        return original(self, batch, **kwargs)

    monkeypatch.setattr(phases_module.ContrastiveNet, "train_step", interrupt_b2)
    clf = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path, **PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X, y)
    assert clf.interrupted_phase_ == "b2"
    (folder,) = tmp_path.iterdir()
    assert {"seed.pkl", "a1.pkl", "a2.pkl", "b1.pkl"} <= set(os.listdir(folder))
    monkeypatch.undo()
    clf.set_params(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "a1: loaded from checkpoint" in out and "b1: loaded from checkpoint" in out
    assert clf.interrupted_phase_ is None
    np.testing.assert_array_equal(clf.predict_proba(X), uninterrupted)
    assert os.listdir(tmp_path) == []


def test_unset_random_state_resumes_with_the_seed_of_the_killed_fit(tmp_path, child):
    killed, _ = _run(child, tmp_path / "ckpt", tmp_path / "first", "b2", 2, random_state=None)
    assert killed.returncode == -9
    resumed, after = _run(child, tmp_path / "ckpt", tmp_path / "second", random_state=None)
    assert resumed.returncode == 0
    assert "a1" not in after and "a2" not in after  # loaded: the same seed was used


def test_epoch_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    # A kill during a save leaves the earlier file readable: the new one is
    # written under a temporary name and renamed.
    target = tmp_path / "x.pkl"
    checkpoint_module._write_atomic(str(target), {"value": 1})

    def broken_dump(obj, fh, protocol=None):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        checkpoint_module._write_atomic(str(target), {"value": 2})
    monkeypatch.undo()
    assert checkpoint_module._read(str(target)) == {"value": 1}
    assert os.listdir(tmp_path) == ["x.pkl"]  # no temporary file left behind


def test_a_fitted_net_trained_further_writes_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "MAX_SAVE_OVERHEAD", float("inf"))
    X, y = _data()
    clf = ContrastiveNoisyClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(X, y)
    assert os.listdir(tmp_path) == []
    # The nets keep their callbacks; the fit's folder is gone, so nothing is written.
    data = {"x": torch.from_numpy(X.reshape(-1, 1, 8, 8).astype(np.float32)),
            "index": torch.arange(len(X)), "sample_weight": torch.ones(len(X))}
    clf.classifier_net_.partial_fit(data, torch.as_tensor(y))
    assert os.listdir(tmp_path) == []
