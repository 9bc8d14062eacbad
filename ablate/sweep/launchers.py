"""Launchers: run a list of planned runs somewhere. They differ only in where runs execute.

``local`` runs them one after another in this process (no start-up cost per run);
``parallel`` spreads them over N worker processes, splitting the CPU threads between them.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import ClassVar

from ablate.sweep.runner import PlannedRun
from ablate.train.run import RunLocked, run

log = logging.getLogger("ablate")


@dataclass
class LauncherConfig:
    """The ``launcher`` config group."""

    name: str = "local"
    workers: int = 1

    def __post_init__(self) -> None:
        if self.name not in LAUNCHERS:
            raise ValueError(f"unknown launcher {self.name!r}; allowed: {', '.join(sorted(LAUNCHERS))}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"launcher.workers={self.workers!r}; allowed: an integer >= 1")


class Launcher:
    """Base: ``launch(runs)`` returns the records of the runs it ran (skipped ones excluded)."""

    name: ClassVar[str] = "base"

    def __init__(self, cfg: LauncherConfig) -> None:
        self.cfg = cfg

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        raise NotImplementedError


class LocalLauncher(Launcher):
    name = "local"

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        records = []
        for i, r in enumerate(runs, 1):
            log.info("[%d/%d] run %s: %s", i, len(runs), r.key, " ".join(r.overrides))
            try:
                records.append(run(r.plan))
            except RunLocked as exc:
                log.warning("skipped: %s", exc)
        return records


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(plan) -> dict | None:
    try:
        return run(plan)
    except RunLocked as exc:
        log.warning("skipped: %s", exc)
        return None


class ParallelLauncher(Launcher):
    name = "parallel"

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        workers = min(self.cfg.workers, max(1, len(runs)))
        threads = max(1, (os.cpu_count() or 1) // workers)
        records = []
        ctx = get_context("spawn")  # fresh interpreters: no inherited torch thread pools
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(_run_in_worker, r.plan): r for r in runs}
            for i, fut in enumerate(as_completed(futures), 1):
                rec = fut.result()
                r = futures[fut]
                log.info("[%d/%d] run %s %s", i, len(runs), r.key, rec["status"] if rec else "skipped")
                if rec:
                    records.append(rec)
        return records


LAUNCHERS: dict[str, type[Launcher]] = {c.name: c for c in (LocalLauncher, ParallelLauncher)}


def get_launcher(cfg: dict) -> Launcher:
    lc = LauncherConfig(**cfg)
    return LAUNCHERS[lc.name](lc)
