"""Data-parallel fit over several processes (``data_parallel``; noisyclf/_distributed.py).

Two CPU processes (gloo backend, a file store in a temporary directory) run
this module as a script (``_worker`` below): the collective helpers on small
tensors, then four fits -- every phase on 96 digits (float32), every phase on
99 digits in float64 (uneven batch parts, eq. 8 as the paper writes it),
tabular data, a streamed Dataset.  Each writes what it computed to a
pickle; the tests compare it, here, with the same computation in this one
process (no process group: the single-process code path) on the
concatenated global batch.

Tolerances.  Two processes do not add up in the same order as one: the
gradients are summed across processes, BatchNorm's statistics are the sums
of two half-batches' sums (two-pass, where torch's kernel is one pass), and
each convolution runs on half a batch.  Each is a float32 rounding
difference (relative 1e-7 to 1e-6) per operation; the unit tests allow
``rtol=1e-5, atol=1e-6``.  Training amplifies such differences like any
other (in one process, a relative perturbation of 1e-7 of the initial
weights moves a1's loss by 8e-4 within 20 steps), so the float32 fits are
short: 13 epochs of 3 steps through five phases, two GMMs and a
pseudo-labelling.  Their per-epoch losses differ by about 1e-6 at most
(losses of order 0.1-5) and are compared with
``atol=1e-5``; the GMM posteriors and predicted probabilities with
``atol=2e-5``.  The float32 fit uses ``supcon_weighting="authors"``: with
the paper's reading eq. 8 takes the log of each anchor's GMM weight, and a
weight of 1e-7 that differs by 1e-7 between the two runs moves b2's loss by
1e-4 and b3's by 7e-3 after two epochs -- sensitivity of eq. 8 to its
weights, not of the data-parallel code (with weights rounded to 2 decimals
both readings agree to 3e-7).  The float64 fits (``_float64``: weights and
inputs float64, the losses still float32) take that amplification away:
they agree to 1e-7 in the losses (the float32 loss arithmetic), exactly in
the GMM posteriors; they are compared with ``atol=1e-6`` and ``1e-9``.
The float32 tolerance is 1000 times below what a broken piece gives: without
the gather, the global BatchNorm, the ELR synchronisation or the gradient
averaging the float32 losses differ by 1e-2 to 1 within the first phases.

Failures (``_failing_worker``): two more pairs of processes fit with the
collectives' timeout lowered to 10 s (``NOISYCLF_DDP_TIMEOUT``); rank 1 fails
at its second a2 step, raising (and its process stays alive) or stopping to
respond.  Both processes of each pair must exit non-zero within 60 s.
"""

import contextlib
import io
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from noisyclf import ContrastiveNoisyClassifier, _distributed
from noisyclf.losses import ELRLoss, NTXentLoss, WeightedSupConLoss

WORLD = 2
# Every phase, 2-3 epochs, a global batch of 32 (two parts of 16 per step).
FIT = dict(phases="full", loss="elr", image_shape=(1, 8, 8), pretrain_epochs=3, max_epochs=3,
           warmup_epochs=1, gmm_epochs=2, finetune_epochs=2, batch_size=32, lr=0.05,
           pretrain_lr=0.1, supcon_weighting="authors", device="cpu", precision="fp32",
           random_state=0)
N_FIT = 96
# In float64 (see _float64): 99 samples, so the last batch of 3 splits 1 + 2, and eq. 8
# as the paper writes it.
FIT64 = {**FIT, "supcon_weighting": "paper"}
N_FIT64 = 99
# Tabular input: MLP encoder (BatchNorm1d), SCARF-style corruption, which mixes samples of a batch.
FIT_TABULAR = {**FIT, "image_shape": None, "loss": "nfl+rce"}


class _Digits(torch.utils.data.Dataset):
    """(uint8 (1, 8, 8) tensor, label) items: the digits as a torch Dataset (streamed fit)."""

    def __init__(self, unlabeled_every=None):
        X, self.y = _digits()
        if unlabeled_every:
            self.y = self.y.copy()
            self.y[::unlabeled_every] = -1  # unlabeled items
        self.X = torch.as_tensor(np.round(X * 255 / 16).astype(np.uint8)).reshape(-1, 1, 8, 8)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], int(self.y[i])


