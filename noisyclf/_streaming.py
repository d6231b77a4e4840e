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

An item that cannot be read (its ``__getitem__`` raises, e.g. PIL on a
truncated or corrupt file, or its PIL image cannot be decoded) raises
:class:`UnreadableItemError` naming its index and, where the dataset lists
its files (``ImageFolder``'s ``samples``), its path -- in this process, with
any number of DataLoader workers: a worker sends the failure back as data
and it is raised here, the original exception as its ``__cause__``.  With
``on_bad_item="skip"``, :func:`scan` leaves such items out instead, warns
once with the list (:class:`UnreadableItemWarning`) and returns the indices
of the items kept, for :meth:`ImageStream.subset`.
"""

import collections
import hashlib
import os
import pickle
import sys
import traceback
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from .datasets import _parse_image_size
from .exceptions import UnreadableItemError, UnreadableItemWarning

__all__ = ["ON_BAD_ITEM", "ImageStream", "UnreadableItemError", "UnreadableItemWarning",
           "batches", "check_dataset", "check_image_size", "first_image", "is_dataset",
           "is_stream_input", "item_path", "read_labels", "scan", "to_chw_uint8"]

#: Images per batch of the statistics and label passes.
SCAN_BATCH = 256
#: Channel counts of images (grey, RGB, RGBA).
CHANNEL_COUNTS = (1, 3, 4)
#: Float images must lie in [-TOL, 1 + TOL] (e.g. torchvision's ``ToTensor``).
TOL = 1e-6
#: Values of ``on_bad_item``: what ``fit`` does with an item that cannot be read.
ON_BAD_ITEM = ("raise", "skip")
#: Skipped items listed one by one in the warning of :func:`scan` (all are in its result).
WARN_LIST = 20


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


def item_path(dataset, i):
    """The file of item ``i`` of ``dataset`` where the dataset lists its files, else None.

    ``dataset.samples[i]`` or ``dataset.imgs[i]``, a path or a ``(path,
    label, ...)`` tuple, as torchvision's ``ImageFolder`` and
    ``DatasetFolder`` hold them; through :class:`torch.utils.data.Subset`
    to the item of the dataset it wraps.  Never raises.
    """
    try:
        i = int(i)
        while isinstance(dataset, Subset):
            dataset, i = dataset.dataset, int(dataset.indices[i])
        for name in ("samples", "imgs"):
            entries = getattr(dataset, name, None)
            if entries is None or isinstance(entries, (str, bytes)):
                continue
            entry = entries[i]
            path = entry[0] if isinstance(entry, (tuple, list)) and entry else entry
            if isinstance(path, (str, os.PathLike)):
                return os.fspath(path)
    except Exception:  # a dataset whose attributes are not a file list
        return None
    return None


def _describe(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _unreadable(dataset, i, exc):
    path = item_path(dataset, i)
    where = f"item {i} of the Dataset X" + (f" ({path})" if path is not None else "")
    return UnreadableItemError(f"Could not read {where}: {_describe(exc)}", index=i, path=path)


class _Failure:
    """An item that could not be read, as a DataLoader sends it back (pickled, from a
    worker process) to be raised or skipped in this process.

    ``position`` is the item's position in the :class:`ImageStream`; the
    error names its index in the dataset.
    """

    def __init__(self, error, position):
        self.error = error
        self.cause = error.__cause__
        self.position = position
        self.trace = ""

    @property
    def index(self):
        return self.error.index

    @property
    def path(self):
        return self.error.path

    def describe(self):
        """``item i (path): OSError: ...``, for the warning of :func:`scan`."""
        where = f"item {self.index}" + (f" ({self.path})" if self.path is not None else "")
        return f"{where}: {_describe(self.cause)}" if self.cause is not None else where

    def __getstate__(self):
        # Only when sent by a worker: the traceback does not pickle (kept as text),
        # and an exception that cannot make the trip is replaced by its description.
        state = dict(self.__dict__)
        # The error without its cause (some libraries, e.g. tblib as installed by dask,
        # pickle an exception's cause too): the cause travels on its own, below.
        state["error"] = UnreadableItemError(str(self.error), index=self.index, path=self.path)
        cause = self.cause
        if cause is not None:
            state["trace"] = "".join(
                traceback.format_exception(type(cause), cause, cause.__traceback__))
            try:
                pickle.loads(pickle.dumps(cause))
            except Exception:
                state["cause"] = RuntimeError(_describe(cause))
        return state

    def raise_(self, hint=""):
        """Raise the :class:`UnreadableItemError`, ``hint`` added to its message."""
        error = UnreadableItemError(str(self.error) + hint, index=self.index, path=self.path)
        cause = self.cause
        if self.trace and hasattr(cause, "add_note"):
            cause.add_note(f"In a DataLoader worker process:\n{self.trace.rstrip()}")
            self.trace = ""
        raise error from cause


def _fit_hint(failure):
    what = "the file" if failure.path is not None else "the item"
    return (f". Repair or remove {what}, or pass on_bad_item='skip' to fit without the "
            f"items that cannot be read.")


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
    on_bad_item : {"raise", "skip"}
        What :func:`scan` does with an item that cannot be read: raise
        :class:`UnreadableItemError` naming it, or leave it out (see
        :func:`scan`).  Every other pass raises.
    indices : sequence of int or None
        The dataset items streamed, in order: position ``j`` is item
        ``indices[j]`` (:meth:`subset`); ``None``: every item, position ``i``
        is item ``i``.  Error messages name the item's index in the dataset.
    """

    def __init__(self, dataset, *, size=None, image_shape=None, num_workers=0,
                 reference="X[0]", on_bad_item="raise", indices=None):
        if on_bad_item not in ON_BAD_ITEM:
            raise ValueError(f"on_bad_item must be one of {ON_BAD_ITEM}; got {on_bad_item!r}.")
        self.dataset = dataset
        self.size = None if size is None else tuple(int(s) for s in size)
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.num_workers = int(num_workers)
        self.reference = reference
        self.on_bad_item = on_bad_item
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self.digest = None

    def __len__(self):
        return len(self.dataset) if self.indices is None else len(self.indices)

    def item_index(self, j):
        """The dataset index of position ``j``."""
        return int(j) if self.indices is None else int(self.indices[j])

    def subset(self, indices):
        """The stream of the dataset items ``indices`` (dataset indices, in this order),
        with this stream's settings (its digest is not kept)."""
        return ImageStream(self.dataset, size=self.size, image_shape=self.image_shape,
                           num_workers=self.num_workers, reference=self.reference,
                           on_bad_item=self.on_bad_item, indices=indices)

    def _fetch(self, i, decode=True):
        """``(image, label)`` of dataset item ``i``, a PIL image decoded when ``decode``;
        :class:`UnreadableItemError` naming the item if that raises."""
        try:
            image, label = _split_item(self.dataset[i])
            pil = _pil_image_class()
            if decode and pil is not None and isinstance(image, pil):
                image.load()  # a lazily opened truncated file fails here, named
        except Exception as exc:
            raise _unreadable(self.dataset, i, exc) from exc
        return image, label

    def read(self, j):
        """``(image, label)`` at position ``j``: a uint8 (C, H, W) tensor and the item's
        label (``None`` when the item is a bare image).

        :class:`UnreadableItemError` when the item cannot be read; ``TypeError``
        or ``ValueError`` naming it when it is not an image of the expected
        shape.
        """
        i = self.item_index(j)
        where = f"X[{i}]"
        image, label = self._fetch(i)
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

    def read_label(self, j):
        """The label of the item at position ``j`` (``None`` for a bare image)."""
        return _plain_label(self._fetch(self.item_index(j), decode=False)[1])

    def __getitem__(self, j):
        return self.read(j)[0]


def first_image(dataset, *, size=None, on_bad_item="raise"):
    """``(index, image)`` of the first item of ``dataset`` that ``fit`` uses: a uint8
    (C, H, W) tensor, resized to ``size``.

    Item 0, or :class:`UnreadableItemError` naming it if it cannot be read;
    with ``on_bad_item="skip"`` the first item that can be read
    (:func:`scan` finds and reports the others again).
    """
    stream = ImageStream(dataset, size=size, on_bad_item=on_bad_item)
    first = None
    for i in range(len(stream)):
        try:
            return i, stream.read(i)[0]
        except UnreadableItemError as error:
            failure = _Failure(error, i)
            if on_bad_item == "raise":
                failure.raise_(_fit_hint(failure))
            first = failure if first is None else first
    if first is None:
        raise ValueError("X is a Dataset of 0 items.")
    first.raise_(f"; none of the {len(stream)} items of X could be read.")


class _Loader(DataLoader):
    """A DataLoader whose batches may be a :class:`_Failure`: raised in this process."""

    def __iter__(self):
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            if isinstance(batch, _Failure):
                del batches  # the worker processes stop before the error propagates
                batch.raise_()
            yield batch


def _first_failure(items):
    return next((item for item in items if isinstance(item, _Failure)), None)


# ------------------------------------------------------------------ the nets' batches
class _Positions(Dataset):
    """Item ``j``: ``(image j, j)``, or a :class:`_Failure`; the batch is assembled by
    :class:`_Collate`."""

    def __init__(self, stream):
        self.stream = stream

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, j):
        try:
            return self.stream[j], j
        except UnreadableItemError as error:
            return _Failure(error, j)


