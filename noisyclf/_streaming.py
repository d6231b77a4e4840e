"""Streaming a :class:`torch.utils.data.Dataset` of images through the estimator (private).

``fit`` (and ``predict``, ``predict_proba``, ``score``, ``transform``) take,
besides arrays, a map-style torch ``Dataset`` whose items are images or
``(image, label, ...)`` tuples -- e.g. torchvision's ``ImageFolder`` -- and
never hold all its images in memory:

* :class:`ImageStream` wraps the user's dataset: item ``i`` becomes a uint8
  ``(C, H, W)`` tensor of one fixed size (from a PIL image, an ndarray or a
  tensor, resized to ``image_size`` when given).  The caller's dataset is
  read, never modified.
* :func:`batches` is the nets' iterator over ``{"x": ImageStream, "index":
  ..., ...}``: a :class:`torch.utils.data.DataLoader` whose ``num_workers``
  processes decode and resize per sample; each batch carries the dataset
  positions of its samples (``"index"``), so ELR's targets, the recorded
  per-sample losses and the pseudo-labels stay indexed by position.  Its
  shuffling draws ``torch.randperm(n)`` from torch's global RNG like
  :class:`~noisyclf.nets.TensorBatches`, so a streamed fit sees the same
  batches as the in-memory fit of the same images.  uint8 batches go to the
  device as they are (pinned on CUDA); the nets scale them and augment there.
* :func:`scan` is one streamed pass before training: per-channel histograms
  of the pixel values (exact counts, summed in the workers) give the
  standardisation mean and scale, and the labels are read from the items.
"""

import collections
import hashlib
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .datasets import _parse_image_size

__all__ = ["ImageStream", "batches", "check_dataset", "check_image_size", "is_dataset",
           "is_stream_input", "read_labels", "scan", "to_chw_uint8"]

#: Images per batch of the statistics and label passes.
SCAN_BATCH = 256
#: Channel counts of images (grey, RGB, RGBA).
CHANNEL_COUNTS = (1, 3, 4)
#: Float images must lie in [-TOL, 1 + TOL] (e.g. torchvision's ``ToTensor``).
TOL = 1e-6


def is_dataset(X):
    """Whether ``X`` is a torch ``Dataset`` (to be streamed) rather than an array."""
    return isinstance(X, Dataset)


def is_stream_input(X):
    """Whether ``X`` is the nets' dict input with an :class:`ImageStream` as ``"x"``."""
    return isinstance(X, dict) and isinstance(X.get("x"), ImageStream)


def check_dataset(X):
    """Number of items of the map-style Dataset ``X``; ``TypeError`` otherwise."""
    if isinstance(X, IterableDataset):
        raise TypeError(
            f"X is an IterableDataset ({type(X).__name__}); pass a map-style "
            f"torch.utils.data.Dataset (with __len__ and __getitem__): the per-sample "
            f"bookkeeping (ELR targets, GMM losses, pseudo-labels) is by dataset position."
        )
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"X is a torch Dataset ({type(X).__name__}) without __len__; pass a map-style "
            f"Dataset with __len__ and __getitem__."
        ) from None


def check_image_size(image_size):
    """``None`` or ``(height, width)`` of the ``image_size`` hyperparameter."""
    return _parse_image_size(image_size)


def _pil_image_class():
    # A PIL image can only exist if PIL.Image is imported: no import here.
    module = sys.modules.get("PIL.Image")
    return None if module is None else module.Image


def _split_item(item):
    """(image, label or None) of a dataset item: an image or ``(image, label, ...)``."""
    if isinstance(item, (tuple, list)):
        if not item:
            return None, None
        return item[0], (item[1] if len(item) > 1 else None)
    return item, None


def _plain_label(label):
    """A label as a plain Python value (0-d tensors and numpy scalars unwrapped)."""
    if torch.is_tensor(label) or isinstance(label, np.ndarray):
        return label.item() if label.ndim == 0 or np.prod(label.shape) == 1 else label.tolist()
    if isinstance(label, np.generic):
        return label.item()
    return label