FIT_STREAM = {**FIT, "image_shape": None, "phases": "pretrain"}
# A third of the streamed items unlabeled (-1): a2 on the others, phase b on all.
FIT_UNLABELED = {**FIT, "image_shape": None, "max_epochs": 2, "finetune_epochs": 1}
# data_parallel=False inside the group: every process fits its own data.
FIT_ALONE = {**FIT, "phases": "pretrain", "data_parallel": False}
# The failure tests: a2 only; the collectives time out after FAIL_TIMEOUT_S.
FIT_FAIL = {**FIT, "phases": "baseline"}
FAIL_TIMEOUT_S = 10
FAIL_LIMIT_S = 60


def _half(rank):
    return slice(0, N_FIT // 2) if rank == 0 else slice(N_FIT // 2, N_FIT)


def _tabular():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=96, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    return X.astype(np.float32), y


def _digits(n=N_FIT):
    from sklearn.datasets import load_digits

    from noisyclf import make_noisy_labels
    X, y = load_digits(return_X_y=True)
    X, y = X[:n].astype(np.float32), y[:n]
    return X, make_noisy_labels(y, "symmetric", 0.3, random_state=0)


@contextlib.contextmanager
def _float64():
    """Fit in float64: the modules' weights and inputs are float64 (the losses stay
    float32, the nets cast the outputs to it), so that rounding, which training
    amplifies, cannot hide a difference of algorithm."""
    from noisyclf import nets

    default, on_device = torch.get_default_dtype(), nets._PhaseNetMixin._on_device
    torch.set_default_dtype(torch.float64)
    nets._PhaseNetMixin._on_device = lambda self, x: on_device(self, x).double()
    try:
        yield
    finally:
        torch.set_default_dtype(default)
        nets._PhaseNetMixin._on_device = on_device


def _global_batch(n=10, d=6):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    weights = torch.rand(n, generator=g)
    x_bn = 3 + 2 * torch.randn(n, 4, 3, 3, generator=g)
    logits = torch.randn(n, 3, generator=g)
    return z1, z2, labels, weights, x_bn, logits


# ------------------------------------------------------------------ the worker
def _worker(rank, store):
    """One process of the group: compute everything the tests check; pickle it."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}/store", rank=rank,
                            world_size=WORLD)
    out = {"rank": rank, "world": _distributed.world()}
    z1, z2, labels, weights, x_bn, logits = _global_batch()
    n = len(z1)
    part = _distributed.local_part(n)
    out["part"] = (part.start, part.stop)

    # gather: unequal parts (rank 0 has 5 rows, rank 1 has 5 with n=10; use 3/7 too).
    uneven = slice(0, 3) if rank == 0 else slice(3, 10)
    local = z1[uneven].clone().requires_grad_(True)
    gathered = _distributed.gather(local)
    coef = torch.arange(gathered.numel(), dtype=torch.float32).reshape(gathered.shape)
    (gathered * coef).sum().backward()
    out["gather"] = gathered.detach()
    out["gather_grad"] = local.grad.clone()

    # NT-Xent (eq. 6) and weighted SupCon (eq. 8) over the gathered projections.
    for name, loss_fn, extra in [
            ("ntxent", NTXentLoss(temperature=0.5), ()),
            ("supcon", WeightedSupConLoss(temperature=0.1), (labels, weights)),
            ("supcon_authors", WeightedSupConLoss(temperature=0.1, weighting="authors"),
             (labels, weights))]:
        a, b = z1[part].clone().requires_grad_(True), z2[part].clone().requires_grad_(True)
        loss = loss_fn(_distributed.gather(a), _distributed.gather(b), *extra)
        loss.backward()
        out[name] = (loss.item(), a.grad.clone(), b.grad.clone())
    # Control: the same loss on this process's part only (local negatives).
    out["ntxent_local"] = NTXentLoss(temperature=0.5)(z1[part], z2[part]).item()

    # BatchNorm over the global batch, a loss of the global mean (global_mean).
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    xb = x_bn[part].clone().requires_grad_(True)
    with _distributed.global_batchnorm(bn):
        y_bn = bn(xb)
    patched = "forward" in bn.__dict__
    per_sample = (y_bn ** 2).mean(dim=(1, 2, 3)) + y_bn[:, 0, 0, 0]
    to_backward, reported = _distributed.global_mean(per_sample.mean(), len(per_sample), n)
    to_backward.backward()
    _distributed.average_gradients(bn.parameters())
    out["bn"] = dict(y=y_bn.detach(), x_grad=xb.grad.clone(), weight_grad=bn.weight.grad.clone(),
                     bias_grad=bn.bias.grad.clone(), running_mean=bn.running_mean.clone(),
                     running_var=bn.running_var.clone(), reported=reported.item(),
                     patched_after=patched or "forward" in bn.__dict__)

    # ELR targets (eq. 5): each process updates its samples, then sync_rows.
    elr = ELRLoss(n_samples=2 * n, n_classes=3, lam=3.0, beta=0.7)
    index = torch.arange(n)[part] * 2  # even sample ids
    elr(logits[part], labels[part], index)
    out["elr_before_sync"] = elr.target_.clone()
    _distributed.sync_rows(elr.target_, index)
    out["elr"] = elr.target_.clone()

    # Eval-pass gathering: positions dealt out by eval batch.
    positions = _distributed.eval_positions(n, 3)
    out["eval_positions"] = positions
    out["eval_gathered"] = _distributed.gather_positions(logits[positions, 0], positions, n)

    # on_rank0: fn runs on rank 0 only; everyone gets its result.
    calls = []
    out["on_rank0"] = _distributed.on_rank0(lambda: calls.append(rank) or f"from {rank}")
    out["on_rank0_calls"] = calls

    # Each data-parallel fit creates its process group and destroys it.
    groups = []
    new_group, destroy = dist.new_group, dist.destroy_process_group
    dist.new_group = lambda *a, **k: groups.append("new") or new_group(*a, **k)
    dist.destroy_process_group = lambda *a, **k: groups.append("destroy") or destroy(*a, **k)

    # The estimator: every phase, every rank; count GMM fits per rank.
    import noisyclf._phases as phases_module
    gmm_calls = []
    real_gmm = phases_module.gmm_clean_probability

    def counting_gmm(*args, **kwargs):
        gmm_calls.append(rank)
        return real_gmm(*args, **kwargs)

    phases_module.gmm_clean_probability = counting_gmm
    X, y_noisy = _digits()
    clf = ContrastiveNoisyClassifier(**{**FIT, "random_state": None if rank else 0})
    clf.fit(X, y_noisy)
    out["fit"] = _fit_summary(clf, X)
    out["gmm_calls"] = list(gmm_calls)
    out["elr_targets"] = clf.classifier_net_.criterion_.target_.clone()
    out["pickled"] = pickle.dumps(clf)
    # verbose: only rank 0 prints the progress lines.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        ContrastiveNoisyClassifier(**{**FIT, "phases": "baseline", "verbose": 1}).fit(
            X, y_noisy)
    out["verbose_out"] = buffer.getvalue()
    # data_parallel=False: each process fits its own half alone, as one process would.
    out["alone"] = _fit_summary(ContrastiveNoisyClassifier(**FIT_ALONE).fit(
        X[_half(rank)], y_noisy[_half(rank)]), X[_half(rank)])
    X, y_noisy = _digits(N_FIT64)
    with _float64():
        out["fit64"] = _fit_summary(ContrastiveNoisyClassifier(**FIT64).fit(X, y_noisy), X)
    X, y = _tabular()
    out["fit_tabular"] = _fit_summary(ContrastiveNoisyClassifier(**FIT_TABULAR).fit(X, y), X)
    stream = _Digits()
    with _float64():
        out["fit_stream"] = _fit_summary(ContrastiveNoisyClassifier(**FIT_STREAM).fit(stream),
                                         stream)
        stream = _Digits(unlabeled_every=3)
        out["fit_unlabeled"] = _fit_summary(
            ContrastiveNoisyClassifier(**FIT_UNLABELED).fit(stream), stream)
    dist.new_group, dist.destroy_process_group = new_group, destroy
    out["groups"] = groups
    with open(Path(store) / f"rank{rank}.pkl", "wb") as f:
        pickle.dump(out, f)
    dist.destroy_process_group()


def _fit_summary(clf, X):
    return {
        "history": {phase: [row["train_loss"] for row in rows]
                    for phase, rows in clf.history_.items()},
        "pseudo_labels": clf.pseudo_labels_, "label_quality": clf.label_quality_,
        "sample_weights": clf.sample_weights_, "gmm_losses": dict(clf.gmm_losses_),
        "proba": clf.predict_proba(X),
    }


def _failing_worker(rank, store, mode):
    """One process of a fit in which rank 1 fails at its second a2 step.

    ``mode="raise"``: rank 1 raises; its process catches the error and stays
    alive until rank 0 has failed (at most 120 s), so rank 0 cannot learn of
    the failure from the process's exit.  ``mode="hang"``: rank 1 stops
    responding in that step until rank 0 has failed, then raises.  Each
    process re-raises its fit's error: it exits non-zero.
    """
    import torch.distributed as dist

    from noisyclf import nets

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}/store", rank=rank,
                            world_size=WORLD)
    rank0_failed = Path(store) / "rank0_failed"

    def wait_for_rank0():
        deadline = time.monotonic() + 120
        while not rank0_failed.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    if rank == 1:
        step, steps = nets.NoisyLabelNet.train_step_single, []

        def failing_step(self, *args, **kwargs):
            steps.append(len(steps))
            if len(steps) == 2:
                if mode == "hang":
                    wait_for_rank0()
                raise RuntimeError("rank 1 fails on purpose")
            return step(self, *args, **kwargs)

        nets.NoisyLabelNet.train_step_single = failing_step
    X, y_noisy = _digits()
    start = time.monotonic()
    try:
        ContrastiveNoisyClassifier(**FIT_FAIL).fit(X, y_noisy)
    except Exception:
        print(f"fit failed after {time.monotonic() - start:.2f} s", flush=True)
        if rank == 0:
            rank0_failed.touch()
        else:
            wait_for_rank0()
        raise


def _checkpoint_worker(rank, store, mode):
    """One process of a data-parallel fit with ``checkpoint_dir`` (every epoch saved).

    ``mode="reference"``: without a checkpoint; ``"kill"``: each process sends
    itself SIGKILL at the end of a2's second epoch, after its save; ``"resume"``:
    the same fit again.  Writes ``predict_proba`` to ``<mode>_rank<rank>.npy``.
    """
    import signal

    import torch.distributed as dist

    import noisyclf._checkpoint as checkpoint_module

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}/store_{mode}", rank=rank,
                            world_size=WORLD)
    checkpoint_module.MAX_SAVE_OVERHEAD = float("inf")
    if mode == "kill":
        save = checkpoint_module.EpochCheckpoint.on_epoch_end

        def save_then_die(self, net, **kwargs):
            save(self, net, **kwargs)
            if os.path.basename(self.path).startswith("a2.") and len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

        checkpoint_module.EpochCheckpoint.on_epoch_end = save_then_die
    X, y_noisy = _digits()
    folder = None if mode == "reference" else str(Path(store) / "checkpoints")
    clf = ContrastiveNoisyClassifier(checkpoint_dir=folder, **FIT).fit(X, y_noisy)
    np.save(Path(store) / f"{mode}_rank{rank}.npy", clf.predict_proba(X))


def _launch(store, *args, env=(), outputs=None):
    """Start the worker processes (this file as a script) with ``args`` after the rank;
    their output goes to the files ``outputs`` (one per rank), or to pipes."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **dict(env),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    return [subprocess.Popen([sys.executable, __file__, str(rank), str(store), *args], env=env,
                             stdout=subprocess.PIPE if outputs is None else outputs[rank],
                             stderr=subprocess.STDOUT, text=True)
            for rank in range(WORLD)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the two worker processes once; their pickled results, by rank."""
    store = tmp_path_factory.mktemp("ddp")
    procs = _launch(store)
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-4000:]
    results = []
    for rank in range(WORLD):
        with open(store / f"rank{rank}.pkl", "rb") as f:
            results.append(pickle.load(f))
    return results


@pytest.fixture(scope="module")
def single_fit():
    """The same fit in this process: no process group, the single-process path."""
    X, y_noisy = _digits()
    clf = ContrastiveNoisyClassifier(**FIT).fit(X, y_noisy)
    return clf, _fit_summary(clf, X)


@pytest.fixture(scope="module")
def single_fit64():
    X, y_noisy = _digits(N_FIT64)
    with _float64():
        return _fit_summary(ContrastiveNoisyClassifier(**FIT64).fit(X, y_noisy), X)


@pytest.fixture(scope="module")
def single_fit_tabular():
    X, y = _tabular()
    return _fit_summary(ContrastiveNoisyClassifier(**FIT_TABULAR).fit(X, y), X)


@pytest.fixture(scope="module")
def single_fit_stream():
    stream = _Digits()
    with _float64():
        return _fit_summary(ContrastiveNoisyClassifier(**FIT_STREAM).fit(stream), stream)


@pytest.fixture(scope="module")
def single_fit_unlabeled():
    stream = _Digits(unlabeled_every=3)
    with _float64():
        return _fit_summary(ContrastiveNoisyClassifier(**FIT_UNLABELED).fit(stream), stream)


def _worst(ranks, key, single):
    """Largest per-epoch loss difference between any rank's fit ``key`` and ``single``."""
    return max(float(np.max(np.abs(np.subtract(r[key]["history"][phase], losses))))
               for r in ranks for phase, losses in single["history"].items())


