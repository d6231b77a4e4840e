"""
Learning-rate sensitivity under heavy label noise
=================================================

The paper's Figure 5 plots test accuracy against the learning rate for its
three losses, training from scratch (the baseline, dashed) or from SimCLR
pre-trained representations (solid), with 80% symmetric label noise.

The models are *fitted on noisy labels* and *scored on clean test labels*.
``GridSearchCV`` would score each point on noisy validation folds instead,
so the study is a loop over :class:`~sklearn.model_selection.ParameterGrid`
with :func:`~sklearn.base.clone`.  This is a reduced version (one seed, two
learning rates, few epochs, part of the digits data) of
``benchmarks/bench_lr_sensitivity.py``, which runs the paper's four learning
rates over several seeds.  Expect noisy curves here.
"""

# %%
# Data: digits with 80% symmetric noise on the training labels
# -------------------------------------------------------------
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, ParameterGrid, train_test_split

from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning, make_noisy_labels

# The networks are tiny: on a small CPU one torch thread is much faster than
# a team of threads waiting on each other.
torch.set_num_threads(1)

SEED = 0
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=SEED)
X_train, y_train = X_train[:800], y_train[:800]
y_noisy = make_noisy_labels(y_train, "symmetric", 0.8, random_state=SEED)
print(f"{np.mean(y_noisy != y_train):.2f} of {len(y_train)} training labels are wrong")

# %%
# The sensitivity loop
# --------------------
# ``memory`` caches the label-free SimCLR pre-training (a1): it runs once and
# every ``phases="pretrain"`` point reuses it, whatever its ``lr`` or ``loss``.
cache = tempfile.TemporaryDirectory(prefix="noisyclf-example-")
base = ContrastiveNoisyClassifier(
    image_shape=(1, 8, 8), pretrain_epochs=10, max_epochs=6, warmup_epochs=2,
    memory=cache.name, device="cpu", random_state=SEED)
lrs = [0.01, 1.0]
losses = ["ce", "nfl+rce", "elr"]
grid = ParameterGrid({"loss": losses, "phases": ["baseline", "pretrain"], "lr": lrs})

accuracy = {}
for params in grid:
    est = clone(base).set_params(**params).fit(X_train, y_noisy)
    accuracy[params["loss"], params["phases"], params["lr"]] = est.score(X_test, y_test)
    print(params, f"clean test accuracy {est.score(X_test, y_test):.3f}")

# %%
# Plot: one panel per loss, baseline dashed, pre-trained solid
# -------------------------------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(9, 3), sharey=True)
for ax, loss in zip(axes, losses):
    for phases, style in [("baseline", "--"), ("pretrain", "-")]:
        ax.plot(lrs, [accuracy[loss, phases, lr] for lr in lrs], style, marker="o",
                label=phases)
    ax.set_xscale("log")
    ax.set_title(loss)
    ax.set_xlabel("learning rate")
axes[0].set_ylabel("clean test accuracy")
axes[0].legend()
fig.tight_layout()
plt.show()

# %%
# GridSearchCV survives diverging learning rates
# ----------------------------------------------
# A learning rate so large that the loss becomes NaN or infinite does not
# crash a grid search: the estimator stops the diverging phase, restores its
# last finite weights, emits :class:`~noisyclf.DivergenceWarning` and is
# scored like any other point.  (These CV scores are on *noisy* validation
# folds.)  ``lr=1000`` is there to force a divergence.
search = GridSearchCV(
    clone(base).set_params(phases="baseline", loss="ce", max_epochs=2, memory=None),
    {"lr": [0.01, 1.0, 1000.0]}, cv=2, error_score="raise")
with warnings.catch_warnings(record=True) as records:
    warnings.simplefilter("always", DivergenceWarning)
    search.fit(X_train, y_noisy)
n_diverged = sum(issubclass(w.category, DivergenceWarning) for w in records)
print(f"{n_diverged} DivergenceWarning(s); best lr {search.best_params_['lr']}")
for lr, score in zip(search.cv_results_["param_lr"], search.cv_results_["mean_test_score"]):
    print(f"lr={lr:<7g} mean CV score on noisy folds {score:.3f}")
cache.cleanup()
