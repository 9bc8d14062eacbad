"""Tune with Optuna: plan a study, create it once, top it up, let the launcher's workers work it.

``tune(spec, extra)`` is what ``ablate tune NAME`` (and ``ablate sweep NAME`` for a
``kind: optuna`` file) runs:

1. plan: every bounding value of the search space is composed and validated like a run, the
   launcher and storage are checked; bad input is a one-line ValueError before any compute;
2. create the study in this process (``create_study(load_if_exists=True)``): workers racing to
   create it would collide (PostgreSQL: ``DuplicateObject`` on Optuna's enum types);
3. reconcile: a RUNNING trial whose worker is gone (killed, pre-empted without notice) is marked
   superseded and its values re-enqueued, so its run resumes from its checkpoint; then exactly
   ``n_trials - counted`` empty trials are enqueued for the workers to claim;
4. start the workers (``ablate/sweep/worker.py``) through the launcher and print the outcome.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from ablate.errors import ConfigError
from ablate.track.manifest import SweepManifest
from ablate.sweep.storage import open_storage, optuna_cli_command, redact, resolve_storage_url
from ablate.sweep.study_spec import StudySpec
from ablate.sweep.worker import SLOT, SUPERSEDED, StudyJob, make_pruner, make_sampler

log = logging.getLogger("ablate")

__all__ = ["StudyJob", "plan_study", "create_study", "reconcile", "tune", "describe"]


def plan_study(spec: StudySpec, extra: list[str] | tuple = ()) -> tuple[StudyJob, dict]:
    """Validate the search space's bounding runs; return the workers' job and one run config."""
    from ablate.config import compose
    from ablate.train.run import prepare

    config = None
    for overrides in spec.corner_overrides(extra):
        try:
            plan = prepare(compose(overrides))
        except ConfigError as exc:
            raise ConfigError(f"sweep {spec.name!r}, search value in [{' '.join(overrides)}]: {exc}") from None
        if plan.trainer.devices > 1:  # a trial's pruner lives in its worker: one process per trial
            raise ConfigError(f"sweep {spec.name!r}: trainer.devices={plan.trainer.devices} in an Optuna study; "
                              "allowed: trainer.devices=1 (study trials run as one process each)")
        config = config or plan.config
    sweep_dir = Path(config["paths"]["sweeps_dir"]) / spec.name
    env = {k: v for k, v in os.environ.items() if k.startswith("ABLATE_")}
    job = StudyJob(spec=spec, storage=resolve_storage_url(spec.storage, sweep_dir), sweep_dir=str(sweep_dir.resolve()), extra=list(extra),
                   epochs=config["trainer"]["epochs"], env=env)
    make_sampler(spec, 0)                       # bad sampler/pruner options fail here, not in a job
    make_pruner(spec, job.epochs)
    return job, config


def create_study(job: StudyJob):
    """Create (or load) the study -> ``(study, storage)``; a bad storage is a one-line ValueError."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(job.storage)
    spec = job.spec
    try:
        study = optuna.create_study(study_name=spec.resolved_study_name, storage=storage,
                                    directions=spec.directions, load_if_exists=True)
    except ValueError as exc:  # e.g. an existing study with other directions
        raise ConfigError(f"study {spec.resolved_study_name!r} in {redact(job.storage)!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a DB that refuses us is bad input, not a crash
        raise ConfigError(f"cannot use storage {redact(job.storage)!r}: {type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0]}") from None
    if [d.name.lower() for d in study.directions] != spec.directions:
        raise ConfigError(f"study {study.study_name!r} exists with directions "
                         f"{[d.name.lower() for d in study.directions]}; the sweep asks {spec.directions}")
    for key, value in (("sweep", spec.name), ("objectives", spec.objectives), ("n_trials", spec.n_trials)):
        study.set_user_attr(key, value)
    if study.metric_names != list(spec.objectives):  # the dashboard's and plots' axis names, not "Objective 0"
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objectives))
    return study, storage


def worker_alive(worker: Optional[dict]) -> bool:
    """Is the process that claimed a trial still there? (SLURM job, else pid on this host.)"""
    if not worker:
        return False
    job = worker.get("slurm_job")
    if job and shutil.which("squeue"):
        out = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%T"], capture_output=True, text=True, timeout=30)
        return out.returncode == 0 and bool(out.stdout.strip())
    from ablate.track.lock import process_alive

    return process_alive(worker.get("host"), worker.get("pid"))


def counted(trials) -> list:
    """The trials that count towards ``n_trials`` (a superseded trial lives on in its copy)."""
    return [t for t in trials if not t.user_attrs.get(SUPERSEDED)]


# A worker marks a trial RUNNING, then writes who it is (two storage writes): a RUNNING trial
# that names no worker yet and started this recently is being claimed right now, not dead.
CLAIM_GRACE_S = 60.0


def _being_claimed(trial, now: float) -> bool:
    start = trial.datetime_start
    return "worker" not in trial.user_attrs and start is not None and now - start.timestamp() < CLAIM_GRACE_S


