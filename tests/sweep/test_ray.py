"""The ray launcher on a private local Ray instance: a grid and a 2-worker study."""
from __future__ import annotations

import json

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray); the ray launcher is optional")


def test_grid_and_study_through_ray(home, tmp_path, capsys):
    sweep = tmp_path / "g.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0, 1]\n")
    assert main(["sweep", str(sweep), "--no-table", "launcher=ray", *TINY]) == 0
    recs = [json.loads(p.read_text()) for p in (home / "outputs" / "runs").glob("*/result.json")]
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs)
    assert not ray.is_initialized()  # the private instance was stopped

    study = tmp_path / "s.yaml"
    study.write_text("kind: optuna\noverrides: [attention=ca]\npruner: none\n"
                     "search: {optim.lr: {type: float, low: 0.01, high: 0.5, log: true}}\nn_trials: 4\n")
    assert main(["tune", str(study), "launcher=ray", "--workers", "2", *TINY]) == 0
    assert "study s: 4/4 trials complete=4" in capsys.readouterr().out
    assert len(list((home / "outputs" / "runs").glob("*/result.json"))) == 8
