"""The ``slurm`` launcher: grid runs as a submitit job array, study workers as array tasks.

Grids: one array task per run, or, with ``runs_per_gpu=K``, one task per ``K x gpus_per_node``
runs that the task packs onto its node (``ablate/sweep/packing.py``). Studies: ``workers``
array tasks, each a worker claiming trials from the shared storage (``ablate/sweep/worker.py``).

Pre-emption and time limits: submitit asks SLURM for ``--signal=USR1@signal_delay_s``. The run
turns SIGUSR1/SIGTERM into a clean stop at the next step (``ablate.train.engine``), keeps its
last epoch checkpoint and records ``preempted``; the task then hands over to submitit's own
handler, which calls ``checkpoint()`` below (a ``DelayedSubmission`` of the same task) and
requeues the job. The requeued task skips finished runs by run key and resumes the partial one
from its checkpoint. submitit is imported inside methods: it is an optional dependency.
"""
from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ablate.errors import ConfigError
from ablate.io import read_json, write_json
from ablate.sweep.launchers._base import LAUNCHERS, Launcher, PackingConfig, capture_env, require, setup_worker

if TYPE_CHECKING:
    from ablate.sweep.runner import PlannedRun
    from ablate.sweep.worker import StudyJob

log = logging.getLogger("ablate")
LIVE = ("UNKNOWN", "PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "RESIZING", "SUSPENDED")
PREEMPT_SIGNAL = "USR1"  # SLURM's warning signal for ablate's jobs (engine: SIGUSR1 -> clean stop)


@dataclass
class SlurmLauncherConfig(PackingConfig):
    """conf/launcher/slurm.yaml documents each key (packing keys: K runs per GPU inside a task)."""

    name: str = "slurm"
    workers: int = 2
    partition: Optional[str] = None
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: Optional[float] = 4
    timeout_min: int = 60
    account: Optional[str] = None
    qos: Optional[str] = None
    array_parallelism: int = 64
    setup: list[str] = field(default_factory=list)
    signal_delay_s: int = 90
    max_num_timeout: int = 3
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    folder: Optional[str] = None
    wait: bool = True
    poll_s: float = 2.0
    nodes: int = 1            # nodes per run: a run of trainer.devices x nodes processes (tasks)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise ConfigError(f"launcher.nodes={self.nodes!r}; allowed: an integer >= 1")


def partitions() -> list[str]:
    """The cluster's partitions (``sinfo``); the default one loses its ``*``."""
    if shutil.which("sinfo") is None:
        raise ConfigError("launcher slurm: sinfo not found; allowed: a machine with SLURM client tools (and SLURM_CONF set)")
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ConfigError(f"launcher slurm: sinfo failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return sorted({p.strip().rstrip("*") for p in out.stdout.split() if p.strip()})


def _call_job(fn, arg):
    """Run ``fn(arg)`` in a submitit job; on a pre-emption stop, let submitit requeue the job."""
    previous = signal.getsignal(signal.SIGUSR1)  # submitit's checkpoint_and_try_requeue
    result = fn(arg)
    from ablate.train.engine import stop_requested

    log.debug("job done: stop=%s previous handler=%r", stop_requested(), previous)

    if stop_requested() and callable(previous) and "submitit" in getattr(previous, "__module__", ""):
        log.warning("stopped by a signal: checkpointed; asking submitit to requeue this job")
        try:
            previous(signal.SIGUSR1, None)  # calls checkpoint(), `scontrol requeue`, exits
        except Exception as exc:  # noqa: BLE001 - e.g. a cancelled job cannot be requeued
            log.warning("not requeued: %s", exc)
    return result


class _Task:
    """Base of the picklable job callables: environment, ``checkpoint`` for requeueing."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        # Same callable, same arguments: finished runs are skipped, a partial one resumes.
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def _setenv(self) -> None:
        setup_worker(self.env)  # the job's stderr (submitit's *_log.err) gets ablate's progress lines


class RunTask(_Task):
    """One array task of a grid: its runs (one, or a packed chunk run K per GPU). A job of several
    tasks trains its one run as that many processes: each task is a rank (torch's rendezvous
    from SLURM's environment, ``ablate.train.distributed.export_slurm_env``)."""

    def __init__(self, env: dict[str, str], cfg: dict) -> None:
        super().__init__(env)
        self.cfg = cfg

    def __call__(self, plans: list) -> list[dict]:
        self._setenv()
        from ablate.sweep.launchers import get_launcher
        from ablate.sweep.runner import PlannedRun
        from ablate.train.distributed import export_slurm_env

        export_slurm_env()  # a run of several processes: this task is one of its ranks

        runs = [PlannedRun([], p) for p in plans]
        packed = len(plans) > 1 and self.cfg.get("runs_per_gpu")  # a chunk: K runs per GPU of this node
        launcher = get_launcher({"name": "parallel", **self.cfg} if packed else {"name": "local"})
        return _call_job(launcher.launch, runs)


class WorkerTask(_Task):
    """One array task of a study: a worker claiming trials until none is left."""

    def __call__(self, job: "StudyJob") -> list[dict]:
        self._setenv()
        from ablate.sweep.worker import work

        return _call_job(work, job)


@LAUNCHERS.register("slurm")
class SlurmLauncher(Launcher):
    """Submits through submitit; checks the partition with sinfo before anything is submitted."""

    name = "slurm"
    runs_here = False
    config_class = SlurmLauncherConfig
    cfg: SlurmLauncherConfig

    def check(self) -> None:
        """Fail fast, before anything is submitted: submitit present, partition exists."""
        require("submitit", "slurm", "pip install 'ablate[cluster]'")
        existing = partitions()
        if self.cfg.partition is not None and self.cfg.partition not in existing:
            raise ConfigError(f"SLURM partition {self.cfg.partition!r} does not exist; allowed: {', '.join(existing) or '(none)'}")

    def check_runs(self, runs: list["PlannedRun"]) -> None:
        """One job shape per launch: every run has the same ``trainer.devices`` (tasks per node),
        and a run of several processes gets one GPU per task (``gpus_per_node`` 0 or devices)."""
        super().check_runs(runs)
        devices = sorted({r.plan.trainer.devices for r in runs})
        if len(devices) > 1:
            raise ConfigError(f"launcher slurm: runs with trainer.devices {', '.join(map(str, devices))} in one launch; "
                              "allowed: one value per launch (launch each separately)")
        n = devices[0] if devices else 1
        if n > 1 and self.cfg.gpus_per_node not in (0, n):
            raise ConfigError(f"launcher.gpus_per_node={self.cfg.gpus_per_node} with trainer.devices={n} (one task "
                              f"per device); allowed: {n} (one GPU a task) or 0 (CPU processes)")

    def _executor(self, folder: Path, name: str, tasks_per_node: int = 1, nodes: int = 1):
        import submitit

        c = self.cfg
        ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm", slurm_max_num_timeout=c.max_num_timeout)
        params: dict[str, Any] = {
            "name": name, "timeout_min": c.timeout_min, "cpus_per_task": c.cpus_per_task, "nodes": nodes,
            "tasks_per_node": tasks_per_node, "slurm_array_parallelism": c.array_parallelism,
            # submitit warns with SIGUSR2 by default; ablate's runs stop cleanly on SIGUSR1/SIGTERM.
            # Both sides agree on USR1: SLURM sends it (--signal), submitit's job handler takes it.
            "slurm_setup": [f"export SUBMITIT_PREEMPT_SIGNAL={PREEMPT_SIGNAL}", *c.setup],
            "slurm_additional_parameters": {"signal": f"{PREEMPT_SIGNAL}@{c.signal_delay_s}", **c.additional_parameters},
        }
        if c.gpus_per_node:
            params["gpus_per_node"] = c.gpus_per_node
        if tasks_per_node * nodes > 1:  # the ranks of one run: a task that fails ends the others
            params["slurm_srun_args"] = ["--kill-on-bad-exit=1"]  # (not left waiting at the rendezvous)
        if c.mem_gb:
            params["mem_gb"] = c.mem_gb
        for key, value in (("slurm_partition", c.partition), ("slurm_account", c.account), ("slurm_qos", c.qos)):
            if value:
                params[key] = value
        ex.update_parameters(**params)
        return ex

    def launch(self, runs: list["PlannedRun"]) -> list[dict]:
        self.check()
        if not runs:
            return []
        config = runs[0].plan.config
        sweep = runs[0].plan.sweep or "adhoc"
        sweep_dir = Path(config["paths"]["sweeps_dir"]) / sweep
        per_task = self.cfg.runs_per_gpu * max(1, self.cfg.gpus_per_node) if self.cfg.runs_per_gpu else 1
        chunks = [[r.plan for r in runs[i:i + per_task]] for i in range(0, len(runs), per_task)]
        devices = runs[0].plan.trainer.devices
        ex = self._executor(Path(self.cfg.folder or sweep_dir / "submitit"), f"ablate-{sweep}",
                            tasks_per_node=devices, nodes=self.cfg.nodes)  # one task per process of a run
        task = RunTask(capture_env(), {k: v for k, v in asdict(self.cfg).items() if k in PackingConfig.__dataclass_fields__
                                       and k != "name"})
        jobs = ex.map_array(task, chunks)
        self._record(sweep_dir, jobs, [[p.key for p in chunk] for chunk in chunks], "run")
        log.info("slurm: submitted %d array tasks for %d runs (job %s)", len(jobs), len(runs), jobs[0].job_id.split("_")[0])
        return self._collect(sweep_dir, jobs) if self.cfg.wait else []

    def work_study(self, job: "StudyJob", workers: int) -> list[dict]:
        self.check()
        sweep_dir = Path(job.sweep_dir)
        ex = self._executor(Path(self.cfg.folder or sweep_dir / "submitit"), f"ablate-{job.spec.name}")
        jobs = ex.map_array(WorkerTask(capture_env()), [job.for_worker(i) for i in range(workers)])
        self._record(sweep_dir, jobs, [[] for _ in jobs], "worker")
        log.info("slurm: submitted %d study workers (job %s)", len(jobs), jobs[0].job_id.split("_")[0])
        return self._collect(sweep_dir, jobs) if self.cfg.wait else []

    def _record(self, sweep_dir: Path, jobs: list, keys: list[list[str]], kind: str) -> None:
        """Job ids -> run keys, for `ablate status` (queued = pending in SLURM)."""
        write_json(sweep_dir / "slurm_jobs.json", {"jobs": [
            {"job_id": j.job_id, "kind": kind, "run_keys": k} for j, k in zip(jobs, keys)]})

    def _collect(self, sweep_dir: Path, jobs: list) -> list[dict]:
        """Wait for the jobs (logging SLURM's accounting states as they change); gather records."""
        seen: Optional[Counter] = None
        while True:
            # submitit rate-limits its own sacct polling (states read UNKNOWN for many seconds);
            # one forced sacct call per poll refreshes every job's cached state.
            jobs[0].get_info(mode="force")
            states = Counter(j.state for j in jobs)
            if states != seen:
                log.info("slurm: %s", "  ".join(f"{s} {n}" for s, n in sorted(states.items())))
                seen = states
            if all(j.done() for j in jobs):
                break
            time.sleep(self.cfg.poll_s)
        # Results are in; accounting (sacct) lags a few seconds. Record the states SLURM ends with.
        end = time.time() + 60
        while True:
            jobs[0].get_info(mode="force")  # one sacct call refreshes the cached state of every job
            if not any(j.state.split()[0] in LIVE for j in jobs) or time.time() > end:
                break
            time.sleep(self.cfg.poll_s)
        log.info("slurm: final: %s", "  ".join(f"{s} {n}" for s, n in sorted(Counter(j.state for j in jobs).items())))
        records: list[dict] = []
        for j in jobs:
            try:
                # a run of several tasks: each task returns its list (rank 0 the record, others none)
                records.extend(r for task in j.results() for r in (task or []) if r)
            except Exception as exc:  # noqa: BLE001 - one failed job must not hide the others
                log.error("slurm job %s failed: %s", j.job_id, (str(exc).strip().splitlines() or [""])[-1])
        recorded = {e["job_id"]: e for e in read_json(sweep_dir / "slurm_jobs.json")["jobs"]}
        write_json(sweep_dir / "slurm_jobs.json", {"jobs": [
            {**recorded.get(j.job_id, {"job_id": j.job_id}), "state": j.state} for j in jobs]})
        return records
