"""Test-time flips (``tta="flip"``): the mean of the class probabilities of each image and of
its mirror, for arrays, flat images and streamed Datasets; images only."""

import numpy as np
import pytest
import torch
from torch import nn

from noisyclf import ContrastiveNoisyClassifier

from _data import Items, tabular

TINY = dict(phases="baseline", max_epochs=2, warmup_epochs=0, batch_size=32, device="cpu",
            random_state=0)


def _images(n=96, side=16, seed=0):
    """``n`` colour (n, side, side, 3) uint8 images whose class is the brighter half: the
    left one (class 0), the right one (class 1) or neither (class 2)."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 120, size=(n, side, side, 3)).astype(np.uint8)
    y = np.arange(n) % 3
    X[y == 0, :, :side // 2] += 120
    X[y == 1, :, side // 2:] += 120
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _images()
    return ContrastiveNoisyClassifier(**TINY, precision="fp32").fit(X, y), X


def _slow_flip_proba(clf, X):
    """The mean of the fp32 softmax of the classifier's module on each NCHW image (scaled to
    [0, 1]) and on its mirror, one image at a time, in float64."""
    module = clf.classifier_net_.module_.eval()
    out = []
    with torch.no_grad():
        for image in X:
            x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255)[None]
            views = [x, torch.from_numpy(np.ascontiguousarray(x.numpy()[..., ::-1]))]
            out.append(np.mean([torch.softmax(module(v).double(), 1)[0].numpy()
                                for v in views], axis=0))
    return np.array(out)


def test_flip_averages_each_image_and_its_mirror(fitted):
    clf, X = fitted
    plain = clf.predict_proba(X)
    mirrored = clf.predict_proba(np.ascontiguousarray(X[:, :, ::-1]))
    y = np.arange(len(X)) % 3
    try:
        clf.set_params(tta="flip")
        both, predicted, score = clf.predict_proba(X), clf.predict(X), clf.score(X, y)
    finally:
        clf.set_params(tta=None)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(both, _slow_flip_proba(clf, X), rtol=0, atol=1e-5)
    assert not np.allclose(both, plain)  # the mirror changes the prediction
    np.testing.assert_array_equal(predicted, clf.classes_[both.argmax(1)])
    assert score == np.mean(predicted == y)


def test_flip_can_be_set_after_fit_and_leaves_the_callers_images_alone(fitted):
    clf, X = fitted
    plain = clf.predict_proba(X)
    copy = X.copy()
    try:
        clf.set_params(tta="flip")
        both = clf.predict_proba(X)
    finally:
        clf.set_params(tta=None)
    np.testing.assert_array_equal(X, copy)
    np.testing.assert_array_equal(clf.predict_proba(X), plain)
    assert not np.allclose(both, plain)


def test_flip_of_a_streamed_dataset_is_that_of_the_array(fitted):
    clf, X = fitted
    dataset = Items([torch.from_numpy(image.transpose(2, 0, 1).copy()) for image in X])
    try:
        clf.set_params(tta="flip")
        streamed, in_memory = clf.predict_proba(dataset), clf.predict_proba(X)
    finally:
        clf.set_params(tta=None)
    np.testing.assert_allclose(streamed, in_memory, rtol=0, atol=1e-12)
    assert not np.allclose(streamed, clf.predict_proba(X))


class _FlatMLP(nn.Module):
    """A user's encoder that ``.view()``s its NCHW input: it keeps that layout."""

    def __init__(self, in_features):
        super().__init__()
        self.out_features = 16
        self.fc = nn.Linear(in_features, 16)

    def forward(self, x):
        return torch.relu(self.fc(x.view(len(x), -1)))


def test_flip_of_flat_images_and_of_a_users_nchw_encoder():
    X, y = _images(n=60, side=8)
    flat = X.transpose(0, 3, 1, 2).reshape(len(X), -1)  # (n, C*H*W), image_shape=(C, H, W)
    clf = ContrastiveNoisyClassifier(**TINY, image_shape=(3, 8, 8), encoder=_FlatMLP,
                                     encoder__in_features=3 * 8 * 8, tta="flip").fit(flat, y)
    assert not clf.channels_last_
    mirrored = np.ascontiguousarray(X[:, :, ::-1]).transpose(0, 3, 1, 2).reshape(len(X), -1)
    both = clf.predict_proba(flat)
    clf.set_params(tta=None)
    np.testing.assert_allclose(both, (clf.predict_proba(flat) + clf.predict_proba(mirrored)) / 2,
                               rtol=0, atol=1e-12)


def test_flip_of_tabular_input_is_an_error_naming_tta(no_training):
    X, y = tabular()
    with pytest.raises(ValueError, match=r"tta='flip' mirrors images.*shape \(10,\)"):
        ContrastiveNoisyClassifier(**TINY, tta="flip").fit(X, y)


def test_flip_set_after_a_tabular_fit_is_an_error_at_predict():
    X, y = tabular()
    clf = ContrastiveNoisyClassifier(**TINY).fit(X, y)
    clf.set_params(tta="flip")
    with pytest.raises(ValueError, match="tta='flip' mirrors images"):
        clf.predict(X)


def test_unknown_tta_is_an_error_naming_it(no_training):
    X, y = _images(n=30)
    with pytest.raises(ValueError, match="'tta' parameter"):
        ContrastiveNoisyClassifier(**TINY, tta="rotate").fit(X, y)
