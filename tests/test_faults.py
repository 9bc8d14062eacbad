"""Fault injection: kill -9 at random moments of a sweep and of a study (journal and
PostgreSQL), concurrent launches of one study, damaged files, and a full disk (a small tmpfs,
when the tests run as root). Whatever happens, no finished result is lost, nothing is trained
twice, a relaunch finishes the work with the numbers an unbroken launch gives, and every
command says in one line what went wrong."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ablate.cli import main
from tests.helpers import ROOT, TINY

pytestmark = pytest.mark.slow

BUDGET = [o for o in TINY if not o.startswith("data.n_train")] + ["data.n_train=512", "trainer.epochs=2"]
GRID = "grid: {attention: [none, ca]}\nseeds: [0, 1]\n"


def ablate(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ABLATE_HOME": str(home), "ABLATE_PROJECT": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ablate", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def start(home: Path, *args: str) -> subprocess.Popen:
    """Launch in its own session; its stderr goes to a file beside the home (``proc.log``)."""
    env = {**os.environ, "ABLATE_HOME": str(home), "ABLATE_PROJECT": str(ROOT)}
    home.parent.mkdir(parents=True, exist_ok=True)
    log = open(home.parent / f"launch-{time.monotonic_ns()}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "ablate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=log, start_new_session=True)
    log.close()
    proc.log = Path(log.name)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 the launch and every worker it started (they share its session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def records(home: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (home / "outputs" / "runs").glob("*/result.json")}


# --- kill -9 --------------------------------------------------------------------------------
def test_kill_9_at_random_moments_of_a_sweep_loses_nothing_and_resumes_bit_identically(tmp_path):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(GRID)
    reference, broken = tmp_path / "ref", tmp_path / "broken"
    assert ablate(reference, "sweep", str(sweep), "--no-table", *BUDGET).returncode == 0
    rng = random.Random(12)
    for _ in range(5):
        proc = start(broken, "sweep", str(sweep), "--no-table", *BUDGET)
        time.sleep(rng.uniform(0.5, 4.0))
        kill_group(proc)
    done = ablate(broken, "sweep", str(sweep), "--no-table", *BUDGET)
    assert done.returncode == 0, done.stderr[-2000:]
    want, got = records(reference), records(broken)
    assert set(got) == set(want) and all(r["status"] == "completed" for r in got.values())
    for key, rec in got.items():
        assert rec["top1"] == want[key]["top1"] and rec["loss"] == want[key]["loss"], key  # bit-identical
        rows = (broken / "outputs" / "runs" / key / "metrics.jsonl").read_text().split("\n")
        assert sum(1 for r in rows if r.strip()) == 2  # each epoch once, however often it was resumed
    assert not any(ablate(broken, "status", "grid").stdout.count(w) for w in ("running 1", "running 2"))


STUDY = ("kind: optuna\noverrides: [attention=ca, optim=sgd]\n"
         "search: {attention.reduction: [4, 8, 16], optim.lr: {type: float, low: 0.01, high: 0.5, log: true}}\n"
         "n_trials: 4\npruner: none\n")


def _study(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(STUDY)
    return path


def _trials(home: Path, name: str, storage: str | None):
    import optuna

    from ablate.sweep.storage import open_storage
    from ablate.sweep.worker import SUPERSEDED

    url = storage or f"journal://{home / 'outputs' / 'sweeps' / name / 'optuna.journal'}"
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    return [t for t in trials if not t.user_attrs.get(SUPERSEDED)], trials


def _cleanup(name: str, storage: str | None) -> None:
    if storage:
        import optuna

        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass


@pytest.fixture(params=["journal", "postgresql"])
def storage(request):
    return None if request.param == "journal" else request.getfixturevalue("postgres_url")


def test_kill_9_of_a_study_at_random_moments_then_a_relaunch_finishes_it_within_budget(tmp_path, storage):
    name = f"kill_{uuid.uuid4().hex[:8]}"
    sweep, home = _study(tmp_path, name), tmp_path / "home"
    args = ["tune", str(sweep), "launcher=parallel", "--workers", "2", *BUDGET,
            *(["--storage", storage] if storage else [])]
    rng = random.Random(7)
    try:
        for _ in range(3):
            proc = start(home, *args)
            time.sleep(rng.uniform(2.0, 6.0))
            kill_group(proc)
        done = ablate(home, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        counted, everything = _trials(home, name, storage)
        assert len(counted) == 4 and all(t.state.name == "COMPLETE" for t in counted)
        recs = records(home)
        assert {t.user_attrs["run_key"] for t in counted} <= set(recs) and len(recs) <= 4
        # a killed trial's values came back in its copy: every run key of the study is a trial's
        assert {r["run_key"] for r in recs.values() if r["status"] == "completed"} == {t.user_attrs["run_key"] for t in counted}
    finally:
        _cleanup(name, storage)


def test_three_concurrent_launches_of_a_study_train_its_budget_once(tmp_path, storage):
    name = f"race_{uuid.uuid4().hex[:8]}"
    sweep, home = _study(tmp_path, name), tmp_path / "home"
    args = ["tune", str(sweep), *BUDGET, *(["--storage", storage] if storage else [])]
    try:
        first = ablate(home, "tune", str(sweep), "--dry-run", *BUDGET)  # warm the data cache
        assert first.returncode == 0
        procs = [start(home, *args) for _ in range(3)]
        codes = [p.wait(timeout=600) for p in procs]
        assert codes == [0, 0, 0], "\n".join(p.log.read_text()[-1500:] for p in procs)
        counted, everything = _trials(home, name, storage)
        keys = {t.user_attrs["run_key"] for t in counted}
        assert len(counted) == 4 and set(records(home)) == keys and len(keys) >= 3  # trained: 4 at most, not 5 or 12
        surplus = [t for t in everything if t.user_attrs.get("surplus")]
        assert all(t.state.name == "FAIL" and "run_key" not in t.user_attrs for t in surplus)
    finally:
        _cleanup(name, storage)


def test_a_storage_outage_is_not_a_training_failure(home, tmp_path, monkeypatch):
    """The database goes away during a trial: the run finishes as completed, the trial is
    left RUNNING, and the next launch records it from the run without training it again."""
    import optuna

    sweep = _study(tmp_path, "outage")
    sweep.write_text(STUDY.replace("n_trials: 4", "n_trials: 1").replace("pruner: none", "pruner: median"))

    def down(*args, **kwargs):
        raise RuntimeError("OperationalError: could not connect to server")

    with monkeypatch.context() as m:
        m.setattr(optuna.Trial, "report", down)
        m.setattr(optuna.Study, "tell", down)
        m.setattr("ablate.sweep.worker.time.sleep", lambda s: None)
        assert main(["tune", str(sweep), *BUDGET]) == 0
    (rec,) = records(home).values()
    assert rec["status"] == "completed"
    counted, _ = _trials(home, "outage", None)
    assert [t.state.name for t in counted] == ["RUNNING"]
    _worker_exited(home, "outage")  # as when that `ablate tune` process ends
    mtime = next((home / "outputs" / "runs").glob("*/result.json")).stat().st_mtime_ns
    assert main(["tune", str(sweep), *BUDGET]) == 0  # the dead worker's trial, re-enqueued
    counted, _ = _trials(home, "outage", None)
    assert [t.state.name for t in counted] == ["COMPLETE"] and counted[0].values == [rec["top1"]]
    assert next((home / "outputs" / "runs").glob("*/result.json")).stat().st_mtime_ns == mtime  # not retrained


def _worker_exited(home: Path, name: str) -> None:
    """Give the study's RUNNING trials a worker pid that has exited."""
    import optuna

    from ablate.sweep.storage import open_storage

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    storage = open_storage(f"journal://{home / 'outputs' / 'sweeps' / name / 'optuna.journal'}")
    study = optuna.load_study(study_name=name, storage=storage)
    sid = storage.get_study_id_from_name(name)
    for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        tid = storage.get_trial_id_from_study_id_trial_number(sid, t.number)
        storage.set_trial_user_attr(tid, "worker", {**t.user_attrs["worker"], "pid": proc.pid})