def _close(a, b, rtol=1e-5, atol=1e-6):
    return torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- the helpers
def test_inactive_without_a_process_group():
    assert _distributed.world() == (0, 1)
    assert not _distributed.is_active()
    assert _distributed.local_part(10) is None
    t = torch.ones(3)
    assert _distributed.gather(t) is t and _distributed.all_reduce_sum(t) is t
    assert _distributed.on_rank0(lambda: 7) == 7
    assert _distributed.broadcast_object("x") == "x"


def test_shards_cover_the_batch_in_order():
    for n in (2, 5, 32, 33):
        parts = [_distributed.shard(n, r, 3) for r in range(3)]
        assert [i for p in parts for i in range(n)[p]] == list(range(n))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_ranks_see_the_group(ranks):
    assert [r["world"] for r in ranks] == [(0, WORLD), (1, WORLD)]
    assert [r["part"] for r in ranks] == [(0, 5), (5, 10)]


def test_gather_concatenates_uneven_parts_with_gradients(ranks):
    z1 = _global_batch()[0]
    coef = torch.arange(z1.numel(), dtype=torch.float32).reshape(z1.shape)
    for r, rows in zip(ranks, (slice(0, 3), slice(3, 10))):
        assert torch.equal(r["gather"], z1)
        # Both processes' losses used these rows: the gradient is summed over them.
        assert torch.equal(r["gather_grad"], WORLD * coef[rows])


