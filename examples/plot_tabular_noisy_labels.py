"""
Tabular data with noisy labels
==============================

:class:`~noisyclf.ContrastiveNoisyClassifier` also works on plain tabular
features: with 2-D ``X`` and no ``image_shape`` it uses an MLP encoder, and
its contrastive phases augment each sample SCARF-style, replacing a random
subset of its features (``corruption_rate``) with values drawn from other
samples.

This example corrupts the training labels of scikit-learn's breast cancer
data with symmetric noise (on two classes: a fixed fraction of labels flipped
to the other class) and compares, on the *clean* test labels, logistic
regression and gradient boosting with the framework's three modes, all trained
on the same noisy labels.  One seed only; ``benchmarks/bench_tabular.py``
repeats this over several seeds and adds the wine data.

**Settings.** Two noise rates (symmetric 0.2 and 0.4), a1 cached with
``memory`` and shared by every fit, ``pretrain_epochs=30, max_epochs=20,
finetune_epochs=10``; about 10 s on two CPU cores.
"""

# %%
# Data and label noise
# --------------------
# A 70/30 stratified split; only the training labels are corrupted.
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

# The networks are tiny: on a small CPU one torch thread is much faster than
# a team of threads waiting on each other.
torch.set_num_threads(1)

SEED = 0
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=SEED)
rates = [0.2, 0.4]
noisy = {rate: make_noisy_labels(y_train, "symmetric", rate, random_state=SEED)
         for rate in rates}
print(f"{len(y_train)} training and {len(y_test)} test samples, {X.shape[1]} features")
for rate in rates:
    print(f"symmetric {rate}: {np.mean(noisy[rate] != y_train):.3f} of the "
          f"{len(y_train)} training labels flipped")

# %%
# Models
# ------
# The framework goes in a pipeline with a :class:`~sklearn.preprocessing.StandardScaler`
# like logistic regression.  Its SimCLR pre-training (phase a1) never sees the
# labels, so ``memory`` caches it: it runs once and is reused by both noise
# rates and by the ``pretrain`` and ``full`` modes.  Fewer epochs than the
# defaults keep the example short.
cache = tempfile.TemporaryDirectory(prefix="noisyclf-example-")


def framework(phases):
    return make_pipeline(StandardScaler(), ContrastiveNoisyClassifier(
        phases=phases, loss="elr", pretrain_epochs=30, max_epochs=20, finetune_epochs=10,
        memory=cache.name, device="cpu", random_state=SEED))


def models():
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "hgb": HistGradientBoostingClassifier(random_state=SEED),
        "baseline": framework("baseline"),
        "pretrain": framework("pretrain"),
        "full": framework("full"),
    }


# %%
# Fit on noisy labels, score on clean ones
# ----------------------------------------
accuracy = {}
for rate in rates:
    for name, model in models().items():
        start = time.perf_counter()
        model.fit(X_train, noisy[rate])
        accuracy[rate, name] = model.score(X_test, y_test)
        print(f"symmetric {rate}  {name:8s} test accuracy {accuracy[rate, name]:.3f}  "
              f"({time.perf_counter() - start:.1f} s)")
cache.cleanup()

# %%
# Plot
# ----
names = list(models())
fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.8 / len(names)
for j, name in enumerate(names):
    ax.bar(np.arange(len(rates)) + (j - (len(names) - 1) / 2) * width,
           [accuracy[rate, name] for rate in rates], width, label=name)
ax.set_xticks(np.arange(len(rates)), [f"symmetric {r}" for r in rates])
ax.set_ylim(0.5, 1.0)
ax.set_ylabel("clean test accuracy")
ax.set_title(f"breast cancer, noisy training labels (seed {SEED})")
ax.legend(fontsize=8, ncol=3, loc="lower left")
fig.tight_layout()
plt.show()

# %%
# With one seed and a small test set, one test sample is worth several tenths
# of a percentage point, so small differences between methods are within
# noise; ``benchmarks/results/tabular.csv`` has means and standard deviations
# over several seeds.
