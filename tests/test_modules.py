"""Encoders and heads (paper section 5.2)."""

import numpy as np
import pytest
import torch
from torch import nn

from noisyclf.modules import (
    AirbenchCNN, CifarResNet18, ClassifierHead, ClassifierModule, ContrastiveModule,
    MLPEncoder, ProjectionHead, SmallCNN, Standardize, _global_avg_pool, encoder_kind,
    make_encoder, runs_channels_last,
)



def test_cifar_resnet18_has_3x3_stride1_stem_and_no_maxpool():
    net = CifarResNet18(3)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    n_params = sum(p.numel() for p in net.parameters())
    assert 11.0e6 < n_params < 11.3e6  # ResNet-18 without its 512x10 classifier
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


@pytest.mark.parametrize("size", [8, 32])
def test_small_cnn_shapes(size):
    assert SmallCNN(3, image_size=size)(torch.zeros(2, 3, size, size)).shape == (2, 128)


def test_heads_follow_the_paper():
    proj = ProjectionHead(16, 8)
    assert [type(m) for m in proj.net] == [nn.Linear, nn.ReLU, nn.Linear]
    head = ClassifierHead(16, 5, hidden=12)
    assert [type(m) for m in head.net] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head(torch.zeros(3, 16)).shape == (3, 5)
    assert MLPEncoder(7)(torch.zeros(4, 7)).shape == (4, 256)


def test_standardize():
    layer = Standardize(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]))
    out = layer(torch.tensor([[3.0, 10.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0]]))
    assert set(dict(layer.named_buffers())) == {"mean", "scale"}


def test_make_encoder():
    enc = make_encoder("cnn", (1, 8, 8), [[[0.5]]], [[[2.0]]])
    assert isinstance(enc[0], Standardize) and enc.out_features == 128
    assert make_encoder("resnet18", (3, 8, 8), [0.0] * 3, [1.0] * 3).out_features == 512
    with pytest.raises(ValueError, match="encoder must be one of"):
        make_encoder("vit", (3, 8, 8), 0.0, 1.0)


# ------------------------------------------------- shapes and structure, in detail
@pytest.mark.parametrize("in_channels, size, widths", [
    (1, 8, (32, 64, 128)),
    (3, 5, (8, 16)),
    (2, 3, (4, 8, 16)),      # too small to pool: no max-pooling at all
])
def test_small_cnn_pools_only_while_the_image_is_at_least_4_wide(in_channels, size, widths):
    net = SmallCNN(in_channels, widths=widths, image_size=size)
    assert net(torch.randn(3, in_channels, size, size)).shape == (3, widths[-1])
    assert net.out_features == widths[-1]
    n_pools = sum(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert n_pools == sum(1 for i in range(len(widths) - 1) if size // 2 ** i >= 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_global_avg_pool_is_the_spatial_mean(dtype, memory_format):
    x0 = torch.randn(4, 6, 5, 3).to(dtype).contiguous(memory_format=memory_format)
    x = x0.clone().requires_grad_()
    out = _global_avg_pool(torch.relu(x))
    ref = torch.relu(x0).mean((2, 3))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6 if dtype == torch.float32 else 0)
    g = torch.randn_like(out)
    out.backward(g)
    expected = (g / 15)[:, :, None, None] * (x0 > 0)
    torch.testing.assert_close(x.grad, expected.to(dtype))


def _conv_bn_relu_pool(in_channels, widths, size):
    """The textbook layout SmallCNN stands for: conv-BN-ReLU, then max-pooling."""
    layers, ch = [], in_channels
    for i, w in enumerate(widths):
        layers.append(nn.Sequential(nn.Conv2d(ch, w, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(w), nn.ReLU(inplace=True)))
        if i < len(widths) - 1 and size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        ch = w
    return nn.Sequential(*layers)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 8)])