@pytest.mark.parametrize("name", ["ntxent", "supcon", "supcon_authors"])
def test_contrastive_loss_over_gathered_projections_is_the_global_loss(ranks, name):
    """Eq. 6 / eq. 8 over the gathered projections equal the loss of one process
    on the whole batch, and the gradients of the mean of the processes' losses (what
    average_gradients makes of them) are that loss's gradients."""
    z1, z2, labels, weights = _global_batch()[:4]
    loss_fn = {"ntxent": NTXentLoss(temperature=0.5),
               "supcon": WeightedSupConLoss(temperature=0.1),
               "supcon_authors": WeightedSupConLoss(temperature=0.1, weighting="authors")}[name]
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    extra = () if name == "ntxent" else (labels, weights)
    loss = loss_fn(a, b, *extra)
    loss.backward()
    for r in ranks:
        value, grad_a, grad_b = r[name]
        part = slice(*r["part"])
        assert abs(value - loss.item()) < 1e-6
        assert _close(grad_a / WORLD, a.grad[part]) and _close(grad_b / WORLD, b.grad[part])


def test_local_only_negatives_differ(ranks):
    """The control: without the gather each process's NT-Xent is another number."""
    z1, z2 = _global_batch()[:2]
    full = NTXentLoss(temperature=0.5)(z1, z2).item()
    assert all(abs(r["ntxent_local"] - full) > 0.1 for r in ranks)


