"""A built table, kept: ``ablate table`` prints and writes it without pandas or scipy when
nothing it is built from has changed.

Building a table imports pandas and scipy (~1-2 s on a small machine) and tests every cell;
its inputs are few and cheap to check: ablate's source and the installed pandas, scipy and
numpy, the table spec and the sweep file (as loaded), the sweep's manifest (its bytes), and
each record the table reads (``result.json``'s inode, mtime and size: the store replaces a
record atomically, so a new record always has a new signature). The cache (``ablate.cache``,
kind ``tables``) keeps the printed cells and each format's text under the spec, output
directory and formats; an entry whose stamp differs from the inputs now is rebuilt. A hit
still writes every file, so ``ablate table`` leaves the same files whether it built the table
or not. Tables read from W&B are never cached (their records are not local files).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, Optional

from ablate import cache
from ablate.report.spec import TableSpec
from ablate.track.manifest import SweepManifest
from ablate.track.store._rundir import RESULT

KIND = "tables"


@dataclasses.dataclass
class TableKey:
    """Where a table's cache entry lives (``slot``) and what it must match (``stamp``)."""

    slot: str
    stamp: str


def table_key(spec: TableSpec, planned: Any, paths: Any, formats: Optional[list[str]], out_dir: str | Path) -> Optional[TableKey]:
    """The cache key of ``spec`` built from the local store (``paths``: the ``paths`` group) and
    written to ``out_dir`` in ``formats`` (None: the spec's); ``planned``: the grid sweep file the
    table counts missing seeds from, or None. None when caching is off."""
    if cache.cache_dir() is None:
        return None
    out = str(Path(out_dir).resolve())
    fmts = list(formats if formats is not None else spec.formats)
    manifest_path = SweepManifest.path(paths.sweeps_dir, spec.sweep) if spec.sweep else None
    manifest = SweepManifest.read(paths.sweeps_dir, spec.sweep) if spec.sweep else None
    root = Path(manifest.runs_dir if manifest is not None and manifest.runs_dir else paths.runs_dir).resolve()
    keys = [e["run_key"] for e in manifest.runs] if manifest is not None and manifest.runs is not None else None
    stamp = cache.digest(
        "table", cache.code_digest(), cache.package_stamp(("pandas", "scipy", "numpy")),
        dataclasses.asdict(spec), _asdict(planned), _file_digest(manifest_path), str(root),
        _records_stamp(root, keys), fmts, out, os.getcwd())
    return TableKey(cache.digest("table-slot", spec.name, out, fmts), stamp)


def lookup(key: Optional[TableKey]) -> Optional[dict]:
    """The cached table (``cells``: ``render.table_cells``'s lists; ``texts``: format -> text)
    when its stamp matches, else None."""
    if key is None:
        return None
    entry = cache.read(KIND, key.slot)
    if entry is None or entry.get("stamp") != key.stamp:
        return None
    return {"cells": entry["cells"], "texts": dict(entry["texts"])}


def save(key: Optional[TableKey], cells: dict, texts: dict[str, str]) -> None:
    if key is not None:  # texts as pairs: the entry's keys are sorted, the formats keep their order
        cache.write(KIND, key.slot, {"stamp": key.stamp, "cells": cells, "texts": list(texts.items())})


def _asdict(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def _file_digest(path: Optional[Path]) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except (OSError, TypeError):
        return None


def _records_stamp(root: Path, keys: Optional[list[str]]) -> list:
    """Each record's ``result.json`` signature: of ``keys`` (a manifest's runs), or of every run
    dir under ``root`` (a table without a manifest reads them all)."""
    if keys is None:
        try:
            with os.scandir(root) as entries:
                keys = sorted(e.name for e in entries if e.is_dir())
        except OSError:
            keys = []
    out = []
    for k in keys:
        try:
            st = os.stat(root / k / RESULT)
            out.append([k, st.st_ino, st.st_mtime_ns, st.st_size])
        except OSError:
            out.append([k, None])
    return out
