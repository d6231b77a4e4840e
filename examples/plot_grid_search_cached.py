"""
Grid search with a cached SimCLR phase
======================================

Phase a1 (SimCLR pre-training) is usually the most expensive part of a fit,
and it never sees the labels: its result depends only on the training
images, the encoder and the pre-training hyperparameters
(``pretrain_epochs``, ``pretrain_lr``, ``temperature``, ``batch_size``,
``weight_decay``, ``projection_dim``, the augmentation settings
``min_crop_scale`` / ``hflip_prob`` / ``corruption_rate``, ``random_state``,
``device`` and ``precision``).  With ``memory=`` (a directory or a
:class:`joblib.Memory`) the estimator caches it, so a
:class:`~sklearn.model_selection.GridSearchCV` over ``loss``, ``lr`` or any
other later-phase hyperparameter pre-trains **once per fold** instead of
once per candidate, and a second search over the same folds does not
pre-train at all.

This example counts the cached pre-trainings in the cache directory to show
it.  ``benchmarks/bench_memory_cache.py`` measures the saving on a larger
grid, with identical models: see :ref:`bench-memory` in the benchmark
results.

**Settings.** Digits with 40% symmetric noise, ``phases="pretrain"`` (a1 +
a2; the cache works the same for ``"full"``) and a short schedule
(``pretrain_epochs=15, max_epochs=20``); about 35 s on two CPU cores.
"""

# %%
# Data
# ----
# The search runs on the 70% training split with its noisy labels; the 30%
# test split keeps clean labels to score the chosen model.
import tempfile
import time
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels

# The networks are tiny: on a small CPU one torch thread is much faster than
# a team of threads waiting on each other.
torch.set_num_threads(1)

SEED = 0
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=SEED)
y_noisy = make_noisy_labels(y_train, "symmetric", 0.4, random_state=SEED)

# %%
# The estimator and its cache
# ---------------------------
# ``random_state`` must be fixed: it seeds a1 and is part of the cache key
# (with ``random_state=None`` every fit draws a new seed and nothing is
# reused).  For the same reason the folds must be the same data in every
# search: a :class:`~sklearn.model_selection.StratifiedKFold` with a fixed
# ``random_state``.  joblib writes one ``output.pkl`` per cached call.
cache_dir = tempfile.TemporaryDirectory(prefix="noisyclf-cache-")
memory = joblib.Memory(cache_dir.name, verbose=0)


def n_cached_pretrainings():
    return sum(1 for _ in Path(cache_dir.name).rglob("output.pkl"))


clf = ContrastiveNoisyClassifier(
    image_shape=(1, 8, 8), phases="pretrain", pretrain_epochs=15, max_epochs=20,
    warmup_epochs=2, gmm_epochs=1, memory=memory, random_state=SEED)
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=SEED)

# %%
# First search: which loss?
# -------------------------
# Three candidates times three folds is nine fits, plus the refit of the best
# candidate on the whole training split.  a1 runs four times: once per fold
# and once for the refit; the other five fits load it from the cache.
#
# The validation folds have noisy labels, as a user's would.  Under symmetric
# noise the expected accuracy against noisy labels is an increasing affine
# function of the accuracy against clean labels, so it still ranks the
# candidates (:ref:`sphx_glr_auto_examples_plot_lr_sensitivity.py` scores on
# clean labels instead, through metadata routing).  With 40% of the
# validation labels wrong, no model can score much above 0.6 there.
start = time.perf_counter()
by_loss = GridSearchCV(clf, {"loss": ["ce", "nfl+rce", "elr"]}, cv=cv).fit(X_train, y_noisy)
seconds_loss = time.perf_counter() - start
print(f"loss search: 10 fits in {seconds_loss:.1f} s, "
      f"{n_cached_pretrainings()} pre-trainings in the cache")
for params, score in zip(by_loss.cv_results_["params"], by_loss.cv_results_["mean_test_score"]):
    print(f"  {params}  mean accuracy on the noisy validation folds {score:.3f}")

# %%
# Second search: which learning rate, over the same folds
# -------------------------------------------------------
# ``lr`` is a2's learning rate, not a1's: every fit finds its pre-training in
# the cache, none is added, and the search is much faster per fit.
start = time.perf_counter()
by_lr = GridSearchCV(clf.set_params(loss=by_loss.best_params_["loss"]),
                     {"lr": [0.01, 0.05]}, cv=cv).fit(X_train, y_noisy)
seconds_lr = time.perf_counter() - start
print(f"lr search: 7 fits in {seconds_lr:.1f} s, "
      f"{n_cached_pretrainings()} pre-trainings in the cache")
print(f"per fit: {seconds_loss / 10:.1f} s in the first search, "
      f"{seconds_lr / 7:.1f} s in the second")
best = by_lr.best_estimator_
print(f"best {by_loss.best_params_ | by_lr.best_params_}: "
      f"test accuracy on clean labels {best.score(X_test, y_test):.3f}")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(["loss search\n(a1 trained 4 times)", "lr search\n(a1 from the cache)"],
        [seconds_loss / 10, seconds_lr / 7], color=["tab:orange", "tab:blue"])
ax.set_xlabel("seconds per fit")
fig.tight_layout()
plt.show()

# %%
# A single fit shows the cache at work
# ------------------------------------
# With ``verbose=1`` a cache hit is reported instead of a1's progress.
clf.set_params(verbose=1).fit(X_train, y_noisy)

# %%
# What invalidates the cache
# --------------------------
# Changing a pre-training hyperparameter (listed at the top), the data or
# the encoder makes a new entry; an encoder *class* counts by its import
# path and ``encoder__*`` parameters, so clear the cache after editing the
# class's code (``memory.clear()`` or delete the directory).  A path such as
# ``memory="~/.cache/noisyclf"`` keeps the cache across sessions.
memory.clear(warn=False)
cache_dir.cleanup()
