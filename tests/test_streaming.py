"""Fitting on a torch Dataset streamed from disk (data larger than memory).

A folder of generated PNG images (3 classes, colour-dependent, so a short fit
learns something) read by torchvision's ``ImageFolder``.  What is checked:
a streamed fit gives the model of the in-memory fit of the same images
(``noisyclf.datasets.load_image_folder``), bit for bit with one process and
with DataLoader workers -- which also shows that the per-sample bookkeeping
(ELR's targets, the GMMs' losses, the pseudo-labels) follows the dataset
positions; labels from the folder or from ``y``; ``image_size``; clear errors
naming the argument; the caller's dataset untouched; ``memory``; items that
cannot be read (truncated files): an error naming the item and its file, with
and without DataLoader workers, or, with ``on_bad_item="skip"``, the pass
before training leaves them out, warns once listing them and the rest is
the stream of the items kept.  Tiny fits, one torch thread (``conftest.py``).
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import Dataset, IterableDataset, Subset

from noisyclf import ContrastiveNoisyClassifier
from noisyclf._streaming import ImageStream, batches, first_image, item_path, read_labels, scan
from noisyclf.exceptions import UnreadableItemError, UnreadableItemWarning
from noisyclf.datasets import load_image_folder

from _data import Items

Image = pytest.importorskip("PIL.Image")
datasets = pytest.importorskip("torchvision.datasets")

FAST = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1, gmm_epochs=1,
            batch_size=32, lr=0.05, pretrain_lr=0.1, projection_dim=16, precision="fp32",
            device="cpu", random_state=0)
COLOURS = [(200, 50, 50), (50, 200, 50), (50, 50, 200)]


def _clf(**params):
    return ContrastiveNoisyClassifier(**{**FAST, **params})


def _write_folder(root, n_per_class, size, seed=0, colours=COLOURS):
    rng = np.random.default_rng(seed)
    for c, colour in enumerate(colours):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(n_per_class):
            pixels = rng.normal(colour, 45, size=(size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / f"class{c}" / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("folder"), 40, 12)


@pytest.fixture(scope="module")
def pair(folder):
    """The in-memory fit and the streamed fit of the same images and labels."""
    X, y, _ = load_image_folder(folder)
    in_memory = _clf().fit(X, y)
    streamed = _clf().fit(datasets.ImageFolder(folder))
    return X, y, in_memory, streamed


def _same_model(a, b, X_a, X_b):
    np.testing.assert_array_equal(a._mean, b._mean)
    np.testing.assert_array_equal(a._scale, b._scale)
    for phase in a.history_:
        assert ([r["train_loss"] for r in a.history_[phase]]
                == [r["train_loss"] for r in b.history_[phase]]), phase
    np.testing.assert_array_equal(a.pseudo_labels_, b.pseudo_labels_)
    np.testing.assert_array_equal(a.label_quality_, b.label_quality_)
    np.testing.assert_array_equal(a.sample_weights_, b.sample_weights_)
    np.testing.assert_array_equal(a.predict_proba(X_a), b.predict_proba(X_b))


def test_streamed_fit_is_the_in_memory_fit(pair, folder):
    X, y, in_memory, streamed = pair
    assert streamed.input_shape_ == (3, 12, 12)
    assert not hasattr(streamed, "n_features_in_")
    np.testing.assert_array_equal(streamed.classes_, [0, 1, 2])
    _same_model(in_memory, streamed, X, datasets.ImageFolder(folder))
    # ELR's per-sample targets (indexed by dataset position) and the GMMs' inputs.
    np.testing.assert_array_equal(in_memory.classifier_net_.criterion_.target_,
                                  streamed.classifier_net_.criterion_.target_)
    for key in ("given", "pseudo"):
        np.testing.assert_array_equal(in_memory.gmm_losses_[key], streamed.gmm_losses_[key])
    # It learned the colours.
    assert streamed.score(datasets.ImageFolder(folder)) > 0.8
    assert streamed.score(X, y) == streamed.score(datasets.ImageFolder(folder))


def test_predict_transform_accept_a_dataset_or_the_array(pair, folder):
    X, y, in_memory, streamed = pair
    ds = datasets.ImageFolder(folder)
    np.testing.assert_array_equal(streamed.predict(ds), streamed.predict(X))
    np.testing.assert_array_equal(in_memory.predict_proba(ds), in_memory.predict_proba(X))
    np.testing.assert_array_equal(streamed.transform(ds), streamed.transform(X))
    # A streamed model holds no reference to the data and pickles.
    blob = pickle.dumps(streamed)
    assert str(folder).encode() not in blob
    np.testing.assert_array_equal(pickle.loads(blob).predict_proba(ds), streamed.predict_proba(X))


def test_dataloader_workers_change_nothing(pair, folder):
    X, _, _, streamed = pair
    ds = datasets.ImageFolder(folder)
    two = _clf(num_workers=2).fit(ds)
    _same_model(streamed, two, X, ds)


def test_labels_from_y_and_bare_images(pair, folder):
    X, y, in_memory, _ = pair
    names = np.array(["red", "green", "blue"])[y]
    ds = datasets.ImageFolder(folder)
    from_y = _clf().fit(ds, names)
    np.testing.assert_array_equal(from_y.classes_, ["blue", "green", "red"])
    # Bare (C, H, W) tensors with y: the same images, the same model up to the label names.
    bare = Items(torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))))
    from_bare = _clf().fit(bare, names)
    _same_model(from_y, from_bare, ds, bare)
    with pytest.raises(ValueError, match=r"y is None.*X\[0\] has no label.*pass y"):
        _clf().fit(bare)
    with pytest.raises(ValueError, match="same number of samples"):
        _clf().fit(ds, names[:-1])


def test_image_size_resizes_as_load_image_folder(tmp_path):
    root = _write_folder(tmp_path / "big", 12, 16)
    X, y, _ = load_image_folder(root, image_size=(8, 6))
    streamed = _clf(image_size=(8, 6)).fit(datasets.ImageFolder(root))
    assert streamed.input_shape_ == (3, 8, 6)
    _same_model(_clf().fit(X, y), streamed, X, datasets.ImageFolder(root))
    # Images of another size: resized at predict time as in fit.
    other = _write_folder(tmp_path / "other", 2, 20, seed=1)
    assert streamed.predict(datasets.ImageFolder(other)).shape == (6,)
    # Without image_size every image must have the size of the first.
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "class1" / "odd.png")
    with pytest.raises(ValueError, match=r"X\[\d+\] is an image of shape .*image_size"):
        _clf().fit(datasets.ImageFolder(root))
    with pytest.raises(ValueError, match=r"X\[\d+\] is an image of shape .*image_size"):
        _clf(num_workers=2).fit(datasets.ImageFolder(root))


class _Stream(IterableDataset):
    def __iter__(self):
        yield from range(3)


@pytest.mark.parametrize("X,params,error,match", [
    (_Stream(), {}, TypeError, "X is an IterableDataset"),
    (Items(["a", "b"]), {}, TypeError, r"X\[0\] is a str.*images"),
    (Items([(torch.rand(3, 4, 4) * 2, 0), (torch.rand(3, 4, 4), 1)]), {}, ValueError,
     r"X\[0\] is a float image with values in .*\[0, 1\]"),
    (Items([(np.zeros((4, 4, 5), np.uint8), 0)] * 2), {}, ValueError,
     r"X\[0\] is an array of shape \(4, 4, 5\)"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.int32), 0)] * 2), {}, ValueError,
     r"X\[0\] has dtype torch.int32"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.uint8), 0)]), {}, ValueError,
     "fit needs at least 2"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.uint8), 0)] * 2), dict(image_size=(4, 4, 4)),
     ValueError, "image_size"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.uint8), 0)] * 2), dict(image_size=0),
     InvalidParameterError, "image_size"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.uint8), 0)] * 2), dict(num_workers=-1),
     InvalidParameterError, "num_workers"),
    (Items([(torch.zeros(3, 4, 4, dtype=torch.uint8), 0),
             (torch.zeros(1, 4, 4, dtype=torch.uint8), 1)]), {}, ValueError,
     r"X\[1\] is an image of shape .*one mode"),
])
def test_bad_inputs_raise_naming_the_argument(X, params, error, match):
    with pytest.raises(error, match=match):
        _clf(**params).fit(X)


def test_image_size_with_an_array_and_a_dataset_on_a_tabular_fit(pair):
    X, y, _, _ = pair
    with pytest.raises(ValueError, match="image_size=8 resizes the images of a torch Dataset"):
        _clf(image_size=8).fit(X, y)
    tabular = _clf(phases="baseline", max_epochs=1).fit(X.reshape(len(X), -1)[:, :5], y)
    with pytest.raises(ValueError, match="fitted on tabular features"):
        tabular.predict(Items([np.zeros((4, 4), np.uint8)]))


def test_the_callers_dataset_is_untouched(folder):
    ds = datasets.ImageFolder(folder)
    before = (list(ds.samples), list(ds.targets), ds.transform, ds.target_transform, len(ds))
    clf = _clf(phases="pretrain").fit(ds)
    clf.predict(ds)
    clf.score(ds)
    assert (list(ds.samples), list(ds.targets), ds.transform, ds.target_transform,
            len(ds)) == before


def test_memory_caches_a1_of_a_dataset_by_its_images(folder, tmp_path):
    ds = datasets.ImageFolder(folder)
    first = _clf(phases="pretrain", memory=tmp_path / "cache").fit(ds)
    assert any((tmp_path / "cache").rglob("*.pkl"))
    again = clone(first).set_params(lr=0.01).fit(ds)
    assert again.history_["a1"] == first.history_["a1"]
    # Other pixels, same files and labels: not the cached pre-training.
    flipped = datasets.ImageFolder(folder, transform=lambda im: im.transpose(0))
    other = clone(first).fit(flipped)
    assert other.history_["a1"] != first.history_["a1"]


# ------------------------------------------------------------ items that cannot be read
#: A fit of one epoch per phase, a1 and a2 only.
TINY = dict(phases="pretrain", pretrain_epochs=1, max_epochs=1, finetune_epochs=1,
            gmm_epochs=1, warmup_epochs=0, batch_size=8)
#: Dataset indices of the broken files of the ``broken`` folder (2 classes of 10).
BAD = (7, 13)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """20 8x8 PNGs in 2 class folders; item 7 cut to its first 30 bytes (PIL cannot
    identify it), item 13 to half its bytes (PIL: image file is truncated)."""
    root = _write_folder(tmp_path_factory.mktemp("broken"), 10, 8, colours=COLOURS[:2])
    for path, keep in ((root / "class0" / "0007.png", lambda n: 30),
                       (root / "class1" / "0003.png", lambda n: n // 2)):
        data = path.read_bytes()
        path.write_bytes(data[:keep(len(data))])
    ds = datasets.ImageFolder(root)
    assert [ds.samples[i][0] for i in BAD] == [str(root / "class0" / "0007.png"),
                                               str(root / "class1" / "0003.png")]
    return root


def _bad_path(root, i):
    return str(root / "class0" / "0007.png") if i == 7 else str(root / "class1" / "0003.png")


def _assert_names(error, root, i, num_workers):
    """``error`` names item ``i`` and its file; its cause is PIL's error (from a worker: a
    copy with the worker's traceback as a note)."""
    assert isinstance(error, OSError) and isinstance(error, ValueError)
    assert (error.index, error.path) == (i, _bad_path(root, i))
    assert f"Could not read item {i} of the Dataset X ({_bad_path(root, i)}): " in str(error)
    assert isinstance(error.__cause__, OSError)
    if num_workers:
        assert "In a DataLoader worker process" in "".join(error.__cause__.__notes__)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_fit_names_the_item_it_cannot_read(broken, num_workers):
    with pytest.raises(UnreadableItemError, match=r"item 7 of the Dataset X.*"
                       r"on_bad_item='skip'") as info:
        _clf(num_workers=num_workers, **TINY).fit(datasets.ImageFolder(broken))
    _assert_names(info.value, broken, 7, num_workers)
    # Named through a Subset (item 0 of it is item 7 of the folder), from its first image.
    ds = Subset(datasets.ImageFolder(broken), [7, 0, 1, 2])
    with pytest.raises(UnreadableItemError, match=r"item 0 of the Dataset X \(.*0007\.png\)"):
        _clf(num_workers=num_workers, **TINY).fit(ds)