def reconcile(study, storage, n_trials: int) -> dict:
    """Re-enqueue trials of dead workers, then enqueue what ``n_trials`` still needs."""
    from optuna.trial import TrialState

    from optuna.exceptions import UpdateFinishedTrialError

    revived = 0
    study_id = storage.get_study_id_from_name(study.study_name)
    now = time.time()
    # Read through the storage, not the Study's cache: a trial another process claimed has its
    # values there (an RDB cache may not), and is not this process's to `tell`.
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if not t.user_attrs.get(SUPERSEDED) and (worker_alive(t.user_attrs.get("worker")) or _being_claimed(t, now)):
            continue
        tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        if not t.user_attrs.get(SUPERSEDED):
            storage.set_trial_user_attr(tid, SUPERSEDED, True)
            study.enqueue_trial(dict(t.params), user_attrs={"resumes": t.number, SLOT: t.user_attrs.get(SLOT)})
            revived += 1
        try:
            storage.set_trial_state_values(tid, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass
    live = counted(storage.get_all_trials(study_id, deepcopy=False))
    taken = {t.user_attrs[SLOT] for t in live if t.user_attrs.get(SLOT) is not None}
    unslotted = sum(1 for t in live if t.user_attrs.get(SLOT) is None)  # trials of an older ablate
    free = [s for s in range(n_trials) if s not in taken][:max(0, n_trials - len(taken) - unslotted)]
    for slot in free:  # a launch racing this one may enqueue the same slot: the claim sorts it out
        study.enqueue_trial({}, user_attrs={SLOT: slot})
    if revived or free:
        log.info("study %s: %d trials re-enqueued from dead workers, %d new trials enqueued", study.study_name, revived, len(free))
    return {"revived": revived, "added": len(free), "counted": len(live) + len(free)}


def write_study_manifest(job: StudyJob, config: dict) -> Path:
    """What `ablate status` needs to find the study and its runs."""
    spec = job.spec
    return SweepManifest(
        spec.name, "optuna", table=spec.table, study_name=spec.resolved_study_name, storage=redact(job.storage),
        n_trials=spec.n_trials, objectives=list(spec.objectives), directions=list(spec.directions),
        extra_overrides=list(job.extra), runs_dir=str(Path(config["paths"]["runs_dir"]).resolve()),
    ).write(config["paths"]["sweeps_dir"])


def tune(spec: StudySpec, extra: list[str] | tuple = (), *, workers: Optional[int] = None,
         dry_run: bool = False) -> list[str]:
    """Plan, create, reconcile and work a study; returns the summary lines it printed."""
    from ablate.sweep.launchers import get_launcher

    job, config = plan_study(spec, extra)
    launcher = get_launcher(config["launcher"])
    n_workers = workers or spec.workers or launcher.cfg.workers
    if dry_run:
        lines = [f"study {spec.resolved_study_name}: {spec.n_trials} trials, {n_workers} workers ({launcher.name}), "
                 f"sampler {spec.resolved_sampler}, pruner {spec.pruner}, storage {redact(job.storage)}",
                 *(f"  {p.key}: {p.type} {list(p.choices) if p.choices else (p.low, p.high)}" for p in spec.params),
                 f"  optuna CLI: {optuna_cli_command(spec.resolved_study_name, job.storage)}"]
        print("\n".join(lines))
        return lines
    launcher.check()
    if launcher.runs_here:  # trials run on this machine: a device it lacks is bad input now
        from ablate.train.engine import TrainerConfig

        TrainerConfig(**config["trainer"]).torch_device()
    study, storage = create_study(job)
    reconcile(study, storage, spec.n_trials)
    write_study_manifest(job, config)
    log.info("study %s: %d trials wanted, %d workers, launcher %s", study.study_name, spec.n_trials, n_workers, launcher.name)
    from optuna.trial import TrialState

    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        launcher.work_study(dataclasses.replace(job, parallel=n_workers, launched_at=time.time()), n_workers)
    else:
        log.info("study %s already holds %d trials; no worker to start", study.study_name, spec.n_trials)
    lines = [*describe(study, spec.objectives, spec.n_trials),
             f"  optuna CLI: {optuna_cli_command(study.study_name, job.storage)}"]
    print("\n".join(lines))
    return lines


def describe(study, objectives: list[str], n_trials: int) -> list[str]:
    """Trial counts by state and the best trial (one objective) or the Pareto front (several)."""
    trials = study.get_trials(deepcopy=False)
    live = counted(trials)
    states = Counter(t.state.name.lower() for t in live)
    lines = [f"study {study.study_name}: {len(live)}/{n_trials} trials "
             + " ".join(f"{k}={v}" for k, v in sorted(states.items()))
             + (f" (+{len(trials) - len(live)} superseded)" if len(trials) > len(live) else "")]
    best = best_trials(study)
    label = "best" if len(objectives) == 1 else f"Pareto front ({len(best)})"
    for t in best:
        vals = ", ".join(f"{m}={v:.4g}" for m, v in zip(objectives, t.values))
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        lines.append(f"  {label}: trial {t.number} {vals}  {params}  run {t.user_attrs.get('run_key')}")
    return lines


def best_trials(study) -> list:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    return [study.best_trial] if len(study.directions) == 1 else sorted(study.best_trials, key=lambda t: t.number)
