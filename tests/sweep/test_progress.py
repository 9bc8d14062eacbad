"""Sweeps and studies say ``[k/N]`` and an ETA: the mean duration of the runs this launch
finished, times the runs left, over the runs at once; ``ablate status`` (and ``--watch``) too."""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from ablate.sweep.progress import Tally, eta_seconds, eta_text, finished_since, format_duration, trial_durations
from tests.helpers import TINY


@pytest.mark.parametrize("durations, remaining, parallel, expected", [
    ([10, 20, 30], 6, 1, 120.0),      # mean 20 s x 6 runs
    ([10, 20, 30], 6, 2, 60.0),       # two at a time
    ([10, 20, 30], 1, 4, 20.0),       # the last run takes a whole run, however many workers
    ([10, 20, 30], 3, 8, 20.0),       # never divided by more workers than runs left
    ([], 5, 1, None),                 # nothing finished yet: no estimate
    ([5, None, float("nan")], 2, 1, 10.0),  # runs without a duration do not count
    ([10], 0, 1, 0.0),
])
def test_eta_from_given_durations(durations, remaining, parallel, expected):
    assert eta_seconds(durations, remaining, parallel) == expected


@pytest.mark.parametrize("seconds, text", [
    (None, "?"), (0.4, "0s"), (45, "45s"), (130, "2m10s"), (3599.6, "1h00m"), (3900, "1h05m"), (2 * 86400 + 3 * 3600, "2d03h"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_tally_counts_runs_and_estimates_from_those_it_timed():
    tally = Tally(15, parallel=2)
    assert tally.eta() == "ETA ?"
    tally.finished(60.0)
    tally.finished(None)  # skipped (another process held it): counted, not timed
    tally.finished(70.0)
    assert tally.done == 3 and tally.eta() == "ETA 6m30s"  # 65 s x 12 left / 2
    for _ in range(12):
        tally.finished(65.0)
    assert tally.eta() == "done"


def test_finished_since_and_trial_durations():
    now = time.time()
    stamp = datetime.fromtimestamp(now, timezone.utc)
    assert finished_since(stamp.isoformat(), now - 1) and not finished_since(stamp.isoformat(), now + 1)
    assert finished_since(stamp.isoformat(), None) and not finished_since(None, None)

    class Trial:
        def __init__(self, start, seconds):
            self.datetime_start = start
            self.datetime_complete = None if seconds is None else start + timedelta(seconds=seconds)

    start = datetime.now()
    trials = [Trial(start, 30), Trial(start, 10), Trial(start, None), Trial(start - timedelta(hours=1), 99)]
    assert trial_durations(trials, since=start.timestamp() - 1) == [30, 10]
    assert trial_durations(trials, since=None) == [30, 10, 99]


def _record(key: str, seconds: float, finished: datetime) -> dict:
    return {"run_key": key, "status": "completed", "top1": 50.0, "seconds": seconds,
            "finished_at": finished.isoformat(timespec="seconds")}


def test_status_and_watch_show_the_eta_of_this_launch(home, capsys):
    from ablate.cli import main
    from ablate.sweep.status import sweep_status, watch
    from ablate.track.lock import RunLock
    from ablate.track.manifest import SweepManifest
    from ablate.track.store import RunDirStore

    keys = [f"run{i}" for i in range(6)]
    runs = home / "outputs" / "runs"
    manifest = SweepManifest("six", "grid", runs_dir=str(runs),  # what a launch records
                             runs=[{"run_key": k, "overrides": [], "config": {}} for k in keys]
                             ).write(home / "outputs" / "sweeps")
    store = RunDirStore(runs)
    now = datetime.now(timezone.utc) + timedelta(seconds=2)
    store.put(_record(keys[0], 100.0, now))
    store.put(_record(keys[1], 200.0, now))
    store.put(_record(keys[2], 9000.0, now - timedelta(days=1)))  # an earlier launch's run: not timed
    with RunLock(runs / f".{keys[3]}.lock"), RunLock(runs / f".{keys[4]}.lock"):  # two runs at once
        status = sweep_status("six")
        # 6 runs, 3 done, 3 left; mean of this launch's 100 s and 200 s; 2 running at once
        assert status["eta"] == "ETA 3m45s" == f"ETA {format_duration(150.0 * 3 / 2)}"
        capsys.readouterr()
        assert main(["status", "six"]) == 0
        out = capsys.readouterr().out
        assert "completed 3  running 2" in out and "[3/6] ETA 3m45s" in out
        watch("six", interval=0.01, max_polls=1)
        bar = [ln for ln in capsys.readouterr().out.splitlines() if "━" in ln]
        assert bar and "3/6" in bar[-1] and bar[-1].endswith("ETA 3m45s"), bar
    future = time.time() + 3600  # a launch after every finished run: nothing timed yet
    os.utime(manifest, (future, future))
    assert sweep_status("six")["eta"] == "ETA ?"


@pytest.mark.slow
def test_local_launcher_lines_say_k_of_n_and_the_eta_from_runs_done(home, tmp_path, caplog):
    from ablate.cli import main
    from ablate.track.store import RunDirStore

    sweep = tmp_path / "three.yaml"
    sweep.write_text("grid: {attention: [none]}\nseeds: [0, 1, 2]\n")
    with caplog.at_level(logging.INFO, logger="ablate"):
        assert main(["sweep", str(sweep), "--no-table", *TINY]) == 0
    lines = [r.getMessage() for r in caplog.records if re.match(r"\[\d/3\] run ", r.getMessage())]
    assert [ln[:5] for ln in lines] == ["[1/3]", "[2/3]", "[3/3]"] and lines[0].endswith("ETA ?")
    store = RunDirStore(home / "outputs" / "runs")
    seconds = [store.get(ln.split()[2].rstrip(":"))["seconds"] for ln in lines]
    # before run k: the runs done so far, the k-th included in those left
    assert lines[1].endswith(eta_text(seconds[:1], 2)) and lines[2].endswith(eta_text(seconds[:2], 1))


def test_study_worker_line_counts_finished_trials_and_times_this_launchs(tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from ablate.sweep import load_sweep
    from ablate.sweep.worker import StudyJob, progress_line

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    launched = datetime.now() - timedelta(minutes=10)
    dist = {"lr": FloatDistribution(0.001, 0.1)}
    for minutes_ago, seconds, state in ((5, 10, TrialState.COMPLETE), (4, 30, TrialState.PRUNED),
                                        (60, 500, TrialState.COMPLETE)):  # the last: an earlier launch's
        trial = create_trial(params={"lr": 0.01}, distributions=dist, state=state,
                             value=1.0 if state == TrialState.COMPLETE else None)
        trial.datetime_start = datetime.now() - timedelta(minutes=minutes_ago)
        trial.datetime_complete = trial.datetime_start + timedelta(seconds=seconds)
        study.add_trial(trial)
    study.enqueue_trial({"lr": 0.02})  # waiting: not finished
    spec = dataclasses.replace(load_sweep("tune_reduction"), n_trials=7)
    job = StudyJob(spec=spec, storage="", parallel=2, launched_at=launched.timestamp())
    line = progress_line(storage, study, job, 1, {"run_key": "abc123", "status": "pruned"})
    # 3 of 7 finished; this launch timed 10 s and 30 s: mean 20 s x 4 left / 2 workers
    assert line == "[3/7] trial 1: run abc123 pruned  ETA 40s"
