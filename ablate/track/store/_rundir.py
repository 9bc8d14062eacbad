"""The default store: one directory per run under the runs dir, named by its run key.

``<runs_dir>/<run_key>/result.json`` is the record and ``metrics.jsonl`` its per-epoch rows.
A replaced record is moved to ``attempts/result-<n>.json`` first, so nothing is lost. The
directory listing is the truth; ``.index.json`` only caches record contents for ``records()``
and is checked against each file's signature, so deleting it loses nothing.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from ablate.io import DamagedFile, append_jsonl, atomic_write, mkstemp_beside, read_json, read_jsonl, set_aside, torch_save
from ablate.track.lock import RunLock
from ablate.track.record import RunRecord
from ablate.track.store._base import STORES, ResultsStore, matches

log = logging.getLogger("ablate")

RESULT = "result.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
CONFIG = ".hydra/config.yaml"
LOG = "train.log"
REPLACED = "_replaced"  # force=true keeps the previous run dir here
INDEX = ".index.json"   # rebuildable cache of every record (see RunDirStore._read_all)
INDEX_VERSION = 1


@dataclass(frozen=True)
class RunFiles:
    """Every path of one run dir, and the writes that keep them safe.

    ``result.json`` (the record, written by the store's ``put``), ``metrics.jsonl`` (one fsynced
    line per epoch), ``checkpoint.pt`` (atomic: temporary file + rename), ``.hydra/config.yaml``
    (the resolved config), ``train.log``, and the lock ``<runs_dir>/.<run_key>.lock``.
    """

    dir: Path

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def result(self) -> Path:
        return self.dir / RESULT

    @property
    def metrics(self) -> Path:
        return self.dir / METRICS

    @property
    def checkpoint(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def config(self) -> Path:
        return self.dir / CONFIG

    @property
    def log(self) -> Path:
        return self.dir / LOG

    @property
    def lock_path(self) -> Path:
        return self.dir.parent / f".{self.dir.name}.lock"

    def lock(self) -> RunLock:
        """Hold the run's lock (``RunLocked`` if a live process holds it)."""
        return RunLock(self.lock_path)

    def create(self, config: Mapping[str, Any]) -> None:
        """Make the run dir and write its resolved config."""
        from omegaconf import OmegaConf

        self.config.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(dict(config)), self.config)

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        append_jsonl(self.metrics, dict(row))

    def rewrite_metrics(self, rows: list[Mapping[str, Any]]) -> None:
        """Replace the per-epoch rows (a resume drops rows written after the last checkpoint)."""
        atomic_write(self.metrics, lambda fh: fh.writelines(json.dumps(dict(r), sort_keys=True) + "\n" for r in rows))

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics)

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        torch_save(self.checkpoint, dict(state))

    def load_checkpoint(self, map_location: Any = "cpu") -> Optional[dict]:
        """The checkpoint (model, optimizer and RNG state), or None. Loaded with
        ``weights_only=True``: tensors and plain containers only, no code from the file. A damaged
        one (truncated, not a checkpoint) is set aside with a warning and reads as absent, so
        the run starts over instead of failing on every relaunch."""
        if not self.checkpoint.exists():
            return None
        import pickle
        import zipfile

        import torch

        try:
            return torch.load(self.checkpoint, map_location=map_location, weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError) as exc:
            log.warning("%s cannot be loaded (%s)", self.checkpoint, str(exc).splitlines()[0][:200])
            set_aside(self.checkpoint)
            return None

    def set_aside(self) -> Optional[Path]:
        """``force=true``: move the run dir to ``<runs_dir>/_replaced/<key>-<time>``, never delete it."""
        if not self.dir.exists():
            return None
        from datetime import datetime

        dest = self.dir.parent / REPLACED / f"{self.key}-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.dir, dest)
        return dest


