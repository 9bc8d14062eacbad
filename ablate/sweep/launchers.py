"""Launchers: run planned runs, or the workers of an Optuna study, somewhere.

One config group (``conf/launcher/*.yaml``), one base class; backends differ in where work
executes (after Hydra's submitit launcher, whose backends differ only in ``_EXECUTOR``):

``local``     runs one after another in this process (no start-up cost per run);
``parallel``  spreads them over N spawned worker processes, splitting the CPU threads, or packs
              ``runs_per_gpu`` workers onto each GPU (``ablate/sweep/packing.py``);
``slurm``     submits SLURM jobs through submitit (``ablate/sweep/slurm.py``);
``ray``       runs Ray tasks on a local Ray instance or a Ray cluster (``ablate/sweep/ray_launcher.py``).
"""
from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ablate.errors import ConfigError
from ablate.sweep.packing import device_slots, run_pool
from ablate.sweep.runner import PlannedRun
from ablate.track.lock import RunLocked
from ablate.train.run import run

if TYPE_CHECKING:
    from ablate.sweep.study import StudyJob

log = logging.getLogger("ablate")

# name -> "module:Class"; resolved lazily so `slurm` costs nothing until it is used.
LAUNCHERS: dict[str, str] = {
    "local": "ablate.sweep.launchers:LocalLauncher",
    "parallel": "ablate.sweep.launchers:ParallelLauncher",
    "slurm": "ablate.sweep.slurm:SlurmLauncher",
    "ray": "ablate.sweep.ray_launcher:RayLauncher",
}


@dataclass
class LauncherConfig:
    """The keys every launcher has (conf/launcher/local.yaml documents each)."""

    name: str = "local"
    workers: Any = 1                        # concurrent worker processes / jobs; auto = CPU cores
    runs_per_gpu: Optional[int] = None      # pack K runs per GPU (K CPU processes without a GPU)
    mem_per_run_gb: Optional[float] = None  # refuse a K whose runs would not fit a GPU's free memory
    gpus: Optional[list] = None             # GPU ids to pack onto; null = every visible GPU

    def __post_init__(self) -> None:
        if self.name not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {self.name!r}; allowed: {', '.join(LAUNCHERS)}")
        if self.workers == "auto":  # one worker per CPU core this process may use
            self.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"launcher.workers={self.workers!r}; allowed: an integer >= 1 or auto")
        if self.runs_per_gpu is not None and (not isinstance(self.runs_per_gpu, int) or self.runs_per_gpu < 1):
            raise ConfigError(f"launcher.runs_per_gpu={self.runs_per_gpu!r}; allowed: null or an integer >= 1")
        if self.mem_per_run_gb is not None and not self.mem_per_run_gb > 0:
            raise ConfigError(f"launcher.mem_per_run_gb={self.mem_per_run_gb!r}; allowed: null or a number > 0")

    def slots(self, default: int) -> list[Optional[str]]:
        """One entry per worker: its CUDA_VISIBLE_DEVICES (None = leave as is / CPU)."""
        return device_slots(self.runs_per_gpu, self.mem_per_run_gb, self.gpus) or [None] * default


class Launcher:
    """Base: ``launch(runs)`` and ``work_study(job, workers)`` return the records they produced."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type] = LauncherConfig
    runs_here: ClassVar[bool] = True  # runs execute on this machine (not on a cluster node)

    def __init__(self, cfg: LauncherConfig) -> None:
        self.cfg = cfg

    def check(self) -> None:
        """Raise a one-line ValueError if this launcher cannot start work here (before any submit)."""

    def check_runs(self, runs: list[PlannedRun]) -> None:
        """Raise a one-line ValueError if a run cannot execute where this launcher puts it
        (before any compute). Launchers that run here check each run's device on this machine;
        cluster launchers leave that to the node."""
        if self.runs_here:
            for r in runs:
                r.plan.trainer.torch_device()

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        raise NotImplementedError

    def work_study(self, job: "StudyJob", workers: int) -> list[dict]:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """Runs one after another in this process; stops launching after a pre-emption signal."""

    name = "local"

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        from ablate.train.engine import stop_requested

        if self.cfg.runs_per_gpu:
            return ParallelLauncher(self.cfg).launch(runs)
        records = []
        for i, r in enumerate(runs, 1):
            if stop_requested():  # pre-empted: leave the remaining runs for the relaunch
                log.warning("stop requested: %d runs left for the relaunch", len(runs) - i + 1)
                break
            log.info("[%d/%d] run %s: %s", i, len(runs), r.key, " ".join(r.overrides))
            try:
                records.append(run(r.plan))
            except RunLocked as exc:
                log.warning("skipped: %s", exc)
        return records

    def work_study(self, job: "StudyJob", workers: int) -> list[dict]:
        from ablate.sweep.worker import work

        if self.cfg.runs_per_gpu or workers > 1:
            return ParallelLauncher(self.cfg).work_study(job, workers)
        return work(job)


def _run_in_worker(plan) -> Optional[dict]:
    try:
        return run(plan)
    except RunLocked as exc:
        log.warning("skipped: %s", exc)
        return None


class ParallelLauncher(Launcher):
    """N spawned worker processes (or K per GPU with ``runs_per_gpu``) on this machine."""

    name = "parallel"

    def launch(self, runs: list[PlannedRun]) -> list[dict]:
        records = []
        slots = self.cfg.slots(self.cfg.workers)
        for i, (plan, rec) in enumerate(run_pool(_run_in_worker, [r.plan for r in runs], slots), 1):
            log.info("[%d/%d] run %s %s", i, len(runs), plan.key, rec["status"] if rec else "skipped")
            if rec:
                records.append(rec)
        return records

    def work_study(self, job: "StudyJob", workers: int) -> list[dict]:
        from ablate.sweep.worker import work

        slots = self.cfg.slots(workers)
        records: list[dict] = []
        for _, recs in run_pool(work, [job.for_worker(i) for i in range(len(slots))], slots):
            records.extend(recs)
        return records


def launcher_class(name: str) -> type[Launcher]:
    if name not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {name!r}; allowed: {', '.join(LAUNCHERS)}")
    module, cls = LAUNCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_launcher(cfg: dict[str, Any]) -> Launcher:
    """The launcher a run config's ``launcher`` group names, its keys validated."""
    cfg = dict(cfg)
    cls = launcher_class(cfg.get("name", "local"))
    allowed = [f.name for f in fields(cls.config_class)]
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(f"launcher {cls.name}: unknown option {unknown[0]!r}; allowed: {', '.join(allowed)}")
    return cls(cls.config_class(**cfg))
