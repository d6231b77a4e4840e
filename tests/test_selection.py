"""GMM sample selection (paper section 4.1, panel b1)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from noisyclf.selection import gmm_clean_probability, label_issue_mask



def _bimodal(seed=0):
    rng = np.random.RandomState(seed)
    clean = rng.normal(0.2, 0.05, 700)
    noisy = rng.normal(1.5, 0.3, 300)
    return np.r_[clean, noisy], np.r_[np.ones(700, bool), np.zeros(300, bool)]


def test_clean_component_is_the_low_loss_one():
    losses, is_clean = _bimodal()
    w = gmm_clean_probability(losses, random_state=0)
    assert roc_auc_score(is_clean, w) > 0.99
    assert w[is_clean].mean() > 0.95 and w[~is_clean].mean() < 0.05


def test_min_max_normalisation_makes_it_affine_invariant():
    losses, _ = _bimodal()
    w = gmm_clean_probability(losses, random_state=0)
    np.testing.assert_allclose(gmm_clean_probability(3.0 * losses + 7.0, random_state=0), w,
                               atol=1e-6)


def test_constant_losses_give_weight_one():
    np.testing.assert_array_equal(gmm_clean_probability(np.full(10, 0.3)), np.ones(10))


def test_non_finite_losses_raise():
    with pytest.raises(ValueError, match="finite"):
        gmm_clean_probability([0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="empty"):
        gmm_clean_probability([])


def test_seeded_and_in_unit_interval():
    losses, _ = _bimodal(1)
    a = gmm_clean_probability(losses, random_state=3)
    np.testing.assert_array_equal(a, gmm_clean_probability(losses, random_state=3))
    assert a.min() >= 0 and a.max() <= 1


def test_label_issue_mask_threshold():
    np.testing.assert_array_equal(label_issue_mask([0.9, 0.2, 0.5, 0.49]),
                                  [False, True, False, True])
    np.testing.assert_array_equal(label_issue_mask([0.9, 0.2], threshold=0.95), [True, True])


def test_clean_component_is_the_lower_mean_even_as_the_minority():
    # 30 % clean: the clean component is found by its mean, not its size.
    rng = np.random.RandomState(0)
    losses = np.r_[rng.normal(0.2, 0.05, 300), rng.normal(1.5, 0.3, 700)]
    is_clean = np.r_[np.ones(300, bool), np.zeros(700, bool)]
    w = gmm_clean_probability(losses, random_state=0)
    assert roc_auc_score(is_clean, w) > 0.99
    assert w[is_clean].mean() > 0.95 and w[~is_clean].mean() < 0.05


def test_low_losses_get_high_weights():
    losses, _ = _bimodal(2)
    w = gmm_clean_probability(losses, random_state=0)
    order = np.argsort(losses)
    assert w[order[:500]].min() > 0.9    # the lowest half: all judged clean
    assert w[order[-200:]].max() < 0.1   # the highest fifth: all judged noisy
    assert not np.allclose(w, w[0])


def test_input_forms_and_edge_cases():
    losses, _ = _bimodal(3)
    before = losses.copy()
    w = gmm_clean_probability(losses, random_state=0)
    np.testing.assert_array_equal(losses, before)  # the caller's array is left alone
    assert w.shape == (1000,) and w.dtype == np.float64
    np.testing.assert_allclose(gmm_clean_probability(losses.reshape(-1, 1), random_state=0), w)
    np.testing.assert_allclose(gmm_clean_probability(list(losses), random_state=0), w)
    np.testing.assert_allclose(
        gmm_clean_probability(losses.astype(np.float32), random_state=0), w, atol=1e-4)
    np.testing.assert_array_equal(gmm_clean_probability([0.7]), [1.0])
    with pytest.raises(ValueError, match="finite"):
        gmm_clean_probability([0.1, np.inf, 0.3])


def test_label_issue_mask_returns_a_boolean_array():
    mask = label_issue_mask(np.array([0.1, 0.6, 0.5]))
    assert mask.dtype == bool and mask.tolist() == [True, False, False]
