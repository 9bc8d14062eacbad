"""What tests share besides fixtures (those are in conftest.py): the project root and the
overrides that shrink a run to seconds."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Tiny but real: the same code path as the main job, seconds per run.
TINY = [
    "data.n_train=256",
    "data.n_val=128",
    "data.batch_size=64",
    "trainer.epochs=1",
    "trainer.latency_repeats=1",
    "trainer.threads=1",
    "tracking=disabled",
]


def cuda_syncs(fn) -> int:
    """How many synchronizing CUDA calls ``fn()`` makes: CUDA's own count (its sync debug mode
    warns at every call that waits for the device)."""
    import warnings

    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)
