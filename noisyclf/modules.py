"""PyTorch building blocks: encoders, projection and classification heads.

The paper (section 5.2) uses a ResNet-18 encoder trained from scratch, a
projection head with "one hidden layer and a ReLU non-linearity" for the
contrastive steps (a1, b2) and a classifier with "a single hidden layer with
batch normalization and a ReLU activation function" (a2, b3).  At CPU scale
:class:`SmallCNN` (small images) and :class:`MLPEncoder` (tabular data) stand
in for the ResNet-18, which is available as :class:`CifarResNet18`.

Every encoder starts with a :class:`Standardize` layer holding the
training-set mean and standard deviation as buffers, so augmentations act on
the raw input scale and the statistics travel with the saved model.  A
user's own ``nn.Module`` (a class or an instance) is wrapped the same way by
:func:`make_encoder`, which finds its embedding size by a dry forward pass.
"""

import copy

import torch
from torch import nn
import torch.nn.functional as F

__all__ = [
    "Standardize",
    "SmallCNN",
    "AirbenchCNN",
    "CifarResNet18",
    "MLPEncoder",
    "ProjectionHead",
    "ClassifierHead",
    "ContrastiveModule",
    "ClassifierModule",
    "make_encoder",
    "embedding_size",
    "encoder_kind",
    "is_module_class",
    "runs_channels_last",
]


class Standardize(nn.Module):
    """Subtract a mean and divide by a scale stored as buffers.

    Parameters
    ----------
    mean, scale : torch.Tensor
        Broadcastable to the input without its batch dimension, e.g.
        ``(C, 1, 1)`` for images or ``(D,)`` for features.
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.scale


def _conv_bn(in_ch, out_ch, stride=1):
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _global_avg_pool(x):
    """Global average pooling of ``(N, C, H, W)`` feature maps to ``(N, C)``.

    The mean over ``H, W``; for a channels-last tensor it is taken over the
    ``(N, H*W, C)`` view of its memory.  Both give the same values, but the
    gradient then reaches the ReLU and BatchNorm backward passes before it
    laid out as their channels-last tensors, not as the broadcast gradient
    of ``x.mean((2, 3))`` or ``adaptive_avg_pool2d``, which they read on a
    slow path (``benchmarks/bench_speed.py --sections layout``).
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return x.permute(0, 2, 3, 1).flatten(1, 2).mean(1)
    return x.mean((2, 3))


class SmallCNN(nn.Module):
    """A small convolutional encoder for small images (e.g. 8x8 digits, 32x32 CIFAR).

    Three 3x3 conv-BN-ReLU blocks of ``widths`` channels; the first two are
    followed by 2x2 max-pooling while the image is at least 4 pixels wide,
    and global average pooling gives a ``widths[-1]``-dimensional feature.

    Where a block pools, it computes conv-BN-pool-ReLU: ReLU and max-pooling
    commute exactly (``max(relu(a), relu(b)) = relu(max(a, b))``, and the
    gradient reaches the same input position), so this is the same function
    with the same gradients as conv-BN-ReLU-pool, with the ReLU (forward and
    backward) on a quarter of the values.  The layers keep the
    indices of the conv-BN-ReLU-pool layout (``features.0`` conv-BN-pool,
    ``features.1`` ReLU, ...), so state dicts of either layout load into it.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    widths : tuple of int, default=(32, 64, 128)
        Channels of the conv blocks.
    image_size : int, default=32
        Smallest spatial side of the input; decides how often to pool.

    Examples
    --------
    >>> import torch
    >>> SmallCNN(1, image_size=8)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 128])
    """

    def __init__(self, in_channels, widths=(32, 64, 128), image_size=32):
        super().__init__()
        layers = []
        ch = in_channels
        size = image_size
        for i, w in enumerate(widths):
            block = _conv_bn(ch, w)
            if i < len(widths) - 1 and size >= 4:
                # conv-BN-ReLU, pool == conv-BN-pool, ReLU (same indices and keys)
                relu = block[2]
                block[2] = nn.MaxPool2d(2)
                layers += [block, relu]
                size //= 2
            else:
                layers.append(block)
            ch = w
        self.features = nn.Sequential(*layers)
        self.out_features = ch

    def forward(self, x):
        return _global_avg_pool(self.features(x))


