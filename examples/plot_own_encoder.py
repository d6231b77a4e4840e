"""
Your own encoder: torchvision's ResNet-18 on a CIFAR-10 subset
==============================================================

``encoder`` accepts your own :class:`torch.nn.Module`, the skorch way:

* an **instance** (here torchvision's ResNet-18 with its classification
  layer removed), deep-copied at ``fit`` so that the module you pass is
  never trained in place; its weights are where training starts, so a
  *pretrained* instance with ``pretrain_epochs=0`` (or a few SimCLR epochs)
  cuts the cost of phase a1, as the paper suggests;
* a **class**, built at ``fit`` from the ``encoder__*`` parameters of the
  estimator, which ``get_params``, ``clone`` and ``GridSearchCV`` see.

The module receives standardised ``(batch, C, H, W)`` images and must return
``(batch, d)`` features; ``d`` is found by a dry forward pass.

**Settings: a demonstration schedule, not a benchmark.** On a CPU
torchvision's ResNet-18 trains at a few hundred 32x32 images per second,
so this example uses 600 training and 300 test images and one to three
epochs per phase (about 30 s on two CPU cores).  The accuracies printed
below are therefore close to chance; the point is the code.  Nothing is
downloaded: the network is built with ``weights=None`` and the images are
read from a local ``cifar10_jpeg.npz`` by
:func:`~noisyclf.datasets.load_cifar10`.  Where that file is missing, the
example says so and runs on synthetic images of the same shape instead.
"""

# %%
# Data: a CIFAR-10 subset with human label noise
# ----------------------------------------------
# :func:`~noisyclf.datasets.load_cifar10` returns a stratified subset as
# uint8 ``(n, 32, 32, 3)`` images (channels last; the estimator detects the
# layout and scales uint8 pixels to [0, 1]).  With ``label_noise`` it also
# returns CIFAR-10N's human labels ("worse_label": about 40% wrong) and the
# clean ones.  ``DATA`` is the directory holding ``cifar10_jpeg.npz`` and
# ``cifar10n_labels.npz``: the ``NOISYCLF_DATA`` environment variable, else
# ``shared/data`` beside the repository.
import copy
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
from sklearn.base import clone
from torch import nn

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf.datasets import CIFAR10_CLASSES, load_cifar10

# On a small, shared CPU one torch thread is often faster than a team of threads
# waiting on each other.
torch.set_num_threads(1)
SEED = 0
N_TRAIN, N_TEST = 600, 300
try:
    REPO = Path(__file__).resolve().parents[1]
except NameError:  # sphinx-gallery runs the example from examples/ without __file__
    REPO = Path.cwd().resolve().parent
DATA = Path(os.environ.get("NOISYCLF_DATA", REPO.parent / "shared" / "data"))


def synthetic_images(n, rng):
    """Stand-in data: each class is a coloured grating with its own orientation."""
    labels = np.arange(n) % 10
    rows, cols = np.mgrid[0:32, 0:32] / 32.0
    angle = np.pi * labels / 10
    phase = (np.cos(angle)[:, None, None] * cols + np.sin(angle)[:, None, None] * rows)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * phase)
    colour = rng.uniform(0.3, 1.0, size=(10, 3))[labels]
    images = grating[..., None] * colour[:, None, None, :]
    images = images + rng.normal(0.0, 0.15, size=images.shape)
    return (255 * np.clip(images, 0, 1)).astype(np.uint8), labels


try:
    X_train, y_noisy, y_train = load_cifar10(
        DATA / "cifar10_jpeg.npz", n_samples=N_TRAIN, random_state=SEED,
        label_noise="worse_label")
    X_test, y_test = load_cifar10(DATA / "cifar10_jpeg.npz", subset="test",
                                  n_samples=N_TEST, random_state=SEED)
    print(f"CIFAR-10: {N_TRAIN} training images with CIFAR-10N 'worse_label' labels, "
          f"{N_TEST} test images; classes {', '.join(CIFAR10_CLASSES)}")
except FileNotFoundError as exc:
    print(f"NOTE: CIFAR-10 was not found, so this run uses SYNTHETIC images "
          f"(coloured gratings, one orientation per class) and simulated 40% symmetric "
          f"label noise.\n{exc}")
    rng = np.random.default_rng(SEED)
    X_train, y_train = synthetic_images(N_TRAIN, rng)
    X_test, y_test = synthetic_images(N_TEST, rng)
    y_noisy = make_noisy_labels(y_train, "symmetric", 0.4, random_state=SEED)
print(f"X_train {X_train.shape} {X_train.dtype}; "
      f"{np.mean(y_noisy != y_train):.1%} of the training labels are wrong")

fig, axes = plt.subplots(2, 6, figsize=(9, 4.2))
for ax, image, given, true in zip(axes.flat, X_train, y_noisy, y_train):
    ax.imshow(image)
    ax.set_title(f"{CIFAR10_CLASSES[given]}\n(true: {CIFAR10_CLASSES[true]})", fontsize=8,
                 color="tab:red" if given != true else "black")
    ax.axis("off")
fig.suptitle("training images: given label (true label); wrong labels in red", fontsize=9)
fig.tight_layout()
plt.show()

