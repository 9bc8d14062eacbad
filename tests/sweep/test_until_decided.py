"""`ablate sweep NAME --until-decided` end to end on a tiny grid (real runs), and how it picks
the cells that get more seeds."""
from __future__ import annotations

import json

import pytest

from ablate.cli import main
from ablate.report.sequential import Design
from ablate.report.until_decided import CellState, next_seeds
from tests.helpers import TINY

pytestmark = pytest.mark.slow

TABLE = """\
title: tiny
sweep: seq
rows:
  - {label: plain, where: {attention.kind: none}}
  - {label: ca, where: {attention.kind: ca}}
baseline: plain
metrics:
  - {key: top1, label: Top-1, aggregate: mean_std, delta: true}
formats: [md, csv]
"""


@pytest.fixture
def sweep(tmp_path):
    (tmp_path / "tiny_table.yaml").write_text(TABLE)
    path = tmp_path / "seq.yaml"
    path.write_text(f"table: {tmp_path / 'tiny_table.yaml'}\ngrid:\n  attention: [none, ca]\nseeds: [0, 1]\n")
    return path


def manifest(home):
    return json.loads((home / "outputs" / "sweeps" / "seq" / "manifest.json").read_text())


def result_mtimes(home):
    return {p.parent.name: p.stat().st_mtime_ns for p in (home / "outputs" / "runs").glob("*/result.json")}


def test_undecided_cells_grow_to_the_limit_then_the_table_says_how(home, sweep, capsys):
    args = ["sweep", str(sweep), "--until-decided", "--max-seeds", "4", "--step", "1", *TINY]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs planned, 4 to run before the next look" in out and not result_mtimes(home)
    assert main(args) == 0
    out = capsys.readouterr().out
    seq = manifest(home)["sequential"]
    # chance-level tiny runs: nothing is decided early, so both cells went 2 -> 3 -> 4 seeds
    assert sorted(map(sorted, seq["seeds"].values())) == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert [r["ca"]["n"] for r in seq["rounds"]] == [2, 3, 4] and seq["rounds"][-1]["ca"]["decision"] == "not shown"
    assert seq["tracks"]["ca"] == pytest.approx([0.5, 0.75, 1.0])
    assert len(manifest(home)["runs"]) == 8 and len(result_mtimes(home)) == 8
    assert "Sequential: seeds added in rounds until decided" in out and "ca: not shown at n = 4" in out
    # the CSV carries the level each comparison was tested at and its decision
    import pandas as pd

    csv = pd.read_csv(home / "outputs" / "tables" / "tiny_table.csv").set_index("setting")
    assert csv.loc["ca", "decision"] == "not shown" and 0.02 < csv.loc["ca", "top1_alpha"] < 0.05
    # a relaunch resumes the same procedure: nothing to train, same seeds
    before = result_mtimes(home)
    assert main(args) == 0
    assert result_mtimes(home) == before and manifest(home)["sequential"]["seeds"] == seq["seeds"]
    # the dry run now shows each comparison's look and what would come next
    assert main([*args, "--dry-run"]) == 0
    assert "not shown" in capsys.readouterr().out
    # a different design would void the error rate of the looks already taken
    assert main(["sweep", str(sweep), "--until-decided", "--max-seeds", "6", *TINY]) == 2
    assert "max_seeds=4" in capsys.readouterr().err


def test_a_decided_comparison_gets_no_more_seeds(home, sweep):
    # a margin wider than any possible difference: "no effect" is decided at the first look
    assert main(["sweep", str(sweep), "--until-decided", "--max-seeds", "4", "--margin", "150", "--no-table", *TINY]) == 0
    seq = manifest(home)["sequential"]
    assert sorted(map(sorted, seq["seeds"].values())) == [[0, 1], [0, 1]] and len(seq["rounds"]) == 1
    assert seq["rounds"][0]["ca"]["decision"] == "no effect"


def test_bad_sequential_options_are_one_line(home, sweep, capsys):
    for extra, word in [(["--max-seeds", "1"], "--max-seeds"), (["--alpha", "2"], "--alpha"),
                        (["--spending", "fast"], "--spending"), (["--step", "0"], "--step")]:
        assert main(["sweep", str(sweep), "--until-decided", *extra, *TINY]) == 2
        err = capsys.readouterr().err
        assert word in err and err.count("\n") == 1
    assert not (home / "outputs" / "runs").exists()


def test_next_seeds_go_to_undecided_cells_and_their_baseline_only():
    g = {"base": {"attention=none"}, "a": {"attention=se"}, "b": {"attention=ca"}}
    state = {"seeds": {"attention=none": [0, 1, 2], "attention=se": [0, 1, 2], "attention=ca": [0, 1, 2]}}
    states = [CellState("a", "base", 3, 3, 0.4, 0.01, "undecided"), CellState("b", "base", 3, 3, 1e-4, 0.01, "effect")]
    add = next_seeds(states, g, state, Design(max_seeds=4), step=2)
    assert add == {"attention=none": [3], "attention=se": [3]}  # capped at 4 seeds; "b" is decided
    assert next_seeds([CellState("b", "base", 3, 3, 1e-4, 0.01, "effect")], g, state, Design(), 2) == {}
