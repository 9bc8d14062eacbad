"""Traceable cells: the CSV and the HTML report list the runs (keys, seeds, commits) behind each
cell and what they were made with; `ablate table` before any run says so in one line and exits
non-zero; without a manifest, missing runs are counted from the sweep file's seeds."""
from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from ablate.report import build_table, load_table_spec
from ablate.report.formats.csv import to_csv
from ablate.track.store import RunDirStore
from tests.report._synth import record

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40 + "+dirty"


def reduction_runs(seeds_by_r: dict[int, list[int]]) -> list[dict]:
    """Records of the reduction table's cells (r -> seeds), with their provenance fields."""
    recs = []
    for r, seeds in seeds_by_r.items():
        for seed in seeds:
            rec = record(f"r{r}s{seed}", {"attention.kind": "ca", "attention.reduction": r}, seed,
                         70.0 + r / 8 + seed, sweep="reduction", git_commit=COMMIT_B if seed == 2 else COMMIT_A,
                         torch="2.13.0", device="cpu", threads=1 + (seed == 2), cpu="Test CPU", host=f"node{seed}")
            recs.append(rec)
    return recs


def test_csv_lists_each_cells_run_keys_commits_and_other_runs():
    recs = reduction_runs({4: [2, 0, 1], 8: [0, 1], 16: [0], 32: [0, 1, 2]})
    recs[3]["status"], recs[3]["top1"] = "failed", None  # r = 8, seed 0
    spec = load_table_spec("reduction")
    expected = [{"run_key": r["run_key"], "config": r["config"]} for r in recs]
    expected.append({"run_key": "r16s1", "config": {**recs[5]["config"], "seed": 1}})  # planned, never ran
    csv = pd.read_csv(io.StringIO(to_csv(build_table(spec, recs, expected))), dtype=str).set_index("setting")
    assert csv.loc["r = 4", "run_keys"] == "r4s0 r4s1 r4s2"  # in seed order, what the mean averages
    assert csv.loc["r = 4", "git_commits"] == f"{COMMIT_A} {COMMIT_B}"
    assert csv.loc["r = 8", "run_keys"] == "r8s1" and csv.loc["r = 8", "other_runs"] == "r8s0:failed"
    assert csv.loc["r = 16", "run_keys"] == "r16s0" and csv.loc["r = 16", "other_runs"] == "r16s1:missing"
    assert pd.isna(csv.loc["r = 32 (official)", "other_runs"])
    assert csv.loc["r = 32 (official)", "git_commits"] == f"{COMMIT_A} {COMMIT_B}"


def test_table_before_any_run_says_so_in_one_line_and_exits_1(home, capsys):
    from ablate.cli import main

    assert main(["table", "reduction"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "no run of sweep 'reduction'" in err and "sweeps/reduction.yaml plans 12: 4 settings x 3 seeds" in err
    assert "ablate sweep reduction" in err
    assert not (home / "outputs" / "tables").exists()  # no empty table written


def test_table_before_any_run_with_a_manifest_counts_its_runs(home, capsys):
    from ablate.cli import main
    from ablate.track.manifest import SweepManifest

    runs = [{"run_key": r["run_key"], "overrides": [], "config": r["config"]}
            for r in reduction_runs({4: [0, 1], 8: [0, 1], 16: [0, 1], 32: [0, 1]})]  # launched, nothing finished
    SweepManifest("reduction", "grid", table="reduction", runs_dir=str(home / "outputs" / "runs"),
                  runs=runs).write(home / "outputs" / "sweeps")
    assert main(["table", "reduction"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its manifest lists 8 runs" in err, err


def test_without_a_manifest_missing_runs_are_counted_from_the_sweep_files_seeds(home, capsys):
    """The sweep file has 3 seeds: a cell with none of them lacks 3, not "1 missing"."""
    from ablate.cli import main

    store = RunDirStore(home / "outputs" / "runs")
    for rec in reduction_runs({4: [0, 1, 2], 8: [0], 32: [0, 1, 2, 7]}):  # seed 7: an extra seed, not a hole
        store.put(rec)
    assert main(["table", "reduction", "--format", "csv"]) == 0
    assert "3 missing" in capsys.readouterr().out
    csv = pd.read_csv(home / "outputs" / "tables" / "reduction.csv").set_index("setting")
    assert csv["missing"].to_dict() == {"r = 4": 0, "r = 8": 2, "r = 16": 3, "r = 32 (official)": 0}
    assert csv.loc["r = 32 (official)", "n"] == 4


def test_report_has_a_provenance_section_with_each_cells_runs(home):
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths

    store = RunDirStore(home / "outputs" / "runs")
    recs = reduction_runs({4: [0, 1, 2], 8: [0, 1], 16: [0], 32: [0, 1, 2]})
    recs[3]["status"], recs[3]["top1"] = "failed", None  # r = 8, seed 0
    for rec in recs:
        store.put(rec)
    page = build_report("reduction", store=store, paths=project_paths(), out_dir=home / "report").read_text()
    prov = page[page.index('<h2 id="provenance">'):]
    assert "9 runs with a record" in prov
    for text in (f"<code>{COMMIT_A}</code> (7 runs)", f"<code>{COMMIT_B}</code> (2 runs)", "<code>2.13.0</code> (9 runs)",
                 "<code>cpu</code> (9 runs)", "<code>1</code> (7 runs)", "<code>2</code> (2 runs)", "<code>Test CPU</code>",
                 "<code>node0</code> (4 runs)"):
        assert text in prov, text
    cells = dict(re.findall(r"<tr><td>(r = [^<]+)</td>(.*?)</tr>", prov))
    assert set(cells) == {"r = 4", "r = 8", "r = 16", "r = 32 (official)"}
    assert re.search(r"<td>3</td><td>seed 0: <code>r4s0</code> <code>a{12}</code>, seed 1: <code>r4s1</code>"
                     r" <code>a{12}</code>, seed 2: <code>r4s2</code> <code>b{12}\+dirty</code></td><td>–</td>", cells["r = 4"])
    assert "<td>1</td><td>seed 1: <code>r8s1</code>" in cells["r = 8"] and "<code>r8s0</code> failed" in cells["r = 8"]


@pytest.mark.parametrize("name", ["branches", "ca_act"])
def test_every_shipped_table_says_no_run_yet(home, capsys, name):
    from ablate.cli import main

    assert main(["table", name]) == 1
    err = capsys.readouterr().err
    seeds = {"branches": "6 settings x 10 seeds", "ca_act": "5 settings x 3 seeds"}[name]
    assert f"no run of sweep {name!r}" in err and seeds in err, err
