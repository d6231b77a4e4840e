"""The skorch nets: batching, per-sample loss records, divergence guard."""

import numpy as np
import pytest
import torch

from noisyclf.modules import ClassifierHead, ClassifierModule, MLPEncoder
from noisyclf.nets import DivergenceError, NoisyLabelNet, TensorBatches, make_criterion


def test_tensor_batches_cover_every_sample_once_per_pass():
    torch.manual_seed(0)
    X = {"x": torch.arange(10) * 10, "index": torch.arange(10)}
    batches = TensorBatches(X, torch.arange(10), batch_size=3, shuffle=True)
    assert len(batches) == 4
    first = torch.cat([b[0]["index"] for b in batches])
    second = torch.cat([b[0]["index"] for b in batches])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert not torch.equal(first, second)  # reshuffled on every pass
    for Xi, yi in batches:
        assert torch.equal(Xi["x"], Xi["index"] * 10) and torch.equal(yi, Xi["index"])
    assert len(TensorBatches(X, None, batch_size=3, drop_last=True)) == 3
    assert [len(b[0]["x"]) for b in TensorBatches(X, None, batch_size=-1)] == [10]


def _net(n, d, k, **kwargs):
    torch.manual_seed(0)
    module = ClassifierModule(MLPEncoder(d, hidden=(8,)), ClassifierHead(8, k, hidden=8))
    return NoisyLabelNet(module, make_criterion("ce", n_samples=n, n_classes=k),
                         n_samples=n, train_split=None, verbose=0, **kwargs)


def test_recorded_losses_are_the_per_sample_cross_entropy_of_the_last_epochs():
    rng = np.random.RandomState(0)
    n, d, k = 40, 5, 3
    x = torch.as_tensor(rng.randn(n, d), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, k, n))
    data = {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}
    # lr=0: the weights never move, so every epoch's training-mode loss (one
    # full batch, so BatchNorm uses the same statistics) is the same.
    net = _net(n, d, k, lr=0.0, max_epochs=4, batch_size=n, record_epochs=2).fit(data, y)
    assert len(net.recorded_losses_) == 2
    net.module_.train()
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(net.module_(x), y, reduction="none").numpy()
    np.testing.assert_allclose(net.mean_recorded_loss(), ce, rtol=1e-5)


def test_nan_loss_raises_divergence_error_and_weights_can_be_restored():
    n, d, k = 20, 4, 2
    x = torch.randn(n, d)
    x[3, 0] = float("nan")
    y = torch.arange(n) % k
    data = {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}
    net = _net(n, d, k, lr=0.1, max_epochs=2, batch_size=n)
    with pytest.raises(DivergenceError, match="loss became nan"):
        net.fit(data, y)
    initial = {key: v.clone() for key, v in net._last_finite_state.items()}
    net.restore_last_finite()
    for key, v in net.module_.state_dict().items():
        torch.testing.assert_close(v, initial[key])
    assert not hasattr(net, "_last_finite_state")


def test_make_criterion_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        make_criterion("mae", n_samples=3, n_classes=2)
