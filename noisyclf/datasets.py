"""Dataset loaders: digits (embedded), CIFAR-10 from a packed JPEG npz, image folders.

Nothing here downloads anything. CIFAR-10 is read from ``cifar10_jpeg.npz`` (every image
stored as a JPEG byte string with an offsets array) and, for real human label noise,
``cifar10n_labels.npz`` (CIFAR-10N, Wei et al., ICLR 2022) in the same directory.
"""

import io
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils.validation import check_memory

from .noise import _check_random_state

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10N_LABEL_KEYS",
    "load_cifar10",
    "load_digits_images",
    "load_image_folder",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

#: Label sets in ``cifar10n_labels.npz``; their documented noise rates versus the clean
#: labels are 0 %, 9.01 %, 17.23 %, 18.12 %, 17.64 % and 40.21 %.
CIFAR10N_LABEL_KEYS = ("clean_label", "aggre_label", "random_label1", "random_label2",
                       "random_label3", "worse_label")

CIFAR10_FILENAME = "cifar10_jpeg.npz"
CIFAR10N_FILENAME = "cifar10n_labels.npz"

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def load_digits_images(return_X_y=True):
    """Load scikit-learn's embedded 8x8 digits as single-channel images.

    Parameters
    ----------
    return_X_y : bool, default=True
        If True return ``(X, y)``, otherwise a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), dtype float32
        Pixel intensities scaled from 0..16 to [0, 1].
    y : ndarray of shape (1797,), dtype int64
        Digit labels 0..9.
    data : :class:`~sklearn.utils.Bunch`
        Returned when ``return_X_y=False``, with ``data`` (= X), ``target`` (= y),
        ``target_names`` and ``DESCR``.

    Examples
    --------
    >>> from noisyclf.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 1, 8, 8), dtype('float32'), dtype('int64'))
    >>> float(X.min()), float(X.max())
    (0.0, 1.0)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = digits.target.astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, target_names=np.arange(10), DESCR=digits.DESCR)


def _resolve_cifar10_path(path):
    """The npz file of ``path`` (the file, or the directory holding it)."""
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be the {CIFAR10_FILENAME} file or the directory holding it (a str or "
            f"path-like); got {path!r}. Nothing is downloaded: noisyclf only reads local files.")
    path = Path(path)
    candidate = path / CIFAR10_FILENAME if path.is_dir() else path
    if not candidate.is_file():
        raise FileNotFoundError(
            f"Could not find {CIFAR10_FILENAME}: {candidate} is not a file. Nothing is "
            f"downloaded: noisyclf only reads local files.")
    return candidate.absolute()


def _stratified_indices(y, n_samples, rng):
    """Sorted indices of a stratified random subset of ``n_samples`` of ``y``.

    Per-class counts are proportional to the class frequencies (largest remainder, ties
    broken at random); members are drawn uniformly without replacement.
    """
    classes, counts = np.unique(y, return_counts=True)
    quota = n_samples * counts / counts.sum()
    alloc = np.floor(quota).astype(np.int64)
    remainder = n_samples - int(alloc.sum())
    if remainder:
        frac = quota - alloc
        order = np.lexsort((rng.permutation(len(classes)), -frac))
        alloc[order[:remainder]] += 1
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, alloc)]
    return np.sort(np.concatenate(chosen))


def _decode_jpegs(buffer, offsets, indices):
    from PIL import Image

    out = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
    for row, i in enumerate(indices):
        buf = buffer[offsets[i]:offsets[i + 1]].tobytes()
        with Image.open(io.BytesIO(buf)) as img:
            out[row] = np.asarray(img.convert("RGB"))
    return out


def _load_cifar10_images(path, subset, indices, file_stamp):
    """Decode the chosen images (``file_stamp`` only keys the joblib cache)."""
    with np.load(path) as data:
        offsets = data[f"{subset}_offsets"]
        buffer = data[f"{subset}_jpeg"]
    if indices is None:
        indices = np.arange(len(offsets) - 1)
    return _decode_jpegs(buffer, offsets, indices)


def load_cifar10(path, *, subset="train", n_samples=None, random_state=None,
                 label_noise=None, memory=None):
    """Load CIFAR-10 from the packed JPEG npz, optionally with CIFAR-10N human label noise.

    Parameters
    ----------
    path : str or path-like
        The ``cifar10_jpeg.npz`` file or the directory holding it.
    subset : {"train", "test"}, default="train"
        50,000 training or 10,000 test images, in the official CIFAR-10 order.
    n_samples : int, default=None
        Return a stratified random subset of this many images (class proportions kept,
        original order preserved); only these images are decoded. ``None`` returns all.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed for the ``n_samples`` subset; NumPy's global random state is never used.
    label_noise : str, default=None
        One of :data:`CIFAR10N_LABEL_KEYS` (``"aggre_label"``, ``"random_label1"``,
        ``"random_label2"``, ``"random_label3"``, ``"worse_label"``, ``"clean_label"``):
        also return the CIFAR-10N human labels read from ``cifar10n_labels.npz`` next to
        the image file. Only for ``subset="train"``.
    memory : str, joblib.Memory or None, default=None
        Cache for the decoded uint8 array (a directory path or a ``joblib.Memory``);
        ``None`` decodes on every call.

    Returns
    -------
    X : ndarray of shape (n, 32, 32, 3), dtype uint8
        RGB images, channels last.
    y : ndarray of shape (n,), dtype int64
        Clean labels, or the CIFAR-10N labels when ``label_noise`` is given.
    y_clean : ndarray of shape (n,), dtype int64
        Only when ``label_noise`` is given: the clean labels.

    Raises
    ------
    FileNotFoundError
        If the npz file (or, with ``label_noise``, the CIFAR-10N file) is missing. Nothing
        is ever downloaded.
    ValueError
        For an unknown ``subset`` or ``label_noise``, or an ``n_samples`` out of range.

    Notes
    -----
    The images were re-encoded as JPEG (quality 75), which costs up to about one point of
    accuracy against the original PNG/pickle CIFAR-10.

    Examples
    --------
    >>> import numpy as np
    >>> from noisyclf.datasets import load_cifar10
    >>> X, y = load_cifar10("data/cifar10_jpeg.npz", n_samples=20, random_state=0)  # doctest: +SKIP
    >>> X.shape, X.dtype, np.bincount(y).tolist()  # doctest: +SKIP
    ((20, 32, 32, 3), dtype('uint8'), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    """
    if subset not in ("train", "test"):
        raise ValueError(f"`subset` must be 'train' or 'test'; got {subset!r}.")
    if label_noise is not None:
        if label_noise not in CIFAR10N_LABEL_KEYS:
            raise ValueError(f"`label_noise` must be None or one of {CIFAR10N_LABEL_KEYS}; "
                             f"got {label_noise!r}.")
        if subset != "train":
            raise ValueError("`label_noise` (CIFAR-10N) only exists for subset='train'.")
    memory = check_memory(memory)
    npz_path = _resolve_cifar10_path(path)

    with np.load(npz_path) as data:
        y = data[f"y_{subset}"].astype(np.int64)
    n_total = y.shape[0]

    if n_samples is None:
        indices = None
    else:
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(
                n_samples, (int, np.integer)):
            raise TypeError(f"`n_samples` must be an int or None; got "
                            f"{type(n_samples).__name__}.")
        if not 1 <= n_samples <= n_total:
            raise ValueError(f"`n_samples` must be in [1, {n_total}] for subset={subset!r}; "
                             f"got {n_samples}.")
        indices = _stratified_indices(y, int(n_samples), _check_random_state(random_state))

    stat = npz_path.stat()
    X = memory.cache(_load_cifar10_images)(str(npz_path), subset, indices,
                                           (stat.st_size, stat.st_mtime_ns))
    y_sel = y if indices is None else y[indices]

    if label_noise is None:
        return X, y_sel
    noise_path = npz_path.parent / CIFAR10N_FILENAME
    if not noise_path.is_file():
        raise FileNotFoundError(f"`label_noise` needs {noise_path}, which does not exist. "
                                f"Nothing is downloaded.")
    with np.load(noise_path) as labels:
        y_noisy = labels[label_noise].astype(np.int64)
    if y_noisy.shape != y.shape:
        raise ValueError(f"{noise_path} has {y_noisy.shape[0]} labels for {n_total} train "
                         f"images.")
    return X, (y_noisy if indices is None else y_noisy[indices]), y_sel


def _parse_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    else:
        try:
            size = tuple(int(s) for s in image_size)
        except TypeError:
            raise TypeError(f"`image_size` must be None, an int or a (height, width) pair; "
                            f"got {image_size!r}.") from None
        if len(size) != 2:
            raise ValueError(f"`image_size` must be an int or a (height, width) pair; got "
                             f"{image_size!r}.")
    if min(size) < 1:
        raise ValueError(f"`image_size` must be positive; got {image_size!r}.")
    return size


def load_image_folder(root, *, image_size=None):
    """Load an ImageFolder-style tree ``root/<class_name>/<image>`` into memory.

    Parameters
    ----------
    root : str or path-like
        Directory with one sub-directory per class (sorted by name to give class ids);
        images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, searched recursively, hidden files
        skipped) are converted to RGB.
    image_size : int or (height, width), default=None
        Resize every image (bilinear) to this size. Without it all images must already
        share one size.

    Returns
    -------
    X : ndarray of shape (n, H, W, 3), dtype uint8
        Images, channels last, ordered by class and then by file path.
    y : ndarray of shape (n,), dtype int64
        Class ids, indices into ``class_names``.
    class_names : list of str
        Sorted sub-directory names.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a directory.
    ValueError
        If no image is found, or the images differ in size and ``image_size`` is None.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from noisyclf.datasets import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     Image.new("RGB", (6, 4)).save(root / name / "a.png")
    >>> X, y, class_names = load_image_folder(root, image_size=3)
    >>> X.shape, y.tolist(), class_names
    ((2, 3, 3, 3), [0, 1], ['cat', 'dog'])
    """
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"`root` must be an existing directory; got {str(root)!r}.")
    size = _parse_image_size(image_size)
    resample = getattr(Image, "Resampling", Image).BILINEAR

    class_names = sorted(d.name for d in root.iterdir()
                         if d.is_dir() and not d.name.startswith("."))
    images, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in _IMAGE_EXTENSIONS
                       and not any(part.startswith(".")
                                   for part in p.relative_to(root).parts))
        for file in files:
            with Image.open(file) as img:
                img = img.convert("RGB")
                if size is not None:
                    img = img.resize((size[1], size[0]), resample=resample)
                images.append(np.asarray(img, dtype=np.uint8))
            labels.append(label)
    if not images:
        raise ValueError(f"`root` {str(root)!r} contains no images "
                         f"({', '.join(_IMAGE_EXTENSIONS)}) in class sub-directories.")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"Images under `root` differ in size ({sorted(shapes)[:3]}...); "
                         f"pass image_size to resize them.")
    return np.stack(images), np.asarray(labels, dtype=np.int64), class_names
