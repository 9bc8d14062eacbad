"""How far a launch is and when it ends: ``[k/N]`` and an ETA from the runs it finished.

The ETA is the mean duration of the runs (trials) finished in this launch, times the runs left,
divided by how many run at once (never by more than are left: the last run takes a whole run's
time however many workers there are). Runs finished by earlier launches do not count: a
relaunch that skipped 50 finished runs says nothing about how long the next one takes. Until
one run has finished there is no ETA (``?``).
"""
from __future__ import annotations

import math
from datetime import datetime
from statistics import fmean
from typing import Iterable, Optional


def eta_seconds(durations: Iterable[float], remaining: int, parallel: int = 1) -> Optional[float]:
    """Seconds until ``remaining`` runs are done, ``parallel`` at a time; None without a duration."""
    durations = [float(d) for d in durations if d is not None and math.isfinite(d) and d >= 0]
    if remaining <= 0:
        return 0.0
    if not durations:
        return None
    return fmean(durations) * remaining / max(1, min(parallel, remaining))


def format_duration(seconds: Optional[float]) -> str:
    """``45s``, ``2m10s``, ``1h05m``, ``2d03h``; ``?`` for None."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def eta_text(durations: Iterable[float], remaining: int, parallel: int = 1) -> str:
    """``ETA 2m10s`` (``ETA ?`` before any run finished, ``done`` when none is left)."""
    if remaining <= 0:
        return "done"
    return f"ETA {format_duration(eta_seconds(durations, remaining, parallel))}"


class Tally:
    """A launch's counter: ``total`` runs, ``parallel`` at once, ``finished(seconds)`` per run;
    ``eta()`` is the ETA text from the durations recorded so far."""

    def __init__(self, total: int, parallel: int = 1) -> None:
        self.total, self.parallel = total, max(1, parallel)
        self.durations: list[float] = []
        self.done = 0

    def finished(self, seconds: Optional[float]) -> None:
        """One more run is done, in ``seconds`` (None: it did not train here, e.g. skipped)."""
        self.done += 1
        if seconds is not None:
            self.durations.append(seconds)

    def eta(self, remaining: Optional[int] = None) -> str:
        """The ETA of the ``remaining`` runs (default: those not finished)."""
        return eta_text(self.durations, self.total - self.done if remaining is None else remaining, self.parallel)


def finished_since(finished_at: Optional[str], since: Optional[float]) -> bool:
    """Did a run whose record says ``finished_at`` (ISO 8601) finish at or after ``since``
    (a Unix time; None: any time)?"""
    if not finished_at:
        return False
    if since is None:
        return True
    try:
        stamp = datetime.fromisoformat(finished_at)
    except ValueError:
        return False
    return stamp.timestamp() >= since


def trial_durations(trials: Iterable, since: Optional[float]) -> list[float]:
    """Durations of the finished Optuna trials (``FrozenTrial``) started at or after ``since``."""
    out = []
    for t in trials:
        start, end = t.datetime_start, t.datetime_complete
        if start is None or end is None or (since is not None and start.timestamp() < since):
            continue
        out.append((end - start).total_seconds())
    return out
