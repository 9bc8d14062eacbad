"""Sweeps and studies on real services: a localhost SLURM cluster with accounting, PostgreSQL.

Started by ``scripts/services/all.sh up`` (``scripts/test.sh`` does it when root); the fixtures
skip with the recorded reason when a service could not start. Nothing here is mocked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = [pytest.mark.service, pytest.mark.slow]

SLURM = ["launcher=slurm", "launcher.partition=debug", "launcher.cpus_per_task=1", "launcher.mem_gb=1",
         "launcher.timeout_min=10", "launcher.poll_s=0.5"]


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout


def records(home: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (home / "outputs" / "runs").glob("*/result.json")}


def accounting(job: str) -> list[tuple[str, str]]:
    """(job id, state) of every array task and every requeued attempt, from slurmdbd."""
    out = sh("sacct", "-n", "-P", "-X", "-D", "-j", job, "-o", "JobID,State")
    return [tuple(line.split("|")) for line in out.strip().splitlines()]


def wait_for(cond, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_slurm_grid_of_4_runs_real_job_states_and_a_usr1_requeue_that_resumes(slurm_cluster, home, tmp_path, capfd):
    sweep = tmp_path / "grid4.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0, 1]\n")
    args = ["sweep", str(sweep), "--no-table", *SLURM, *TINY, "data.n_train=1024", "trainer.epochs=3"]
    proc = subprocess.Popen([sys.executable, "-m", "ablate", *args], env={**os.environ, "ABLATE_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    jobs_file = home / "outputs" / "sweeps" / "grid4" / "slurm_jobs.json"
    runs = home / "outputs" / "runs"
    # Pre-empt one task once its run has a checkpoint: SIGUSR1 is SLURM's time-limit warning.
    key = wait_for(lambda: next((p.parent.name for p in runs.glob("*/checkpoint.pt")), None), 120, "a checkpoint")
    task = next(j["job_id"] for j in json.loads(jobs_file.read_text())["jobs"] if key in j["run_keys"])
    sh("scancel", "--signal=USR1", task)
    # slurmctld holds a requeued job for ~2 minutes (BeginTime); release it sooner, as an admin
    # could. Not within the requeue's own second: slurmd refuses a start in the second its old
    # credential was revoked ("Job credential revoked").
    wait_for(lambda: "BeginTime" in sh("squeue", "-h", "-j", task, "-o", "%r"), 60, "the requeue")
    time.sleep(2)
    sh("scontrol", "update", f"JobId={task}", "StartTime=now")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    with capfd.disabled():  # the launcher's job-state log, for the record (pytest -s)
        print(out)

    recs = records(home)
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs.values())
    assert recs[key]["resumed_from"] >= 1  # the requeued task resumed from its checkpoint
    (attempt,) = [json.loads(p.read_text()) for p in (runs / key / "attempts").glob("*.json")]
    assert attempt["status"] == "preempted"
    array = task.split("_")[0]
    states = accounting(array)
    assert sorted(j for j, s in states if s == "COMPLETED") == sorted(f"{array}_{i}" for i in range(4))
    assert (task, "REQUEUED") in states
    assert "slurm: final: COMPLETED 4" in out and "RUNNING" in out
    assert main(["status", "grid4"]) == 0
    assert "completed 4" in capfd.readouterr().out


def test_slurm_study_worked_by_2_array_jobs_on_one_journal(slurm_cluster, home, tmp_path, capsys):
    import optuna

    from ablate.sweep.storage import open_storage

    sweep = tmp_path / "st.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {attention.reduction: [4, 8, 16],"
                     " optim.lr: {type: float, low: 0.01, high: 0.5, log: true}}\nn_trials: 6\n")
    assert main(["tune", str(sweep), "--workers", "2", *SLURM, *TINY, "trainer.epochs=2"]) == 0
    out = capsys.readouterr()
    with capsys.disabled():
        print(out.out, out.err)
    storage = open_storage(f"journal://{home / 'outputs' / 'sweeps' / 'st' / 'optuna.journal'}")
    trials = optuna.load_study(study_name="st", storage=storage).get_trials()
    assert len(trials) == 6 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len(records(home)) == 6
    workers = {t.user_attrs["worker"]["slurm_job"] for t in trials}
    array = next(iter(workers)).split("_")[0]
    assert workers <= {f"{array}_0", f"{array}_1"} and len(workers) >= 1
    assert sorted(accounting(array)) == [(f"{array}_0", "COMPLETED"), (f"{array}_1", "COMPLETED")]


def test_two_worker_study_on_postgresql(postgres_url, home, tmp_path, capsys):
    import optuna

    name = f"pg_{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / f"{name}.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {attention.reduction: [4, 8, 16],"
                     " optim.lr: {type: float, low: 0.01, high: 0.5, log: true}}\nn_trials: 6\n")
    try:
        assert main(["tune", str(sweep), "--workers", "2", "--storage", postgres_url, "launcher=parallel",
                     *TINY, "trainer.epochs=2"]) == 0
        assert f"study {name}: 6/6 trials" in capsys.readouterr().out
        study = optuna.load_study(study_name=name, storage=postgres_url)
        trials = study.get_trials()
        assert len(trials) == 6 and len({t.user_attrs["worker"]["pid"] for t in trials}) == 2
        assert {t.user_attrs["run_key"] for t in trials} == set(records(home))
        manifest = json.loads((home / "outputs" / "sweeps" / name / "manifest.json").read_text())
        assert "ablate:***@" in manifest["storage"]  # no password in files
        assert main(["status", str(sweep.stem), "--storage", postgres_url]) == 0
        assert "queued 0" in capsys.readouterr().out
    finally:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:
            pass


def test_ablate_train_multirun_through_hydra_submitit_launcher(slurm_cluster, home):
    env = {**os.environ, "ABLATE_HOME": str(home)}
    out = subprocess.run([sys.executable, "-m", "ablate", "train", "-m", "hydra/launcher=submitit_slurm",
                          "hydra.launcher.partition=debug", "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1",
                          "hydra.launcher.mem_gb=1", "attention=none,ca", *TINY], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = records(home)
    assert len(recs) == 2 and all(r["status"] == "completed" for r in recs.values())
    assert {r["config"]["attention"]["kind"] for r in recs.values()} == {"none", "ca"}


def test_slurm_tasks_pack_two_runs_each_on_their_node(slurm_cluster, home, tmp_path, capsys):
    sweep = tmp_path / "pack4.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0, 1]\n")
    assert main(["sweep", str(sweep), "--no-table", *SLURM, "launcher.cpus_per_task=2", "launcher.runs_per_gpu=2",
                 *TINY]) == 0
    recs = records(home)
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs.values())
    jobs = json.loads((home / "outputs" / "sweeps" / "pack4" / "slurm_jobs.json").read_text())["jobs"]
    assert [len(j["run_keys"]) for j in jobs] == [2, 2] and {j["state"] for j in jobs} == {"COMPLETED"}
    array = jobs[0]["job_id"].split("_")[0]
    assert sorted(accounting(array)) == [(f"{array}_0", "COMPLETED"), (f"{array}_1", "COMPLETED")]


@pytest.mark.parametrize("cmd", [
    ["sweep", "branches", "--seeds", "0", "--no-table"],
    ["tune", "tune_reduction", "--n-trials", "2"],
])
def test_a_partition_that_does_not_exist_is_one_line_before_any_submission(cmd, slurm_cluster, home, capsys):
    assert main([*cmd, *SLURM, "launcher.partition=gpu", *TINY]) == 2
    err = capsys.readouterr().err
    assert err == "ablate: error: SLURM partition 'gpu' does not exist; allowed: debug\n"
    # nothing submitted from this home (other tests may submit jobs meanwhile: the suite runs 2 workers)
    submitted = sh("sacct", "-n", "-X", "-a", "-P", "-o", "SubmitLine%1000", "-S", "now-1hours")
    assert str(home) not in submitted
    assert not list(home.glob("outputs/sweeps/*/submitit")) and not (home / "outputs" / "runs").exists()


def test_slurm_trains_one_run_as_two_tasks_requeued_after_usr1_like_torchrun_here(slurm_cluster, home, tmp_path):
    """trainer.devices=2 under launcher=slurm: one job of 2 tasks (one per rank, CPU and gloo,
    rendezvous from SLURM's environment). SIGUSR1 to the job mid-run stops both ranks at the
    same step (preempted), submitit requeues the job, and the run resumes from its checkpoint;
    rank 0 alone records the run and its W&B run, and the metrics are bit for bit those of the
    same run started unbroken by torchrun here."""
    sweep = tmp_path / "ddp.yaml"
    sweep.write_text("grid: {attention: [ca]}\nseeds: [0]\n")
    run = [*TINY, "tracking=offline", "data.n_train=1536", "trainer.epochs=3", "trainer.devices=2"]
    proc = subprocess.Popen([sys.executable, "-m", "ablate", "sweep", str(sweep), "--no-table", *SLURM, *run],
                            env={**os.environ, "ABLATE_HOME": str(home)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    runs = home / "outputs" / "runs"
    key = wait_for(lambda: next((p.parent.name for p in runs.glob("*/checkpoint.pt")), None), 180, "a checkpoint")
    (job,) = json.loads((home / "outputs" / "sweeps" / "ddp" / "slurm_jobs.json").read_text())["jobs"]
    sh("scancel", "--signal=USR1", job["job_id"])
    wait_for(lambda: "BeginTime" in sh("squeue", "-h", "-j", job["job_id"], "-o", "%r"), 60, "the requeue")
    time.sleep(2)
    sh("scontrol", "update", f"JobId={job['job_id']}", "StartTime=now")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    rec = records(home)[key]
    assert rec["status"] == "completed" and rec["world_size"] == 2 and rec["resumed_from"] == 1, rec["message"]
    (attempt,) = [json.loads(p.read_text()) for p in (runs / key / "attempts").glob("*.json")]
    assert attempt["status"] == "preempted" and attempt["message"].startswith("stop requested at epoch 1 step ")
    assert len(list((runs / key / "wandb").glob("offline-run-*"))) == 2  # one W&B id, a dir per start
    steps = sh("sacct", "-n", "-P", "-j", job["job_id"].split("_")[0], "-o", "JobID,NTasks,State")
    assert [line.split("|")[1] for line in steps.splitlines() if "." in line and ".batch" not in line
            and ".extern" not in line] == ["2"], steps  # the job's step: 2 tasks
    here = tmp_path / "here"
    local = subprocess.run([sys.executable, "-m", "ablate", "train", "attention=ca", "seed=0", *run],
                           env={**os.environ, "ABLATE_HOME": str(here)}, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-3000:]
    rows = [json.loads(x) for x in (runs / key / "metrics.jsonl").read_text().splitlines()]
    unbroken = [json.loads(x) for x in (here / "outputs" / "runs" / key / "metrics.jsonl").read_text().splitlines()]
    assert [{**r, "seconds": 0} for r in rows] == [{**r, "seconds": 0} for r in unbroken]
