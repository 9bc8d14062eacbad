"""One run (ablate.train.run) on tiny data: failures are recorded and retried, NaN is a
divergence, a checkpoint resumes to the same metrics, force keeps the previous run."""
from __future__ import annotations


import pytest

from tests.helpers import TINY

pytestmark = pytest.mark.slow


def test_failed_run_is_recorded_and_retried_not_lost(home, monkeypatch):
    from ablate.config import compose
    from ablate.train import run as run_mod

    cfg = compose([*TINY, "attention=ca"])
    calls = {"n": 0}
    real = run_mod._optimizer_factory

    def broken(optim):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return real(optim)

    monkeypatch.setattr(run_mod, "_optimizer_factory", broken)
    rec = run_mod.run(cfg)
    assert rec["status"] == "failed" and "disk on fire" in rec["message"]
    rec2 = run_mod.run(cfg)  # a failed run is retried on relaunch
    assert rec2["status"] == "completed"
    store = run_mod.prepare(cfg).store
    assert [a["status"] for a in store.attempts(rec2["run_key"])] == ["failed"]


def test_nan_loss_is_diverged_not_a_crash(home):
    from ablate.config import compose
    from ablate.train.run import run

    rec = run(compose([*TINY, "optim.lr=1e30"]))
    assert rec["status"] == "diverged" and "loss" in rec["message"]


def test_resume_from_checkpoint_gives_the_same_final_metrics(home, tmp_path):
    from ablate.config import compose
    from ablate.train.run import run
    import ablate.train.engine as eng

    over = [*TINY, "trainer.epochs=2", "attention=ca"]
    whole = run(compose([*over, "paths.root=" + str(tmp_path / "a")]))
    # Interrupt the second epoch of an identical run, then relaunch it.
    cfg_b = compose([*over, "paths.root=" + str(tmp_path / "b")])
    orig = eng.evaluate

    def stop_after_first_epoch(*a, **k):
        out = orig(*a, **k)
        eng.request_stop()
        return out

    eng.evaluate = stop_after_first_epoch
    try:
        rec = run(cfg_b)
    finally:
        eng.evaluate = orig
        eng.clear_stop()
    assert rec["status"] == "preempted" and rec["epochs"] == 1
    resumed = run(cfg_b)
    assert resumed["status"] == "completed" and resumed["resumed_from"] == 1
    assert resumed["top1"] == pytest.approx(whole["top1"]) and resumed["loss"] == pytest.approx(whole["loss"], rel=1e-5)


def test_force_keeps_the_previous_run(home):
    from ablate.config import compose
    from ablate.train.run import run

    first = run(compose(TINY))
    second = run(compose([*TINY, "force=true"]))
    assert second["run_key"] == first["run_key"]
    replaced = list((home / "outputs" / "runs" / "_replaced").glob(f"{first['run_key']}-*/result.json"))
    assert len(replaced) == 1
