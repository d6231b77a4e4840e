"""Small data sets shared by several test modules."""

from sklearn.datasets import load_digits, make_classification
from torch.utils.data import Dataset


def tabular(n=80, n_features=10, seed=0):
    """A 3-class tabular problem, ``n`` samples of ``n_features`` features."""
    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=5,
                               n_redundant=0, n_classes=3, random_state=seed)
    return X, y


def digit_images(n=80):
    """The first ``n`` digits as 3-D (n, 8, 8) images."""
    X, y = load_digits(return_X_y=True)
    return X[:n].reshape(n, 8, 8), y[:n]


class Items(Dataset):
    """A Dataset of the items of a sequence, as they are: bare (C, H, W) tensors,
    ``(image, label)`` pairs, or anything a test feeds to ``fit``."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]
