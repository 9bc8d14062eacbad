"""A study worker: claim a waiting trial, train it as an ordinary run, tell Optuna, repeat.

The parent (``ablate/sweep/study.py``) creates the study once and enqueues one waiting trial per
free budget *slot* (``slot`` 0 .. n_trials - 1). Workers (processes or SLURM array tasks, any
number) only ever *claim* those trials, with the storage's compare-and-set from WAITING to
RUNNING that ``Study.ask`` uses, and never create one; a claimed trial whose slot a lower-
numbered live trial already holds is *surplus* (concurrent launches each enqueued that slot):
it is set aside, not trained. So no race, of workers or of launches, over-shoots ``n_trials``.

Per trial: the sampler fills in the values (``suggest_*``; a re-enqueued trial gets its fixed
values back), they become Hydra overrides, and ``ablate.train.run.run`` trains the run with an
``on_epoch_end`` that reports validation accuracy to the pruner (``Pruned`` -> status
``pruned``). A run already finished under the same run key is reused, not re-trained. A
pre-empted run (SIGTERM/SIGUSR1) marks its trial ``superseded`` and re-enqueues the same values,
so whoever claims it next resumes the run from its checkpoint; the study still counts it once.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ablate.errors import ConfigError
from ablate.sweep.samplers import PRUNERS, SAMPLERS
from ablate.sweep.study_spec import Param, StudySpec

log = logging.getLogger("ablate")

SUPERSEDED = "superseded"   # trial user attr: replaced by a re-enqueued copy, or surplus (not counted)
SLOT = "slot"               # trial user attr: the budget slot it fills (one trained trial per slot)
SURPLUS = "surplus"         # trial user attr: a duplicate of its slot, set aside untrained
# Per-epoch value reported to the pruner for a single objective (must point the study's way).
EPOCH_METRIC = {"top1": "val_top1", "top5": "val_top5", "loss": "val_loss"}


@dataclass
class StudyJob:
    """Everything a worker needs; picklable, so it travels to processes and SLURM jobs."""

    spec: StudySpec
    storage: str                                # resolved URL (ablate.sweep.storage)
    sweep_dir: str = ""                         # paths.sweeps_dir/<sweep>: journal, submitit logs
    extra: list[str] = field(default_factory=list)   # command-line overrides for every trial
    epochs: int = 1                             # trainer.epochs (Hyperband's max resource)
    env: dict[str, str] = field(default_factory=dict)  # ABLATE_* variables to set in the worker
    worker: int = 0
    parallel: int = 1                           # workers of this launch (for the ETA)
    launched_at: Optional[float] = None         # Unix time of this launch: trials since count for the ETA

    def for_worker(self, index: int) -> "StudyJob":
        return dataclasses.replace(self, worker=index)


def make_sampler(spec: StudySpec, seed: int):
    kind = spec.resolved_sampler
    try:
        return SAMPLERS.get(kind)(seed, **dict(spec.sampler_options))
    except TypeError as exc:
        raise ConfigError(f"sweep {spec.name!r}: sampler_options for {kind}: {exc}") from None


def make_pruner(spec: StudySpec, epochs: int):
    try:
        return PRUNERS.get(spec.pruner)(epochs, **dict(spec.pruner_options))
    except TypeError as exc:
        raise ConfigError(f"sweep {spec.name!r}: pruner_options for {spec.pruner}: {exc}") from None


def trial_seed(spec: StudySpec, number: int) -> int:
    """The sampler's seed for trial ``number``: distinct per trial, whoever claims it (workers or
    concurrent launches never replay each other's guesses), and the same for the same trial."""
    return (spec.seed * 1_000_003 + number * 7_919) % 2**31


def identity() -> dict:
    """Who is working a trial; the parent uses it to tell a dead worker's trial from a live one."""
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": job}