def _conv_group(in_ch, out_ch, pool):
    """conv - (2x2 max-pool) - BN - ReLU - conv - BN - ReLU, airbench's ConvGroup."""
    layers = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
               nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
               nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class AirbenchCNN(nn.Module):
    """A 7-convolution encoder for colour images, after airbench94 at half its width.

    The layout of Jordan's airbench94 (``KellerJordan/cifar10-airbench``),
    which reaches 94 % on CIFAR-10 in a few seconds of GPU time: a stem
    convolution, then three groups of conv - 2x2 max-pool - BN - ReLU -
    conv - BN - ReLU of ``widths`` channels, and global pooling to a
    ``widths[-1]``-dimensional feature.  Where airbench94 starts with a 2x2
    convolution whose weights are fixed to whiten the data's patches, this
    stem is a learned 3x3 conv-BN-ReLU (the encoder is trained by SimCLR from
    scratch, and :class:`Standardize` already scales each channel); where it
    ends with a 3x3 max-pool over the 4x4 map, this one averages globally, as
    the other encoders here do; ReLU stands in for GELU (cheaper on CPU).
    A group pools only while the image is at least 4 pixels wide.  The
    default widths are half airbench94's (64, 256, 256): a quarter of its
    FLOPs, the best accuracy per CPU second of the candidates measured on
    CIFAR-10 (``benchmarks/bench_encoders.py``); this is ``encoder="airbench"``.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    widths : tuple of int, default=(32, 128, 128)
        Channels of the three conv groups (airbench94's are (64, 256, 256)).
    stem_width : int, default=24
        Channels of the stem convolution (airbench94's whitening width).
    image_size : int, default=32
        Smallest spatial side of the input; decides how often to pool.

    Examples
    --------
    >>> import torch
    >>> AirbenchCNN(3, widths=(16, 32, 32))(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 32])
    """

    def __init__(self, in_channels, widths=(32, 128, 128), stem_width=24, image_size=32):
        super().__init__()
        layers = [_conv_bn(in_channels, stem_width)]
        ch, size = stem_width, image_size
        for w in widths:
            pool = size >= 4
            layers.append(_conv_group(ch, w, pool))
            size //= 2 if pool else 1
            ch = w
        self.features = nn.Sequential(*layers)
        self.out_features = ch

    def forward(self, x):
        return _global_avg_pool(self.features(x))


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for small images, as used for CIFAR (He et al., 2016).

    The ImageNet stem (7x7 stride-2 convolution and max-pooling) is replaced by
    a 3x3 stride-1 convolution without max-pooling, the usual CIFAR variant
    used by SimCLR, ELR and the paper.  Output: 512-dimensional features.

    Parameters
    ----------
    in_channels : int, default=3

    Examples
    --------
    >>> import torch
    >>> CifarResNet18(3)(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 512])
    """

    def __init__(self, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers = []
        in_planes = 64
        for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers.append(nn.Sequential(
                _BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)
            ))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_features = 512

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return _global_avg_pool(out)


class MLPEncoder(nn.Module):
    """Multi-layer perceptron encoder for tabular features.

    Parameters
    ----------
    in_features : int
    hidden : tuple of int, default=(256, 256)
        Widths of the Linear-BatchNorm-ReLU blocks; the last is the feature size.

    Examples
    --------
    >>> import torch
    >>> MLPEncoder(5)(torch.zeros(3, 5)).shape
    torch.Size([3, 256])
    """

    def __init__(self, in_features, hidden=(256, 256)):
        super().__init__()
        layers = []
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            d = h
        self.net = nn.Sequential(*layers)
        self.out_features = d

    def forward(self, x):
        return self.net(torch.flatten(x, 1))


class ProjectionHead(nn.Module):
    """SimCLR projection head: Linear - ReLU - Linear (paper section 5.2).

    Examples
    --------
    >>> import torch
    >>> ProjectionHead(128, 64)(torch.zeros(2, 128)).shape
    torch.Size([2, 64])
    """

    def __init__(self, in_features, out_features=128, hidden=None):
        super().__init__()
        hidden = hidden or in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features)
        )

    def forward(self, x):
        return self.net(x)


class ClassifierHead(nn.Module):
    """Classifier: one hidden layer with BatchNorm and ReLU (paper section 5.2).

    Examples
    --------
    >>> import torch
    >>> ClassifierHead(128, 10)(torch.zeros(4, 128)).shape
    torch.Size([4, 10])
    """

    def __init__(self, in_features, n_classes, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.net(x)


class ContrastiveModule(nn.Module):
    """Encoder followed by a projection head (phases a1 and b2).

    ``forward`` takes the input batch (and ignores extra keyword arguments
    such as sample ids, which skorch passes along from a dict ``X``) and
    returns the projections; :meth:`embed` returns the encoder features.
    """

    def __init__(self, encoder, projection):
        super().__init__()
        self.encoder = encoder
        self.projection = projection

    def embed(self, x):
        return self.encoder(x)

    def forward(self, x, **kwargs):
        return self.projection(self.encoder(x))


class ClassifierModule(nn.Module):
    """Encoder followed by a classifier head (phases a2 and b3); returns logits."""

    def __init__(self, encoder, head):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def embed(self, x):
        return self.encoder(x)

    def forward(self, x, **kwargs):
        return self.head(self.encoder(x))


#: The built-in encoders' names (``encoder=`` of the estimator, besides ``"auto"``).
BUILT_IN_ENCODERS = ("cnn", "airbench", "resnet18", "mlp")
#: Smallest side of the colour images that ``encoder="auto"`` gives :class:`AirbenchCNN`.
COLOUR_MIN_SIZE = 16
_CONV = ("cnn", "airbench", "resnet18")


def is_module_class(obj):
    """Whether ``obj`` is a subclass of :class:`torch.nn.Module` (not an instance)."""
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def encoder_kind(encoder, input_shape, encoder_params=None):
    """The encoder an ``encoder`` hyperparameter means for samples of ``input_shape``.

    ``"auto"`` is ``"airbench"`` for colour images (3 or more channels, both
    sides at least :data:`COLOUR_MIN_SIZE` pixels), ``"cnn"`` for other images
    ((C, H, W) samples: grey or small ones, such as digits and MNIST) and
    ``"mlp"`` for tabular features; a module class or instance is
    ``"custom"``.  The choice for colour images is measured on CIFAR-10
    (accuracy against CPU time, ``benchmarks/bench_encoders.py``).  Raises a
    ``ValueError`` for ``encoder__*`` parameters (``encoder_params``) without
    an encoder class and for a conv encoder on tabular input.
    """
    is_image = len(input_shape) == 3
    custom = not isinstance(encoder, str)
    if encoder_params and not is_module_class(encoder):
        given = f"an instance of {type(encoder).__name__}" if custom else repr(encoder)
        raise ValueError(
            f"encoder__* parameters ({', '.join(encoder_params)}) are keyword arguments "
            f"of an encoder class, but encoder={given} is not a torch.nn.Module class; "
            f"pass the class, or drop them."
        )
    if custom:
        return "custom"
    if encoder == "auto":
        if not is_image:
            return "mlp"
        colour = input_shape[0] >= 3 and min(input_shape[1:]) >= COLOUR_MIN_SIZE
        return "airbench" if colour else "cnn"
    if encoder in _CONV and not is_image:
        raise ValueError(
            f"encoder={encoder!r} needs image input: pass image_shape=(C, H, W) "
            f"for 2-D X, or 3-D/4-D X; got X with samples of shape {tuple(input_shape)}."
        )
    return encoder


def make_encoder(kind, input_shape, mean, scale, **kwargs):
    """Build an encoder (with its :class:`Standardize` layer) for one input shape.

    Parameters
    ----------
    kind : {"cnn", "airbench", "resnet18", "mlp"}, nn.Module subclass or instance
        A built-in encoder by name, or the user's own module: a class is
        called as ``kind(**kwargs)``; an instance is deep-copied (so the
        caller's module is never trained in place and its weights are the
        start).  Either way the module receives standardised input of shape
        ``(batch, *input_shape)`` and must return ``(batch, d)`` features.
    input_shape : tuple
        ``(C, H, W)`` for images, ``(D,)`` for tabular features.
    mean, scale : array-like
        Standardisation statistics (see :class:`Standardize`).
    **kwargs
        Keyword arguments of a module class (``encoder__*`` of the estimator
        without their prefix); only with a class.

    Returns
    -------
    encoder : torch.nn.Sequential
        ``Standardize`` followed by the body, with an ``out_features``
        attribute (the body's, for the built-in encoders; found by a dry
        forward pass for a user's module, see :func:`embedding_size`).

    Raises
    ------
    ValueError
        For an unknown name, keyword arguments without a module class, or a
        user's module that fails on, or does not return ``(batch, d)``
        features for, a batch of the input shape.

    Examples
    --------
    >>> enc = make_encoder("mlp", (4,), [0.0] * 4, [1.0] * 4)
    >>> enc.out_features
    256
    >>> from torch import nn
    >>> make_encoder(nn.Linear, (4,), [0.0] * 4, [1.0] * 4, in_features=4,
    ...              out_features=3).out_features
    3
    """
    custom = is_module_class(kind) or isinstance(kind, nn.Module)
    if kwargs and not is_module_class(kind):
        raise ValueError(
            f"encoder__* parameters ({', '.join(sorted(kwargs))}) are keyword arguments "
            f"of an encoder class, but encoder={_short_repr(kind)} is not an nn.Module "
            f"class; pass the class itself, or drop them."
        )
    if is_module_class(kind):
        try:
            body = kind(**kwargs)
        except TypeError as exc:
            raise ValueError(
                f"encoder={kind.__name__} could not be built with the encoder__* "
                f"parameters {kwargs}: {exc}"
            ) from exc
    elif isinstance(kind, nn.Module):
        body = copy.deepcopy(kind).to("cpu")
    elif kind == "cnn":
        body = SmallCNN(input_shape[0], image_size=min(input_shape[1:]))
    elif kind == "airbench":
        body = AirbenchCNN(input_shape[0], image_size=min(input_shape[1:]))
    elif kind == "resnet18":
        body = CifarResNet18(input_shape[0])
    elif kind == "mlp":
        in_features = 1
        for s in input_shape:
            in_features *= s
        body = MLPEncoder(in_features)
    else:
        raise ValueError(
            f"encoder must be one of 'cnn', 'airbench', 'resnet18', 'mlp', an nn.Module "
            f"subclass or "
            f"an nn.Module instance; got {kind!r}."
        )
    encoder = nn.Sequential(Standardize(mean, scale), body)
    encoder.out_features = (embedding_size(encoder, input_shape) if custom
                            else body.out_features)
    return encoder


def _short_repr(obj, limit=60):
    if isinstance(obj, type):
        return obj.__name__
    if isinstance(obj, nn.Module):
        return f"<{type(obj).__name__} instance>"
    text = " ".join(repr(obj).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def embedding_size(encoder, input_shape):
    """Size ``d`` of the ``(batch, d)`` features of ``encoder``, by a dry forward pass.

    The pass runs on a batch of 2 zero inputs of ``input_shape`` (through the
    :class:`Standardize` layer when ``encoder`` has one), without gradients
    and in eval mode (so BatchNorm statistics do not move); every submodule's
    training mode is restored afterwards.

    Raises
    ------
    ValueError
        Naming ``encoder``, when the pass fails or its output is not a 2-D
        floating-point tensor with one row per sample.

    Examples
    --------
    >>> from torch import nn
    >>> embedding_size(nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), (3, 2, 2))
    5
    """
    modes = [(m, m.training) for m in encoder.modules()]
    device = _device_of(encoder)
    x = torch.zeros((2, *input_shape), dtype=torch.float32, device=device)
    body = encoder[-1] if isinstance(encoder, nn.Sequential) else encoder
    name = type(body).__name__
    try:
        encoder.eval()
        with torch.no_grad():
            try:
                out = encoder(x)
            except Exception as exc:
                raise ValueError(
                    f"encoder={name} failed on a batch of 2 training samples of shape "
                    f"{tuple(x.shape)} (standardised input, as the built-in encoders get): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    finally:
        for module, training in modes:
            module.training = training
    if not torch.is_tensor(out):
        raise ValueError(
            f"encoder={name} must return a tensor of (batch, d) features; it returned "
            f"a {type(out).__name__} for a batch of shape {tuple(x.shape)}."
        )
    if out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 1 or not out.is_floating_point():
        raise ValueError(
            f"encoder={name} must return (batch, d) floating-point features; for a batch "
            f"of shape {tuple(x.shape)} it returned shape {tuple(out.shape)} ({out.dtype}). "
            f"End the module with e.g. nn.Flatten() or a global pooling layer."
        )
    return int(out.shape[1])


def _device_of(module):
    """The device of ``module``'s first parameter or buffer (the CPU for none)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return tensors[0].device if tensors else torch.device("cpu")


