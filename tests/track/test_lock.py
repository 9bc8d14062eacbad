"""One trainer per run, also after a crash: the run lock under concurrent takeovers, kill -9,
and a lock left by another host (a lease, not for ever)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ablate.track.lock import RunLock, RunLocked, lock_holder_alive, remove_stale_lock

TRAIN = """
import os, sys, time
from pathlib import Path
from ablate.track.lock import RunLock, RunLocked
lock, log, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
try:
    with RunLock(lock):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} start\\n")
        time.sleep(0.3)
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} end\\n")
except RunLocked:
    pass
"""


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_held_lock_excludes_others_whatever_its_file_says(tmp_path):
    """The takeover race, made deterministic: a second launcher that judged the lock stale (its
    file names a dead process) must still not get it while the first one trains. (The former
    lock unlinked the "stale" file and created its own: two trainers.)"""
    lock = tmp_path / ".run.lock"
    with RunLock(lock):
        lock.write_text(f"{socket.gethostname()} {_dead_pid()}")
        with pytest.raises(RunLocked):
            with RunLock(lock):
                pass
        assert lock.exists()


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_takeovers_of_a_stale_lock_train_once(tmp_path, trial):
    lock, log = tmp_path / ".run.lock", tmp_path / "log"
    lock.write_text(f"{socket.gethostname()} {_dead_pid()}")  # left by a crashed trainer
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", TRAIN, str(lock), str(log), str(start)]) for _ in range(6)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    lines = log.read_text().split()
    assert lines.count("start") == 1 and lines.count("end") == 1, lines
    assert not lock.exists()


def test_kill_9_releases_the_lock_at_once(tmp_path):
    lock = tmp_path / ".run.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom ablate.track.lock import RunLock\n"
                               f"with RunLock({str(lock)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert lock_holder_alive(lock)
    with pytest.raises(RunLocked, match="being trained by"):
        with RunLock(lock):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert not lock_holder_alive(lock)  # the file is still there, the flock is gone
    with RunLock(lock):
        assert lock_holder_alive(lock)


def test_a_lock_of_another_host_holds_for_its_lease_then_expires(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_LOCK_LEASE_S", "30")
    lock = tmp_path / ".run.lock"
    lock.write_text("node-17 4242")  # its node may be alive: its flock is invisible from here
    assert lock_holder_alive(lock)
    with pytest.raises(RunLocked, match="node-17 4242 .*30 s lease"):
        with RunLock(lock):
            pass
    old = time.time() - 31
    os.utime(lock, (old, old))  # no heartbeat for longer than the lease: that node is gone
    assert not lock_holder_alive(lock)
    with RunLock(lock):
        assert lock.read_text().split() == [socket.gethostname(), str(os.getpid())]


def test_the_holder_keeps_its_lease_alive(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_LOCK_LEASE_S", "1")
    lock = tmp_path / ".run.lock"
    with RunLock(lock):
        first = lock.stat().st_mtime
        time.sleep(0.8)
        assert lock.stat().st_mtime > first  # heartbeat every lease / 4


def test_a_stale_lock_file_is_removed_a_held_or_fresh_remote_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_LOCK_LEASE_S", "30")
    lock = tmp_path / ".run.lock"
    assert not remove_stale_lock(lock)  # no file: nothing to do
    lock.write_text(f"{socket.gethostname()} {_dead_pid()}")  # a trainer killed after its record
    assert remove_stale_lock(lock) and not lock.exists()
    with RunLock(lock):  # held here: kept, and still held
        assert not remove_stale_lock(lock) and lock_holder_alive(lock)
    lock.write_text("node-17 4242")  # another host's heartbeat within the lease
    assert not remove_stale_lock(lock) and lock.exists()


def test_a_relaunch_removes_the_lock_file_a_killed_trainer_left_on_a_done_run(home, tmp_path):
    """kill -9 between writing a run's record and removing its lock file (the W&B finish runs in
    between) leaves the file; the next launch finds the run done, trains nothing, and removes it
    (a dry run changes nothing); ``ablate train`` of the done run alike."""
    from ablate.cli import main
    from tests.helpers import TINY

    sweep = tmp_path / "one.yaml"
    sweep.write_text("grid: {attention: [none]}\nseeds: [0]\n")
    assert main(["sweep", str(sweep), "--no-table", *TINY]) == 0
    (result,) = (home / "outputs" / "runs").glob("*/result.json")
    lock = result.parent.parent / f".{result.parent.name}.lock"
    assert not lock.exists()
    lock.write_text(f"{socket.gethostname()} {_dead_pid()}")
    assert main(["sweep", str(sweep), "--no-table", "--dry-run", *TINY]) == 0
    assert lock.exists()
    assert main(["sweep", str(sweep), "--no-table", *TINY]) == 0
    assert not lock.exists()
    lock.write_text(f"{socket.gethostname()} {_dead_pid()}")
    assert main(["train", "attention=none", "seed=0", *TINY]) == 0
    assert not lock.exists()
