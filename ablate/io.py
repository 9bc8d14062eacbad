"""Crash-safe file writes: every result, checkpoint and index goes through here.

Whole files are written to a temporary sibling, fsynced and moved into place with
``os.replace`` (atomic on POSIX), so a reader sees the old file or the new one, never half.
Append-only logs (``metrics.jsonl``) are flushed and fsynced line by line.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "w", fsync: bool = True) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then rename it over ``path``.

    ``fsync=False`` is for rebuildable caches: a crash may leave the old file or a torn new
    one (read as corrupt and rebuilt), never half a file at ``path`` for a concurrent reader.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: str | Path, data: Any) -> None:
    atomic_write(path, lambda fh: json.dump(data, fh, indent=2, sort_keys=True, default=str))


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one JSON line and make it durable before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    rows = []
    try:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return rows


def torch_save(path: str | Path, obj: Any) -> None:
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh), mode="wb")
