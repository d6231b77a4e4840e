"""
Learning-rate study under heavy label noise (the paper's Figure 5)
==================================================================

The paper's Figure 5 plots test accuracy against the learning rate for its
three losses, training from scratch (the baseline, dashed) or from SimCLR
pre-trained representations (solid), with 80% symmetric label noise.

The models are *fitted on noisy labels* and *scored on clean labels*:
:class:`~sklearn.model_selection.GridSearchCV` runs over ``lr`` x ``phases``
x ``loss`` while scikit-learn's metadata routing hands the clean labels of
each validation fold to the scorer (the estimator never sees them).  This is
a reduced version (two folds, few epochs) of
``benchmarks/bench_lr_sensitivity.py``, which averages held-out test accuracy
over three seeds with longer training.  Expect noisy curves here.

**Settings.** 24 candidates (4 learning rates x 2 modes x 3 losses) on two
splits, a1 cached with ``memory``, ``pretrain_epochs=8, max_epochs=5,
gmm_epochs=1``; about 35 s on two CPU cores.  The benchmark's measured table
is :ref:`bench-lr` in the benchmark results.
"""

# %%
# Data: digits with 80% symmetric noise on the training labels
# -------------------------------------------------------------
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit

from noisyclf import ContrastiveNoisyClassifier, DivergenceWarning, make_noisy_labels

# The networks are tiny: on a small CPU one torch thread is much faster than
# a team of threads waiting on each other.
torch.set_num_threads(1)

SEED = 0
X, y = load_digits(return_X_y=True)
y_noisy = make_noisy_labels(y, "symmetric", 0.8, random_state=SEED)
print(f"{np.mean(y_noisy != y):.2f} of {len(y)} labels are wrong")

# %%
# The grid search
# ---------------
# ``memory`` caches the label-free SimCLR pre-training (a1): it runs once per
# fold and every ``phases="pretrain"`` point reuses it, whatever its ``lr`` or
# ``loss``.  The scorer asks for ``y_clean`` through metadata routing, so each
# point is fitted on the noisy training folds and scored on the clean labels
# of its validation fold.
cache = tempfile.TemporaryDirectory(prefix="noisyclf-example-")
base = ContrastiveNoisyClassifier(
    image_shape=(1, 8, 8), pretrain_epochs=8, max_epochs=5, warmup_epochs=2, gmm_epochs=1,
    memory=cache.name, device="cpu", random_state=SEED)
lrs = [0.001, 0.01, 0.1, 1.0]
losses = ["ce", "nfl+rce", "elr"]


def clean_accuracy(y_true, y_pred, y_clean):
    """Accuracy against the clean labels of the validation fold."""
    return accuracy_score(y_clean, y_pred)


with sklearn.config_context(enable_metadata_routing=True):
    scorer = make_scorer(clean_accuracy).set_score_request(y_clean=True)
    study = GridSearchCV(
        base, {"lr": lrs, "phases": ["baseline", "pretrain"], "loss": losses},
        scoring=scorer, cv=StratifiedShuffleSplit(2, test_size=0.3, random_state=SEED),
        refit=False)
    study.fit(X, y_noisy, y_clean=y)
results = study.cv_results_
accuracy = {}
for params, mean, std in zip(results["params"], results["mean_test_score"],
                             results["std_test_score"]):
    accuracy[params["loss"], params["phases"], params["lr"]] = (mean, std)
    print(params, f"clean validation accuracy {mean:.3f} +- {std:.3f}")

# %%
# Plot: one panel per loss, baseline dashed, pre-trained solid
# -------------------------------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(9, 3), sharey=True)
for ax, loss in zip(axes, losses):
    for phases, style in [("baseline", "--"), ("pretrain", "-")]:
        mean, std = zip(*[accuracy[loss, phases, lr] for lr in lrs])
        ax.errorbar(lrs, mean, yerr=std, ls=style, marker="o", capsize=3, label=phases)
    ax.set_xscale("log")
    ax.set_title(loss)
    ax.set_xlabel("learning rate")
axes[0].set_ylabel("clean validation accuracy")
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
    search.fit(X, y_noisy)
n_diverged = sum(issubclass(w.category, DivergenceWarning) for w in records)
print(f"{n_diverged} DivergenceWarning(s); best lr {search.best_params_['lr']}")
for lr, score in zip(search.cv_results_["param_lr"], search.cv_results_["mean_test_score"]):
    print(f"lr={lr:<7g} mean CV score on noisy folds {score:.3f}")
cache.cleanup()