def to_chw_uint8(image, where="X[i]"):
    """uint8 ``(C, H, W)`` tensor of one image (a copy; ``image`` is not modified).

    ``image`` is a PIL image (mode L, RGB or RGBA kept, other modes converted
    to RGB), a numpy array ``(H, W)`` or ``(H, W, C)`` (PIL's layout) or a
    torch tensor ``(H, W)`` or ``(C, H, W)`` (torch's layout), with C in 1, 3,
    4.  Values are uint8 pixels 0..255, or floats in [0, 1] (e.g. the output
    of torchvision's ``ToTensor``), which are rounded to 8 bits.  ``where``
    names the item in error messages.
    """
    pil = _pil_image_class()
    if pil is not None and isinstance(image, pil):
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGB")
        t = torch.from_numpy(np.array(image, dtype=np.uint8))
        return (t[None] if t.dim() == 2 else t.permute(2, 0, 1)).contiguous()
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] in CHANNEL_COUNTS:
            t = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        elif image.ndim == 2:
            t = torch.from_numpy(np.array(image))[None]
        else:
            raise ValueError(
                f"{where} is an array of shape {image.shape}; numpy images must be (H, W) or "
                f"(H, W, C) with C in {CHANNEL_COUNTS} (pass a tensor for (C, H, W))."
            )
    elif torch.is_tensor(image):
        t = image.detach().to("cpu")
        if t.dim() == 2:
            t = t[None]
        elif not (t.dim() == 3 and t.shape[0] in CHANNEL_COUNTS):
            raise ValueError(
                f"{where} is a tensor of shape {tuple(t.shape)}; image tensors must be "
                f"(C, H, W) with C in {CHANNEL_COUNTS}, or (H, W) (pass a numpy array for "
                f"(H, W, C))."
            )
        t = t.clone()
    else:
        raise TypeError(
            f"{where} is a {type(image).__name__}; the items of a Dataset X must be images "
            f"(PIL images, numpy arrays or torch tensors) or tuples (image, label, ...)."
        )
    if t.dtype == torch.uint8:
        return t.contiguous()
    if t.is_floating_point():
        lo, hi = (float(t.min()), float(t.max())) if t.numel() else (0.0, 0.0)
        if lo >= -TOL and hi <= 1 + TOL:
            return (t.float() * 255).round_().clamp_(0, 255).to(torch.uint8).contiguous()
        raise ValueError(
            f"{where} is a float image with values in [{lo:g}, {hi:g}]; float images must "
            f"lie in [0, 1] (as torchvision's ToTensor gives them), without normalisation: "
            f"the estimator standardises the images itself."
        )
    raise ValueError(
        f"{where} has dtype {t.dtype}; images must be uint8 (0..255) or floats in [0, 1]."
    )


def _resize_tensor(t, size):
    """Bilinear, antialiased resize of a uint8 (C, H, W) tensor to ``size`` = (H, W)."""
    out = torch.nn.functional.interpolate(t[None].float(), size=size, mode="bilinear",
                                          antialias=True, align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8).contiguous()