def test_small_cnn_is_conv_bn_relu_pool_exactly(precision, in_channels, size):
    # Pooling before the ReLU changes neither the outputs nor the gradients, in
    # train and eval mode, and a conv-BN-ReLU-pool stack's state dict loads.
    torch.manual_seed(0)
    ref = _conv_bn_relu_pool(in_channels, (32, 64, 128), size)
    net = SmallCNN(in_channels, image_size=size)
    net.features.load_state_dict(ref.state_dict())  # same keys
    x = torch.randn(16, in_channels, size, size).contiguous(memory_format=torch.channels_last)
    for module in (ref, net):
        module.to(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    outs = []
    for module, forward in ((ref, lambda z: ref(z).mean((2, 3))), (net, net)):
        with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
            out = forward(x)
        (out.float() ** 2).sum().backward()
        outs.append(out)
    assert torch.equal(outs[0], outs[1])
    for p, q in zip(ref.parameters(), net.parameters()):
        assert torch.equal(p.grad, q.grad)
    for a, b in zip(ref.state_dict().values(), net.features.state_dict().values()):
        assert torch.equal(a, b)  # BatchNorm running statistics too
    ref.eval(), net.eval()
    with torch.no_grad():
        assert torch.equal(ref(x).mean((2, 3)), net(x))
    # ReLU after the pool: 4x fewer values through it where the block pools.
    relu_inputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: relu_inputs.append(i[0].numel()))
             for m in net.modules() if isinstance(m, nn.ReLU)]
    net(x)
    for h in hooks:
        h.remove()
    assert relu_inputs[0] == 16 * 32 * (size // 2) ** 2


def test_small_cnn_non_square_images():
    assert SmallCNN(1, image_size=6)(torch.randn(2, 1, 6, 10)).shape == (2, 128)


def test_cifar_resnet18_layout():
    net = CifarResNet18(1)
    assert net.conv1.in_channels == 1 and net.conv1.padding == (1, 1)
    assert not any(isinstance(m, (nn.Linear, nn.AvgPool2d)) for m in net.modules())
    assert [len(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2] * 4
    # Stem + 16 block convolutions are 3x3; 3 projection shortcuts are 1x1.
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 17
    assert sum(m.kernel_size == (1, 1) for m in convs) == 3
    net.eval()
    with torch.no_grad():
        x = torch.randn(1, 1, 32, 32)
        stem = net.bn1(net.conv1(x))
        assert stem.shape[-2:] == (32, 32)  # stride 1, no pooling
        out = net.layer4(net.layer3(net.layer2(net.layer1(stem))))
        assert out.shape == (1, 512, 4, 4)  # three stride-2 stages
        assert net(torch.randn(2, 1, 12, 12)).shape == (2, 512)


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4)])
def test_mlp_encoder_flattens_its_input(shape):
    net = MLPEncoder(int(np.prod(shape)), hidden=(16, 8))
    assert net(torch.randn(5, *shape)).shape == (5, 8)
    assert net.out_features == 8
    assert [type(m) for m in net.net] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2


def test_head_widths():
    proj = ProjectionHead(64, 16)
    assert (proj.net[0].in_features, proj.net[0].out_features, proj.net[2].out_features) \
        == (64, 64, 16)  # hidden width defaults to the input width
    assert ProjectionHead(64, 16, hidden=32).net[0].out_features == 32
    assert ProjectionHead(64, 16)(torch.randn(4, 64)).shape == (4, 16)
    head = ClassifierHead(128, 10)
    assert head.net[0].in_features == 128 and head.net[1].num_features == 256
    assert head.net[3].out_features == 10


def test_composite_modules_forward_and_embed():
    enc = make_encoder("mlp", (6,), np.zeros(6), np.ones(6))
    x = torch.randn(5, 6)
    cmod = ContrastiveModule(enc, ProjectionHead(enc.out_features, 8)).eval()
    clf = ClassifierModule(enc, ClassifierHead(enc.out_features, 3)).eval()
    with torch.no_grad():
        # Extra keyword arguments (sample ids etc. from a dict X) are ignored.
        assert cmod(x, index=torch.arange(5)).shape == (5, 8)
        assert clf(x, index=torch.arange(5), sample_weight=torch.ones(5)).shape == (5, 3)
        torch.testing.assert_close(cmod.embed(x), enc(x))
        torch.testing.assert_close(clf.embed(x), enc(x))
        torch.testing.assert_close(clf(x), clf.head(enc(x)))
        torch.testing.assert_close(cmod(x), cmod.projection(enc(x)))


