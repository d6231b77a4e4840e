"""noisyclf: contrastive learning for classification with noisy labels.

A scikit-learn estimator, built on skorch and PyTorch, implementing Ciortan,
Dupuis and Peel, "A Framework using Contrastive Learning for Classification
with Noisy Labels".
"""

__version__ = "0.1.0"

from .estimator import ContrastiveNoisyClassifier  # noqa: E402
from .exceptions import DivergenceWarning  # noqa: E402
from .noise import make_noisy_labels  # noqa: E402

__all__ = ["ContrastiveNoisyClassifier", "DivergenceWarning", "make_noisy_labels", "__version__"]
