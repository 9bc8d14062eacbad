"""A segmentation run killed with kill -9 after its first epoch's checkpoint resumes on relaunch
to the metrics of the unbroken run."""
from __future__ import annotations

import json
import time

import pytest

from tests.helpers import TINY
from tests.segmentation.test_segmentation import SEG
from tests.test_faults import ablate, kill_group, start

pytestmark = pytest.mark.slow


def test_segmentation_resumes_after_kill_9(tmp_path):
    over = [*TINY, *SEG, "trainer.epochs=3", "data.n_train=256", "attention=ca"]
    whole = ablate(tmp_path / "a", "train", *over)
    assert whole.returncode == 0, whole.stderr[-2000:]
    (ref,) = [json.loads(p.read_text()) for p in (tmp_path / "a" / "outputs" / "runs").glob("*/result.json")]
    home = tmp_path / "b"
    proc = start(home, "train", *over)
    runs = home / "outputs" / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(runs.glob("*/checkpoint.pt")):
        time.sleep(0.05)
    kill_group(proc)  # kill -9 after the first checkpoint, before the end
    assert any(runs.glob("*/checkpoint.pt"))
    again = ablate(home, "train", *over)
    assert again.returncode == 0, again.stderr[-2000:]
    (rec,) = [json.loads(p.read_text()) for p in runs.glob("*/result.json")]
    assert rec["status"] == "completed" and rec["run_key"] == ref["run_key"]
    if rec["resumed_from"] is None:
        pytest.skip("the run finished before the kill on this machine")
    assert rec["resumed_from"] >= 1
    assert rec["miou"] == ref["miou"] and rec["loss"] == ref["loss"] and rec["iou"] == ref["iou"]
