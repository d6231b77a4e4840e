"""Suite-wide settings.

The tests train tiny networks on tiny inputs, where one torch thread is faster
than several and avoids oversubscribing the 2-core CI machine (the loky tests
start worker processes of their own).  Restored after the session.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
