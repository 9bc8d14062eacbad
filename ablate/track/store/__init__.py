"""Results stores: where run records live and how tables find them.

``get_store(None | path | "memory" | "wandb:SOURCE" | ResultsStore)`` picks a backend, like
``optuna.storages.get_storage``: a path (or None: the configured runs dir) is the run-dir
store, ``"memory"`` an in-process store for tests, ``"wandb:entity/project"`` the W&B public
API and ``"wandb:/a/dir"`` the offline W&B runs under a directory (both read-only imports).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from ablate.track.record import STATUSES
from ablate.track.store._base import STORES, ResultsStore, flatten
from ablate.track.store._memory import InMemoryStore
from ablate.track.store._rundir import RunDirStore, RunFiles
from ablate.track.store._wandb import WandbStore

__all__ = ["STORES", "ResultsStore", "RunDirStore", "RunFiles", "InMemoryStore", "WandbStore", "get_store", "flatten", "STATUSES"]

WANDB_PREFIX = "wandb:"


def get_store(store: Union[None, str, Path, ResultsStore] = None) -> ResultsStore:
    """``None`` (the configured runs dir), a path, ``"memory"``, ``"<backend>:<argument>"``
    (``"wandb:entity/project"``, ``"wandb:/offline/dir"``, ``"rundir:/runs"``) or a store."""
    if isinstance(store, ResultsStore):
        return store
    if store is None:
        from ablate.config import paths_config

        return RunDirStore(paths_config().runs_dir)
    text = str(store)
    if text == "memory":
        return InMemoryStore()
    backend, sep, arg = text.partition(":")
    if sep and backend in STORES:  # a drive letter or a bare path is the run-dir store
        return STORES.get(backend)(arg)
    return RunDirStore(text)
