"""GPU packing on a machine without GPUs: runs_per_gpu=K runs K processes at once on CPU."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def test_runs_per_gpu_2_on_cpu_runs_two_at_once_and_finishes_a_4_run_grid(home, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CI has no GPU; make sure of it
    sweep = tmp_path / "grid4.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0, 1]\n")
    # ~2 s runs, so that two concurrent runs overlap by more than the seconds resolution of result.json
    assert main(["sweep", str(sweep), "--no-table", "launcher=parallel", "launcher.runs_per_gpu=2", *TINY,
                 "data.n_train=1024", "trainer.epochs=2"]) == 0
    recs = [json.loads(p.read_text()) for p in (home / "outputs" / "runs").glob("*/result.json")]
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs)
    spans = sorted((datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"])) for r in recs)
    # Timestamps are whole seconds; sequential runs would give start_next >= finish_prev. A start
    # strictly before another run's finish proves two ran at once.
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]
    assert overlapping, spans
    # ... and never three at once: K=2 workers
    for start, _ in spans:
        assert sum(s <= start < e for s, e in spans) <= 2, spans