def test_batchnorm_uses_the_global_batch(ranks):
    x = _global_batch()[4].clone().requires_grad_(True)
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    y = bn(x)
    loss = ((y ** 2).mean(dim=(1, 2, 3)) + y[:, 0, 0, 0]).mean()
    loss.backward()
    for r in ranks:
        got, part = r["bn"], slice(*r["part"])
        assert not got["patched_after"]  # the swapped forward is gone
        assert _close(got["y"], y[part].detach())
        # Every process's loss reaches these inputs through the statistics: the
        # inputs' gradient is summed over the processes (the parameters' averaged).
        assert _close(got["x_grad"] / WORLD, x.grad[part])
        assert _close(got["weight_grad"], bn.weight.grad)
        assert _close(got["bias_grad"], bn.bias.grad)
        assert _close(got["running_mean"], bn.running_mean)
        assert _close(got["running_var"], bn.running_var)
        assert abs(got["reported"] - loss.item()) < 1e-5


def test_elr_targets_are_synchronised(ranks):
    """Eqs. 4-5: after sync_rows every process holds the targets one process would."""
    _, _, labels, _, _, logits = _global_batch()
    elr = ELRLoss(n_samples=2 * len(logits), n_classes=3, lam=3.0, beta=0.7)
    elr(logits, labels, torch.arange(len(logits)) * 2)
    for r in ranks:
        assert not _close(r["elr_before_sync"], elr.target_)  # each had only its rows
        assert _close(r["elr"], elr.target_)
    assert torch.equal(ranks[0]["elr"], ranks[1]["elr"])


