"""Synthetic label noise (``noisyclf.noise``): symmetric, asymmetric and transition-matrix
noise, exact counts, seeding, and validation of the arguments."""

import numpy as np
import pytest
from scipy.stats import chisquare

from noisyclf.noise import (
    CIFAR10_ASYMMETRIC_MAPPING,
    actual_noise_rate,
    asymmetric_mapping,
    make_noisy_labels,
    transition_matrix_from_labels,
)


def _imbalanced_labels(K=7, seed=0):
    rng = np.random.RandomState(seed)
    counts = rng.randint(5, 60, size=K)
    return rng.permutation(np.repeat(np.arange(K), counts))


def _flips_per_class(y, y_noisy, K):
    return np.bincount(y[y != y_noisy], minlength=K)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.8])
def test_symmetric_exact_counts_per_class(rate):
    K = 7
    y = _imbalanced_labels(K)
    y_noisy = make_noisy_labels(y, "symmetric", rate, random_state=0)
    n_c = np.bincount(y, minlength=K)
    expected = [round(rate * n) for n in n_c]
    np.testing.assert_array_equal(_flips_per_class(y, y_noisy, K), expected)
    assert y_noisy.shape == y.shape
    assert y_noisy.min() >= 0 and y_noisy.max() < K


def test_symmetric_flips_never_keep_the_label_and_are_uniform():
    K, n_per_class = 5, 2000
    y = np.repeat(np.arange(K), n_per_class)
    y_noisy = make_noisy_labels(y, "symmetric", 0.5, random_state=42)
    flipped = y != y_noisy
    # exactly round(0.5 * 2000) per class, so every selected sample really changed
    np.testing.assert_array_equal(_flips_per_class(y, y_noisy, K), [1000] * K)
    for c in range(K):
        targets = y_noisy[flipped & (y == c)]
        assert c not in targets
        counts = np.bincount(targets, minlength=K)
        others = np.delete(counts, c)
        assert others.sum() == 1000
        assert np.all(others > 0)
        assert chisquare(others).pvalue > 1e-3
        assert np.abs(others / 1000 - 1 / (K - 1)).max() < 0.06


def test_symmetric_flipped_samples_are_chosen_at_random():
    y = np.zeros(1000, dtype=int)
    y[500:] = 1
    y_noisy = make_noisy_labels(y, "symmetric", 0.2, random_state=0)
    pos = np.flatnonzero(y_noisy[:500] != 0)
    assert pos.size == 100
    # not simply the first 100 samples of the class
    assert pos.max() > 300 and pos.min() < 200


def test_asymmetric_cifar10_pairs_and_counts():
    K = 10
    y = np.repeat(np.arange(K), 100)
    rate = 0.4
    y_noisy = make_noisy_labels(y, "asymmetric", rate, mapping="cifar10", random_state=0)
    flips = _flips_per_class(y, y_noisy, K)
    for c in range(K):
        if c in CIFAR10_ASYMMETRIC_MAPPING:
            assert flips[c] == round(rate * 100)
            changed = y_noisy[(y == c) & (y != y_noisy)]
            assert np.all(changed == CIFAR10_ASYMMETRIC_MAPPING[c])
        else:
            assert flips[c] == 0
    pairs = set(zip(y[y != y_noisy].tolist(), y_noisy[y != y_noisy].tolist()))
    assert pairs == {(9, 1), (2, 0), (3, 5), (5, 3), (4, 7)}


