"""Who is training a run right now: the run lock ``<runs_dir>/.<run_key>.lock``, and liveness.

Mutual exclusion is the kernel's: the trainer holds ``flock(LOCK_EX)`` on the lock file for the
whole run, so it is released the moment the process dies, however it dies (no stale lock on a
local file system, and taking over is the same atomic ``flock`` as taking: two launches after a
crash cannot both win). The file names its holder (``host pid``) and a heartbeat thread touches
it every ``lease / 4`` seconds. On a shared file system whose ``flock`` is node-local, a lock
naming another host counts as held while its heartbeat is younger than the lease
(``ABLATE_LOCK_LEASE_S``, default 120 s): a lock left by a dead node expires instead of
blocking the run for ever.

Study workers record the same (host, pid) pair; ``process_alive`` answers for them.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["RunLock", "RunLocked", "lease_seconds", "lock_holder_alive", "process_alive", "remove_stale_lock"]

_PROBE_RETRIES = 5       # a status probe holds a shared flock for microseconds: retry, do not fail
_PROBE_WAIT_S = 0.02


class RunLocked(RuntimeError):
    """Another live process is training this run right now."""


def lease_seconds() -> float:
    """How long a lock naming another host stays valid without a heartbeat."""
    try:
        return max(1.0, float(os.environ.get("ABLATE_LOCK_LEASE_S", "120")))
    except ValueError:
        return 120.0


def _holder(path: Path) -> tuple[str, str]:
    try:
        host, pid = path.read_text().split()[:2]
        return host, pid
    except (FileNotFoundError, ValueError):
        return "", ""


def _fresh(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < lease_seconds()
    except FileNotFoundError:
        return False


def _held_elsewhere(path: Path) -> bool:
    """The file names another host whose heartbeat is within the lease (its flock is invisible here)."""
    host, _ = _holder(path)
    return bool(host) and host != socket.gethostname() and _fresh(path)


class RunLock:
    """Hold the run lock at ``path`` for the duration of a ``with`` block (``RunLocked`` if held)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            if not _flock(fd, fcntl.LOCK_EX):
                os.close(fd)
                host, pid = _holder(self.path)
                raise RunLocked(f"run {self.path.name[1:-5]} is being trained by {host} {pid}".rstrip())
            if not _is_at(fd, self.path):  # a finishing holder unlinked it: take the new file
                os.close(fd)
                continue
            if _held_elsewhere(self.path):
                os.close(fd)
                host, pid = _holder(self.path)
                raise RunLocked(f"run {self.path.name[1:-5]} is being trained by {host} {pid} "
                                f"(heartbeat within the {lease_seconds():g} s lease)")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
            self._fd = fd
            self._beat = threading.Thread(target=self._heartbeat, name="ablate-lock-heartbeat", daemon=True)
            self._beat.start()
            return self
        raise RunLocked(f"could not take {self.path}")

    def _heartbeat(self) -> None:
        interval = lease_seconds() / 4
        while not self._stop.wait(interval):
            try:
                os.utime(self.path)
            except OSError:
                pass  # a full or read-only disk: the lease may lapse, the flock still holds

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=1)
        try:
            self.path.unlink(missing_ok=True)  # while still holding the flock
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the one at ``path`` (a finishing holder unlinks it)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _flock(fd: int, kind: int) -> bool:
    """Non-blocking flock with a few short retries (a status probe may hold it for microseconds)."""
    for i in range(_PROBE_RETRIES):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if i + 1 < _PROBE_RETRIES:
                time.sleep(_PROBE_WAIT_S)
    return False


def lock_holder_alive(path: str | Path) -> bool:
    """Is a process training this run? (its flock is held here, or another host's heartbeat is fresh)"""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a shared probe: held exclusively -> alive
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return _held_elsewhere(path)
    finally:
        os.close(fd)


def remove_stale_lock(path: str | Path) -> bool:
    """Remove the lock file at ``path`` if no live process holds it; True if removed.

    A process killed after its run's record was written (during the W&B finish, say) leaves the
    file behind, flock released: the run is done, so no later launch takes the lock over. The
    launch that finds such a run done removes it (taking the flock first, as a holder would).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        # held (someone is re-training it), another host's fresh lock, or a new holder's file
        if not _flock(fd, fcntl.LOCK_EX) or _held_elsewhere(path) or not _is_at(fd, path):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


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