# %%
# An encoder instance: torchvision's ResNet-18
# --------------------------------------------
# ``resnet18(weights=None)`` builds the network with random weights (no
# download).  Replacing its last layer ``fc`` by :class:`torch.nn.Identity`
# turns the classifier into an encoder returning 512 features; the estimator
# puts its own projection head (phases a1, b2) and classifier head (a2, b3)
# on top.  ``verbose=1`` prints one line per phase here (a progress bar in a
# terminal or notebook).
resnet = torchvision.models.resnet18(weights=None)
resnet.fc = nn.Identity()
before = copy.deepcopy(resnet.state_dict())

clf = ContrastiveNoisyClassifier(
    encoder=resnet, phases="pretrain", pretrain_epochs=2, max_epochs=3, warmup_epochs=1,
    gmm_epochs=1, batch_size=64, random_state=SEED, verbose=1)
start = time.perf_counter()
clf.fit(X_train, y_noisy)
print(f"fit in {time.perf_counter() - start:.1f} s; encoder_kind_={clf.encoder_kind_!r}; "
      f"test accuracy {clf.score(X_test, y_test):.3f} (demonstration schedule)")

# %%
# The instance was deep-copied: the ``resnet`` object passed in still holds
# its initial weights.  The trained copy is the last module of the fitted
# classifier's encoder (after the :class:`~noisyclf.modules.Standardize`
# layer that the estimator puts in front of every encoder).
unchanged = all(torch.equal(before[k], v) for k, v in resnet.state_dict().items())
print(f"the resnet passed in is unchanged: {unchanged}")
trained = clf.classifier_net_.module_.encoder[-1]
print(f"trained copy: {type(trained).__name__}, a different object: {trained is not resnet}")

# %%
# Starting from pretrained weights
# --------------------------------
# The paper notes that SimCLR pre-training (a1) is the costly part and that
# starting it from pretrained weights would cut that cost.  Pass a
# pretrained instance and either skip a1 (``pretrain_epochs=0``: a2 starts
# from the instance's weights) or keep a short a1 (a few epochs) to adapt the
# features to your data.  With internet access torchvision would give
# ImageNet weights (``resnet18(weights="IMAGENET1K_V1")`` downloads them
# once); offline, load a checkpoint you have::
#
#     resnet = torchvision.models.resnet18()
#     resnet.load_state_dict(torch.load("resnet18_checkpoint.pth"))
#     resnet.fc = nn.Identity()
#
# Here the encoder trained above stands in for such a checkpoint: its
# weights are saved to a file and loaded into a fresh ResNet-18.  The inputs
# are standardised per channel with the training set's statistics, close to
# the ImageNet normalisation that torchvision's pretrained weights expect.
#
# (torchvision's ResNet-18 has an ImageNet stem, a strided 7x7 convolution and
# a max-pool, that shrinks a 32x32 image to 8x8 at once; ``encoder="resnet18"``
# is the CIFAR variant of the paper, with a 3x3 stem and no max-pool, more
# accurate on small images and slower.)
with tempfile.TemporaryDirectory() as tmp:
    checkpoint = Path(tmp) / "resnet18_checkpoint.pth"
    torch.save(trained.state_dict(), checkpoint)
    pretrained = torchvision.models.resnet18(weights=None)
    pretrained.fc = nn.Identity()
    pretrained.load_state_dict(torch.load(checkpoint))

# The full framework this time (a2, b1, b2, b3), with a1 skipped.
warm = clone(clf).set_params(encoder=pretrained, pretrain_epochs=0, phases="full",
                             max_epochs=2, finetune_epochs=1)
start = time.perf_counter()
warm.fit(X_train, y_noisy)
print(f"a1 skipped: history_['a1'] has {len(warm.history_['a1'])} epochs; fit in "
      f"{time.perf_counter() - start:.1f} s; test accuracy {warm.score(X_test, y_test):.3f}")

# %%
# An encoder class with ``encoder__*`` parameters
# -----------------------------------------------
# A :class:`torch.nn.Module` *subclass* is built at ``fit`` as
# ``encoder(**kwargs)`` from the estimator's ``encoder__<name>`` parameters,
# with torch's random generator seeded from ``random_state``.  They are
# hyperparameters like any other: ``get_params``, ``set_params``, ``clone``
# and the searches see them, so ``GridSearchCV`` can tune the width of your
# network.  Define the class at module level so that a fitted model pickles.


class SmallConvNet(nn.Module):
    """Three strided conv blocks and global average pooling: (n, 3, H, W) -> (n, 4 width)."""

    def __init__(self, width=16, in_channels=3):
        super().__init__()
        layers, channels = [], in_channels
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.features(x)


small = ContrastiveNoisyClassifier(
    encoder=SmallConvNet, encoder__width=16, phases="pretrain", pretrain_epochs=5,
    max_epochs=5, warmup_epochs=1, gmm_epochs=1, batch_size=64, random_state=SEED)
print({k: v for k, v in small.get_params().items() if k.startswith("encoder")})
small.set_params(encoder__width=8)
start = time.perf_counter()
small.fit(X_train, y_noisy)
encoder = small.classifier_net_.module_.encoder
print(f"encoder__width=8 gives {encoder.out_features} features; fit in "
      f"{time.perf_counter() - start:.1f} s; test accuracy {small.score(X_test, y_test):.3f}")

# %%
# A search over the width would read
# ``GridSearchCV(small, {"encoder__width": [8, 16, 32]})``; with
# ``memory=`` the SimCLR phase of each width is cached (see
# :ref:`sphx_glr_auto_examples_plot_grid_search_cached.py`).  Real use needs
# far longer schedules: the defaults train a1 for 100 epochs and a2 and b3
# for 40 each.