def test_status_of_a_study_without_its_password_or_journal_is_one_line(home, tmp_path, capsys):
    from ablate.track.manifest import SweepManifest

    sweeps = home / "outputs" / "sweeps"
    SweepManifest("gone", "optuna", study_name="gone", storage="postgresql+psycopg2://u:***@127.0.0.1:1/db",
                  n_trials=2, objectives=["top1"], directions=["maximize"]).write(sweeps)
    assert main(["status", "gone"]) == 2
    err = capsys.readouterr().err
    assert "without its password" in err and "--storage URL" in err and err.count("\n") == 1
    SweepManifest("nojournal", "optuna", study_name="nojournal", storage=f"journal://{tmp_path / 'x.journal'}",
                  n_trials=2, objectives=["top1"], directions=["maximize"]).write(sweeps)
    assert main(["status", "nojournal"]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "x.journal").exists()


# --- damaged files --------------------------------------------------------------------------
def test_damaged_files_are_named_set_aside_and_redone(home, tmp_path, capsys, caplog):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(GRID)
    args = ["sweep", str(sweep), "--no-table", *BUDGET]
    assert main(args) == 0
    runs = home / "outputs" / "runs"
    keys = sorted(records(home))
    result = runs / keys[0] / "result.json"
    result.write_text(result.read_text()[:40])  # truncated
    ckpt = runs / keys[1] / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated checkpoint of a run to be redone:
    rec = json.loads((runs / keys[1] / "result.json").read_text())
    (runs / keys[1] / "result.json").write_text(json.dumps({**rec, "status": "failed"}))
    metrics = runs / keys[2] / "metrics.jsonl"
    first, second = metrics.read_text().splitlines()
    metrics.write_text(f"{first}\n{{garbage\n{second}\n")
    capsys.readouterr()
    assert main(["status", "grid"]) == 0  # the damaged record is a missing run, not a crash
    assert "missing 1" in capsys.readouterr().out
    assert list((runs / keys[0]).glob("result.json.damaged-*"))  # kept, never deleted
    from ablate.track.store import RunDirStore

    assert [r["epoch"] for r in RunDirStore(runs).metrics(keys[2])] == [0, 1]  # rows after the bad line stay
    assert main(args) == 0  # redoes the damaged and the failed run
    now = records(home)
    assert now[keys[0]]["status"] == now[keys[1]]["status"] == "completed"
    assert now[keys[1]]["resumed_from"] is None and list((runs / keys[1]).glob("checkpoint.pt.damaged-*"))
    assert any("damaged" in r.message and str(ckpt) in r.message for r in caplog.records)
    manifest = home / "outputs" / "sweeps" / "grid" / "manifest.json"
    manifest.write_text("{")
    assert main(["status", "grid"]) == 2  # a damaged manifest: set aside, said, relaunchable
    assert "has not been launched" in capsys.readouterr().err
    assert main(args) == 0 and json.loads(manifest.read_text())["runs"]


