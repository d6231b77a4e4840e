"""The documentation: it builds with warnings as errors, and its sources hold together.

Sphinx runs in a subprocess on a copy of ``docs/``, ``examples/`` and the figures of
``benchmarks/results/`` in a temporary directory, with ``-D plot_gallery=0``:
sphinx-gallery writes the example pages without running the examples (``make docs``
runs them), and nothing is written into the source tree, so the test leaves the
checkout clean and can run in parallel with itself.  The other tests read the sources
only.
"""

import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import noisyclf

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# What a build writes into docs/ (all in .gitignore): not copied.
GENERATED = shutil.ignore_patterns("_build", "auto_examples", "generated",
                                   "sg_execution_times.rst", "__pycache__")
#: Issue numbers and words that date a change; none belongs in the user-facing text.
HISTORY = re.compile(r"issue ?[0-9]|[(]issue\b|before[ ]issue|until[ ]now|no[ ]longer"
                     r"|re-[m]easured|the[ ]issue\b|previousl[y]|when[ ]this[ ]was[ ]written",
                     re.I)


def _pages():
    """Every source page of the docs, by docname (not what a build writes into docs/)."""
    return {p.stem: p for p in DOCS.glob("*.rst") if p.name != "sg_execution_times.rst"}


def _report():
    """benchmarks/report.py, imported from its path."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """Build the docs once for the module; return the HTML directory."""
    for name in ("sphinx", "numpydoc", "sphinx_gallery", "matplotlib"):
        importlib.import_module(name)  # a clear ImportError: pip install -e ".[test]"
    src = tmp_path_factory.mktemp("docs_src")
    shutil.copytree(DOCS, src / "docs", ignore=GENERATED)
    shutil.copytree(ROOT / "examples", src / "examples", ignore=GENERATED)
    (src / "benchmarks" / "results").mkdir(parents=True)
    for png in (ROOT / "benchmarks" / "results").glob("*.png"):
        shutil.copy2(png, src / "benchmarks" / "results" / png.name)
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
    for page in list(_pages()) + ["auto_examples/index",
                                  "generated/noisyclf.ContrastiveNoisyClassifier"]:
        assert (html / f"{page}.html").is_file(), page


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


def test_results_page_shows_its_figures(html):
    page = (html / "benchmarks.html").read_text(encoding="utf-8")
    shown = re.findall(r"\.\./benchmarks/results/(\S+\.png)",
                       (DOCS / "benchmarks.rst").read_text(encoding="utf-8"))
    assert shown
    for name in shown:
        assert name in page, name


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


# ----------------------------------------------------------------------------- sources

def test_results_page_and_readme_table_are_what_report_py_writes():
    """docs/benchmarks.rst and the README's headline table come from the CSV files."""
    stale = [path.name for path, text in _report().outputs().items()
             if path.read_text(encoding="utf-8") != text]
    assert not stale, f"run `python benchmarks/report.py`: {stale} out of date"


def test_results_page_reads_existing_files_only():
    text = (DOCS / "benchmarks.rst").read_text(encoding="utf-8")
    for name in re.findall(r"\.\./benchmarks/results/(\S+)", text):
        assert (ROOT / "benchmarks" / "results" / name).is_file(), name


def test_every_page_is_in_a_toctree():
    entries = set()
    for page in _pages().values():
        for block in re.findall(r"^\.\. toctree::\n((?:[ \t]+.*\n|\n)+)",
                                page.read_text(encoding="utf-8"), re.M):
            entries |= {line.strip() for line in block.splitlines()
                        if line.strip() and not line.strip().startswith(":")}
    orphans = set(_pages()) - entries - {"index"}
    assert not orphans, f"not in any toctree: {sorted(orphans)}"
    assert not list(DOCS.glob("*.md")), "docs pages are reStructuredText"


def test_user_guide_is_self_contained():
    guide = (DOCS / "user_guide.rst").read_text(encoding="utf-8")
    assert "readme" not in guide.lower()
    for label in ("figure-2", "paper-choices", "reliability"):  # linked from docstrings
        assert f".. _{label}:" in guide, label


def test_readme_is_short_and_holds_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert "python -m pip install -e . && python -m noisyclf" in text
    second = 'python -m pip install -e ".[test]" && python -m pytest'
    assert second in text
    assert second in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]*)", text):
        assert (ROOT / link).exists(), link


def test_no_history_in_user_facing_text():
    files = [README, ROOT / "benchmarks" / "report.py", *DOCS.glob("*.rst"), DOCS / "conf.py",
             *(ROOT / "examples").glob("*")]
    hits = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in files if path.is_file()
            for line in path.read_text(encoding="utf-8").splitlines() if HISTORY.search(line)]
    assert not hits, "\n".join(hits)
