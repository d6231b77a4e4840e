"""Data loaders (``noisyclf.datasets``): the digits as images, CIFAR-10 from its packed
npz with the CIFAR-10N human labels, and image folders.

The CIFAR-10 tests read ``shared/data`` beside the clone (the ``shared_data``
fixture of ``conftest.py``) and are skipped where it is absent.
"""

import io

import numpy as np
import pytest

from noisyclf import datasets
from noisyclf.datasets import (
    CIFAR10_CLASSES,
    CIFAR10N_LABEL_KEYS,
    load_cifar10,
    load_digits_images,
    load_image_folder,
)

# documented CIFAR-10N noise rates (shared/data/README.md)
CIFAR10N_RATES = {"clean_label": 0.0, "aggre_label": 0.0901, "random_label1": 0.1723,
                  "random_label2": 0.1812, "random_label3": 0.1764, "worse_label": 0.4021}


@pytest.fixture
def cifar_path(shared_data):
    path = shared_data / "cifar10_jpeg.npz"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def _decode(buf):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(buf.tobytes())).convert("RGB"))


def test_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    from sklearn.datasets import load_digits
    np.testing.assert_allclose(X[5, 0], load_digits().images[5] / 16)
    bunch = load_digits_images(return_X_y=False)
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, y)


def test_cifar10_classes():
    assert isinstance(CIFAR10_CLASSES, tuple) and len(CIFAR10_CLASSES) == 10
    assert CIFAR10_CLASSES[3] == "cat" and CIFAR10_CLASSES[9] == "truck"


def test_cifar10_subset_shape_stratification_and_pixels(cifar_path):
    X, y = load_cifar10(cifar_path, n_samples=50, random_state=0)
    assert X.shape == (50, 32, 32, 3) and X.dtype == np.uint8
    assert y.shape == (50,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [5] * 10)
    assert X.std() > 10  # real images, not blanks
    # the same seed gives the same subset; a different seed another one
    X2, y2 = load_cifar10(cifar_path.parent, n_samples=50, random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = load_cifar10(cifar_path, n_samples=50, random_state=1)
    assert not np.array_equal(X, X3)
    # pixels are the README's decoding of the chosen indices, in file order
    with np.load(cifar_path) as data:
        y_all, off, buf = data["y_train"], data["train_offsets"], data["train_jpeg"]
        classes = data["classes"]
    assert tuple(classes.tolist()) == CIFAR10_CLASSES
    idx = datasets._stratified_indices(y_all, 50, np.random.RandomState(0))
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(y, y_all[idx])
    for row in (0, 17, 49):
        i = idx[row]
        np.testing.assert_array_equal(X[row], _decode(buf[off[i]:off[i + 1]]))


def test_cifar10_test_subset_uneven_sizes(cifar_path):
    X, y = load_cifar10(cifar_path, subset="test", n_samples=23, random_state=0)
    assert X.shape == (23, 32, 32, 3)
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 23 and counts.min() == 2 and counts.max() == 3


def test_cifar10_memory_cache(cifar_path, tmp_path):
    X1, y1 = load_cifar10(cifar_path, n_samples=20, random_state=0, memory=str(tmp_path))
    assert any(tmp_path.rglob("output.pkl"))
    X2, y2 = load_cifar10(cifar_path, n_samples=20, random_state=0, memory=str(tmp_path))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


def test_cifar10n_noise_rates_match_documentation(cifar_path):
    labels_path = cifar_path.parent / "cifar10n_labels.npz"
    if not labels_path.is_file():
        pytest.skip(f"{labels_path} not available")
    n = 5000
    with np.load(labels_path) as labels:
        assert set(CIFAR10N_LABEL_KEYS) <= set(labels.files)
        noisy = {k: labels[k][:n] for k in CIFAR10N_LABEL_KEYS}
    with np.load(cifar_path) as data:
        y_clean = data["y_train"][:n]
    np.testing.assert_array_equal(noisy["clean_label"], y_clean)
    for key, rate in CIFAR10N_RATES.items():
        assert np.mean(noisy[key] != y_clean) == pytest.approx(rate, abs=0.025), key


def test_cifar10_with_label_noise(cifar_path):
    X, y_noisy, y_clean = load_cifar10(cifar_path, n_samples=50, random_state=0,
                                       label_noise="worse_label")
    X_ref, y_ref = load_cifar10(cifar_path, n_samples=50, random_state=0)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y_clean, y_ref)
    assert y_noisy.dtype == np.int64 and y_noisy.shape == (50,)
    assert 0.1 < np.mean(y_noisy != y_clean) < 0.75
    _, y_same, y_clean2 = load_cifar10(cifar_path, n_samples=50, random_state=0,
                                       label_noise="clean_label")
    np.testing.assert_array_equal(y_same, y_clean2)


