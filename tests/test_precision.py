"""Numeric formats and device placement, as behaviour: mixed precision (``precision``:
bf16/fp16/fp32), channels-last convolutions, uint8 images kept uint8 until the device,
GPU readiness (pinned batches, non-blocking copies, gradient scaling) -- tested on CPU.

Speed itself is measured in ``benchmarks/bench_speed.py`` as ratios inside one
run, never asserted here.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import noisyclf.nets as nets_mod
from noisyclf import ContrastiveNoisyClassifier
from noisyclf import _input
from noisyclf.modules import ClassifierHead, ClassifierModule, MLPEncoder
from noisyclf.nets import NoisyLabelNet, TensorBatches, make_criterion, resolve_precision

TINY = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
            gmm_epochs=1, batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def digits_uint8():
    X, y = load_digits(return_X_y=True)
    # 8x8 digits on the 0..16 scale as 8-bit pixels.
    return (X[:200] * 255 / 16).round().astype(np.uint8).reshape(-1, 8, 8), y[:200]


def _tabular_net(precision="fp32", **kwargs):
    module = ClassifierModule(MLPEncoder(4, hidden=(8,)), ClassifierHead(8, 2, hidden=8))
    return NoisyLabelNet(module, make_criterion("ce", n_samples=64, n_classes=2),
                         n_samples=64, record_epochs=0, precision=precision, max_epochs=1,
                         batch_size=16, lr=0.05, train_split=None, verbose=0, **kwargs)


def _tabular_data(n=64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    return {"x": x, "index": torch.arange(n), "sample_weight": torch.ones(n)}, y


# ------------------------------------------------------------------ uint8 on the host
def test_uint8_batches_become_the_same_floats_as_the_host_scaling():
    net = _tabular_net().initialize()
    pixels = torch.arange(256, dtype=torch.uint8)
    on_device = net._on_device(pixels)
    assert on_device.dtype == torch.float32
    # Bit for bit the float32 division of _input (fit-time and predict-time scaling).
    np.testing.assert_array_equal(on_device.numpy(), _input._scaled(pixels.numpy()))


def test_fit_keeps_uint8_images_uint8_and_matches_float_input(digits_uint8, monkeypatch):
    X, y = digits_uint8
    seen = []
    original = NoisyLabelNet.fit

    def spy(self, X_, y_=None, **kwargs):
        seen.append(X_["x"].dtype)
        return original(self, X_, y_, **kwargs)

    monkeypatch.setattr(NoisyLabelNet, "fit", spy)
    clf_u8 = ContrastiveNoisyClassifier(**TINY).fit(X, y)
    assert seen and set(seen) == {torch.uint8}  # no float copy of the data set
    seen.clear()
    X_float = X.astype(np.float32) / np.float32(255)
    clf_f = ContrastiveNoisyClassifier(**TINY).fit(X_float, y)
    assert set(seen) == {torch.float32}
    # The nets scale uint8 batches exactly as the float [0, 1] images: same model.
    np.testing.assert_array_equal(clf_u8.predict_proba(X), clf_f.predict_proba(X_float))
    np.testing.assert_array_equal(clf_u8.transform(X), clf_f.transform(X_float))


def test_standardization_of_uint8_equals_that_of_the_scaled_floats(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8)
    monkeypatch.setattr(_input, "STATS_CHUNK", 7)  # several chunks
    mean, scale = _input.standardization(X)
    Xf = _input._scaled(X).astype(np.float64)
    np.testing.assert_allclose(mean.ravel(), Xf.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(scale.ravel(), Xf.std(axis=(0, 2, 3)), rtol=1e-6)
    assert mean.shape == scale.shape == (3, 1, 1)


# ------------------------------------------------------------------------ precision
def test_auto_precision_follows_the_device(monkeypatch):
    monkeypatch.setattr(nets_mod, "_cpu_has_fast_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(nets_mod, "_cpu_has_fast_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert resolve_precision("auto", "cuda:0") == "fp32"
    assert resolve_precision("fp16", "cuda") == "fp16"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_fp16_needs_cuda():
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        _tabular_net("fp16").initialize()
    with pytest.raises(ValueError, match="precision must be one of"):
        _tabular_net("fp8").initialize()
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="precision"):
        ContrastiveNoisyClassifier(precision="half", **TINY).fit(X[:50], y[:50])


def test_bf16_autocasts_the_training_forward_only(digits_uint8):
    X, y = digits_uint8
    clf = ContrastiveNoisyClassifier(precision="bf16", **TINY)
    seen = {"train": set(), "eval": set(), "criterion": set()}

    def hook(module, args, output):
        seen["train" if module.training else "eval"].add(output.dtype)

    criterion_call = nets_mod._CrossEntropy.forward

    def criterion_spy(self, logits, target, index=None):
        seen["criterion"].add(logits.dtype)
        return criterion_call(self, logits, target, index)

    original_init = NoisyLabelNet.initialize_module

    def initialize_module(self):
        original_init(self)
        self.module_.head.register_forward_hook(hook)
        return self

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NoisyLabelNet, "initialize_module", initialize_module)
        mp.setattr(nets_mod._CrossEntropy, "forward", criterion_spy)
        clf.set_params(loss="ce", phases="pretrain").fit(X, y)
    assert clf.precision_ == "bf16" and clf.classifier_net_.precision == "bf16"
    assert seen["train"] == {torch.bfloat16}  # the head's output under autocast
    assert seen["eval"] == {torch.float32}    # GMM inputs, pseudo-labels: fp32
    assert seen["criterion"] == {torch.float32}  # losses computed in fp32
    assert clf.predict_proba(X).dtype == np.float64
    # Weights stay fp32 (master weights).
    assert {p.dtype for p in clf.classifier_net_.module_.parameters()} == {torch.float32}


def test_bf16_and_fp32_fits_agree_roughly(digits_uint8):
    X, y = digits_uint8
    params = dict(TINY, max_epochs=6, pretrain_epochs=2, phases="pretrain")
    fp32 = ContrastiveNoisyClassifier(precision="fp32", **params).fit(X, y)
    bf16 = ContrastiveNoisyClassifier(precision="bf16", **params).fit(X, y)
    assert fp32.precision_ == "fp32"
    # Not equal (other arithmetic), but the same training: close predictions.
    assert not np.array_equal(fp32.predict_proba(X), bf16.predict_proba(X))
    assert np.mean(fp32.predict(X) == bf16.predict(X)) > 0.9


# ------------------------------------------------------------------- channels-last
def test_channels_last_for_conv_encoders_on_images_only(digits_uint8):
    X, y = digits_uint8
    clf = ContrastiveNoisyClassifier(phases="pretrain", **TINY).fit(X, y)
    net = clf.classifier_net_
    assert net.channels_last
    conv = next(m for m in net.module_.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = net.prepare_input(torch.from_numpy(X[:4, None]))
    assert batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    Xt, yt = load_digits(return_X_y=True)
    tab = ContrastiveNoisyClassifier(phases="pretrain", **TINY).fit(Xt[:100], yt[:100])
    assert not tab.classifier_net_.channels_last
    # A user's module on images: channels-last when its dry run agrees (nn.Flatten
    # flattens in logical order in both layouts); tests/test_encoder.py has one that does not.
    custom = ContrastiveNoisyClassifier(
        phases="pretrain", encoder=torch.nn.Sequential(torch.nn.Flatten(),
                                                       torch.nn.Linear(64, 16)),
        **TINY).fit(X, y)
    assert custom.channels_last_ and custom.classifier_net_.channels_last


# ------------------------------------------------------------------- GPU readiness
def test_tensor_batches_pin_memory_when_asked(monkeypatch):
    pinned = []

    def fake_pin(self):
        pinned.append(tuple(self.shape))
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    X = {"x": torch.zeros(5, 2), "index": torch.arange(5)}
    list(TensorBatches(X, torch.arange(5), batch_size=2))
    assert pinned == []
    list(TensorBatches(X, torch.arange(5), batch_size=2, pin_memory=True))
    assert pinned == [(2, 2), (2,), (2,), (2, 2), (2,), (2,), (1, 2), (1,), (1,)]


def test_cuda_nets_pin_batches_and_copy_without_blocking(monkeypatch):
    net = _tabular_net(device="cuda")  # not initialised: nothing touches CUDA
    data, y = _tabular_data()
    from skorch.dataset import Dataset
    assert net.get_iterator(Dataset(data, y), training=True).pin_memory
    cpu = _tabular_net()
    assert not cpu.get_iterator(Dataset(data, y), training=True).pin_memory
    calls = []
    original = torch.Tensor.to

    def fake_to(self, *args, **kwargs):
        if args and isinstance(args[0], (str, torch.device)) and "cuda" in str(args[0]):
            calls.append(kwargs.get("non_blocking", False))
            return self
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    out = net._on_device(torch.arange(3, dtype=torch.uint8))
    assert calls == [True] and out.dtype == torch.float32


class _RecordingScaler:
    """Stands in for torch.amp.GradScaler (CUDA only) to check the calls."""

    def __init__(self):
        self.calls = []

    def is_enabled(self):
        return True

    def scale(self, loss):
        self.calls.append("scale")
        return loss * 1.0

    def step(self, optimizer):
        self.calls.append("step")
        optimizer.step()

    def update(self):
        self.calls.append("update")


def test_gradient_scaler_drives_backward_and_step():
    net = _tabular_net().initialize()
    assert not net.grad_scaler_.is_enabled()  # fp32: no scaling
    net.grad_scaler_ = _RecordingScaler()
    data, y = _tabular_data()
    before = [p.detach().clone() for p in net.module_.parameters()]
    net.partial_fit(data, y, epochs=1)
    steps = 64 // 16
    assert net.grad_scaler_.calls == ["scale", "step", "update"] * steps
    assert any(not torch.equal(b, p) for b, p in zip(before, net.module_.parameters()))


def test_predict_proba_is_batch_invariant_in_bf16(digits_uint8):
    X, y = digits_uint8
    clf = ContrastiveNoisyClassifier(phases="pretrain", precision="bf16", **TINY).fit(X, y)
    whole = clf.predict_proba(X)
    parts = np.vstack([clf.predict_proba(X[i:i + 7]) for i in range(0, len(X), 7)])
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6)
