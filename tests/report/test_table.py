"""Tables from synthetic records: values, std, n, and holes that are shown, never dropped."""
from __future__ import annotations

import math

import pytest

from ablate.report import build_table, load_table_spec
from ablate.report.spec import TableSpec
from ablate.report.formats import write_table
from ablate.report.formats.md import to_markdown
from ablate.report.kinds import TABLE_FORMATS


def record(key, kind, seed, top1, status="completed", branches="hw", params=3.95e6):
    return {"run_key": key, "status": status, "top1": top1 if status == "completed" else None,
            "params": params, "madds": 310.5e6,
            "config": {"seed": seed, "attention": {"kind": kind, "branches": branches}}}


SPEC = TableSpec(
    name="t", title="T", rows=[{"label": "none", "where": {"attention.kind": "none"}},
                               {"label": "CA", "where": {"attention.kind": "ca"}},
                               {"label": "SE", "where": {"attention.kind": "se"}}],
    metrics=[{"key": "params", "label": "Params (M)", "scale": 1e-6, "fmt": ".2f", "aggregate": "mean"},
             {"key": "top1", "label": "Top-1 (%)", "fmt": ".2f"}],
)


def test_mean_std_n():
    recs = [record("a", "none", 0, 70.0), record("b", "none", 1, 72.0), record("c", "none", 2, 74.0),
            record("d", "ca", 0, 80.0), record("e", "ca", 1, 81.0), record("f", "se", 0, 75.0)]
    t = build_table(SPEC, recs)
    v = t.values.set_index("setting")
    assert v.loc["none", "top1_mean"] == pytest.approx(72.0)
    assert v.loc["none", "top1_std"] == pytest.approx(2.0)  # sample std, ddof=1
    assert v.loc["none", "n"] == 3 and v.loc["CA", "n"] == 2
    assert math.isnan(v.loc["SE", "top1_std"])  # one seed: no std claimed
    d = t.display.set_index("Settings")
    assert d.loc["none", "Top-1 (%)"] == "72.00 ± 2.00" and d.loc["SE", "Top-1 (%)"] == "75.00"
    assert d.loc["CA", "Params (M)"] == "3.95"
    assert not t.has_holes


def test_failed_diverged_missing_are_marked():
    recs = [record("a", "none", 0, 70.0), record("b", "none", 1, None, status="diverged"),
            record("c", "ca", 0, None, status="failed")]
    expected = [{"run_key": k, "config": r["config"]} for k, r in zip("abc", recs)]
    expected.append({"run_key": "zz", "config": {"seed": 1, "attention": {"kind": "ca", "branches": "hw"}}})
    t = build_table(SPEC, recs, expected=expected)
    v = t.values.set_index("setting")
    assert v.loc["none", "n"] == 1 and v.loc["none", "not_completed"] == 1
    assert v.loc["CA", "n"] == 0 and v.loc["CA", "missing"] == 1 and "1 failed" in v.loc["CA", "notes"]
    assert v.loc["SE", "missing"] == 0 or v.loc["SE", "n"] == 0
    labels = list(t.display["Settings"])
    assert labels[0].endswith("*") and labels[1].endswith("*")
    assert "1 diverged" in t.display.loc[0, "Notes"] and "1 missing" in t.display.loc[1, "Notes"]
    assert t.display.loc[1, "Top-1 (%)"] == "–"
    assert t.has_holes and "did not complete" in to_markdown(t)


def test_row_without_any_run_is_a_hole_without_manifest():
    t = build_table(SPEC, [record("a", "none", 0, 70.0)])
    v = t.values.set_index("setting")
    assert v.loc["SE", "missing"] == 1 and t.display.loc[2, "Settings"] == "SE*"


def test_records_outside_the_manifest_are_ignored():
    recs = [record("a", "none", 0, 70.0), record("old", "none", 1, 10.0)]
    t = build_table(SPEC, recs, expected=[{"run_key": "a", "config": recs[0]["config"]}])
    assert t.values.set_index("setting").loc["none", "top1_mean"] == 70.0


def test_write_md_and_csv(tmp_path):
    t = build_table(SPEC, [record("a", "none", 0, 70.0)])
    paths = write_table(t, tmp_path)
    assert sorted(p.suffix for p in paths) == [".csv", ".md"]
    md = (tmp_path / "t.md").read_text()
    assert "| Settings | Params (M) | Top-1 (%) | n | Notes |" in md and "70.00" in md
    import pandas as pd

    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv["setting"]) == ["none", "CA", "SE"]


@pytest.mark.parametrize("bad, msg", [
    ({"formats": ["pdf"]}, f"unknown format 'pdf'; allowed: {', '.join(TABLE_FORMATS.names())}"),
    ({"rows": []}, "rows is empty"),
    ({"metrics": [{"key": "top1", "label": "x", "aggregate": "median"}]}, "aggregate 'median'; allowed"),
])
def test_bad_spec_values(bad, msg):
    kw = {"name": "t", "rows": SPEC.rows, "metrics": SPEC.metrics, **bad}
    with pytest.raises(ValueError, match=msg):
        TableSpec(**kw)


def test_every_shipped_spec_validates():
    from ablate.report import list_tables

    names = list_tables()
    assert "branches" in names
    for name in names:
        spec = load_table_spec(name)
        assert spec.rows or spec.row_key.values, name


def test_unknown_spec_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown table spec 'nope'; allowed: .*branches"):
        load_table_spec("nope")
