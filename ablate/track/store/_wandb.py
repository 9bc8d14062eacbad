"""Read-only import of W&B runs as run records, so runs logged elsewhere build the same tables.

Two sources, one record shape (``ablate.track.wandb_mirror`` logs it: the run is named by its
run key, grouped by its sweep, with the resolved config and a summary holding status, top1,
top5, params, madds, latency_ms; per-epoch rows are the history):

- ``WandbStore("entity/project")``: the public API (``wandb.Api().runs``), configs, summaries
  and ``scan_history`` for per-epoch rows. Needs a login; nothing is written.
- ``WandbStore("/some/dir")``: offline runs under a directory (``**/offline-run-*/run-*.wandb``).
  W&B >= 0.2x writes no config or summary file offline: the ``.wandb`` transaction log is the
  only record. It is a LevelDB-style log (7-byte file header ``:W&B`` + magic + version, 32 KiB
  blocks of chunks with a crc32/length/type header); each record is a
  ``wandb_internal_pb2.Record`` protobuf, decoded with the classes wandb ships.

Offline, a W&B run resumed by a relaunch is several ``offline-run-*`` dirs with one W&B id; they
are read as one run, in start order (history joined, the last summary wins), as ``wandb sync``
uploads them. Several W&B runs with one run key (``force=true``: ids ``<key>``, ``<key>-1``, ...)
keep the newest as the record and the rest as ``attempts``. ``put``/``append_metrics`` raise: this store is an import, not a target.
"""
from __future__ import annotations

import copy
import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping, Optional

from ablate.errors import ConfigError
from ablate.track.record import METRICS, RunRecord
from ablate.track.store._base import STORES, ResultsStore

_HEADER = b":W&B"
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7  # crc32 (4) + length (2) + type (1), little-endian
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
RUN_KEY = re.compile(r"^[0-9a-f]{12}$")
SUMMARY_KEYS = ("status", *METRICS)  # what the mirror writes as the run summary
# W&B run states -> ablate statuses, used only when the summary has no "status".
STATES = {"finished": "completed", "crashed": "failed", "failed": "failed", "killed": "failed", "running": "running"}