def claim(study, storage):
    """A waiting trial of ``study``, now RUNNING and ours; None when none is left."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    # Read through the study (not the raw storage): on an RDB storage Optuna wraps it in a cache
    # that must have seen a trial before the trial can take parameters.
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                continue  # another worker won this one
        except UpdateFinishedTrialError:
            continue
        if _slot_taken(storage, study_id, frozen):
            storage.set_trial_user_attr(trial_id, SUPERSEDED, True)
            storage.set_trial_user_attr(trial_id, SURPLUS, True)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            continue
        trial = optuna.Trial(study, trial_id)
        try:
            trial.set_user_attr("worker", identity())
        except UpdateFinishedTrialError:  # ended meanwhile by a launch that judged it dead
            continue
        return trial
    return None


def _slot_taken(storage, study_id: int, frozen) -> bool:
    """Does a lower-numbered trial that still counts hold this trial's budget slot?"""
    slot = frozen.user_attrs.get(SLOT)
    if slot is None:
        return False
    return any(t.number < frozen.number and t.user_attrs.get(SLOT) == slot and not t.user_attrs.get(SUPERSEDED)
               for t in storage.get_all_trials(study_id, deepcopy=False))


def suggest(trial, p: Param) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(p.key, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.key, float(p.low), float(p.high), step=p.step, log=p.log)


