"""The ``ray`` launcher: runs and study workers as Ray tasks, on a local Ray instance or a cluster.

Ray schedules by resources: each run asks for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs.
A fractional ``gpus_per_run`` (0.5) is Ray's own way of packing several runs onto one GPU (it
sets ``CUDA_VISIBLE_DEVICES`` per task). With ``address: null`` a private Ray instance is started
with ``workers x cpus_per_run`` CPUs, so at most ``workers`` runs execute at once, and stopped at
the end; with ``address: auto`` (or ``ray://host:10001``) the tasks join an existing cluster,
whose nodes must have ablate installed and the same file system for ``paths``.

Measured here (Ray 2.60, torch 2.13 CPU, 2 cores): ``ray.init`` of a local instance ~3 s, then
tasks start in well under a second. ``ray`` is imported inside methods: it is optional.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from ablate.errors import ConfigError
from ablate.sweep.launchers._base import LAUNCHERS, Launcher, LauncherConfig, capture_env, require, run_one, setup_worker
from ablate.sweep.progress import Tally

if TYPE_CHECKING:
    from ablate.sweep.runner import PlannedRun
    from ablate.sweep.worker import StudyJob

log = logging.getLogger("ablate")


@dataclass
class RayLauncherConfig(LauncherConfig):
    """conf/launcher/ray.yaml documents each key."""

    name: str = "ray"
    workers: int = 2
    address: Optional[str] = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.cpus_per_run > 0 or self.gpus_per_run < 0:
            raise ConfigError(f"launcher.cpus_per_run={self.cpus_per_run!r}, gpus_per_run={self.gpus_per_run!r}; "
                             "allowed: cpus_per_run > 0, gpus_per_run >= 0")


def _task(fn: Callable[[Any], Any], arg: Any, env: dict[str, str], level: int) -> Any:
    """Body of every Ray task: the driver's ABLATE_* variables and log level, then ``fn(arg)``."""
    setup_worker(env, level)
    return fn(arg)


@LAUNCHERS.register("ray")
class RayLauncher(Launcher):
    """Ray tasks sized by ``cpus_per_run``/``gpus_per_run``; a private instance is stopped at the end."""

    name = "ray"
    runs_here = False
    config_class = RayLauncherConfig
    cfg: RayLauncherConfig

    def check(self) -> None:
        require("ray", "ray", "pip install ray")

    def _map(self, fn: Callable[[Any], Any], args: list, label: Callable[[Any, Any], str], runs: bool = True) -> list:
        import ray

        c = self.cfg
        started = not ray.is_initialized()
        if started:
            init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if c.address:
                init["address"] = c.address
            else:  # a private instance sized so that `workers` runs fit at once
                init["num_cpus"] = max(1, int(c.workers * c.cpus_per_run))
            ray.init(**init)
        try:
            env = capture_env()
            remote = ray.remote(num_cpus=c.cpus_per_run, num_gpus=c.gpus_per_run, max_retries=0)(_task)
            refs = {remote.remote(fn, a, env, log.getEffectiveLevel()): a for a in args}
            out, pending = [], list(refs)
            tally = Tally(len(args), parallel=c.workers)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    result = ray.get(ref)
                    tally.finished(result.get("seconds") if isinstance(result, dict) else None)
                    eta = f"  {tally.eta()}" if runs else ""  # a study worker's trials: in its own lines
                    log.info("[%d/%d] %s%s", tally.done, len(args), label(refs[ref], result), eta)
                    out.append(result)
            return out
        finally:
            if started:
                ray.shutdown()

    def launch(self, runs: list["PlannedRun"]) -> list[dict]:
        self.check()
        if not runs:
            return []
        recs = self._map(run_one, [r.plan for r in runs],
                         lambda plan, rec: f"run {plan.key} {rec['status'] if rec else 'skipped'}")
        return [r for r in recs if r]

    def work_study(self, job: "StudyJob", workers: int) -> list[dict]:
        from ablate.sweep.worker import work

        self.check()
        per_worker = self._map(work, [job.for_worker(i) for i in range(workers)],
                               lambda j, recs: f"study worker {j.worker}: {len(recs)} trials", runs=False)
        return [r for recs in per_worker for r in recs]