def test_cifar10_invalid_arguments(cifar_path):
    with pytest.raises(ValueError, match="subset"):
        load_cifar10(cifar_path, subset="val")
    with pytest.raises(ValueError, match="label_noise"):
        load_cifar10(cifar_path, label_noise="noisy_label")
    with pytest.raises(ValueError, match="label_noise.*train"):
        load_cifar10(cifar_path, subset="test", label_noise="aggre_label")
    with pytest.raises(ValueError, match="n_samples"):
        load_cifar10(cifar_path, subset="test", n_samples=10001)
    with pytest.raises(ValueError, match="n_samples"):
        load_cifar10(cifar_path, n_samples=0)
    with pytest.raises(TypeError, match="n_samples"):
        load_cifar10(cifar_path, n_samples=0.5)


def test_cifar10_needs_a_path():
    # The data are never searched for nor downloaded: the caller says where they are.
    with pytest.raises((TypeError, ValueError), match="path"):
        load_cifar10(None)


def test_cifar10_missing_file_names_it(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_cifar10(missing)
    # A folder without the packed file: the file it looked for is named.
    with pytest.raises(FileNotFoundError, match="cifar10_jpeg.npz"):
        load_cifar10(tmp_path)


def test_cifar10n_file_missing(cifar_path, tmp_path):
    (tmp_path / "cifar10_jpeg.npz").symlink_to(cifar_path)
    with pytest.raises(FileNotFoundError, match="cifar10n_labels.npz"):
        load_cifar10(tmp_path, n_samples=10, label_noise="aggre_label")


# ------------------------------------------------------------- image folder

def _make_folder(root, sizes):
    from PIL import Image
    rng = np.random.RandomState(0)
    arrays = {}
    for cls, shape_list in sizes.items():
        (root / cls).mkdir(parents=True)
        for k, (h, w) in enumerate(shape_list):
            arr = rng.randint(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{k}.png")
            arrays[(cls, k)] = arr
    return arrays


def test_image_folder_loads_in_class_order(tmp_path):
    arrays = _make_folder(tmp_path, {"zebra": [(5, 7)] * 2, "ant": [(5, 7)] * 3})
    from PIL import Image
    Image.fromarray(np.full((5, 7), 200, dtype=np.uint8), mode="L").save(
        tmp_path / "ant" / "gray.jpg")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()
    X, y, class_names = load_image_folder(tmp_path)
    assert class_names == ["ant", "empty_class", "zebra"]
    assert X.shape == (6, 5, 7, 3) and X.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 2, 2])
    # sorted file order within a class: gray.jpg, img0.png, img1.png, img2.png
    assert np.abs(X[0].astype(int) - 200).max() <= 2  # grayscale -> RGB
    np.testing.assert_array_equal(X[1], arrays[("ant", 0)])  # PNG is lossless
    np.testing.assert_array_equal(X[5], arrays[("zebra", 1)])


def test_image_folder_resize(tmp_path):
    _make_folder(tmp_path, {"a": [(10, 12), (6, 6)], "b": [(8, 9)]})
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path)
    X, y, names = load_image_folder(tmp_path, image_size=4)
    assert X.shape == (3, 4, 4, 3)
    X, y, names = load_image_folder(str(tmp_path), image_size=(3, 5))
    assert X.shape == (3, 3, 5, 3)
    np.testing.assert_array_equal(y, [0, 0, 1])
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path, image_size=(3, 4, 5))
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path, image_size=0)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="root"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
