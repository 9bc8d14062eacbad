"""What every launcher shares: its config keys, the base class, the registry and the plumbing.

One config group (``conf/launcher/<name>.yaml``), one base class; backends differ in where work
executes (after Hydra's submitit launcher, whose backends differ only in ``_EXECUTOR``). Each
backend is one module of this package that registers itself in ``LAUNCHERS``: a new launcher
is that module plus its YAML. Keys every backend has live in ``LauncherConfig``; a backend's
own keys in its subclass (``get_launcher`` refuses a key the chosen backend does not have).

Plumbing written once: ``capture_env`` / ``setup_worker`` (``ablate/sweep/environment.py``)
carry the ``ABLATE_*`` environment and the log level into a spawned process, Ray task or SLURM
job; ``run_one`` trains one run and turns a run another live process holds into a skip.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ablate.errors import ConfigError, allowed
from ablate.registry import Registry
from ablate.sweep.environment import capture_env, setup_worker  # noqa: F401  (re-exported)
from ablate.sweep.packing import device_slots
from ablate.sweep.runner import PlannedRun
from ablate.threads import usable_cores
from ablate.track.lock import RunLocked
from ablate.track.record import RunRecord

if TYPE_CHECKING:
    from ablate.sweep.worker import StudyJob

log = logging.getLogger("ablate")

LAUNCHERS: Registry[type["Launcher"]] = Registry("launcher", discover="ablate.sweep.launchers")


@dataclass
class LauncherConfig:
    """The keys every launcher has (each conf/launcher/<name>.yaml documents them)."""

    name: str = "local"
    workers: Any = 1      # concurrent workers (processes, jobs, tasks); auto = this machine's CPU cores

    def __post_init__(self) -> None:
        if self.workers == "auto":  # one worker per CPU core this process may use (affinity, cgroup quota)
            self.workers = usable_cores()
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"launcher.workers={self.workers!r}; allowed: an integer >= 1 or auto")


@dataclass
class PackingConfig(LauncherConfig):
    """Keys of the backends that pack K runs per GPU (``parallel``, and ``slurm`` per task)."""

    runs_per_gpu: Optional[int] = None      # pack K runs per GPU (K CPU processes without a GPU)
    mem_per_run_gb: Optional[float] = None  # refuse a K whose runs would not fit a GPU's free memory
    gpus: Optional[list] = None             # GPU ids to pack onto; null = every visible GPU

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.runs_per_gpu is not None and (not isinstance(self.runs_per_gpu, int) or self.runs_per_gpu < 1):
            raise ConfigError(f"launcher.runs_per_gpu={self.runs_per_gpu!r}; allowed: null or an integer >= 1")
        if self.mem_per_run_gb is not None and not self.mem_per_run_gb > 0:
            raise ConfigError(f"launcher.mem_per_run_gb={self.mem_per_run_gb!r}; allowed: null or a number > 0")

    def slots(self, default: int) -> list[Optional[str]]:
        """One entry per worker: its CUDA_VISIBLE_DEVICES (None = leave as is / CPU)."""
        return device_slots(self.runs_per_gpu, self.mem_per_run_gb, self.gpus) or [None] * default


class Launcher:
    """Base: ``launch(runs)`` and ``work_study(job, workers)`` return the records they produced.

    ``runs_here``: runs execute on this machine, so ``check_runs`` can check their device here.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type] = LauncherConfig
    runs_here: ClassVar[bool] = True

    def __init__(self, cfg: LauncherConfig) -> None:
        self.cfg = cfg

    def check(self) -> None:
        """Raise a one-line ConfigError if this launcher cannot start work here (before any submit)."""

    def check_runs(self, runs: list[PlannedRun]) -> None:
        """Raise a one-line ConfigError if a run cannot execute where this launcher puts it
        (before any compute). Launchers that run here check each run's device on this machine;
        cluster launchers leave that to the node."""
        if getattr(self.cfg, "runs_per_gpu", None):
            several = next((r for r in runs if r.plan.trainer.devices > 1), None)
            if several is not None:
                raise ConfigError(f"launcher.runs_per_gpu={self.cfg.runs_per_gpu} packs runs of one process; run "
                                  f"{several.key} has trainer.devices={several.plan.trainer.devices}; allowed: "
                                  "launcher.runs_per_gpu=null for runs of several processes")
        if self.runs_here:
            for r in runs:
                r.plan.trainer.check_here()

    def launch(self, runs: list[PlannedRun]) -> list[RunRecord]:
        raise NotImplementedError

    def work_study(self, job: "StudyJob", workers: int) -> list[RunRecord]:
        raise NotImplementedError


def require(module: str, launcher: str, install: str) -> None:
    """One-line ConfigError when a backend's optional package is missing (before any submit)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"launcher {launcher} needs {module}; allowed: {install} (or launcher local or parallel)")


def get_launcher(cfg: dict[str, Any]) -> Launcher:
    """The launcher a run config's ``launcher`` group names, its keys validated."""
    cfg = dict(cfg)
    cls = LAUNCHERS.get(cfg.get("name", "local"))
    keys = [f.name for f in dataclasses.fields(cls.config_class)]
    unknown = sorted(set(cfg) - set(keys))
    if unknown:
        raise ConfigError(f"launcher {cls.name}: unknown option {unknown[0]!r}; allowed: {allowed(keys)}")
    return cls(cls.config_class(**cfg))


def run_one(plan) -> Optional[RunRecord]:
    """Train one run here; None when another live process holds it (logged, not an error)."""
    from ablate.train.run import run

    try:
        return run(plan)
    except RunLocked as exc:
        log.warning("skipped: %s", exc)
        return None