def test_eval_positions_deal_whole_batches(ranks):
    logits = _global_batch()[5]
    assert ranks[0]["eval_positions"].tolist() == [0, 1, 2, 6, 7, 8]
    assert ranks[1]["eval_positions"].tolist() == [3, 4, 5, 9]
    for r in ranks:
        assert torch.equal(r["eval_gathered"], logits[:, 0])


def test_on_rank0_runs_once_and_broadcasts(ranks):
    assert [r["on_rank0_calls"] for r in ranks] == [[0], []]
    assert [r["on_rank0"] for r in ranks] == ["from 0", "from 0"]


# --------------------------------------------------------------- the estimator
def test_fit_reproduces_one_process_loss_curves(ranks, single_fit):
    """Every phase's per-epoch train_loss with 2 processes = 1 process, same global batch."""
    _, single = single_fit
    assert set(single["history"]) == {"a1", "a2", "b1", "b2", "b3"}
    for r in ranks:
        history = r["fit"]["history"]
        assert history.keys() == single["history"].keys()
        for phase, losses in single["history"].items():
            assert len(history[phase]) == len(losses) > 0, phase
            np.testing.assert_allclose(history[phase], losses, rtol=0, atol=1e-5,
                                       err_msg=phase)
    print(f"digits: largest loss difference {_worst(ranks, 'fit', single):.2e}")


def _assert_reproduces(ranks, key, single, loss_atol, value_atol,
                       values=("label_quality", "sample_weights", "proba")):
    """Every rank's fit ``key`` has ``single``'s phases, per-epoch losses (``loss_atol``),
    pseudo-labels and ``values`` (``value_atol``)."""
    for r in ranks:
        fit = r[key]
        assert fit["history"].keys() == single["history"].keys()
        for phase, losses in single["history"].items():
            np.testing.assert_allclose(fit["history"][phase], losses, rtol=0, atol=loss_atol,
                                       err_msg=phase)
        np.testing.assert_array_equal(fit["pseudo_labels"], single["pseudo_labels"])
        for name in values:
            np.testing.assert_allclose(fit[name], single[name], rtol=0, atol=value_atol,
                                       err_msg=name)
    print(f"{key}: largest loss difference {_worst(ranks, key, single):.2e}")


def test_fit_in_float64_reproduces_one_process(ranks, single_fit64):
    """Uneven parts (the last batch of 3 split 1 + 2) and eq. 8 as the paper writes it, in
    float64: 2 processes = 1 process up to the float32 rounding of the losses themselves
    (measured: 1e-7 for the losses, 0 for the GMM posteriors, 4e-14 for predict_proba)."""
    assert single_fit64["history"].keys() == {"a1", "a2", "b1", "b2", "b3"}
    _assert_reproduces(ranks, "fit64", single_fit64, loss_atol=1e-6, value_atol=1e-9)


def test_tabular_fit_reproduces_one_process(ranks, single_fit_tabular):
    """The MLP encoder (BatchNorm1d) and feature corruption (which swaps in features of
    other samples of the global batch), with NFL+RCE: tolerances as for the images."""
    _assert_reproduces(ranks, "fit_tabular", single_fit_tabular, loss_atol=1e-5,
                       value_atol=2e-5, values=("proba",))


def test_streamed_fit_reproduces_one_process(ranks, single_fit_stream):
    """A torch Dataset (streamed; every process reads every batch, and the eval passes are
    not split): a1, a2 and b1 as one process.  In float64, tolerances as in
    test_fit_in_float64_reproduces_one_process: in float32 a2's rounding differences grow
    faster on these uint8 images than on the float digits (b1's loss 3e-4 apart after one
    epoch, exactly equal in float64)."""
    assert single_fit_stream["history"].keys() == {"a1", "a2", "b1"}
    _assert_reproduces(ranks, "fit_stream", single_fit_stream, loss_atol=1e-6, value_atol=1e-9)


