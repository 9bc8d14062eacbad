"""The results-store contract (after ``optuna.storages.BaseStorage``).

A record is a ``RunRecord`` (``ablate/track/record.py``): the typed form of a run's
``result.json``, readable as a mapping. ``put`` takes a RunRecord or any mapping with the
same keys; ``get`` and ``records`` return RunRecords.

Contract:
- Records are keyed by ``run_key``. ``put`` is atomic (a reader sees the old record or the
  new one) and idempotent. A different record under an existing key never silently replaces
  it: backends keep the old one as an attempt (``attempts()``).
- Returned records are copies: mutating them changes nothing in the store.
- Several processes may ``put`` and ``append_metrics`` concurrently for different keys.
- ``append_metrics`` is append-only and durable per row.
"""
from __future__ import annotations

import abc
from typing import Any, Iterator, Mapping, Optional

from ablate.registry import Registry
from ablate.track.record import RunRecord


# Backends by name, each registered by its module: a store source "<name>:<argument>" builds
# ``STORES.get(name)(argument)`` (``get_store``).
STORES: Registry = Registry("results store")


def flatten(record: Mapping[str, Any]) -> dict:
    """One flat row: the config's dotted keys (``attention.kind``) beside the metrics."""
    row: dict = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            row[prefix] = tuple(node) if isinstance(node, list) else node

    walk("", record.get("config", {}))
    row.update({k: v for k, v in record.items() if k != "config"})
    return row


def matches(row: Mapping[str, Any], where: Optional[Mapping[str, Any]]) -> bool:
    """True when every ``key: value`` of ``where`` holds in a flat row (a list means any of)."""
    for key, want in (where or {}).items():
        have = row.get(key)
        if isinstance(want, (list, tuple)):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class ResultsStore(abc.ABC):
    """Where run records live. Backends implement six methods; the rest is built on them."""

    @abc.abstractmethod
    def put(self, record: Mapping[str, Any]) -> None:
        """Store ``record`` under ``record['run_key']`` (atomic; keeps a replaced one as an attempt)."""

    @abc.abstractmethod
    def get(self, run_key: str) -> Optional[RunRecord]:
        """The record of ``run_key``, or None."""

    @abc.abstractmethod
    def keys(self) -> list[str]:
        """Every run key that has a record."""

    @abc.abstractmethod
    def attempts(self, run_key: str) -> list[dict]:
        """Earlier records of ``run_key`` that a later put replaced, oldest first."""

    @abc.abstractmethod
    def append_metrics(self, run_key: str, row: Mapping[str, Any]) -> None:
        """Append one per-epoch metrics row (durable before returning)."""

    @abc.abstractmethod
    def metrics(self, run_key: str) -> list[dict]:
        """The per-epoch metrics rows of ``run_key``."""

    # --- built on the abstract methods ---------------------------------------------------
    def records(self, where: Optional[Mapping[str, Any]] = None) -> Iterator[RunRecord]:
        """Records whose flattened form matches ``where`` (dotted config keys or metrics)."""
        for key in self.keys():
            rec = self.get(key)
            if rec is not None and matches(flatten(rec), where):
                yield rec

    def frame(self, where: Optional[Mapping[str, Any]] = None):
        """A pandas DataFrame with one flattened row per matching record."""
        import pandas as pd

        return pd.DataFrame([flatten(r) for r in self.records(where)])

    def status(self, run_key: str) -> Optional[str]:
        rec = self.get(run_key)
        return None if rec is None else rec.get("status")
