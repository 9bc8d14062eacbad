"""Optuna studies end to end on tiny data: workers, pruning, reuse, crash recovery, status."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow

STUDY12 = """\
kind: optuna
overrides: [attention=ca, optim=sgd]   # SGD over this lr range spreads epoch-1 accuracies: the pruner has work
search:
  attention.reduction: {type: categorical, choices: [4, 8, 16]}
  attention.act: [hswish, relu]
  optim.lr: {type: float, low: 0.001, high: 1.0, log: true}
n_trials: 12
pruner: median
"""


def load_study(home: Path, name: str):
    import optuna

    from ablate.sweep.storage import open_storage

    storage = open_storage(f"journal://{home / 'outputs' / 'sweeps' / name / 'optuna.journal'}")
    return optuna.load_study(study_name=name, storage=storage)


def records(home: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (home / "outputs" / "runs").glob("*/result.json")}


def test_12_trials_2_workers_exactly_12_trials_and_records_pruned_marked(home, tmp_path, capsys):
    from optuna.trial import TrialState

    sweep = tmp_path / "s12.yaml"
    sweep.write_text(STUDY12)
    # no clutter and 1k images: most trials learn in 2 epochs, the slow ones are pruned after the first
    args = ["tune", str(sweep), "launcher=parallel", "--workers", "2", *TINY, "trainer.epochs=2",
            "data.clutter=0", "data.n_train=1024", "data.batch_size=32"]
    assert main(args) == 0
    assert "study s12: 12/12 trials" in capsys.readouterr().out
    study = load_study(home, "s12")
    trials = study.get_trials()
    assert len(trials) == 12 and sorted(t.number for t in trials) == list(range(12))
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    recs = records(home)
    assert len(recs) == 12 and {t.user_attrs["run_key"] for t in trials} == set(recs)
    for t in trials:  # each trial is an ordinary run, its number in the run's config
        rec = recs[t.user_attrs["run_key"]]
        assert rec["config"]["trial"] == t.number and rec["sweep"] == "s12"
        assert rec["config"]["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
        if t.state == TrialState.PRUNED:
            assert rec["status"] == "pruned" and rec["epochs"] < 2 and "pruned by the median pruner" in rec["message"]
        else:
            assert rec["status"] == "completed" and t.values == [pytest.approx(rec["top1"])]
    assert any(t.state == TrialState.PRUNED for t in trials)
    # two worker processes, and their trials overlapped in time
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) == 2
    spans = {w: [(t.datetime_start, t.datetime_complete) for t in trials if t.user_attrs["worker"]["pid"] == w] for w in workers}
    a, b = spans.values()
    assert any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)

    mtimes = {k: p.stat().st_mtime_ns for k, p in ((p.parent.name, p) for p in (home / "outputs" / "runs").glob("*/result.json"))}
    assert main(args) == 0  # relaunch: the study is full; nothing runs, nothing is added
    assert len(load_study(home, "s12").get_trials()) == 12
    assert {p.parent.name: p.stat().st_mtime_ns for p in (home / "outputs" / "runs").glob("*/result.json")} == mtimes

    capsys.readouterr()
    assert main(["status", "s12"]) == 0
    out = capsys.readouterr().out
    n_pruned = sum(t.state == TrialState.PRUNED for t in trials)
    assert f"completed {12 - n_pruned}  running 0  queued 0" in out and f"pruned {n_pruned}" in out and "missing 0" in out
    assert f"best: trial {study.best_trial.number}" in out


def test_a_trial_equal_to_a_finished_run_reuses_its_result(home, tmp_path):
    from ablate.config import compose
    from ablate.train.run import run

    first = run(compose([*TINY, "attention=ca", "attention.reduction=8", "seed=0"]))
    path = home / "outputs" / "runs" / first["run_key"] / "result.json"
    mtime = path.stat().st_mtime_ns
    sweep = tmp_path / "two.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {attention.reduction: [8, 16]}\n"
                     "n_trials: 4\npruner: none\nsampler: random\n")
    assert main(["tune", str(sweep), *TINY]) == 0
    study = load_study(home, "two")
    assert len(study.trials) == 4 and len(records(home)) == 2  # 4 trials, only 2 distinct runs
    reused = [t for t in study.trials if t.user_attrs["run_key"] == first["run_key"]]
    assert reused and all(t.values == [pytest.approx(first["top1"])] for t in reused)
    assert path.stat().st_mtime_ns == mtime


def test_kill_9_mid_trial_then_relaunch_resumes_the_trial_from_its_checkpoint(home, tmp_path, capsys):
    sweep = tmp_path / "k.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {optim.lr: {type: float, low: 0.01, high: 0.5, log: true}}\n"
                     "n_trials: 2\npruner: none\n")
    over = [*TINY, "data.n_train=1024", "trainer.epochs=3"]
    proc = subprocess.Popen([sys.executable, "-m", "ablate", "tune", str(sweep), *over],
                            env={**os.environ, "ABLATE_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = home / "outputs" / "runs"
    end = time.time() + 120
    while not any((p.parent / "checkpoint.pt").exists() for p in runs.glob("*/metrics.jsonl")):
        assert time.time() < end and proc.poll() is None, proc.stderr.read()[-2000:] if proc.poll() is not None else "timeout"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (killed,) = [p.parent.name for p in runs.glob("*/checkpoint.pt") if not (p.parent / "result.json").exists()]

    assert main(["tune", str(sweep), *over]) == 0
    assert "(+1 superseded)" in capsys.readouterr().out
    study = load_study(home, "k")
    superseded = [t for t in study.trials if t.user_attrs.get("superseded")]
    assert len(superseded) == 1 and superseded[0].user_attrs["run_key"] == killed
    live = [t for t in study.trials if not t.user_attrs.get("superseded")]
    assert len(live) == 2 and all(t.state.name == "COMPLETE" for t in live)
    heir = next(t for t in live if t.user_attrs.get("resumes") == superseded[0].number)
    assert heir.params == superseded[0].params and heir.user_attrs["run_key"] == killed
    rec = records(home)[killed]
    assert rec["status"] == "completed" and rec["resumed_from"] >= 1 and rec["config"]["trial"] == heir.number


def test_nsga2_two_objectives_prints_a_pareto_front(home, capsys):
    assert main(["tune", "tune_reduction_pareto", "--n-trials", "4", *TINY]) == 0
    out = capsys.readouterr().out
    assert "study tune_reduction_pareto: 4/4 trials complete=4" in out and "Pareto front" in out
    study = load_study(home, "tune_reduction_pareto")
    assert all(len(t.values) == 2 for t in study.trials)
    front = {t.number for t in study.best_trials}
    for t in study.trials:  # every front member is undominated (max top1, min madds)
        if t.number in front:
            assert not any(o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
                           for o in study.trials)
    assert main(["status", "tune_reduction_pareto", "--watch", "--interval", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "4/4" in out and "completed 4" in out and "Pareto front" in out


def test_status_counts_a_grid_with_missing_failed_and_running_runs(home, capsys):
    from ablate.sweep import load_sweep
    from ablate.sweep.runner import plan_sweep, write_manifest
    from ablate.track.lock import RunLock

    spec = load_sweep("branches")
    spec.seeds = [0]
    planned = plan_sweep(spec, TINY)
    write_manifest(spec, planned, home / "outputs" / "sweeps", TINY)  # what a launch records
    keys = [r.key for r in planned]
    runs = home / "outputs" / "runs"
    (runs / keys[0]).mkdir(parents=True)
    (runs / keys[0] / "result.json").write_text(json.dumps({"run_key": keys[0], "status": "failed"}))
    capsys.readouterr()
    with RunLock(runs / f".{keys[1]}.lock"):  # a live trainer holds run 1
        assert main(["status", "branches"]) == 0
    out = capsys.readouterr().out
    assert "sweep branches (grid, 6 runs): completed 0  running 1  queued 0  failed 1" in out and "missing 4" in out
