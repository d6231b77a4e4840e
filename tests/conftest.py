"""Suite-wide settings and shared fixtures.

The tests train tiny networks on tiny inputs, where one torch thread is faster
than several and avoids oversubscribing the 2-core CI machine (the loky tests
start worker processes of their own).  Restored after the session.

The CIFAR-10 data sets live outside the repository, in ``shared/data`` beside
the clone (``<clone>/../shared/data``); tests that need them take the
``shared_data`` fixture and are skipped where the folder is absent.

The suite runs on every core through pytest-xdist (``-n auto --dist loadgroup`` in
``pyproject.toml``): each test module runs whole in one worker, which builds its
module-scoped fixtures once; the benchmark smoke tests share none and spread over the
workers.  A test marked ``xdist_group`` keeps its own group.
"""

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Modules whose tests go to whichever worker is free, one by one.
SPREAD_MODULES = {"test_benchmarks_smoke"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        module = item.path.stem
        if module not in SPREAD_MODULES and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data():
    """The folder of the packed data sets (``cifar10_jpeg.npz``, ``cifar10n_labels.npz``)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not available")
    return SHARED_DATA


def _fail_if_called(*args, **kwargs):
    raise AssertionError("training started before the input was validated")


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails (a1 runs through ``_phases.run_simclr``, the rest through the nets)."""
    import noisyclf._phases as phases_module
    import noisyclf.nets as nets_module

    for cls in (nets_module.NoisyLabelNet, nets_module.ContrastiveNet):
        monkeypatch.setattr(cls, "fit", _fail_if_called)
        monkeypatch.setattr(cls, "partial_fit", _fail_if_called)
    monkeypatch.setattr(phases_module, "run_simclr", _fail_if_called)