class _Collate:
    """``({"x": images, key: value[idx], ...}, y[idx] or None)`` of a list of (image, j),
    as :class:`~noisyclf.nets.TensorBatches` slices its tensors; the first
    :class:`_Failure` of the list instead, if any."""

    def __init__(self, rest, y):
        self.rest = rest
        self.y = y

    def __call__(self, items):
        failure = _first_failure(items)
        if failure is not None:
            return failure
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
    return _Loader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                   collate_fn=collate_fn, num_workers=num_workers,
                   pin_memory=pin_memory, generator=generator)


def batches(X, y, batch_size, *, shuffle=False, drop_last=False, pin_memory=False):
    """DataLoader of the nets' input ``X = {"x": ImageStream, key: tensor, ...}`` and ``y``.

    Yields ``(Xi, yi)`` with ``Xi["x"]`` a uint8 (B, C, H, W) batch and every
    other entry (``"index"``, ``"sample_weight"``, ...) and ``y`` sliced at
    the batch's stream positions, exactly as
    :class:`~noisyclf.nets.TensorBatches` slices in-memory tensors.  An item
    that cannot be read raises :class:`UnreadableItemError` naming it.
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
    """Item ``j``: the per-channel histogram of image j, its label, its digest; or a
    :class:`_Failure`."""

    def __init__(self, stream, digest):
        self.stream = stream
        self.digest = digest

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, j):
        try:
            image, label = self.stream.read(j)
        except UnreadableItemError as error:
            return _Failure(error, j)
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
    """(summed histogram or None, labels, digests, failures) of the items read."""
    good = [item for item in items if not isinstance(item, _Failure)]
    hist = torch.stack([hist for hist, _, _ in good]).sum(0) if good else None
    return (hist, [label for _, label, _ in good], [digest for _, _, digest in good],
            [item for item in items if isinstance(item, _Failure)])


Scan = collections.namedtuple("Scan", "mean scale value_range labels digest kept skipped")


def _warn_skipped(failures, n):
    listed = "; ".join(f.describe() for f in failures[:WARN_LIST])
    more = len(failures) - WARN_LIST
    if more > 0:
        listed += f"; and {more} more"
    warnings.warn(
        f"fit leaves out {len(failures)} of the {n} items of the Dataset X, which could not "
        f"be read (on_bad_item='skip'): {listed}. The per-sample results (pseudo_labels_, "
        f"label_quality_, ...) have one entry per item kept, in order; skipped_items_ "
        f"lists the items left out.", UnreadableItemWarning, stacklevel=3)


def scan(stream, *, digest=False):
    """One streamed pass over ``stream``: standardisation statistics, labels, digest.

    The per-channel histograms of the uint8 pixel values (exact integer
    counts, computed and summed in the DataLoader workers) give the mean and
    standard deviation of the images as the nets see them (pixels scaled by
    1/255 in float32), in float64, whatever the number of images; constant
    channels get scale 1, as :func:`noisyclf._input.standardization`.

    An item that cannot be read raises :class:`UnreadableItemError` naming
    it (the first in order) when ``stream.on_bad_item`` is ``"raise"``; with
    ``"skip"`` the pass goes on without it, and at the end one
    :class:`UnreadableItemWarning` lists every item left out.  Everything
    returned is then of the items kept: it is the scan of
    ``stream.subset(kept)``.

    Returns
    -------
    Scan
        ``mean``, ``scale`` (float32, shape (C, 1, 1)), ``value_range``
        (min, max pixel value), ``labels`` (list: each kept item's label,
        ``None`` for bare images), ``digest`` (hex string of the kept
        images' bytes in order, for :class:`joblib.Memory`; ``None`` unless
        ``digest``), ``kept`` (int64 array: the dataset indices of the items
        kept, in order) and ``skipped`` (list of ``(index, path)`` of the
        items left out, ``path`` None where the dataset lists no files).
    """
    n = len(stream)
    loader = _loader(_ScanItems(stream, digest), batch_size=SCAN_BATCH,
                     sampler=range(n), collate_fn=_scan_collate,
                     num_workers=stream.num_workers)
    hist, labels, failures = None, [], []
    hasher = hashlib.blake2b(digest_size=20) if digest else None
    for batch_hist, batch_labels, digests, batch_failures in loader:
        if batch_failures and stream.on_bad_item == "raise":
            batch_failures[0].raise_(_fit_hint(batch_failures[0]))
        failures.extend(batch_failures)
        if batch_hist is not None:
            hist = batch_hist if hist is None else hist + batch_hist
        labels.extend(batch_labels)
        if hasher is not None:
            for d in digests:
                hasher.update(d)
    positions = np.delete(np.arange(n, dtype=np.int64),
                          np.asarray([f.position for f in failures], dtype=np.int64))
    kept = positions if stream.indices is None else stream.indices[positions]
    if failures:
        if hist is None:
            failures[0].raise_(f"; none of the {n} items of X could be read.")
        _warn_skipped(failures, n)
    counts = hist.numpy().astype(np.float64)                         # (C, 256)
    values = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)
    n_values = counts.sum(axis=1)
    mean = (counts * values).sum(axis=1) / n_values
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n_values
    scale = np.sqrt(var)
    scale = np.where(scale < 1e-8, 1.0, scale).astype(np.float32).reshape(-1, 1, 1)
    seen = np.flatnonzero(hist.sum(0).numpy())
    return Scan(mean.astype(np.float32).reshape(-1, 1, 1), scale,
                (float(seen.min()), float(seen.max())), labels,
                None if hasher is None else hasher.hexdigest(), kept,
                [(f.index, f.path) for f in failures])


class _Labels(Dataset):
    def __init__(self, stream):
        self.stream = stream

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, j):
        try:
            return self.stream.read_label(j)
        except UnreadableItemError as error:
            return _Failure(error, j)


def _labels_collate(items):
    failure = _first_failure(items)
    return items if failure is None else failure


def read_labels(stream):
    """The label of every item of ``stream`` (``None`` for bare images), in order, read
    by its DataLoader workers; :class:`UnreadableItemError` naming an item that cannot
    be read."""
    loader = _loader(_Labels(stream), batch_size=SCAN_BATCH, sampler=range(len(stream)),
                     collate_fn=_labels_collate, num_workers=stream.num_workers)
    return [label for batch in loader for label in batch]