@STORES.register("rundir")
class RunDirStore(ResultsStore):
    """Records in ``<root>/<run_key>/result.json``; safe for concurrent writers of different keys."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_key: str) -> Path:
        return self.root / run_key

    def files(self, run_key: str) -> RunFiles:
        """The paths and file operations of one run dir (the trainer writes through these)."""
        return RunFiles(self.run_dir(run_key))

    def put(self, record: Mapping[str, Any]) -> None:
        """Write the record; an earlier different one is archived under ``attempts/`` only once
        the new one is safely on disk (a full disk never leaves the run without a record)."""
        record = RunRecord.from_dict(record).to_dict()
        key = record["run_key"]
        path = self.run_dir(key) / RESULT
        old = self._read(path)
        if old is not None and old == json.loads(json.dumps(record, default=str)):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp_beside(path)  # the mode open() would give, not 0600
        try:
            with os.fdopen(fd, "w") as fh:  # the new record first, fsynced ...
                json.dump(record, fh, indent=2, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            if old is not None:  # ... then the old one archived (a hard link: no space needed) ...
                adir = path.parent / "attempts"
                adir.mkdir(exist_ok=True)
                n = len(list(adir.glob("result-*.json")))
                try:
                    os.link(path, adir / f"result-{n:03d}.json")
                except OSError:
                    shutil.copy2(path, adir / f"result-{n:03d}.json")
            os.replace(tmp, path)  # ... then the new one in its place, atomically
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, run_key: str) -> Optional[RunRecord]:
        rec = self._read(self.run_dir(run_key) / RESULT)
        return None if rec is None else RunRecord.from_dict(rec)

    @staticmethod
    def _read(path: Path) -> Optional[dict]:
        """A record file's JSON; a damaged one is set aside (kept, with a warning) and reads as
        missing, so the run is trained again instead of blocking every command."""
        try:
            return read_json(path)
        except FileNotFoundError:
            return None
        except DamagedFile:
            try:
                set_aside(path)
            except FileNotFoundError:
                pass
            return None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and os.path.exists(os.path.join(e.path, RESULT)))

    def records(self, where: Optional[Mapping[str, Any]] = None) -> Iterator[dict]:
        """Records matching ``where`` (same semantics as ``matches(flatten(rec), where)``).

        Reads go through the index cache (``_read_all``), and only the keys ``where`` names
        are looked up: flattening every record was most of the time of a 10k-record table.
        """
        for rec in self._read_all():
            if not where or matches({k: _lookup(rec, k) for k in where}, where):
                yield RunRecord.from_dict(rec)

    def _read_all(self) -> list[dict]:
        """Every record, through ``<root>/.index.json``: a rebuildable cache of the records
        keyed by run key with each ``result.json``'s (inode, mtime_ns, size). A record is read
        from its file whenever that signature differs (``put`` replaces the file atomically, so
        a new record always has a new inode); missing or corrupt index -> read every file.
        One sequential file instead of 10k small ones: a cold-cache read of 10k records drops
        from ~1.5 s to ~0.3 s. Returned records are fresh objects (contract: copies)."""
        if not self.root.is_dir():
            return []
        sigs = {}
        with os.scandir(self.root) as entries:
            for e in entries:
                try:
                    st = os.stat(os.path.join(e.path, RESULT))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                sigs[e.name] = [st.st_ino, st.st_mtime_ns, st.st_size]
        index = self._load_index()
        fresh, out, dirty = {}, [], len(index) != len(sigs)
        for key in sorted(sigs):
            hit = index.get(key)
            if hit is not None and hit[0] == sigs[key]:
                rec = hit[1]
            else:
                rec = self._read(self.run_dir(key) / RESULT)
                if rec is None:
                    continue  # replaced, removed or damaged (set aside) since the scan
                dirty = True
            fresh[key] = [sigs[key], rec]
            out.append(rec)
        if dirty:
            self._save_index(fresh)
        return out

    def _load_index(self) -> dict:
        try:
            with open(self.root / INDEX) as fh:
                data = json.load(fh)
            return data["entries"] if data.get("version") == INDEX_VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _save_index(self, entries: dict) -> None:
        # Written after the records are collected, before they reach the caller, so a caller
        # mutating a record cannot change the cache. Concurrent writers: last one wins, and
        # every version is a valid snapshot (signatures make stale entries harmless).
        # No fsync: a cache torn by a crash reads as corrupt and is rebuilt.
        data = {"version": INDEX_VERSION, "entries": entries}
        try:
            atomic_write(self.root / INDEX, lambda fh: json.dump(data, fh, separators=(",", ":"), default=str), fsync=False)
        except OSError:
            pass  # a read-only runs dir still reads, just without the cache

    def attempts(self, run_key: str) -> list[dict]:
        adir = self.run_dir(run_key) / "attempts"
        return [r for r in (self._read(p) for p in sorted(adir.glob("result-*.json"))) if r is not None]

    def append_metrics(self, run_key: str, row: Mapping[str, Any]) -> None:
        self.files(run_key).append_metrics(row)

    def metrics(self, run_key: str) -> list[dict]:
        return self.files(run_key).read_metrics()


def _lookup(record: Mapping[str, Any], dotted: str) -> Any:
    """The value ``flatten(record)[dotted]`` would hold (top-level keys win over config keys)."""
    if dotted != "config" and dotted in record:
        return record[dotted]
    node: Any = record.get("config") or {}
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping):
        return None  # flatten walks into mappings: a dotted key never names one
    return tuple(node) if isinstance(node, list) else node