def read_wandb_log(path: str | Path) -> list[bytes]:
    """The raw records of a ``.wandb`` transaction log (a torn tail is ignored)."""
    data = Path(path).read_bytes()
    if not data.startswith(_HEADER):
        raise ConfigError(f"{path}: not a W&B transaction log (header {data[:4]!r}); allowed: a run-*.wandb file")
    out, buf, pos = [], b"", 7
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:  # block trailer too short for a header: zero padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + _CHUNK_HEADER])
        chunk = data[pos + _CHUNK_HEADER:pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind == 0 or len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            break  # padding or a partial write at the end of a live/crashed run
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            buf = chunk
        elif kind == _MIDDLE:
            buf += chunk
        elif kind == _LAST:
            out.append(buf + chunk)
            buf = b""
    return out


def _nest(items, into: dict) -> None:
    """Config/summary items (``key`` or ``nested_key`` + JSON value) into a nested dict."""
    for it in items:
        path = list(it.nested_key) or [it.key]
        node = into
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _item_value(it)


def _item_value(item) -> Any:
    """An item's value: ``value_json``, or a typed field (newer history items use a oneof)."""
    if item.value_json:
        return json.loads(item.value_json)
    which = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if which in (None, "none"):
        return None
    value = getattr(item, which)
    return json.loads(value) if which in ("json", "value_json") else value


def parse_offline_run(path: str | Path) -> dict:
    """``{"name", "group", "id", "config", "summary", "history", "exit_code", "start_time"}`` of one ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    run: dict[str, Any] = {"name": None, "group": None, "id": None, "config": {}, "summary": {}, "history": [],
                           "exit_code": None, "start_time": None}
    for raw in read_wandb_log(path):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.update(name=r.display_name or r.run_id, group=r.run_group or None, id=r.run_id,
                       start_time=r.start_time.ToJsonString() if r.HasField("start_time") else None)
            _nest(r.config.update, run["config"])
        elif kind == "config":
            _nest(rec.config.update, run["config"])
        elif kind == "summary":
            _nest(rec.summary.update, run["summary"])
        elif kind == "history":
            row: dict = {}
            _nest(rec.history.item, row)
            run["history"].append(row)
        elif kind == "exit":
            run["exit_code"] = rec.exit.exit_code
    run["config"].pop("_wandb", None)
    return run


def merge_segments(runs) -> list[dict]:
    """Parsed ``.wandb`` files -> one run per W&B id: the dirs of a resumed run joined in start
    order (history rows by step, a later row of a step replacing an earlier one; config and
    summary updated in order; the last exit code). Each run's ``start_time`` is its first. A log
    with no run record is left out: W&B offline writes little before ``finish``, so a process
    killed with SIGKILL can leave just the file header (the relaunch logs those epochs again
    under the same id, from the checkpoint)."""
    by_id: dict[str, list[dict]] = {}
    for run in runs:
        if run["id"]:  # a log without its run record (a process killed before W&B flushed) holds nothing
            by_id.setdefault(run["id"], []).append(run)
    out = []
    for parts in by_id.values():
        parts.sort(key=lambda r: r["start_time"] or "")
        merged = copy.deepcopy(parts[0])
        steps = {}
        for part in parts:
            for row in part["history"]:
                steps[row.get("_step", len(steps))] = row
            if part is not parts[0]:
                merged["config"].update(part["config"])
                merged["summary"].update(part["summary"])
                merged.update(name=part["name"] or merged["name"], group=part["group"] or merged["group"],
                              exit_code=part["exit_code"])
        merged["history"] = [steps[k] for k in sorted(steps)]
        merged["segments"] = len(parts)
        out.append(merged)
    return out


def to_record(name: Optional[str], group: Optional[str], config: Mapping, summary: Mapping,
              state: Optional[str]) -> dict:
    """An ablate run record from a W&B run's name, group, config and summary."""
    from ablate.track.runkey import run_key

    config = {k: v for k, v in dict(config).items() if not str(k).startswith("_")}
    logged_key = config.pop("run_key", None)  # the mirror adds it; the run's own config lacks it
    key = name if name and RUN_KEY.match(name) else (logged_key or run_key(config))
    rec = {"run_key": key, "sweep": group or config.get("sweep"), "seed": config.get("seed"), "config": config,
           "source": "wandb"}
    rec.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
    rec.setdefault("status", STATES.get(state or "", "unknown"))
    return rec


@STORES.register("wandb")
class WandbStore(ResultsStore):
    """W&B runs (public API or offline files) as read-only run records.

    Args:
        source: ``entity/project`` for the public API, or a directory holding offline runs.
        api: a ``wandb.Api``-like object (default: ``wandb.Api()``, created on first use).
    """

    def __init__(self, source: str, api: Any = None) -> None:
        self.source = str(source)
        self.offline = os.path.isdir(self.source)
        if not self.offline and not re.fullmatch(r"[^/\s]+/[^/\s]+", self.source):
            raise ConfigError(f"W&B source {source!r}; allowed: ENTITY/PROJECT or a directory with offline runs")
        self._api = api
        self._records: Optional[dict[str, dict]] = None
        self._attempts: dict[str, list[dict]] = {}
        self._history: dict[str, Any] = {}

    def _load(self) -> dict[str, dict]:
        if self._records is not None:
            return self._records
        found: list[tuple[Any, dict, Any]] = []  # (order, record, history source)
        if self.offline:
            for run in merge_segments(parse_offline_run(p) for p in Path(self.source).rglob("run-*.wandb")):
                state = "finished" if run["exit_code"] == 0 else ("failed" if run["exit_code"] else "running")
                rec = to_record(run["name"], run["group"], run["config"], run["summary"], state)
                rec["wandb_id"] = run["id"]
                found.append((run["start_time"] or "", rec, run["history"]))
        else:
            if self._api is None:
                import wandb

                self._api = wandb.Api()
            for run in self._api.runs(self.source):
                summary = dict(getattr(run.summary, "_json_dict", None) or run.summary)
                rec = to_record(run.name, run.group, run.config, summary, run.state)
                rec["wandb_id"] = getattr(run, "id", None)
                found.append((getattr(run, "created_at", "") or "", rec, run))
        records: dict[str, dict] = {}
        for _, rec, hist in sorted(found, key=lambda t: str(t[0])):  # oldest first: the newest wins
            key = rec["run_key"]
            if key in records:
                self._attempts.setdefault(key, []).append(records[key])
            records[key] = rec
            self._history[key] = hist
        self._records = records
        return records

    def put(self, record: Mapping[str, Any]) -> None:
        raise PermissionError(f"WandbStore({self.source!r}) is a read-only import; write runs to a RunDirStore")

    def append_metrics(self, run_key: str, row: Mapping[str, Any]) -> None:
        raise PermissionError(f"WandbStore({self.source!r}) is a read-only import; write runs to a RunDirStore")

    def get(self, run_key: str) -> Optional[RunRecord]:
        rec = self._load().get(run_key)
        return RunRecord.from_dict(copy.deepcopy(rec)) if rec is not None else None

    def keys(self) -> list[str]:
        return sorted(self._load())

    def attempts(self, run_key: str) -> list[dict]:
        self._load()
        return copy.deepcopy(self._attempts.get(run_key, []))

    def metrics(self, run_key: str) -> list[dict]:
        """Per-epoch rows: the run's history (``epoch``, ``val_top1``, ... as logged)."""
        self._load()
        hist = self._history.get(run_key)
        if hist is None:
            return []
        rows = hist if isinstance(hist, list) else list(hist.scan_history())
        return [{k: v for k, v in r.items() if not str(k).startswith("_")} for r in copy.deepcopy(rows)]
