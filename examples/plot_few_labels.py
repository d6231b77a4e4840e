"""
A few noisy labels, many images
===============================

Labels are expensive, images are not: a user often holds far more images
than labels, and some of the labels are wrong.  Mark every sample without a
label with ``-1`` in ``y`` (scikit-learn's semi-supervised convention) and
:class:`~noisyclf.ContrastiveNoisyClassifier` uses it wherever the framework
needs no given label: SimCLR pre-training (a1) learns from every image, a2
trains on the labeled ones, then every image gets a pseudo-label and a weight,
and phase b trains the final classifier on all of them
(:ref:`unlabeled-samples`).

This example keeps 150 labels of scikit-learn's digits training split, flips
some of them, hides the other labels, and compares the estimator with its
unlabeled samples, the same estimator on the 150 labeled samples alone and
scikit-learn's :class:`~sklearn.semi_supervised.SelfTrainingClassifier`.

**Settings.** One seed; a shorter schedule than the defaults
(``pretrain_epochs=30, max_epochs=15, finetune_epochs=5``); three fits,
about 40 s on two CPU cores.  :ref:`bench-unlabeled` measures the defaults
over five seeds.
"""

# %%
# 150 noisy labels and 1,107 unlabeled images
# -------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.semi_supervised import SelfTrainingClassifier

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
labeled, _ = train_test_split(np.arange(len(y_train)), train_size=150, stratify=y_train,
                              random_state=0)
y_given = np.full(len(y_train), -1)  # -1: no label
y_given[labeled] = make_noisy_labels(y_train[labeled], "symmetric", 0.3, random_state=0)
print(f"{len(labeled)} labels, {np.mean(y_given[labeled] != y_train[labeled]):.0%} of them "
      f"wrong; {np.sum(y_given == -1)} unlabeled images")

# %%
# Three classifiers
# -----------------
# The same hyperparameters with and without the unlabeled images; scikit-learn's
# self-training on the pixels with the same ``-1`` labels.
params = dict(image_shape=(1, 8, 8), pretrain_epochs=30, max_epochs=15, finetune_epochs=5,
              random_state=0)
with_unlabeled = ContrastiveNoisyClassifier(**params).fit(X_train, y_given)
labels_only = ContrastiveNoisyClassifier(**params).fit(X_train[labeled], y_given[labeled])
self_training = SelfTrainingClassifier(LogisticRegression(max_iter=1000)).fit(
    X_train / 16, y_given)

scores = {
    "noisyclf + unlabeled": with_unlabeled.score(X_test, y_test),
    "noisyclf, labels only": labels_only.score(X_test, y_test),
    "SelfTrainingClassifier": self_training.score(X_test / 16, y_test),
}
for name, score in scores.items():
    print(f"{name:>24}: {score:.3f}")
print(with_unlabeled.phase_b_decision_["reason"])

# %%
# What the fit says about each sample
# -----------------------------------
# Every training image has a pseudo-label and a weight (``sample_weights_``);
# only the labeled ones have a given-label quality (NaN for the others), and
# :meth:`~noisyclf.ContrastiveNoisyClassifier.find_label_issues` marks the
# unlabeled ones.
issues = with_unlabeled.find_label_issues(y_given)
print(issues.groupby("is_unlabeled")[["label_quality", "is_label_issue"]].mean())
pseudo_correct = with_unlabeled.pseudo_labels_ == y_train
print(f"pseudo-labels correct: {pseudo_correct[y_given == -1].mean():.3f} of the unlabeled "
      f"images, {pseudo_correct[y_given != -1].mean():.3f} of the labeled ones")

fig, ax = plt.subplots(figsize=(5, 2.8))
ax.barh(list(scores), list(scores.values()), color=["C0", "C7", "C1"])
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("test accuracy")
ax.invert_yaxis()
fig.tight_layout()
plt.show()