def work(job: StudyJob) -> list[dict]:
    """Run trials until the study has no waiting trial left (or a stop signal arrives)."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError

    from ablate.sweep.storage import open_storage
    from ablate.train.engine import stop_requested

    for k, v in job.env.items():
        os.environ.setdefault(k, v)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(job.storage)
    sampler = make_sampler(job.spec, trial_seed(job.spec, 0))
    pruner = make_pruner(job.spec, job.epochs)
    records: list[dict] = []
    while not stop_requested():
        # A fresh Study object per trial: its trial cache is then this moment's, as in Study.ask.
        study = optuna.load_study(study_name=job.spec.resolved_study_name, storage=storage,
                                  sampler=sampler, pruner=pruner)
        trial = claim(study, storage)
        if trial is None:
            break
        study.sampler = make_sampler(job.spec, trial_seed(job.spec, trial.number))
        try:
            rec = run_trial(study, trial, job)
        except UpdateFinishedTrialError:  # another launch judged this trial's worker dead and ended it
            log.warning("trial %d was ended by another launch (which enqueued a copy of it); going on "
                        "with the next trial", trial.number)
            continue
        log.info("%s", progress_line(storage, study, job, trial.number, rec))
        if rec is not None:
            records.append(rec)
            if rec["status"] == "preempted":
                break
    log.info("worker %d: %d trials, study done or stopped", job.worker, len(records))
    return records


def progress_line(storage, study, job: StudyJob, number: int, rec: Optional[dict]) -> str:
    """``[k/N] trial T: run KEY STATUS  ETA 2m10s``: k trials of the study's N are finished; the
    ETA from the trials this launch finished, ``job.parallel`` at a time."""
    from optuna.trial import TrialState

    from ablate.sweep.progress import eta_text, trial_durations

    n = job.spec.n_trials
    what = f"run {rec['run_key']} {rec['status']}" if rec is not None else "failed before training"
    try:
        study_id = storage.get_study_id_from_name(study.study_name)
        trials = [t for t in storage.get_all_trials(study_id, deepcopy=False) if not t.user_attrs.get(SUPERSEDED)]
    except Exception:  # noqa: BLE001 - the storage is briefly down: the line, not the worker, loses
        return f"[?/{n}] trial {number}: {what}"
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    return (f"[{len(finished)}/{n}] trial {number}: {what}  "
            f"{eta_text(trial_durations(finished, job.launched_at), n - len(finished), job.parallel)}")


def run_trial(study, trial, job: StudyJob) -> Optional[dict]:
    """Train one trial as an ordinary run and tell the study its outcome."""
    from optuna.trial import TrialState

    from ablate.config import compose
    from ablate.train.engine import Pruned
    from ablate.train.run import prepare

    spec = job.spec
    values = {p.key: suggest(trial, p) for p in spec.params}
    overrides = spec.trial_overrides(values, trial.number, job.extra)
    try:
        plan = prepare(compose(overrides))
    except ConfigError as exc:  # a combination the corner check could not foresee
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("message", str(exc))
        study.tell(trial, state=TrialState.FAIL)
        return None
    trial.set_user_attr("run_key", plan.key)
    trial.set_user_attr("run_dir", str(plan.run_dir))   # result.json, metrics.jsonl, checkpoint, W&B run
    metric = EPOCH_METRIC.get(spec.objectives[0])
    prune = spec.pruner != "none" and metric is not None

    def on_epoch_end(epoch: int, row: dict) -> None:
        if not prune:
            return
        try:  # the study's storage, not the run: an outage costs this epoch's pruning, not the run
            trial.report(row[metric], epoch)
            # after the last epoch there is nothing left to save: the trial is complete
            stop = epoch + 1 < plan.trainer.epochs and trial.should_prune()
        except Exception as exc:  # noqa: BLE001 - e.g. OperationalError: the database is down
            log.warning("trial %d: study storage unreachable after epoch %d (%s); training on without pruning",
                        trial.number, epoch + 1, (str(exc).splitlines() or [type(exc).__name__])[0])
            return
        if stop:
            raise Pruned(f"trial {trial.number} pruned by the {spec.pruner} pruner after epoch {epoch + 1} "
                         f"({metric} {row[metric]:.2f})")

    log.info("trial %d: run %s %s", trial.number, plan.key, " ".join(f"{k}={v}" for k, v in values.items()))
    rec = _run_when_free(plan, on_epoch_end, spec.name)
    _tell(study, trial, rec, values, spec)
    return rec


def _tell(study, trial, rec, values: dict, spec: StudySpec, attempts: int = 4, wait_s: float = 5.0) -> None:
    """Tell the study the run's outcome, retrying a storage that is briefly down. If it stays
    down the trial is left RUNNING: the next launch finds its worker gone, re-enqueues its values,
    and the copy reuses the finished run (the run's record, not the study, is the truth)."""
    from optuna.trial import TrialState

    status = rec["status"]
    for attempt in range(attempts):
        try:
            trial.set_user_attr("status", status)
            if status == "completed" and all(rec.get(m) is not None for m in spec.objectives):
                study.tell(trial, [float(rec[m]) for m in spec.objectives])
            elif status == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
            elif status == "preempted":
                # Order matters if this process dies midway: marked first, so it is never counted twice.
                trial.set_user_attr(SUPERSEDED, True)
                study.enqueue_trial(values, user_attrs={"resumes": trial.number, SLOT: trial.user_attrs.get(SLOT)})
                study.tell(trial, state=TrialState.FAIL)
            else:
                trial.set_user_attr("message", rec.get("message", ""))
                study.tell(trial, state=TrialState.FAIL)
            return
        except Exception as exc:  # noqa: BLE001 - the storage, not the run
            if attempt + 1 == attempts:
                log.error("trial %d: study storage unreachable (%s); the run %s stands (%s), a relaunch records it",
                          trial.number, (str(exc).splitlines() or [type(exc).__name__])[0], rec["run_key"], status)
                return
            time.sleep(wait_s)


def _run_when_free(plan, on_epoch_end, study: str) -> dict:
    """``run(plan)``; if another worker is training the same run key, wait and reuse its result."""
    from ablate.train.engine import stop_requested
    from ablate.track.lock import RunLocked
    from ablate.train.run import run

    while True:
        try:
            return run(plan, on_epoch_end=on_epoch_end, study=study)
        except RunLocked:
            if stop_requested():
                return {"run_key": plan.key, "status": "preempted", "message": "stopped while waiting"}
            time.sleep(1.0)
