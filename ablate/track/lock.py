"""Who is training a run right now: the run lock ``<runs_dir>/.<run_key>.lock`` and liveness.

A lock file holds ``"<host> <pid>"`` and is created with O_EXCL, so two processes never train
one run at once; a lock whose process is gone (same host) is stale and taken over. Study
workers record the same (host, pid) pair, and ``process_alive`` answers for both.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["RunLock", "RunLocked", "lock_holder_alive", "process_alive"]


class RunLocked(RuntimeError):
    """Another live process is training this run right now."""


class RunLock:
    """Hold ``path`` (a run's lock file) for the duration of a ``with`` block."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, me.encode())
                os.close(fd)
                return self
            except FileExistsError:
                if lock_holder_alive(self.path):
                    raise RunLocked(f"run {self.path.name[1:-5]} is being trained by {self.path.read_text().strip()}") from None
                self.path.unlink(missing_ok=True)
        raise RunLocked(f"could not take {self.path}")

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def lock_holder_alive(path: str | Path) -> bool:
    """True when the lock file names a live process (on this host; other hosts count as alive)."""
    try:
        host, pid = Path(path).read_text().split()
    except (FileNotFoundError, ValueError):
        return False
    return process_alive(host, pid)


def process_alive(host: str, pid: Any) -> bool:
    """Is process ``pid`` of ``host`` still there? Another host cannot be asked: assume yes."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True