class ImageStream(Dataset):
    """Fixed-size uint8 ``(C, H, W)`` images of a user's map-style Dataset, by position.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style; item ``i`` is an image or ``(image, label, ...)``.  Only
        read (``dataset[i]``).
    size : (int, int) or None
        Resize every image whose (H, W) differs to this: PIL images with
        PIL's bilinear filter (as :func:`noisyclf.datasets.load_image_folder`),
        arrays and tensors with :func:`torch.nn.functional.interpolate`
        (bilinear, antialiased).  ``None`` keeps the dataset's sizes.
    image_shape : (int, int, int) or None
        The shape (C, H, W) every image must have (after resizing);
        ``ValueError`` naming the item otherwise.  (Not ``shape``: scikit-learn
        would take ``shape[0]`` for the number of samples.)
    num_workers : int
        DataLoader worker processes that read the items (0: this process).
    reference : str
        What ``image_shape`` comes from, for the error message.
    """

    def __init__(self, dataset, *, size=None, image_shape=None, num_workers=0,
                 reference="X[0]"):
        self.dataset = dataset
        self.size = None if size is None else tuple(int(s) for s in size)
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.num_workers = int(num_workers)
        self.reference = reference
        self.digest = None

    def __len__(self):
        return len(self.dataset)

    def read(self, i):
        """``(image, label)`` of item ``i``: a uint8 (C, H, W) tensor and the item's label
        (``None`` when the item is a bare image)."""
        where = f"X[{i}]"
        image, label = _split_item(self.dataset[i])
        pil = _pil_image_class()
        if (self.size is not None and pil is not None and isinstance(image, pil)
                and (image.height, image.width) != self.size):
            if image.mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGB")
            module = sys.modules["PIL.Image"]
            resample = getattr(module, "Resampling", module).BILINEAR
            image = image.resize((self.size[1], self.size[0]), resample=resample)
        t = to_chw_uint8(image, where)
        if self.size is not None and tuple(t.shape[1:]) != self.size:
            t = _resize_tensor(t, self.size)
        if self.image_shape is not None and tuple(t.shape) != self.image_shape:
            if t.shape[0] != self.image_shape[0]:
                hint = ("convert the images to one mode (ImageFolder's default loader gives "
                        "RGB)")
            elif self.size is None:
                hint = "pass image_size=(H, W) to resize every image to one size"
            else:
                hint = "its size differs"
            raise ValueError(
                f"{where} is an image of shape (C, H, W) = {tuple(t.shape)} but "
                f"{self.reference} has shape {self.image_shape}: {hint}."
            )
        return t, _plain_label(label)

    def __getitem__(self, i):
        return self.read(i)[0]


# ------------------------------------------------------------------ the nets' batches
class _Positions(Dataset):
    """Item ``i``: ``(image i, i)``; the batch is assembled by :class:`_Collate`."""

    def __init__(self, stream):
        self.stream = stream

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, i):
        return self.stream[i], i


class _Collate:
    """``({"x": images, key: value[idx], ...}, y[idx] or None)`` of a list of (image, i),
    as :class:`~noisyclf.nets.TensorBatches` slices its tensors."""

    def __init__(self, rest, y):
        self.rest = rest
        self.y = y

    def __call__(self, items):
        idx = torch.as_tensor([i for _, i in items], dtype=torch.long)
        Xi = {"x": torch.stack([image for image, _ in items])}
        Xi.update({k: v[idx] for k, v in self.rest.items()})
        return Xi, (None if self.y is None else self.y[idx])


class _Order:
    """Sample order of one pass: ``torch.randperm(n)`` from torch's global RNG when
    shuffling (as :class:`~noisyclf.nets.TensorBatches`), else 0..n-1."""

    def __init__(self, n, shuffle):
        self.n = n
        self.shuffle = shuffle

    def __len__(self):
        return self.n

    def __iter__(self):
        yield from (torch.randperm(self.n).tolist() if self.shuffle else range(self.n))


def _loader(dataset, *, batch_size, sampler, collate_fn, num_workers, drop_last=False,
            pin_memory=False):
    # The loader's own seed draw (the workers' base seed) comes from a private
    # generator seeded from the phase's seed, not from torch's global RNG, whose
    # draws must be those of the in-memory path (permutations, augmentations).
    generator = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      collate_fn=collate_fn, num_workers=num_workers,
                      pin_memory=pin_memory, generator=generator)


