"""Shared fixtures: configs composed like `ablate train`, shrunk for tests, writing to tmp."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY

# Session fixtures for real services (SLURM, PostgreSQL, LaTeX, Chromium), started by
# scripts/services/all.sh; each skips with the reason when its service is not up.
pytest_plugins = ["tests.services.fixtures"]

# Tests never touch the network, a W&B login or the user's outputs.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["ABLATE_PROJECT"] = str(ROOT)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh ABLATE_HOME: every path ablate writes goes under it."""
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny_cfg(home):
    """Compose a tiny run config: ``tiny_cfg("attention=ca", ...)``."""
    from ablate.config import compose

    def make(*overrides: str):
        return compose([*TINY, *overrides])

    return make


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: torch's spinning intra-op threads cost more than they save, ~20x more on a
    shared 2-core machine when another process is busy. Restores the thread count after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
