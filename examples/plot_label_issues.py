"""
Finding and plotting label issues
=================================

Besides a classifier, :class:`~noisyclf.ContrastiveNoisyClassifier` gives a
verdict on every *training* label.  After phase a2 has trained a classifier
on the noisy labels, a two-component Gaussian mixture on its per-sample
losses against the given labels separates the small-loss (probably correct)
labels from the large-loss (probably wrong) ones: ``label_quality_`` is each
given label's probability of being correct and ``label_issues_`` flags those
below 0.5.  :meth:`~noisyclf.ContrastiveNoisyClassifier.find_label_issues`
returns them as a DataFrame with the columns of cleanlab's
``CleanLearning.find_label_issues``, and
:class:`~noisyclf.plotting.GMMSelectionDisplay` draws the mixture.

This example flips 30% of the labels of scikit-learn's digits, compares the
flagged labels with the true flips, and sets them side by side with
cleanlab's confident learning (``cleanlab.filter.find_label_issues``) fed
with out-of-sample predicted probabilities of the same estimator.

**Settings.** One seed; ``phases="pretrain"`` with a short schedule
(``pretrain_epochs=10, max_epochs=15``); one fit plus a 3-fold
``cross_val_predict`` for cleanlab; about 25 s on two CPU cores.
"""

# %%
# Data and label noise
# --------------------
# Symmetric noise: 30% of the labels are replaced by another class drawn
# uniformly.  The estimator only ever sees ``y_noisy``; ``y`` is kept to score
# the verdicts.
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from cleanlab.filter import find_label_issues
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
from noisyclf.plotting import GMMSelectionDisplay, TrainingCurvesDisplay

# The networks are tiny: on a small CPU one torch thread is much faster than
# a team of threads waiting on each other.
torch.set_num_threads(1)

SEED = 0
X, y = load_digits(return_X_y=True)
y_noisy = make_noisy_labels(y, "symmetric", 0.3, random_state=SEED)
truly_noisy = y_noisy != y
print(f"{len(y)} images, {truly_noisy.sum()} labels flipped ({truly_noisy.mean():.1%})")

# %%
# Fit a short schedule
# --------------------
# The label verdicts come from phase a2, so ``phases="pretrain"`` (SimCLR
# pre-training, then the classifier on the noisy labels, then b1's GMM on the
# pseudo-labels) is enough here; the full framework's phases b2 and b3 only
# improve the final classifier.  The epochs are far fewer than the defaults
# to keep the example short.


def make_estimator():
    return ContrastiveNoisyClassifier(
        phases="pretrain", image_shape=(1, 8, 8), pretrain_epochs=10, max_epochs=15,
        warmup_epochs=3, gmm_epochs=5, device="cpu", random_state=SEED)


start = time.perf_counter()
clf = make_estimator().fit(X, y_noisy)
print(f"fit in {time.perf_counter() - start:.1f} s")
TrainingCurvesDisplay.from_estimator(clf)
plt.show()

# %%
# The two GMMs
# ------------
# Left, the GMM behind ``label_quality_``: a2's losses against the *given*
# labels, stacked by truth.  The truly flipped labels (red) sit in the
# large-loss component, right of the dashed line where ``p(clean) = 0.5``.
# Right, b1's GMM on the losses against the *pseudo-labels* (a2's own
# predictions), which weighs phase b2's samples in the full framework:
# far fewer pseudo-labels are wrong than given ones.
# sphinx_gallery_thumbnail_number = 2
fig, (ax_given, ax_pseudo) = plt.subplots(1, 2, figsize=(11, 4))
GMMSelectionDisplay.from_estimator(clf, which="given", y=y_noisy, y_true=y, ax=ax_given)
GMMSelectionDisplay.from_estimator(clf, which="pseudo", y_true=y, ax=ax_pseudo)
ax_given.set_title("given labels (label_quality_)")
ax_pseudo.set_title("pseudo-labels (sample_weights_)")
fig.tight_layout()
plt.show()

# %%
# The label issues as a table
# ---------------------------
# One row per training sample; sorting by ``label_quality`` ranks the most
# suspicious labels first.  ``predicted_label`` (a2's pseudo-label) is a
# candidate correction.  The true label is added here for comparison only.
issues = clf.find_label_issues(y_noisy)
print(issues.assign(true_label=y).sort_values("label_quality").head(10).round(3))

# %%
# Side by side with cleanlab
# --------------------------
# Confident learning needs out-of-sample predicted probabilities: 3-fold
# :func:`~sklearn.model_selection.cross_val_predict` of the same estimator
# class with the same schedule (each sample is predicted by a model that never
# saw its label).  noisyclf's verdict needs no cross-validation: it comes
# from the training losses of a single fit.
start = time.perf_counter()
pred_probs = cross_val_predict(
    make_estimator(), X, y_noisy, method="predict_proba",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=SEED))
print(f"cross_val_predict in {time.perf_counter() - start:.1f} s")
issues["cleanlab_issue"] = find_label_issues(y_noisy, pred_probs)


def scores(flagged):
    hits = np.sum(flagged & truly_noisy)
    precision = hits / max(flagged.sum(), 1)
    recall = hits / truly_noisy.sum()
    return {"flagged": int(flagged.sum()), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-12)}


summary = pd.DataFrame({
    "noisyclf (GMM, one fit)": scores(issues["is_label_issue"].to_numpy()),
    "cleanlab (3-fold pred_probs)": scores(issues["cleanlab_issue"].to_numpy()),
}).T.astype({"flagged": int})
print(summary.round(3))
print(pd.crosstab(issues["is_label_issue"], issues["cleanlab_issue"],
                  rownames=["noisyclf"], colnames=["cleanlab"]))

# %%
# Both are scored against the true flips.  With one seed and a short
# schedule the numbers are indicative only; a symmetric flip to another digit
# is the easy case for both methods, since the flipped label rarely looks
# like the image.
