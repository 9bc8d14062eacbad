"""End to end on tiny data: sweep -> runs -> table; a relaunch re-trains nothing."""
from __future__ import annotations

import json

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def results(home):
    runs = home / "outputs" / "runs"
    return {p.parent.name: p for p in runs.glob("*/result.json")}


def test_branches_sweep_two_seeds_table_and_idempotent_relaunch(home, capsys):
    assert main(["sweep", "branches", "--seeds", "0,1", *TINY]) == 0
    out = capsys.readouterr().out
    res = results(home)
    assert len(res) == 6 * 2
    records = [json.loads(p.read_text()) for p in res.values()]
    assert all(r["status"] == "completed" for r in records), [r["message"] for r in records]
    assert {r["config"]["attention"].get("branches") for r in records if r["config"]["attention"]["kind"] == "ca"} == {"h", "w", "hw"}
    for r in records:
        assert r["params"] > 0 and r["madds"] > 0 and 0 <= r["top1"] <= 100 and r["git_commit"] is not None
        assert (home / "outputs" / "runs" / r["run_key"] / "checkpoint.pt").exists()
    # the table: printed, and written as Markdown and CSV with one row per setting and n = 2
    assert "Branches ablation" in out and "+ CA (H+W)" in out
    md = (home / "outputs" / "tables" / "branches.md").read_text()
    assert sum(ln.startswith("| ") for ln in md.splitlines()) == 2 + 6  # header, separator, 6 rows
    import pandas as pd

    csv = pd.read_csv(home / "outputs" / "tables" / "branches.csv")
    assert list(csv["n"]) == [2] * 6 and csv["missing"].sum() == 0
    ca_params = csv.set_index("setting").loc["+ CA (H+W)", "params_mean"]
    assert ca_params > csv.set_index("setting").loc["MobileNetV2 (baseline)", "params_mean"]

    # relaunch: every run is found by its key and nothing is re-trained
    mtimes = {k: p.stat().st_mtime_ns for k, p in res.items()}
    assert main(["sweep", "branches", "--seeds", "0,1", *TINY]) == 0
    assert {k: p.stat().st_mtime_ns for k, p in results(home).items()} == mtimes


def test_interrupted_sweep_finishes_only_missing_runs(home):
    args = ["sweep", "branches", "--seeds", "0", "--no-table", *TINY]
    assert main(args) == 0
    res = results(home)
    # Simulate a sweep killed before two runs finished: their results never got written.
    lost = sorted(res)[:2]
    for key in lost:
        res[key].unlink()
    kept = {k: p.stat().st_mtime_ns for k, p in res.items() if k not in lost}
    assert main(args) == 0
    after = results(home)
    assert set(after) == set(res)
    assert {k: after[k].stat().st_mtime_ns for k in kept} == kept  # finished runs untouched
