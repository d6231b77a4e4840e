"""Sphinx configuration for noisyclf (numpydoc + sphinx-gallery).

``sphinx-build -b html docs docs/_build/html`` (``make docs``) runs every
example of the gallery; ``-D plot_gallery=0`` builds the pages without
running them (what ``tests/test_docs.py`` does, with warnings as errors).
"""
import os
import sys

import noisyclf

# So that sphinx-gallery can import the example order below as "conf.ExampleOrder".
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

project = "noisyclf"
version = release = noisyclf.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False


class ExampleOrder:
    """Gallery order: from the first fit to the studies (unknown files last, by name)."""

    ORDER = (
        "plot_quick_start.py",
        "plot_label_issues.py",
        "plot_tabular_noisy_labels.py",
        "plot_own_encoder.py",
        "plot_grid_search_cached.py",
        "plot_lr_sensitivity.py",
    )

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        rank = self.ORDER.index(name) if name in self.ORDER else len(self.ORDER)
        return rank, name

    def __repr__(self):
        return f"<{type(self).__name__}>"


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "conf.ExampleOrder",
}
html_theme = "alabaster"
exclude_patterns = ["_build"]
