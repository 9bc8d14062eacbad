"""Model tests run single-threaded: these tensors are tiny, and on a shared 2-core machine torch's
spinning intra-op threads made them ~20x slower when another process was busy."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
