"""An in-process store for tests and for building tables from synthetic records."""
from __future__ import annotations

import copy
import threading
from typing import Any, Mapping, Optional

from ablate.track.record import RunRecord
from ablate.track.store._base import STORES, ResultsStore


@STORES.register("memory")
class InMemoryStore(ResultsStore):
    """Dict-backed; thread-safe; not shared between processes."""

    def __init__(self) -> None:
        self._records: dict[str, dict] = {}
        self._attempts: dict[str, list[dict]] = {}
        self._metrics: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def put(self, record: Mapping[str, Any]) -> None:
        rec = copy.deepcopy(RunRecord.from_dict(record).to_dict())
        key = rec["run_key"]
        with self._lock:
            old = self._records.get(key)
            if old is not None and old != rec:
                self._attempts.setdefault(key, []).append(old)
            self._records[key] = rec

    def get(self, run_key: str) -> Optional[RunRecord]:
        with self._lock:
            rec = self._records.get(run_key)
            return RunRecord.from_dict(copy.deepcopy(rec)) if rec is not None else None

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._records)

    def attempts(self, run_key: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._attempts.get(run_key, []))

    def append_metrics(self, run_key: str, row: Mapping[str, Any]) -> None:
        with self._lock:
            self._metrics.setdefault(run_key, []).append(dict(row))

    def metrics(self, run_key: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._metrics.get(run_key, []))
