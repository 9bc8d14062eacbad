"""Model tests run single-threaded (``single_thread`` in tests/conftest.py): these tensors are tiny."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread):
    return None
