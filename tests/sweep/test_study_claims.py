"""Concurrent launches of one study: a trial being claimed right now is not a dead worker's,
and a worker whose trial another launch ended goes on with the next one."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import optuna
import pytest
from optuna.trial import TrialState

from ablate.sweep import study as study_mod
from ablate.sweep import worker as worker_mod
from ablate.sweep.worker import SLOT, SUPERSEDED


@pytest.fixture
def running():
    """An in-memory study with one trial RUNNING that names no worker yet (claimed this moment)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.enqueue_trial({}, user_attrs={SLOT: 0})
    (frozen,) = study.get_trials(deepcopy=False)
    tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), frozen.number)
    assert storage.set_trial_state_values(tid, state=TrialState.RUNNING)
    return study, storage, tid


def test_a_trial_claimed_this_moment_is_left_to_its_worker(running):
    study, storage, tid = running
    got = study_mod.reconcile(study, storage, n_trials=1)
    assert got == {"revived": 0, "added": 0, "counted": 1}
    trial = storage.get_trial(tid)
    assert trial.state == TrialState.RUNNING and SUPERSEDED not in trial.user_attrs


def test_a_trial_that_never_named_its_worker_is_revived_after_the_grace(running, monkeypatch):
    study, storage, tid = running
    later = datetime.now() + timedelta(seconds=study_mod.CLAIM_GRACE_S + 1)
    monkeypatch.setattr(study_mod.time, "time", lambda: later.timestamp())
    got = study_mod.reconcile(study, storage, n_trials=1)
    assert got["revived"] == 1
    trial = storage.get_trial(tid)
    assert trial.state == TrialState.FAIL and trial.user_attrs[SUPERSEDED]
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert [t.user_attrs.get("resumes") for t in waiting] == [trial.number]


def test_a_worker_whose_trial_another_launch_ended_goes_on(monkeypatch):
    """The race seen with three launches on one journal: between a worker's claim and its first
    write, another launch ended the trial. The worker skips it and trains the next one."""
    from ablate.sweep import load_sweep

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="race", storage=storage, direction="maximize")
    for slot in range(3):
        study.enqueue_trial({}, user_attrs={SLOT: slot})
    spec = dataclasses.replace(load_sweep("tune_reduction"), study_name="race", n_trials=3)
    job = worker_mod.StudyJob(spec=spec, storage="", parallel=1)
    monkeypatch.setattr("ablate.sweep.storage.open_storage", lambda url: storage)
    ran = []

    def run_trial(study, trial, job):
        if trial.number == 0:  # ended by another launch under this worker
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            trial.set_user_attr("run_key", "k0")  # raises UpdateFinishedTrialError, as run_trial's first write would
        ran.append(trial.number)
        study.tell(trial, 1.0)
        return {"run_key": f"k{trial.number}", "status": "completed"}

    monkeypatch.setattr(worker_mod, "run_trial", run_trial)
    records = worker_mod.work(job)
    assert ran == [1, 2] and [r["run_key"] for r in records] == ["k1", "k2"]

