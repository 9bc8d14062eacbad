"""Sweep state is relocatable and only a real launch changes it: a moved outputs/ still finds
its runs, --dry-run writes nothing, and another --seeds adds to the sweep instead of making it
forget its finished runs."""
from __future__ import annotations

import json
import shutil

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow

GRID = "grid: {attention: [none, ca]}\nseeds: [0]\n"


def _sweep(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(GRID)
    return str(path)


def manifest(home):
    return home / "outputs" / "sweeps" / "two" / "manifest.json"


def test_a_moved_outputs_tree_still_finds_its_runs(tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("ABLATE_HOME", str(first))
    assert main(["sweep", _sweep(tmp_path), "--no-table", *TINY]) == 0
    assert not json.loads(manifest(first).read_text())["runs_dir"].startswith("/")
    shutil.move(str(first), str(second))
    monkeypatch.setenv("ABLATE_HOME", str(second))
    capsys.readouterr()
    assert main(["status", "two"]) == 0
    assert "completed 2" in capsys.readouterr().out
    assert main(["sweep", _sweep(tmp_path), "--dry-run", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.count("completed") == 2 and "missing" not in out


def test_dry_run_changes_nothing(home, tmp_path):
    sweep = _sweep(tmp_path)
    assert main(["sweep", sweep, "--dry-run", *TINY]) == 0
    assert not manifest(home).exists()
    assert main(["sweep", sweep, "--no-table", *TINY]) == 0
    before = manifest(home).read_bytes()
    assert main(["sweep", sweep, "--dry-run", "--seeds", "5,6", *TINY]) == 0
    assert manifest(home).read_bytes() == before


def test_other_seeds_add_to_the_sweep(home, tmp_path, capsys):
    sweep = _sweep(tmp_path)
    assert main(["sweep", sweep, "--no-table", *TINY]) == 0
    assert main(["sweep", sweep, "--no-table", "--seeds", "1", *TINY]) == 0
    runs = json.loads(manifest(home).read_text())["runs"]
    assert sorted(int(o.split("=")[1]) for r in runs for o in r["overrides"] if o.startswith("seed=")) == [0, 0, 1, 1]
    capsys.readouterr()
    assert main(["status", "two"]) == 0
    assert "completed 4" in capsys.readouterr().out
    # other overrides are another study: its runs replace the list (the old runs stay on disk)
    assert main(["sweep", sweep, "--no-table", *TINY, "trainer.epochs=2"]) == 0
    assert len(json.loads(manifest(home).read_text())["runs"]) == 2
    assert len(list((home / "outputs" / "runs").glob("*/result.json"))) == 6