def test_a_full_disk_during_put_keeps_the_earlier_record(tmp_path, monkeypatch):
    import errno

    from ablate.track.store import RunDirStore

    store = RunDirStore(tmp_path)
    store.put({"run_key": "a", "status": "failed", "message": "first"})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ablate.track.store._rundir.os.fsync", full)
    with pytest.raises(OSError):
        store.put({"run_key": "a", "status": "completed", "top1": 90.0})
    monkeypatch.setattr("ablate.track.store._rundir.os.fsync", os.fsync)
    assert store.get("a")["message"] == "first" and not list((tmp_path / "a").glob(".result.json.*.tmp"))


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root (mount -t tmpfs)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_a_full_disk_ends_in_one_line_loses_nothing_and_a_relaunch_finishes(small_disk, tmp_path):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text("grid: {attention: [none, ca, se, cbam]}\nseeds: [0, 1, 2]\n")
    out = ablate(small_disk, "sweep", str(sweep), "--no-table", *BUDGET)
    assert out.returncode != 0
    assert "During handling of the above exception" not in out.stderr and "No space left" in out.stderr
    finished = {k: r for k, r in records(small_disk).items() if r["status"] == "completed"}
    assert finished  # some runs fit before the disk filled; their records are whole
    # move the outputs to a roomy disk: the manifest and the runs come along, nothing is redone
    roomy = tmp_path / "roomy"
    subprocess.run(["cp", "-a", str(small_disk), str(roomy)], check=True)
    done = ablate(roomy, "sweep", str(sweep), "--no-table", *BUDGET)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = records(roomy)
    assert len(recs) == 12 and all(r["status"] == "completed" for r in recs.values())
    for key, rec in finished.items():
        assert recs[key]["finished_at"] == rec["finished_at"]  # kept, not retrained


def test_ctrl_c_leaves_a_resumable_run_and_a_failed_run_fails_the_sweep(home, tmp_path, monkeypatch):
    env = {**os.environ, "ABLATE_HOME": str(home), "ABLATE_PROJECT": str(ROOT)}
    args = [sys.executable, "-m", "ablate", "train", *BUDGET, "data.n_train=2048", "trainer.epochs=3"]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # interrupt once the first epoch (and its checkpoint) is done
        if "epoch 1/3" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    (rec,) = records(home).values()
    assert rec["status"] == "preempted" and "Ctrl-C" in rec["message"]
    assert subprocess.run(args, env=env, capture_output=True, timeout=300).returncode == 0
    (rec,) = records(home).values()
    assert rec["status"] == "completed" and rec["resumed_from"] >= 1
    # a run that fails makes the sweep exit 1 (its table still printed), not 0
    from ablate.train import engine

    real = engine.fit

    def fit_or_fail(model, *args, **kwargs):
        if type(model.features[2].attn).__name__ != "Identity":
            raise RuntimeError("a bug in an attention module")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(engine, "fit", fit_or_fail)
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(GRID)
    assert main(["sweep", str(sweep), "--no-table", *BUDGET]) == 1
    assert sorted(r["status"] for r in records(home).values()).count("failed") == 2


def test_report_with_a_damaged_checkpoint_names_it_instead_of_crashing(home, tmp_path, capsys):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text("grid: {attention: [ca]}\nseeds: [0]\n")
    assert main(["sweep", str(sweep), "--no-table", *BUDGET]) == 0
    (ckpt,) = (home / "outputs" / "runs").glob("*/checkpoint.pt")
    ckpt.write_bytes(b"not a checkpoint")
    from ablate.report.attention_maps import load_run
    from ablate.errors import ConfigError

    with pytest.raises(ConfigError, match="checkpoint.pt is damaged"):
        load_run(ckpt.parent)
    assert list(ckpt.parent.glob("checkpoint.pt.damaged-*"))