def test_asymmetric_cifar100_circular_blocks():
    K = 100
    y = np.repeat(np.arange(K), 10)
    y_noisy = make_noisy_labels(y, "asymmetric", 0.3, mapping="cifar100", random_state=0)
    np.testing.assert_array_equal(_flips_per_class(y, y_noisy, K), [3] * K)
    src, dst = y[y != y_noisy], y_noisy[y != y_noisy]
    assert np.all(src // 5 == dst // 5)  # stays within the super-class
    np.testing.assert_array_equal(dst, 5 * (src // 5) + (src % 5 + 1) % 5)
    assert {(4, 0), (99, 95), (0, 1)} <= set(zip(src.tolist(), dst.tolist()))
    mapping = asymmetric_mapping("cifar100", 10)
    assert mapping == {0: 1, 1: 2, 2: 3, 3: 4, 4: 0, 5: 6, 6: 7, 7: 8, 8: 9, 9: 5}


def test_asymmetric_dict_mapping():
    K = 4
    y = np.repeat(np.arange(K), 20)
    mapping = {0: 2, 3: 1, 1: 1}  # 1 -> 1 is a no-op
    y_noisy = make_noisy_labels(y, "asymmetric", 0.25, mapping=mapping, random_state=1)
    np.testing.assert_array_equal(_flips_per_class(y, y_noisy, K), [5, 0, 0, 5])
    assert set(y_noisy[(y == 0) & (y != y_noisy)]) == {2}
    assert set(y_noisy[(y == 3) & (y != y_noisy)]) == {1}


def test_asymmetric_default_mapping_is_next_class():
    K = 6
    y = _imbalanced_labels(K, seed=3)
    y_noisy = make_noisy_labels(y, "asymmetric", 0.35, random_state=0)
    n_c = np.bincount(y, minlength=K)
    np.testing.assert_array_equal(_flips_per_class(y, y_noisy, K),
                                  [round(0.35 * n) for n in n_c])
    changed = y != y_noisy
    np.testing.assert_array_equal(y_noisy[changed], (y[changed] + 1) % K)


def test_n_classes_extends_label_space():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 10)
    y_noisy = make_noisy_labels(y, "symmetric", 0.5, n_classes=5, random_state=0)
    assert set(np.unique(y_noisy)) > {0, 1}
    assert y_noisy.max() < 5
    # cifar10 mapping on labels that lack class 9 needs n_classes
    y = np.repeat(np.arange(9), 10)
    y_noisy = make_noisy_labels(y, "asymmetric", 0.2, mapping="cifar10", n_classes=10,
                                random_state=0)
    assert actual_noise_rate(y, y_noisy) == pytest.approx(4 * 2 / 90)


def test_matrix_noise_matches_transition_matrix():
    K = 4
    rng = np.random.RandomState(0)
    T = rng.dirichlet(np.ones(K), size=K)
    T[1] = [0.0, 0.7, 0.3, 0.0]  # zeros must never be drawn
    y = np.repeat(np.arange(K), 20000)
    y_noisy = make_noisy_labels(y, "matrix", transition_matrix=T, random_state=0)
    T_hat = transition_matrix_from_labels(y, y_noisy, n_classes=K)
    np.testing.assert_allclose(T_hat, T, atol=0.015)
    assert set(y_noisy[y == 1]) == {1, 2}


def test_matrix_identity_changes_nothing_and_rate_is_ignored():
    y = _imbalanced_labels(5)
    y_noisy = make_noisy_labels(y, "matrix", 0.9, transition_matrix=np.eye(5), random_state=0)
    np.testing.assert_array_equal(y_noisy, y)
    assert y_noisy is not y


def test_matrix_tolerates_rows_off_by_less_than_1e6():
    T = np.array([[0.5, 0.5 + 5e-7], [0.0, 1.0]])
    y = np.array([0, 1] * 50)
    y_noisy = make_noisy_labels(y, "matrix", transition_matrix=T, random_state=0)
    assert np.all(y_noisy[y == 1] == 1)


@pytest.mark.parametrize("noise_type, kwargs", [
    ("symmetric", {}),
    ("asymmetric", {}),
    ("matrix", {"transition_matrix": np.full((3, 3), 1 / 3)}),
])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float64])
def test_input_unmodified_readonly_and_dtype_kept(noise_type, kwargs, dtype):
    y = np.tile(np.arange(3), 30).astype(dtype)
    y.setflags(write=False)
    y_copy = y.copy()
    y_noisy = make_noisy_labels(y, noise_type, 0.4, random_state=0, **kwargs)
    np.testing.assert_array_equal(y, y_copy)
    assert y_noisy.dtype == y.dtype
    assert not np.shares_memory(y, y_noisy)
    assert y_noisy.flags.writeable
    assert np.any(y_noisy != y)