def test_standardize_per_channel_images():
    mean = np.array([0.5, -1.0, 2.0]).reshape(3, 1, 1)   # float64 in, float32 buffers
    scale = np.array([2.0, 0.5, 4.0]).reshape(3, 1, 1)
    layer = Standardize(mean, scale)
    assert layer.mean.dtype == torch.float32 and layer.scale.dtype == torch.float32
    assert sum(p.numel() for p in layer.parameters()) == 0
    x = torch.randn(4, 3, 5, 5)
    expected = (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(
        scale, dtype=torch.float32)
    torch.testing.assert_close(layer(x), expected)
    assert layer(torch.full((1, 3, 1, 1), 2.0))[0, :, 0, 0].tolist() == [0.75, 6.0, 0.0]
    # The statistics travel with the state dict.
    assert set(layer.state_dict()) == {"mean", "scale"}


@pytest.mark.parametrize("kind, shape, body, out", [
    ("cnn", (3, 16, 16), SmallCNN, 128), ("resnet18", (1, 8, 8), CifarResNet18, 512),
    ("airbench", (3, 32, 32), AirbenchCNN, 128), ("airbench", (1, 8, 8), AirbenchCNN, 128),
    ("mlp", (1, 8, 8), MLPEncoder, 256), ("mlp", (10,), MLPEncoder, 256),
])
def test_make_encoder_each_kind(kind, shape, body, out):
    bshape = (shape[0], 1, 1) if len(shape) == 3 else shape
    mean = np.full(bshape, 0.25, dtype=np.float32)
    enc = make_encoder(kind, shape, mean, np.full(bshape, 2.0, dtype=np.float32))
    assert isinstance(enc, nn.Sequential) and len(enc) == 2
    assert isinstance(enc[0], Standardize) and isinstance(enc[1], body)
    np.testing.assert_array_equal(enc[0].mean.numpy(), mean)
    assert enc.out_features == out
    with torch.no_grad():
        assert enc.eval()(torch.randn(2, *shape)).shape == (2, out)


@pytest.mark.parametrize("kind", ["CNN", "resnet50", "auto", None])
def test_make_encoder_rejects_other_kinds(kind):
    with pytest.raises(ValueError, match="encoder must be one of"):
        make_encoder(kind, (1, 8, 8), 0.0, 1.0)


# ------------------------------------------------------------ airbench-like encoder
def test_airbench_cnn_follows_airbench94():
    """Stem conv, then three groups conv - pool - BN - ReLU - conv - BN - ReLU of
    widths 64/256/256: airbench94's 2M parameters and 0.29 GFLOPs per 32x32 image."""
    from torch.utils.flop_counter import FlopCounterMode
    net = AirbenchCNN(3, widths=(64, 256, 256))
    stem, *groups = net.features
    assert isinstance(stem[0], nn.Conv2d) and stem[0].out_channels == 24
    assert len(groups) == 3
    for group, width in zip(groups, (64, 256, 256)):
        kinds = [type(m) for m in group]
        assert kinds == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d,
                         nn.BatchNorm2d, nn.ReLU]
        assert group[0].out_channels == group[4].out_channels == width
    assert 1.9e6 < sum(p.numel() for p in net.parameters()) < 2.1e6
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = net.eval()(torch.zeros(1, 3, 32, 32))
    assert 0.28e9 < counter.get_total_flops() < 0.30e9
    assert out.shape == (1, 256) and net.out_features == 256
    assert AirbenchCNN(3).out_features == 128  # the default: half the widths


@pytest.mark.parametrize("size, n_pools", [(32, 3), (8, 2), (4, 1), (2, 0)])
def test_airbench_cnn_pools_only_while_the_image_is_at_least_4_wide(size, n_pools):
    net = AirbenchCNN(1, widths=(4, 8, 8), stem_width=4, image_size=size)
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == n_pools
    assert net(torch.randn(2, 1, size, size)).shape == (2, 8)


# ------------------------------------------------------------ channels-last check
class _ViewsInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 8 * 8, 5)

    def forward(self, x):
        return self.linear(x.view(len(x), -1))


class _ReadsMemoryOrder(nn.Module):
    """Reads the input in its memory order: a different function in channels-last."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        h = self.conv(x)
        flat = torch.as_strided(h, (h.numel(),), (1,))
        return flat.reshape(len(h), -1)


@pytest.mark.parametrize("module, expected", [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten()), True),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), True),
    (_ViewsInput(), False),
    (_ReadsMemoryOrder(), False),
])
def test_runs_channels_last_compares_both_layouts(module, expected):
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    assert runs_channels_last(module, (3, 8, 8)) is expected
    # The check runs on a copy: the module keeps its weights, layout and mode.
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]) and value.is_contiguous()
    assert module.training


def test_runs_channels_last_for_torchvision_resnet18():
    torchvision = pytest.importorskip("torchvision")
    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    resnet.fc = nn.Identity()
    assert runs_channels_last(resnet, (3, 16, 16))


@pytest.mark.parametrize("kind, shape, expected", [
    ("cnn", (3, 8, 8), True), ("airbench", (3, 8, 8), True), ("resnet18", (1, 8, 8), True),
    ("mlp", (1, 8, 8), False), ("mlp", (10,), False),
])
def test_runs_channels_last_for_the_built_in_encoders(kind, shape, expected):
    assert runs_channels_last(None, shape, kind) is expected


@pytest.mark.parametrize("shape, expected", [
    ((3, 32, 32), "airbench"), ((3, 16, 24), "airbench"), ((4, 64, 64), "airbench"),
    ((3, 8, 8), "cnn"), ((3, 15, 32), "cnn"), ((1, 28, 28), "cnn"), ((1, 8, 8), "cnn"),
    ((2, 32, 32), "cnn"), ((64,), "mlp"),
])
def test_auto_picks_airbench_for_colour_images_and_cnn_for_grey_or_small(shape, expected):
    assert encoder_kind("auto", shape) == expected
    assert make_encoder(expected, shape, np.zeros(shape[:1] + (1,) * (len(shape) - 1)),
                        np.ones(shape[:1] + (1,) * (len(shape) - 1))).out_features > 0
