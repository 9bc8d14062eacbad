"""A run key's numbers do not depend on the launcher: every record says what its numbers were
made under (threads, device, CPU, torch), and a table cell mixing them says so."""
from __future__ import annotations

import json

import pytest

from ablate.cli import main
from ablate.report import build_table
from ablate.report.spec import TableSpec
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def test_a_run_records_the_numerics_it_was_made_under(home):
    assert main(["train", *[o for o in TINY if not o.startswith("trainer.threads")], "trainer.threads=2"]) == 0
    rec = json.loads(next((home / "outputs" / "runs").glob("*/result.json")).read_text())
    assert rec["threads"] == 2 and rec["device"] == "cpu" and rec["cpu"] and rec["torch"].startswith("2.")


def test_a_cell_mixing_numerics_says_so():
    spec = TableSpec(name="t", rows=[{"label": "a", "where": {"attention.kind": "ca"}}],
                     metrics=[{"key": "top1", "label": "Top-1"}])
    recs = [{"run_key": f"k{s}", "status": "completed", "top1": 70.0 + s, "seed": s, "threads": t, "device": "cpu",
             "torch": "2.13.0", "config": {"attention": {"kind": "ca"}, "seed": s}} for s, t in ((0, 1), (1, 2), (2, 2))]
    notes = build_table(spec, recs).display["Notes"].iloc[0]
    assert notes == "numerics differ: threads 1, 2"
    same = [{**r, "threads": 1} for r in recs]
    assert build_table(spec, same).display["Notes"].iloc[0] == ""
