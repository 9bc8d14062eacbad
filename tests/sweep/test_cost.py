"""The dry-run's compute estimate (``ablate.sweep.cost``): scheduling over the launcher's
parallelism, which runs count as the same cell, and end to end on the tiny net: after a
2-seed sweep, the estimate for a new seed of the same cells (from the finished runs) against
what running that seed then took."""
from __future__ import annotations

import re
import textwrap

import pytest

from ablate.sweep.cost import RunCost, cell_of, parallelism, processes, wall_seconds
from ablate.sweep.launchers import get_launcher
from tests.helpers import TINY


def test_wall_time_spreads_runs_longest_first():
    costs = [RunCost(str(i), s, 1, "finished") for i, s in enumerate((10, 10, 10, 30))]
    assert wall_seconds(costs, 1) == 60
    assert wall_seconds(costs, 2) == 30          # 30 | 10+10+10
    assert wall_seconds(costs, 8) == 30          # never below the longest run
    assert wall_seconds([], 4) == 0


def test_device_seconds_count_processes():
    cfg = {"trainer": {"devices": 2}, "launcher": {"name": "slurm", "nodes": 3}}
    assert processes(cfg) == 6
    assert RunCost("k", 100.0, processes(cfg), "madds").device_seconds == 600.0
    assert processes({"trainer": {}, "launcher": {"name": "local"}}) == 1


def test_parallelism_of_each_launcher(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parallelism(get_launcher({"name": "local"})) == 1
    assert parallelism(get_launcher({"name": "parallel", "workers": 3})) == 3
    assert parallelism(get_launcher({"name": "parallel", "workers": 1, "runs_per_gpu": 4})) == 4  # 4 CPU slots
    assert parallelism(get_launcher({"name": "ray", "workers": 5})) == 5
    assert parallelism(get_launcher({"name": "slurm", "array_parallelism": 16})) == 16


def test_cell_ignores_seed_and_sweep_only():
    a = cell_of(["attention=ca", "model.width=0.5", "seed=0", "sweep=s"])
    assert a == cell_of(["attention=ca", "model.width=0.5", "seed=7", "sweep=s"])
    assert a != cell_of(["attention=ca", "model.width=1.0", "seed=0", "sweep=s"])


SWEEP_FILE = None  # set by the end-to-end test
SWEEP = """\
description: cost estimate test
overrides: [{tiny}, data.n_train=512, trainer.epochs=2, trainer.checkpoint=false]
grid:
  attention: [none, ca]
seeds: [0, 1]
"""


def _estimate(capsys, seeds) -> tuple[float, str]:
    from ablate.commands import sweep

    capsys.readouterr()
    assert sweep(str(SWEEP_FILE), [], seeds=seeds, dry_run=True) == 0
    out = capsys.readouterr().out
    m = re.search(r"compute left: (\d+) runs?, ([0-9.e+-]+) device-hours; wall (\S+) on launcher local", out)
    assert m, out
    return float(m.group(2)) * 3600, out


@pytest.mark.slow
def test_estimate_of_a_new_seed_from_finished_runs_is_within_30_percent(home, capsys, monkeypatch):
    from ablate.commands import sweep

    global SWEEP_FILE
    SWEEP_FILE = home / "costtest.yaml"
    SWEEP_FILE.write_text(textwrap.dedent(SWEEP).format(tiny=", ".join(TINY)))
    monkeypatch.chdir(home)
    # A first run in this process pays one-off import and warm-up costs; not what a run costs.
    sweep(str(SWEEP_FILE), ["data.n_train=256", "trainer.epochs=1"], seeds=[9], table=False)

    # Before any run of these cells: from MAdds at a throughput measured here (the tiny net).
    before, out = _estimate(capsys, [0, 1])
    assert "4 from MAdds x images x epochs" in out and before > 0
    assert sweep(str(SWEEP_FILE), [], seeds=[0, 1], table=False) == 0
    capsys.readouterr()
    assert sweep(str(SWEEP_FILE), [], seeds=[0, 1], dry_run=True) == 0
    assert "compute left: none (every run is final)" in capsys.readouterr().out

    ratios = []
    for seed in (2, 3):  # a second new seed only if the first lands outside (a noisy shared machine)
        est, out = _estimate(capsys, [0, 1, seed])
        assert "2 from finished runs of their cell" in out and "from MAdds" not in out
        assert sweep(str(SWEEP_FILE), [], seeds=[0, 1, seed], table=False) == 0
        recs = [rec for rec in _records(home) if rec.seed == seed and rec.sweep == "costtest"]
        assert len(recs) == 2 and all(r.status == "completed" for r in recs)
        assert all(r.device_seconds == pytest.approx(r.seconds) for r in recs)  # one process each
        assert all(r.device_kind.startswith("CPU") for r in recs)
        actual = sum(r.device_seconds for r in recs)
        ratios.append(est / actual)
        print(f"seed {seed}: estimated {est:.2f} device-s, took {actual:.2f} (MAdds estimate before any run: "
              f"{before / 4 * 2:.2f})")
        if abs(est / actual - 1) <= 0.30:
            break
    assert abs(ratios[-1] - 1) <= 0.30, f"estimate / actual per try: {ratios}"


def _records(home):
    from ablate.config import paths_config
    from ablate.track.store import RunDirStore

    return list(RunDirStore(paths_config([]).runs_dir).records())
