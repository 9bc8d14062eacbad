"""Results stores: where run records live and how tables find them.

``get_store(None | path | "memory" | ResultsStore)`` picks a backend, like
``optuna.storages.get_storage``: a path (or None: the configured runs dir) is the run-dir
store, ``"memory"`` an in-process store for tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from ablate.track.store._base import STATUSES, ResultsStore, flatten
from ablate.track.store._memory import InMemoryStore
from ablate.track.store._rundir import RunDirStore

__all__ = ["ResultsStore", "RunDirStore", "InMemoryStore", "get_store", "flatten", "STATUSES"]


def get_store(store: Union[None, str, Path, ResultsStore] = None) -> ResultsStore:
    if isinstance(store, ResultsStore):
        return store
    if store == "memory":
        return InMemoryStore()
    if store is None:
        from ablate.config import compose

        store = compose([]).paths.runs_dir
    return RunDirStore(store)
