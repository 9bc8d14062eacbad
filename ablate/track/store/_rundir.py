"""The default store: one directory per run under the runs dir, named by its run key.

``<runs_dir>/<run_key>/result.json`` is the record and ``metrics.jsonl`` its per-epoch rows.
A replaced record is moved to ``attempts/result-<n>.json`` first, so nothing is lost. The
directory listing is the index; reading records needs no other file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ablate.io import append_jsonl, read_json, read_jsonl, write_json
from ablate.track.store._base import ResultsStore

RESULT = "result.json"
METRICS = "metrics.jsonl"


class RunDirStore(ResultsStore):
    """Records in ``<root>/<run_key>/result.json``; safe for concurrent writers of different keys."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_key: str) -> Path:
        return self.root / run_key

    def put(self, record: Mapping[str, Any]) -> None:
        key = record["run_key"]
        path = self.run_dir(key) / RESULT
        if path.exists():
            old = read_json(path)
            if old == json.loads(json.dumps(dict(record), default=str)):
                return
            adir = path.parent / "attempts"
            adir.mkdir(parents=True, exist_ok=True)
            n = len(list(adir.glob("result-*.json")))
            os.replace(path, adir / f"result-{n:03d}.json")
        write_json(path, dict(record))

    def get(self, run_key: str) -> Optional[dict]:
        path = self.run_dir(run_key) / RESULT
        try:
            return read_json(path)
        except FileNotFoundError:
            return None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and os.path.exists(os.path.join(e.path, RESULT)))

    def attempts(self, run_key: str) -> list[dict]:
        adir = self.run_dir(run_key) / "attempts"
        return [read_json(p) for p in sorted(adir.glob("result-*.json"))]

    def append_metrics(self, run_key: str, row: Mapping[str, Any]) -> None:
        append_jsonl(self.run_dir(run_key) / METRICS, dict(row))

    def metrics(self, run_key: str) -> list[dict]:
        return read_jsonl(self.run_dir(run_key) / METRICS)