def test_unlabeled_streamed_fit_reproduces_one_process(ranks, single_fit_unlabeled):
    """Items labelled -1: a2 trains on the labeled subset of the stream, phase b on every
    item, across 2 processes as in one (float64, tolerances as above)."""
    assert single_fit_unlabeled["history"].keys() == {"a1", "a2", "b1", "b2", "b3"}
    assert np.isnan(single_fit_unlabeled["label_quality"][::3]).all()
    _assert_reproduces(ranks, "fit_unlabeled", single_fit_unlabeled, loss_atol=1e-6,
                       value_atol=1e-9, values=("sample_weights", "proba"))


def test_all_ranks_agree_after_fit(ranks):
    """Rank 1 was given random_state=None: it still runs rank 0's seed."""
    a, b = ranks[0]["fit"], ranks[1]["fit"]
    assert a["history"] == b["history"]
    for key in ("pseudo_labels", "label_quality", "sample_weights", "proba"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert torch.equal(ranks[0]["elr_targets"], ranks[1]["elr_targets"])


def test_gmm_fitted_on_rank0_only(ranks, single_fit):
    assert ranks[0]["gmm_calls"] == [0, 0] and ranks[1]["gmm_calls"] == []
    _, single = single_fit
    for r in ranks:
        for key in ("given", "pseudo"):
            np.testing.assert_allclose(r["fit"]["gmm_losses"][key], single["gmm_losses"][key],
                                       rtol=0, atol=2e-5, err_msg=key)
        np.testing.assert_allclose(r["fit"]["sample_weights"], single["sample_weights"],
                                   rtol=0, atol=2e-5)
        np.testing.assert_allclose(r["fit"]["label_quality"], single["label_quality"],
                                   rtol=0, atol=2e-5)


def test_predictions_match_one_process(ranks, single_fit):
    _, single = single_fit
    for r in ranks:
        np.testing.assert_array_equal(r["fit"]["pseudo_labels"], single["pseudo_labels"])
        np.testing.assert_allclose(r["fit"]["proba"], single["proba"], rtol=0, atol=2e-5)


def test_fitted_estimator_unpickles_without_a_process_group(ranks, single_fit):
    X, _ = _digits()
    clf = pickle.loads(ranks[0]["pickled"])  # pickled inside the group, loaded outside
    np.testing.assert_array_equal(clf.predict_proba(X), ranks[0]["fit"]["proba"])
    modules = [m for net in (clf.classifier_net_, clf.encoder_net_, clf.selection_net_)
               for m in net.module_.modules()]
    assert not any("forward" in vars(m) for m in modules)  # no swapped BatchNorm left
    assert type(clf.classifier_net_.module_) is type(single_fit[0].classifier_net_.module_)


if __name__ == "__main__":  # a worker process: python tests/test_distributed.py RANK STORE [MODE]
    if len(sys.argv) > 3 and sys.argv[3] in ("reference", "kill", "resume"):
        _checkpoint_worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 3:
        _failing_worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    else:
        _worker(int(sys.argv[1]), sys.argv[2])


def test_data_parallel_false_fits_each_process_alone(ranks):
    X, y_noisy = _digits()
    alone = [r["alone"] for r in ranks]
    for rank, result in enumerate(alone):
        part = _half(rank)
        single = _fit_summary(
            ContrastiveNoisyClassifier(**FIT_ALONE).fit(X[part], y_noisy[part]), X[part])
        for phase, losses in single["history"].items():
            np.testing.assert_allclose(result["history"][phase], losses, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(result["proba"], single["proba"], atol=2e-5)
    # Different data, different models: nothing was shared between the processes.
    assert alone[0]["history"]["a1"] != alone[1]["history"]["a1"]


def test_data_parallel_true_needs_a_process_group():
    X, y_noisy = _digits()
    with pytest.raises(ValueError, match="data_parallel=True"):
        ContrastiveNoisyClassifier(**{**FIT, "data_parallel": True}).fit(X, y_noisy)


def test_only_rank0_prints_progress(ranks):
    assert ranks[0]["verbose_out"].startswith("[noisyclf] a2 classifier (elr): 3 epochs")
    assert ranks[1]["verbose_out"] == ""


def test_each_fit_creates_and_destroys_its_process_group(ranks):
    """Six data-parallel fits (data_parallel=False creates none), no group left behind."""
    for r in ranks:
        assert r["groups"] == ["new", "destroy"] * 6


def test_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv(_distributed.TIMEOUT_ENV, raising=False)
    assert _distributed.timeout_seconds() == _distributed.TIMEOUT_S == 300
    monkeypatch.setenv(_distributed.TIMEOUT_ENV, "12.5")
    assert _distributed.timeout_seconds() == 12.5
    for bad in ("0", "-3", "soon", "inf"):
        monkeypatch.setenv(_distributed.TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=_distributed.TIMEOUT_ENV):
            _distributed.timeout_seconds()


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    """Both failure modes at once (4 processes); by mode: each rank's exit code, seconds
    from start to exit, and output."""
    runs = {}
    for mode in ("raise", "hang"):
        store = tmp_path_factory.mktemp(f"ddp_{mode}")
        logs = [store / f"rank{rank}.log" for rank in range(WORLD)]
        with contextlib.ExitStack() as files:
            outputs = [files.enter_context(open(log, "w")) for log in logs]
            procs = _launch(store, mode, env={_distributed.TIMEOUT_ENV: str(FAIL_TIMEOUT_S)},
                            outputs=outputs)
        runs[mode] = (procs, logs, time.monotonic())
    ended = {}
    try:
        while len(ended) < len(runs) * WORLD:
            for mode, (procs, _, start) in runs.items():
                for rank, proc in enumerate(procs):
                    if (mode, rank) not in ended and proc.poll() is not None:
                        ended[mode, rank] = time.monotonic() - start
            if any(time.monotonic() - start > FAIL_LIMIT_S for _, _, start in runs.values()):
                break
            time.sleep(0.1)
    finally:
        for procs, _, _ in runs.values():
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
    return {mode: [(procs[rank].returncode, ended.get((mode, rank), float("inf")),
                    logs[rank].read_text()) for rank in range(WORLD)]
            for mode, (procs, logs, _) in runs.items()}


@pytest.mark.parametrize("mode", ["raise", "hang"])
def test_a_failed_process_stops_every_process(failures, mode):
    """Rank 1 fails mid-epoch; both processes exit non-zero within FAIL_LIMIT_S seconds."""
    for rank, (returncode, seconds, log) in enumerate(failures[mode]):
        assert returncode != 0 and seconds < FAIL_LIMIT_S, (rank, returncode, seconds, log[-3000:])
        print(f"{mode}: rank {rank} exited with {returncode} after {seconds:.1f} s")
    assert "rank 1 fails on purpose" in failures[mode][1][2]


def test_the_other_process_learns_of_the_error_at_once(failures):
    """Rank 1 raised: it closes its connections, so rank 0's collective fails before its
    timeout, with rank 1's error in the message."""
    log = failures["raise"][0][2]
    assert "CollectiveError: data-parallel fit, rank 0 of 2" in log
    assert "rank 1 failed with RuntimeError: rank 1 fails on purpose" in log
    assert float(log.split("fit failed after ")[1].split()[0]) < FAIL_TIMEOUT_S


def test_a_process_that_stops_responding_times_the_others_out(failures):
    log = failures["hang"][0][2]
    assert f"timed out after {FAIL_TIMEOUT_S} s" in log
    assert "another process of the group probably failed or stopped responding" in log
    assert f"({_distributed.TIMEOUT_ENV})" in log
    assert float(log.split("fit failed after ")[1].split()[0]) >= FAIL_TIMEOUT_S


def test_killed_data_parallel_fit_resumes_from_its_checkpoints(tmp_path):
    """Both processes killed in a2 and started again: every process resumes from the same
    epoch and the fit predicts as the uninterrupted data-parallel fit."""
    outcomes, saved = {}, None
    for mode in ("reference", "kill", "resume"):
        procs = _launch(tmp_path, mode)
        logs = [proc.communicate(timeout=300)[0] for proc in procs]
        outcomes[mode] = [(proc.returncode, log) for proc, log in zip(procs, logs)]
        if mode == "kill":  # one folder per process, each with a1 and a2's second epoch
            saved = sorted(sorted(os.listdir(folder))
                           for folder in (tmp_path / "checkpoints").iterdir())
    assert saved == [["a1.pkl", "a2.epoch.pkl", "seed.pkl"]] * WORLD
    for mode, expected in (("reference", 0), ("kill", -9), ("resume", 0)):
        for returncode, log in outcomes[mode]:
            assert returncode == expected, (mode, log[-3000:])
    for rank in range(WORLD):
        np.testing.assert_array_equal(np.load(tmp_path / f"resume_rank{rank}.npy"),
                                      np.load(tmp_path / f"reference_rank{rank}.npy"))
    assert os.listdir(tmp_path / "checkpoints") == []  # finished: removed on every rank
