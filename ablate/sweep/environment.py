"""What a worker needs from the process that started it: a spawned process (``parallel``), a
Ray task or a SLURM job gets the driver's ``ABLATE_*`` variables (project root, home, services)
and its log level, so paths resolve the same and progress lines reach the worker's output."""
from __future__ import annotations

import logging
import os

from ablate.train.progress import ENV as PROGRESS_ENV

__all__ = ["capture_env", "setup_worker"]


def capture_env() -> dict[str, str]:
    """The ``ABLATE_*`` variables a worker process needs (project root, home, ...)."""
    return {k: v for k, v in os.environ.items() if k.startswith("ABLATE_")}


def setup_worker(env: dict[str, str], level: int = logging.INFO) -> None:
    """In a fresh worker: the driver's environment (what it does not set itself) and logging,
    so progress lines reach the worker's output."""
    for k, v in env.items():
        os.environ.setdefault(k, v)
    # Workers share the driver's terminal: N live bars would tear each other up. They log plain
    # per-epoch lines; the driver prints [k/N] with the ETA (ABLATE_PROGRESS=bar overrides).
    os.environ.setdefault(PROGRESS_ENV, "plain")
    logging.basicConfig(level=level, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")


