"""The documentation builds with warnings as errors (issue 11, item 5).

Sphinx runs in a subprocess on a copy of ``docs/`` and ``examples/`` in a
temporary directory, with ``-D plot_gallery=0``: sphinx-gallery writes the
example pages without running the examples (``make docs`` runs them), and
nothing is written into the source tree, so the test leaves the checkout
clean and can run in parallel with itself.
"""

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import noisyclf

ROOT = Path(__file__).resolve().parents[1]
# What a build writes into docs/ (all in .gitignore): not copied.
GENERATED = shutil.ignore_patterns("_build", "auto_examples", "generated",
                                   "sg_execution_times.rst", "__pycache__")


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """Build the docs once for the module; return the HTML directory."""
    for name in ("sphinx", "numpydoc", "sphinx_gallery", "matplotlib"):
        importlib.import_module(name)  # a clear ImportError: pip install -e ".[test]"
    src = tmp_path_factory.mktemp("docs_src")
    shutil.copytree(ROOT / "docs", src / "docs", ignore=GENERATED)
    shutil.copytree(ROOT / "examples", src / "examples", ignore=GENERATED)
    out = src / "html"
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-D", "plot_gallery=0", str(src / "docs"), str(out)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, (
        f"sphinx-build failed (exit {result.returncode}); warnings are errors:\n"
        f"{result.stderr[-8000:]}\n{result.stdout[-2000:]}")
    return out


def test_docs_build_without_warnings(html):
    for page in ("index.html", "user_guide.html", "api.html", "auto_examples/index.html",
                 "generated/noisyclf.ContrastiveNoisyClassifier.html"):
        assert (html / page).is_file(), page


def test_every_example_has_a_page(html):
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert "plot_quick_start" in examples
    for stem in examples:
        page = html / "auto_examples" / f"{stem}.html"
        assert page.is_file(), page
    index = (html / "auto_examples" / "index.html").read_text(encoding="utf-8")
    assert all(f"{stem}.html" in index for stem in examples)


def test_user_guide_links_every_example(html):
    guide = (html / "user_guide.html").read_text(encoding="utf-8")
    for stem in sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py")):
        assert f"auto_examples/{stem}.html" in guide, stem


def _public_objects():
    """(module, name) for every name in the ``__all__`` of a public noisyclf module."""
    modules = [noisyclf] + [
        importlib.import_module(f"noisyclf.{info.name}")
        for info in pkgutil.iter_modules(noisyclf.__path__) if not info.name.startswith("_")]
    for module in modules:
        for name in getattr(module, "__all__", ()):
            if not name.startswith("_"):
                yield module.__name__, name


def test_api_reference_covers_every_public_object(html):
    pages = {p.name for p in (html / "generated").glob("*.html")}
    missing = []
    for module, name in _public_objects():
        obj = getattr(sys.modules[module], name)
        # Re-exported objects (noisyclf.make_noisy_labels) count once, where documented.
        home = getattr(obj, "__module__", module) if callable(obj) else module
        candidates = {f"{module}.{name}.html", f"{home}.{name}.html", f"noisyclf.{name}.html"}
        if not candidates & pages:
            missing.append(f"{module}.{name}")
    assert not missing, f"not in docs/api.rst: {missing}"
