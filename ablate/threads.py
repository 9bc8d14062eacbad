"""CPU threads: how many a run uses when ``trainer.threads`` is null, and OpenMP that waits
without spinning.

Two things make a CPU run slow on a machine it shares (another job, a second run of a sweep):

- **Spinning.** torch's CPU wheels run their parallel ops on GNU OpenMP (libgomp), whose idle
  threads spin for ~300k iterations (a few ms) after every parallel region by default. A tiny
  net's step is hundreds of short regions, so its threads spin nearly all the time, and on a busy
  core they take the CPU from the thread that has the work. ``import ablate`` sets
  ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep at once) unless ``OMP_WAIT_POLICY`` or
  ``GOMP_SPINCOUNT`` is set already. libgomp reads it once, when it loads, i.e. when torch is
  first imported: the ``ablate`` command, ``python -m ablate...``, launcher workers and
  ``python -c "import ablate, torch"`` get it; a script that imports torch before ablate does not
  (:data:`OPENMP_WAIT` says which case this process is).
- **Too many threads.** torch's own default ignores a container's CPU quota. A run that does not
  set ``trainer.threads`` uses :func:`default_threads`: the launcher's share of the cores
  (``ABLATE_THREADS``, set by ``launcher=parallel`` in each worker), else ``OMP_NUM_THREADS``
  (set by Ray per task), else :func:`usable_cores`.

This module is part of the base layer: it imports nothing from ablate and not torch.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import MutableMapping, Optional

from ablate.errors import ConfigError

WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # a user who set either keeps their choice
THREADS_ENV = "ABLATE_THREADS"                      # a launcher's share of the cores for this process


def quiet_openmp(environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``) unless the user
    chose a wait policy; returns what holds for this process:

    - ``"passive"``: set now, before torch (and with it libgomp) was loaded: in effect;
    - ``"user"``: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` was set already: left alone;
    - ``"late"``: set now, but torch was imported first: in effect only for child processes.
    """
    env = os.environ if environ is None else environ
    if any(k in env for k in WAIT_VARS):
        return "user"
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return "late" if "torch" in sys.modules else "passive"


def _cgroup_quota(proc: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> Optional[float]:
    """The CPU quota of this process's cgroup in CPUs (``2.5`` for ``--cpus=2.5``), None if none.

    cgroup v2 (``cpu.max``: ``"max 100000"`` or ``"250000 100000"``) and v1
    (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, -1 = none); the group's own dir, then the root
    as a container sees it (a cgroup namespace shows the container's group as ``/``).
    """
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.strip().lstrip("/")
        if controllers == "":  # v2
            for d in dict.fromkeys((root / rel, root)):
                try:
                    quota, period = (d / "cpu.max").read_text().split()[:2]
                except (OSError, ValueError):
                    continue
                return None if quota == "max" else int(quota) / int(period)
        elif "cpu" in controllers.split(","):  # v1: mounted as cpu, cpu,cpuacct or cpuacct,cpu
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                for d in dict.fromkeys((root / mount / rel, root / mount)):
                    try:
                        quota = int((d / "cpu.cfs_quota_us").read_text())
                        period = int((d / "cpu.cfs_period_us").read_text())
                    except (OSError, ValueError):
                        continue
                    return None if quota <= 0 or period <= 0 else quota / period
    return None


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity (``taskset``, a SLURM cpuset), capped by
    its cgroup's CPU quota (``docker --cpus``, a Kubernetes limit), rounded down, at least 1."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, math.floor(quota))
    return max(1, n)


def _env_threads(name: str, value: str, strict: bool) -> Optional[int]:
    text = value.split(",")[0].strip()  # OMP_NUM_THREADS may list nested levels: "4,2"
    if text.isdigit() and int(text) >= 1:
        return int(text)
    if strict:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: an integer >= 1 (or unset)")
    return None  # libgomp ignores a bad OMP_NUM_THREADS too


def default_threads(environ: Optional[MutableMapping[str, str]] = None) -> tuple[int, str]:
    """``(threads, source)`` for a run with ``trainer.threads: null``: ``ABLATE_THREADS`` (a
    launcher's share), else ``OMP_NUM_THREADS``, else :func:`usable_cores` (source ``"cores"``)."""
    env = os.environ if environ is None else environ
    for name, strict in ((THREADS_ENV, True), ("OMP_NUM_THREADS", False)):
        if env.get(name):
            n = _env_threads(name, env[name], strict)
            if n is not None:
                return n, name
    return usable_cores(), "cores"


# What ``import ablate`` did to OpenMP's wait policy in this process (see quiet_openmp).
OPENMP_WAIT = quiet_openmp()
