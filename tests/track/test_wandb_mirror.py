"""One W&B run per ablate run, in the state the store has: ids from the run key, a relaunch
resumes its id and continues its steps, pruned/pre-empted runs are not failures, and the offline
reader joins the dirs of one id. Checked on real offline W&B runs and with W&B's own reader
(``wandb leet inspect``) and ``wandb sync --dry-run``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablate.track.store import WandbStore
from ablate.track.wandb_mirror import (TrackingConfig, WandbMirror, choose_run_id, segments, tags_for,
                                       wandb_run_id)
from tests.helpers import TINY

OFFLINE = [o for o in TINY if not o.startswith("tracking=")] + ["tracking=offline"]
WANDB = str(Path(sys.executable).with_name("wandb"))


def inspect(run_dir: Path) -> dict:
    """W&B's own reading of one offline run dir: id, name, group, tags, config, steps, exit code,
    summary, preempting record (``wandb leet inspect --json``)."""
    out = subprocess.run([WANDB, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    got: dict = {"steps": [], "summary": {}, "exit_code": None, "preempting": False}
    for line in out.stdout.splitlines():
        rec = json.loads(line)
        kind = rec["type"]
        if kind == "run":
            r = rec["run"]
            got.update(id=r["run_id"], name=r.get("display_name"), group=r.get("run_group"), tags=r.get("tags", []),
                       config=r["config"]["update"])
        elif kind == "history":
            got["steps"].append(rec["history"]["step"]["num"] if "step" in rec["history"] else rec["history"]["item"]["_step"])
        elif kind == "summary":
            got["summary"].update(rec["summary"].get("update", {}))
        elif kind == "exit":
            got["exit_code"] = rec["exit"].get("exit_code", 0)
        elif kind == "preempting":
            got["preempting"] = True
    got["steps"] = [int(s) for s in got["steps"]]
    return got


def offline_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def ablate(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "ABLATE_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "ablate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigterm_and_relaunch_is_one_wandb_run_with_one_continuous_history(home):
    over = [*OFFLINE, "data.n_train=1024", "trainer.epochs=3", "attention=ca", "seed=3"]
    proc = ablate(home, "train", *over)
    runs = home / "outputs" / "runs"
    end = time.time() + 120
    while not any(p.read_text().strip() for p in runs.glob("*/metrics.jsonl")):
        assert proc.poll() is None and time.time() < end, proc.stderr.read()[-2000:] if proc.poll() is not None else "timeout"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends on pre-emption
    assert proc.wait(timeout=60) == 1
    (run_dir,) = [p.parent for p in runs.glob("*/result.json")]
    key = run_dir.name
    stopped = json.loads((run_dir / "result.json").read_text())
    assert stopped["status"] == "preempted" and 1 <= stopped["epochs"] < 3 and stopped["wandb_id"] == key

    relaunch = ablate(home, "train", *over)
    assert relaunch.wait(timeout=180) == 0, relaunch.stderr.read()[-2000:]
    done = json.loads((run_dir / "result.json").read_text())
    assert done["status"] == "completed" and done["resumed_from"] == stopped["epochs"] and done["wandb_id"] == key

    first, second = (inspect(d) for d in offline_dirs(run_dir))
    assert first["id"] == second["id"] == key                       # one W&B run: the run key is its id
    assert first["steps"] == list(range(stopped["epochs"]))         # epochs 0..k-1 ...
    assert second["steps"] == list(range(stopped["epochs"], 3))     # ... then k..2: no repeat, no gap
    assert first["summary"]["status"] == "preempted" and first["exit_code"] == 0 and first["preempting"]
    assert second["summary"]["status"] == "completed" and second["exit_code"] == 0
    assert second["config"]["run_key"] == key and second["config"]["seed"] == 3
    assert {f"run_key:{key}", "attention:ca", "seed:3"} <= set(second["tags"])

    # wandb sync --dry-run lists .wandb files (it says "run(s)"): both are run-<key>.wandb of one id
    out = subprocess.run([WANDB, "sync", "--dry-run", *map(str, offline_dirs(run_dir))], capture_output=True,
                         text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "Would sync 2 run(s)" in text and text.count(f"run-{key}.wandb") == 2, text

    # the offline reader joins the two dirs of the id: one record, every epoch once
    store = WandbStore(str(runs))
    assert store.keys() == [key] and store.attempts(key) == []
    assert store.get(key)["status"] == "completed" and store.get(key)["wandb_id"] == key
    assert [r["epoch"] for r in store.metrics(key)] == [0, 1, 2]
    assert [r["val_top1"] for r in store.metrics(key)] == [r["val_top1"] for r in
                                                           map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


@pytest.fixture
def parent_owns_a_wandb_service(tmp_path, monkeypatch):
    """This process runs W&B first, as a sweep process or an earlier test may: W&B then hands
    its service to every child through WANDB_SERVICE (set when this process first started it)."""
    import wandb

    for _ in range(2):
        mirror = WandbMirror(TrackingConfig(mode="offline"), run_dir=tmp_path / "parent", run_key="parentrun",
                             group=None, config={})
        mirror.finish()
        if os.environ.get("WANDB_SERVICE"):
            break
        wandb.teardown()  # a service an earlier test started, its token since removed: start a new one
    assert os.environ.get("WANDB_SERVICE")
    yield


@pytest.mark.slow
def test_kill_9_and_relaunch_sends_the_epochs_wandb_lost_once_under_the_same_id(home, parent_owns_a_wandb_service):
    over = [*OFFLINE, "data.n_train=1024", "trainer.epochs=4", "attention=ca", "seed=6"]
    proc = ablate(home, "train", *over)
    runs = home / "outputs" / "runs"
    end = time.time() + 120
    while sum(len(p.read_text().splitlines()) for p in runs.glob("*/metrics.jsonl")) < 2:
        assert proc.poll() is None and time.time() < end, "ended early or timed out"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no finally: W&B's offline log keeps what it flushed, maybe nothing
    proc.wait()
    relaunch = ablate(home, "train", *over)
    assert relaunch.wait(timeout=180) == 0, relaunch.stderr.read()[-2000:]
    (run_dir,) = [p.parent for p in runs.glob("*/result.json")]
    key = run_dir.name
    done = json.loads((run_dir / "result.json").read_text())
    assert done["status"] == "completed" and done["resumed_from"] >= 2
    parts = [inspect(d) for d in offline_dirs(run_dir)]
    assert len(parts) == 2 and parts[1]["id"] == key and parts[0].get("id") in (key, None)  # None: nothing flushed
    steps = [s for part in parts for s in part["steps"]]
    assert steps == [0, 1, 2, 3]                       # every epoch once, in order, across the two dirs
    store = WandbStore(str(runs))
    assert store.keys() == [key] and [r["epoch"] for r in store.metrics(key)] == [0, 1, 2, 3]


@pytest.mark.slow
def test_force_is_a_new_attempt_id_and_a_pruned_run_finishes_not_failed(tiny_cfg, home, single_thread):
    from ablate.train.engine import Pruned
    from ablate.train.run import run

    over = [*OFFLINE[len(TINY) - 1:], "trainer.epochs=2", "sweep=wbp"]

    def prune(epoch, row):
        raise Pruned("pruned by a test pruner")

    pruned = run(tiny_cfg(*over), on_epoch_end=prune, study="wbp")
    key = pruned["run_key"]
    run_dir = home / "outputs" / "runs" / key
    (seg,) = [inspect(d) for d in offline_dirs(run_dir)]
    assert pruned["status"] == "pruned" and seg["id"] == key
    assert seg["exit_code"] == 0 and seg["summary"]["status"] == "pruned" and seg["steps"] == [0]
    assert seg["group"] == "wbp" and "sweep:wbp" in seg["tags"]

    again = run(tiny_cfg(*over, "force=true"))   # the old run dir is set aside; W&B gets a new attempt
    assert again["status"] == "completed" and again["wandb_id"] == wandb_run_id(key, 1) == f"{key}-1"
    (seg,) = [inspect(d) for d in offline_dirs(run_dir)]
    assert seg["id"] == f"{key}-1" and seg["steps"] == [0, 1] and seg["name"] == key
    store = WandbStore(str(home / "outputs" / "runs"))  # both attempts: the newest is the record
    assert store.get(key)["wandb_id"] == f"{key}-1" and [a["status"] for a in store.attempts(key)] == ["pruned"]


def fake_segment(wandb_dir: Path, stamp: str, run_id: str, steps: list[int]) -> None:
    """A real offline W&B run dir logging ``steps`` (tiny; no ablate run)."""
    import wandb

    before = set(wandb_dir.iterdir())
    run = wandb.init(mode="offline", dir=str(wandb_dir.parent), id=run_id, resume="allow",
                     settings=wandb.Settings(silent=True, console="off"))
    for s in steps:
        run.log({"x": s}, step=s)
    run.finish()
    (made,) = [d for d in set(wandb_dir.iterdir()) - before if d.name.startswith("offline-run-")]
    made.rename(wandb_dir / f"offline-run-{stamp}-{run_id}")


@pytest.mark.slow
def test_choose_run_id_resumes_the_newest_id_and_starts_a_new_attempt_below_its_last_step(tmp_path):
    run_dir = tmp_path / "runs" / "abcdef012345"
    wdir = run_dir / "wandb"
    wdir.mkdir(parents=True)
    key = run_dir.name
    assert choose_run_id(key, run_dir, 0) == (key, 0)                       # first start
    fake_segment(wdir, "20260101_000000", key, [0, 1])
    assert choose_run_id(key, run_dir, 2) == (key, 2)                       # resume after epoch 1
    assert choose_run_id(key, run_dir, 3) == (key, 2)                       # W&B lacks epoch 2: sent first
    assert choose_run_id(key, run_dir, 0) == (f"{key}-1", 0)                # start-over: a new id
    assert choose_run_id(key, run_dir, 1) == (f"{key}-1", 0)
    replaced = tmp_path / "runs" / "_replaced" / f"{key}-20260101"
    (replaced / "wandb").mkdir(parents=True)
    fake_segment(replaced / "wandb", "20250101_000000", f"{key}-4", [0])
    assert choose_run_id(key, run_dir, 0, [replaced]) == (f"{key}-5", 0)    # ids of set-aside runs are taken
    fake_segment(wdir, "20260102_000000", f"{key}-5", [])                   # newest here: logged nothing yet
    assert choose_run_id(key, run_dir, 0, [replaced]) == (f"{key}-5", 0)
    assert [s.id for s in segments([wdir])] == [key, f"{key}-5"]


def test_mirror_backfills_the_epochs_wandb_lacks_and_maps_every_status(tmp_path, monkeypatch):
    import wandb

    calls: list = []

    class FakeRun:
        dir = "d"

        def __init__(self, **kw):
            calls.append(("init", kw))
            self.summary = {}

        def log(self, row, step=None):
            calls.append(("log", step))

        def mark_preempting(self):
            calls.append(("preempting",))

        def finish(self, exit_code=None):
            calls.append(("finish", exit_code))

    monkeypatch.setattr(wandb, "init", lambda **kw: FakeRun(**kw))
    run_dir = tmp_path / "abcdef012345"
    history = [{"epoch": e, "val_top1": 50.0 + e} for e in range(3)]
    cfg = {"sweep": "s", "seed": 4, "attention": {"kind": "se"}, "tracking": {"mode": "offline"}}
    for status, code in (("completed", 0), ("pruned", 0), ("preempted", 0), ("failed", 1), ("diverged", 1)):
        calls.clear()
        m = WandbMirror(TrackingConfig(), run_dir=run_dir, run_key=run_dir.name, group="s", config=cfg,
                        tags=["mine"], start_epoch=3, history=history)
        m.finish(status)
        init = calls[0][1]
        assert init["id"] == run_dir.name and init["resume"] == "allow" and init["group"] == "s"
        assert init["config"]["run_key"] == run_dir.name and init["config"]["seed"] == 4
        assert init["tags"] == ["run_key:abcdef012345", "sweep:s", "attention:se", "seed:4", "mine"]
        assert [c[1] for c in calls if c[0] == "log"] == [0, 1, 2]   # no W&B segment yet: whole history
        assert calls[-1] == ("finish", code) and (("preempting",) in calls) == (status == "preempted")
    m = WandbMirror(TrackingConfig(group="g"), run_dir=run_dir, run_key=run_dir.name, group="s", config=cfg)
    assert calls[-1][1]["group"] == "g"
    assert WandbMirror(TrackingConfig(mode="disabled"), run_dir=run_dir, run_key="k", group=None, config={}).id is None
    assert tags_for("k", {"seed": 0, "attention": {"kind": "none"}}) == ["run_key:k", "attention:none", "seed:0"]
    with pytest.raises(ValueError, match=r"tracking.group=''; allowed: null"):
        TrackingConfig(group="")


def test_train_multirun_gets_one_group_per_invocation():
    from ablate.cli import multirun_group

    args = multirun_group(["-m", "seed=0,1"])
    assert args[:2] == ["-m", "seed=0,1"] and args[2].startswith("++tracking.group=train-m-") and len(args) == 3
    assert multirun_group(["seed=0"]) == ["seed=0"]
    assert multirun_group(["-m", "seed=0,1", "sweep=mine"]) == ["-m", "seed=0,1", "sweep=mine"]
    assert multirun_group(["--multirun", "tracking.group=g"]) == ["--multirun", "tracking.group=g"]
