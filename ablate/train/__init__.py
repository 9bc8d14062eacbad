"""Training: the run wrapper (``run``), the loop (``fit``) and run identity (``run_key``)."""
from ablate.track.runkey import run_key, semantic_config

__all__ = ["run_key", "semantic_config"]