def test_list_input():
    y_noisy = make_noisy_labels([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], "symmetric", 0.5,
                                random_state=0)
    assert isinstance(y_noisy, np.ndarray)
    # class sizes 4, 3, 3 -> round(2.0) + round(1.5) + round(1.5) = 2 + 2 + 2 flips
    assert actual_noise_rate([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], y_noisy) == pytest.approx(0.6)


@pytest.mark.parametrize("noise_type, kwargs", [
    ("symmetric", {}),
    ("asymmetric", {"mapping": "cifar10"}),
    ("matrix", {"transition_matrix": np.full((10, 10), 0.1)}),
])
def test_seeding(noise_type, kwargs):
    y = np.repeat(np.arange(10), 50)
    a = make_noisy_labels(y, noise_type, 0.3, random_state=0, **kwargs)
    b = make_noisy_labels(y, noise_type, 0.3, random_state=0, **kwargs)
    c = make_noisy_labels(y, noise_type, 0.3, random_state=1, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    d = make_noisy_labels(y, noise_type, 0.3, random_state=np.random.RandomState(0),
                          **kwargs)
    np.testing.assert_array_equal(a, d)
    g1 = make_noisy_labels(y, noise_type, 0.3, random_state=np.random.default_rng(5),
                           **kwargs)
    g2 = make_noisy_labels(y, noise_type, 0.3, random_state=np.random.default_rng(5),
                           **kwargs)
    np.testing.assert_array_equal(g1, g2)
    gen = np.random.default_rng(5)
    first = make_noisy_labels(y, noise_type, 0.3, random_state=gen, **kwargs)
    second = make_noisy_labels(y, noise_type, 0.3, random_state=gen, **kwargs)
    np.testing.assert_array_equal(first, g1)
    assert np.any(first != second)  # the Generator is advanced


@pytest.mark.parametrize("random_state", [None, 0, "rs", "gen"])
def test_global_random_state_untouched(random_state):
    if random_state == "rs":
        random_state = np.random.RandomState(3)
    elif random_state == "gen":
        random_state = np.random.default_rng(3)
    np.random.seed(1234)
    before = np.random.get_state()
    y = np.repeat(np.arange(4), 25)
    make_noisy_labels(y, "symmetric", 0.3, random_state=random_state)
    make_noisy_labels(y, "asymmetric", 0.3, random_state=random_state)
    make_noisy_labels(y, "matrix", transition_matrix=np.full((4, 4), 0.25),
                      random_state=random_state)
    after = np.random.get_state()
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_none_seed_gives_varying_results():
    y = np.repeat(np.arange(10), 100)
    outs = [make_noisy_labels(y, "symmetric", 0.5) for _ in range(3)]
    assert any(np.any(outs[0] != o) for o in outs[1:])


def test_rate_zero_is_identity():
    y = _imbalanced_labels()
    for noise_type in ("symmetric", "asymmetric"):
        np.testing.assert_array_equal(make_noisy_labels(y, noise_type, 0.0, random_state=0), y)


def test_transition_matrix_from_labels_and_rate():
    T = transition_matrix_from_labels([0, 0, 0, 0, 2], [0, 1, 1, 0, 0], n_classes=3)
    np.testing.assert_allclose(T, [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert actual_noise_rate([0, 1, 2], [0, 1, 2]) == 0.0
    assert actual_noise_rate(np.array([0, 1]), np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match="same length"):
        actual_noise_rate([0, 1], [0])
    with pytest.raises(ValueError, match="y_noisy"):
        transition_matrix_from_labels([0, 1], [0, -1])
    with pytest.raises(ValueError, match="n_classes=2"):
        transition_matrix_from_labels([0, 1], [0, 2], n_classes=2)


# ---------------------------------------------------------------- errors

Y = np.repeat(np.arange(3), 10)


@pytest.mark.parametrize("y, match", [
    (np.zeros((4, 2), dtype=int), "`y` must be a 1-D"),
    (np.array(3), "`y` must be a 1-D"),
    (np.array([], dtype=int), "`y` must not be empty"),
    (np.array([0.0, 1.5]), "`y` must contain integer"),
    (np.array([0.0, np.nan]), "`y` must contain integer"),
    (np.array(["a", "b"]), "`y` must contain integer"),
    (np.array([True, False]), "`y` must contain integer"),
    (np.array([0, -1, 2]), "`y` must contain non-negative"),
])
def test_invalid_y(y, match):
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(y, random_state=0)


def test_y_values_beyond_n_classes():
    with pytest.raises(ValueError, match=r"`y` contains class id 2.*n_classes=2"):
        make_noisy_labels(Y, n_classes=2)
    with pytest.raises(ValueError, match="`y` contains class id 2"):
        make_noisy_labels(Y, "matrix", transition_matrix=np.eye(2))


@pytest.mark.parametrize("n_classes, err", [(0, ValueError), (2.5, TypeError),
                                            ("3", TypeError)])
def test_invalid_n_classes(n_classes, err):
    with pytest.raises(err, match="n_classes"):
        make_noisy_labels(Y, n_classes=n_classes)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), float("inf"), np.float32(2.0)])