def batches(X, y, batch_size, *, shuffle=False, drop_last=False, pin_memory=False):
    """DataLoader of the nets' input ``X = {"x": ImageStream, key: tensor, ...}`` and ``y``.

    Yields ``(Xi, yi)`` with ``Xi["x"]`` a uint8 (B, C, H, W) batch and every
    other entry (``"index"``, ``"sample_weight"``, ...) and ``y`` sliced at
    the batch's dataset positions, exactly as
    :class:`~noisyclf.nets.TensorBatches` slices in-memory tensors.
    """
    stream = X["x"]
    n = len(stream)
    rest = {k: v for k, v in X.items() if k != "x"}
    batch_size = n if batch_size in (-1, None) else int(batch_size)
    return _loader(_Positions(stream), batch_size=batch_size, sampler=_Order(n, shuffle),
                   collate_fn=_Collate(rest, y), num_workers=stream.num_workers,
                   drop_last=drop_last, pin_memory=pin_memory)


# ------------------------------------------------------------------- the scan pass
class _ScanItems(Dataset):
    """Item ``i``: the per-channel histogram of image i, its label, its digest."""

    def __init__(self, stream, digest):
        self.stream = stream
        self.digest = digest

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, i):
        image, label = self.stream.read(i)
        c = image.shape[0]
        codes = image.reshape(c, -1).long() + 256 * torch.arange(c)[:, None]
        hist = torch.bincount(codes.reshape(-1), minlength=256 * c).reshape(c, 256)
        digest = None
        if self.digest:
            h = hashlib.blake2b(repr(tuple(image.shape)).encode(), digest_size=16)
            h.update(image.numpy().tobytes())
            digest = h.digest()
        return hist, label, digest


def _scan_collate(items):
    return (torch.stack([hist for hist, _, _ in items]).sum(0),
            [label for _, label, _ in items], [digest for _, _, digest in items])


Scan = collections.namedtuple("Scan", "mean scale value_range labels digest")


def scan(stream, *, digest=False):
    """One streamed pass over ``stream``: standardisation statistics, labels, digest.

    The per-channel histograms of the uint8 pixel values (exact integer
    counts, computed and summed in the DataLoader workers) give the mean and
    standard deviation of the images as the nets see them (pixels scaled by
    1/255 in float32), in float64, whatever the number of images; constant
    channels get scale 1, as :func:`noisyclf._input.standardization`.

    Returns
    -------
    Scan
        ``mean``, ``scale`` (float32, shape (C, 1, 1)), ``value_range``
        (min, max pixel value), ``labels`` (list: each item's label, ``None``
        for bare images) and ``digest`` (hex string of the images' bytes in
        order, for :class:`joblib.Memory`; ``None`` unless ``digest``).
    """
    loader = _loader(_ScanItems(stream, digest), batch_size=SCAN_BATCH,
                     sampler=range(len(stream)), collate_fn=_scan_collate,
                     num_workers=stream.num_workers)
    hist, labels = None, []
    hasher = hashlib.blake2b(digest_size=20) if digest else None
    for batch_hist, batch_labels, digests in loader:
        hist = batch_hist if hist is None else hist + batch_hist
        labels.extend(batch_labels)
        if hasher is not None:
            for d in digests:
                hasher.update(d)
    counts = hist.numpy().astype(np.float64)                         # (C, 256)
    values = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)
    n = counts.sum(axis=1)
    mean = (counts * values).sum(axis=1) / n
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
    scale = np.sqrt(var)
    scale = np.where(scale < 1e-8, 1.0, scale).astype(np.float32).reshape(-1, 1, 1)
    seen = np.flatnonzero(hist.sum(0).numpy())
    return Scan(mean.astype(np.float32).reshape(-1, 1, 1), scale,
                (float(seen.min()), float(seen.max())), labels,
                None if hasher is None else hasher.hexdigest())


class _Labels(Dataset):
    def __init__(self, stream):
        self.stream = stream

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, i):
        return _plain_label(_split_item(self.stream.dataset[i])[1])


def read_labels(stream):
    """The label of every item of ``stream``'s dataset (``None`` for bare images), in
    order, read by its DataLoader workers."""
    loader = _loader(_Labels(stream), batch_size=SCAN_BATCH, sampler=range(len(stream)),
                     collate_fn=list, num_workers=stream.num_workers)
    return [label for batch in loader for label in batch]
