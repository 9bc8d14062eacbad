"""Pre-emption and crashes in real processes: kill -9 a sweep, SIGTERM a run, relaunch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TINY

pytestmark = pytest.mark.slow

GRID12 = """\
grid: {attention: [none, se, ca]}
seeds: [0, 1, 2, 3]
"""


def ablate(home: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "ABLATE_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "ablate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


def results(home: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in (home / "outputs" / "runs").glob("*/result.json")}


def wait_for(cond, timeout: float, proc: subprocess.Popen | None = None):
    end = time.time() + timeout
    while time.time() < end:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail("timed out")


def test_kill_9_a_12_run_sweep_then_relaunch_finishes_exactly_the_missing_runs(home, tmp_path):
    sweep = tmp_path / "grid12.yaml"
    sweep.write_text(GRID12)
    args = ["sweep", str(sweep), "--no-table", *TINY, "trainer.epochs=2"]
    proc = ablate(home, *args)
    wait_for(lambda: len(results(home)) >= 6, 120, proc)
    os.kill(proc.pid, signal.SIGKILL)  # no handler, no finally: whatever was mid-run is torn
    proc.wait()
    before = results(home)
    assert 6 <= len(before) < 12
    snapshot = {k: (p.stat().st_mtime_ns, p.read_text()) for k, p in before.items()}
    partial = {p.parent.name for p in (home / "outputs" / "runs").glob("*/checkpoint.pt")} - set(before)
    # the run that was killed mid-way left a lock naming a dead process; the relaunch takes it over
    relaunch = ablate(home, *args)
    assert relaunch.wait(timeout=180) == 0, relaunch.stderr.read()[-2000:]
    after = results(home)
    assert len(after) == 12
    records = [json.loads(p.read_text()) for p in after.values()]
    assert all(r["status"] == "completed" for r in records)
    assert len({r["run_key"] for r in records}) == 12                     # no duplicates
    assert not list((home / "outputs" / "runs").glob("*/attempts"))       # nothing written twice
    assert not list((home / "outputs" / "runs").glob(".*.lock"))
    for key, (mtime, text) in snapshot.items():                          # finished runs untouched
        assert after[key].stat().st_mtime_ns == mtime and after[key].read_text() == text
    for key in partial:  # killed after its first epoch's checkpoint: continued from it
        assert json.loads(after[key].read_text())["resumed_from"] == 1


def test_sigterm_checkpoints_the_run_and_the_relaunch_resumes_to_the_same_metrics(home, tmp_path):
    from ablate.config import compose
    from ablate.train.run import run

    over = [*TINY, "data.n_train=1024", "trainer.epochs=3", "attention=ca"]
    proc = ablate(home, "train", *over)
    metrics = lambda: [p for p in (home / "outputs" / "runs").glob("*/metrics.jsonl") if p.read_text().strip()]  # noqa: E731
    wait_for(metrics, 120, proc)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends on pre-emption
    assert proc.wait(timeout=60) == 1
    (rec_path,) = results(home).values()
    stopped = json.loads(rec_path.read_text())
    assert stopped["status"] == "preempted" and 1 <= stopped["epochs"] < 3, stopped
    assert (rec_path.parent / "checkpoint.pt").exists()

    resumed = run(compose(over))
    assert resumed["status"] == "completed" and resumed["resumed_from"] == stopped["epochs"]
    whole = run(compose([*over, f"paths.root={tmp_path / 'unbroken'}"]))
    assert whole["run_key"] == resumed["run_key"] and whole["resumed_from"] is None
    assert resumed["top1"] == pytest.approx(whole["top1"]) and resumed["loss"] == pytest.approx(whole["loss"], rel=1e-5)
