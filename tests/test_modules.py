"""Encoders and heads (paper section 5.2)."""

import pytest
import torch
from torch import nn

from noisyclf.modules import (
    CifarResNet18, ClassifierHead, MLPEncoder, ProjectionHead, SmallCNN, Standardize,
    make_encoder,
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
