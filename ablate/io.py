"""Crash-safe file writes: every result, checkpoint and index goes through here.

Whole files are written to a temporary sibling, fsynced and moved into place with
``os.replace`` (atomic on POSIX), so a reader sees the old file or the new one, never half.
Append-only logs (``metrics.jsonl``) are flushed and fsynced line by line. A file written this
way gets the permissions ``open()`` gives a new file, ``0666 & ~umask`` (``tempfile.mkstemp``
alone would leave every table, result and checkpoint ``0600``, unreadable to a group that shares
them); the umask is how a user asks for private files (``umask 077``).

A file damaged anyway (a disk that filled up mid-write on another tool's watch, a hand edit) is
never the reason a command fails without saying which file: ``read_json`` raises
``DamagedFile`` naming it, ``set_aside`` moves it to ``<name>.damaged-<time>`` (kept, never
deleted), ``read_jsonl`` skips a bad line with a warning and keeps the rows after it.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("ablate")


class DamagedFile(ValueError):
    """A file that does not parse (truncated, garbled): ``path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path} is damaged ({reason})")


def set_aside(path: str | Path) -> Path:
    """Move a damaged file to ``<name>.damaged-<time>`` beside it and say so; returns the new path."""
    path = Path(path)
    dest = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, dest)
    log.warning("%s was damaged; kept as %s", path, dest.name)
    return dest


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the kernel shows it (Linux
    ``/proc/self/status``); elsewhere set and restored at once, under a lock."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: ``0666 & ~umask``."""
    return 0o666 & ~current_umask()


def mkstemp_beside(path: str | Path) -> tuple[int, str]:
    """``tempfile.mkstemp`` next to ``path`` (same file system, so ``os.replace`` is atomic), with
    the mode ``open()`` gives a new file instead of mkstemp's private 0600. A file replaced this
    way takes that mode too (one written 0600 by an older ablate becomes readable again)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode())
    except OSError:  # a file system without POSIX modes (FAT, some network mounts): nothing to set
        pass
    return fd, tmp


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "w", fsync: bool = True) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then rename it over ``path``.

    ``fsync=False`` is for rebuildable caches: a crash may leave the old file or a torn new
    one (read as corrupt and rebuilt), never half a file at ``path`` for a concurrent reader.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = mkstemp_beside(path)
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
    """The JSON in ``path``; ``DamagedFile`` (naming it) when it does not parse."""
    with open(path) as fh:
        try:
            return json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DamagedFile(path, str(exc).splitlines()[0]) from None


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one JSON line and make it durable before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file. A line that does not parse (a torn last line after a crash,
    a garbled one) is skipped with a warning naming the file and line; the rows after it stay."""
    rows = []
    try:
        with open(path, errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: line %d is damaged; skipped", path, number)
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows


def torch_save(path: str | Path, obj: Any) -> None:
    import torch

    try:
        atomic_write(path, lambda fh: torch.save(obj, fh), mode="wb")
    except RuntimeError as exc:  # torch wraps a failed write (a full disk) in its own error
        if isinstance(exc.__context__, OSError):
            raise exc.__context__ from None
        raise
