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
