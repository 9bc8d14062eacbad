"""Tracking: the local results store (source of truth) and the W&B mirror."""
from ablate.track.store import ResultsStore, get_store

__all__ = ["ResultsStore", "get_store"]