@pytest.fixture(scope="module")
def fitted_on_good(broken):
    ds = datasets.ImageFolder(broken)
    good = [i for i in range(len(ds)) if i not in BAD]
    return _clf(**TINY).fit(Subset(ds, good))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_predict_and_score_name_the_item_they_cannot_read(broken, fitted_on_good,
                                                          num_workers):
    clf = pickle.loads(pickle.dumps(fitted_on_good)).set_params(num_workers=num_workers)
    ds = datasets.ImageFolder(broken)
    for method in (clf.predict, clf.transform, clf.score):
        with pytest.raises(UnreadableItemError) as info:
            method(ds)
        _assert_names(info.value, broken, 7, num_workers)
        assert "on_bad_item" not in str(info.value)  # predict has no skipping


def _batches_of(stream):
    return [(xb["x"], xb["index"]) for xb, _ in
            batches({"x": stream, "index": torch.arange(len(stream))}, None, 6)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_scan_skips_the_items_it_cannot_read_and_warns_once(broken, num_workers):
    ds = datasets.ImageFolder(broken)
    stream = ImageStream(ds, image_shape=(3, 8, 8), num_workers=num_workers,
                         on_bad_item="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scan(stream, digest=True)
    assert [w.category for w in caught] == [UnreadableItemWarning]
    message = str(caught[0].message)
    assert "leaves out 2 of the 20 items" in message
    for i in BAD:
        assert f"item {i} ({_bad_path(broken, i)}): " in message
    assert result.skipped == [(i, _bad_path(broken, i)) for i in BAD]
    kept = [i for i in range(len(ds)) if i not in BAD]
    np.testing.assert_array_equal(result.kept, kept)
    # Nothing else is lost: the scan of the items kept, as of a dataset without the others.
    without = ImageStream(Subset(ds, kept), image_shape=(3, 8, 8), num_workers=num_workers)
    expected = scan(without, digest=True)
    assert expected.skipped == [] and len(expected.kept) == 18
    np.testing.assert_array_equal(result.mean, expected.mean)
    np.testing.assert_array_equal(result.scale, expected.scale)
    assert result.value_range == expected.value_range
    assert result.labels == expected.labels == [ds.targets[i] for i in kept]
    assert result.digest == expected.digest
    # The stream of the items kept: position j is item kept[j].
    kept_stream = stream.subset(result.kept)
    assert len(kept_stream) == 18 and kept_stream.item_index(7) == 8
    for (x, index), (x_expected, index_expected) in zip(_batches_of(kept_stream),
                                                        _batches_of(without)):
        assert torch.equal(x, x_expected) and torch.equal(index, index_expected)
    assert read_labels(kept_stream) == result.labels
    # The default raises at the first item it cannot read.
    stream.on_bad_item = "raise"
    with pytest.raises(UnreadableItemError, match="on_bad_item='skip'") as info:
        scan(stream)
    _assert_names(info.value, broken, 7, num_workers)


def test_first_image_and_nothing_readable(broken):
    ds = datasets.ImageFolder(broken)
    order = Subset(ds, [7, 13, 0, 1])
    with pytest.raises(UnreadableItemError, match=r"item 0 of the Dataset X \(.*0007\.png\)"):
        first_image(order)
    index, image = first_image(order, on_bad_item="skip")
    assert index == 2 and torch.equal(image, ImageStream(ds).read(0)[0])
    nothing = Subset(ds, list(BAD))
    with pytest.raises(UnreadableItemError, match="none of the 2 items of X could be read"):
        first_image(nothing, on_bad_item="skip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableItemWarning)
        with pytest.raises(UnreadableItemError, match="none of the 2 items of X could be read"):
            scan(ImageStream(nothing, on_bad_item="skip"))
    with pytest.raises(ValueError, match="on_bad_item must be one of"):
        ImageStream(ds, on_bad_item="ignore")


class _OddError(Exception):
    """An exception that cannot be copied to another process (it holds a lock), whatever
    pickling support another library installed for exceptions (dask installs tblib's)."""

    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")
        self.lock = threading.Lock()


class _Failing(Dataset):
    """Images; item 1 raises ``_OddError``, from a dataset that lists no files."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 1:
            raise _OddError("disk", "gone")
        return torch.zeros(3, 4, 4, dtype=torch.uint8), i % 2


@pytest.mark.parametrize("num_workers", [0, 2])
def test_any_error_of_the_dataset_is_named(num_workers):
    stream = ImageStream(_Failing(), num_workers=num_workers)
    with pytest.raises(UnreadableItemError) as info:
        read_labels(stream)
    error = info.value
    assert (error.index, error.path) == (1, None)
    assert str(error) == "Could not read item 1 of the Dataset X: _OddError: disk and gone"
    # What cannot come back from a worker comes back as its description.
    expected = _OddError if num_workers == 0 else RuntimeError
    assert type(error.__cause__) is expected and "disk and gone" in str(error.__cause__)
    # The error pickles with what it names (its cause here cannot be pickled).
    error.__cause__ = None
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.index, again.path) == (
        UnreadableItemError, str(error), 1, None)


def test_item_path_where_the_dataset_lists_files(broken):
    ds = datasets.ImageFolder(broken)
    assert item_path(ds, 7) == ds.samples[7][0] == ds.imgs[7][0]
    assert item_path(Subset(Subset(ds, [5, 7]), [1]), 0) == ds.samples[7][0]
    assert item_path(_Failing(), 0) is None
    tensors = Items(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    tensors.samples = torch.zeros(2, 3)  # not a file list
    assert item_path(tensors, 0) is None


@pytest.mark.parametrize("num_workers", [0, 2])
def test_fit_skips_the_items_it_cannot_read(broken, num_workers):
    ds = datasets.ImageFolder(broken)
    kept = [i for i in range(len(ds)) if i not in BAD]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = _clf(on_bad_item="skip", num_workers=num_workers, **TINY).fit(ds)
    assert [w.category for w in caught] == [UnreadableItemWarning]
    assert clf.skipped_items_ == [(i, _bad_path(broken, i)) for i in BAD]
    assert len(clf.pseudo_labels_) == len(clf.label_quality_) == len(kept)
    # Nothing else is lost: the fit of the items kept.
    _same_model(clf, _clf(**TINY).fit(Subset(ds, kept)), Subset(ds, kept), Subset(ds, kept))
    # y and sample_weight have one entry per item of X; the skipped items' are dropped.
    y = np.array(ds.targets)
    weights = np.linspace(0.5, 1.5, len(ds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableItemWarning)
        given = _clf(on_bad_item="skip", **TINY).fit(ds, y, sample_weight=weights)
    expected = _clf(**TINY).fit(Subset(ds, kept), y[kept], sample_weight=weights[kept])
    _same_model(given, expected, Subset(ds, kept), Subset(ds, kept))
    # Nothing to skip: an empty list, and the fit of on_bad_item="raise".
    good = Subset(ds, kept)
    assert _clf(on_bad_item="skip", **TINY).fit(good).skipped_items_ == []
    # predict returns one row per item: it raises naming the item whatever on_bad_item.
    with pytest.raises(UnreadableItemError, match=r"item 7 of the Dataset X"):
        clf.predict(ds)