def test_noise_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=r"`noise_rate` must be in \[0, 1\)"):
        make_noisy_labels(Y, noise_rate=rate)


@pytest.mark.parametrize("rate", ["0.2", None, [0.2], True, 1j])
def test_noise_rate_not_a_real_number(rate):
    with pytest.raises(TypeError, match="`noise_rate` must be a real number"):
        make_noisy_labels(Y, noise_rate=rate)


def test_noise_rate_accepts_numpy_and_int():
    make_noisy_labels(Y, noise_rate=np.float32(0.3), random_state=0)
    np.testing.assert_array_equal(make_noisy_labels(Y, noise_rate=0, random_state=0), Y)


@pytest.mark.parametrize("noise_type", ["pairflip", "Symmetric", None, 3])
def test_unknown_noise_type(noise_type):
    with pytest.raises(ValueError, match=r"noise_type.*symmetric.*asymmetric.*matrix"):
        make_noisy_labels(Y, noise_type)


@pytest.mark.parametrize("mapping, n_classes, match", [
    ("cifar1000", None, "mapping"),
    ("cifar100", 12, "mapping.*divisible by 5"),
    ("cifar10", 5, "mapping.*n_classes >= 10"),
    ({0: 3}, None, "mapping.*class 3"),
    ({-1: 0}, None, "mapping.*class -1"),
    ({0: 1.5}, None, "mapping.*int"),
    ([(0, 1)], None, "mapping"),
])
def test_invalid_mapping(mapping, n_classes, match):
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(Y, "asymmetric", mapping=mapping, n_classes=n_classes)


def test_mapping_and_matrix_need_their_noise_type():
    with pytest.raises(ValueError, match="mapping.*asymmetric"):
        make_noisy_labels(Y, "symmetric", mapping="cifar10")
    with pytest.raises(ValueError, match="transition_matrix.*matrix"):
        make_noisy_labels(Y, "asymmetric", transition_matrix=np.eye(3))
    with pytest.raises(ValueError, match="transition_matrix.*required"):
        make_noisy_labels(Y, "matrix")


@pytest.mark.parametrize("T, n_classes, match", [
    (np.eye(3)[:2], None, "transition_matrix.*square"),
    (np.ones(3) / 3, None, "transition_matrix.*square"),
    (np.eye(4), 3, r"transition_matrix.*n_classes=3"),
    (np.array([[1.5, -0.5, 0], [0, 1, 0], [0, 0, 1]]), None, "transition_matrix.*non-negative"),
    (np.array([[0.5, 0.4, 0], [0, 1, 0], [0, 0, 1]]), None, "transition_matrix.*sum to 1"),
    (np.array([[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]]), None, "transition_matrix"),
    (np.eye(3) * (1 + 1e-5), None, "transition_matrix.*sum to 1"),
])
def test_invalid_transition_matrix(T, n_classes, match):
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(Y, "matrix", transition_matrix=T, n_classes=n_classes)


def test_symmetric_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_noisy_labels(np.zeros(10, dtype=int), "symmetric", 0.2)


@pytest.mark.parametrize("random_state", ["seed", 1.5, np.random])
def test_invalid_random_state(random_state):
    with pytest.raises(ValueError):
        make_noisy_labels(Y, random_state=random_state)