def runs_channels_last(encoder, input_shape, kind="custom"):
    """Whether ``encoder`` computes the same features from channels-last images.

    Channels-last memory format (conv weights and image batches stored as
    ``(N, H, W, C)``) makes bf16 convolutions on CPU about twice as fast, but
    a module that reshapes its activations with ``.view`` fails on such
    tensors, and one that reads ``.data_ptr()`` or strides may compute
    something else.  The built-in conv encoders (``kind`` ``"cnn"``,
    ``"airbench"``, ``"resnet18"``) run channels-last; a user's module
    (``kind="custom"``) does when a dry run agrees: the module in eval mode,
    on a batch of 2 random images, once as it is and once converted to
    channels-last (a copy; ``encoder`` is left as it was), must give
    features that match to 1e-3 relative error, without raising.  Tabular
    input never does.

    Examples
    --------
    >>> from torch import nn
    >>> runs_channels_last(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), (3, 8, 8))
    True
    >>> class ViewFlatten(nn.Module):
    ...     def forward(self, x):
    ...         return x.view(len(x), -1)
    >>> runs_channels_last(nn.Sequential(nn.Conv2d(3, 4, 3), ViewFlatten()), (3, 8, 8))
    False
    """
    if len(input_shape) != 3:
        return False
    if kind != "custom":
        return kind in _CONV
    device = _device_of(encoder)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((2, *input_shape), generator=generator).to(device)
    model = copy.deepcopy(encoder).eval()
    try:
        with torch.no_grad():
            reference = model(x)
            model.to(memory_format=torch.channels_last)
            out = model(x.contiguous(memory_format=torch.channels_last))
    except Exception:  # a .view() on a channels-last tensor, or any other failure
        return False
    if not (torch.is_tensor(out) and out.shape == reference.shape):
        return False
    error = (out.float() - reference.float()).norm()
    return bool(error <= 1e-3 * reference.float().norm() + 1e-6)
