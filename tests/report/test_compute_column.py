"""A table spec's ``compute: true``: device-hours per cell summed over its recorded runs (every
status), a total in the footnote, older records from seconds x world_size, bad combinations."""
from __future__ import annotations

import pytest

from ablate.errors import ConfigError
from ablate.report import build_table
from ablate.report.compute import total_text
from ablate.report.spec import TableSpec
from tests.report._synth import record

ROWS = [{"label": "base", "where": {"attention.kind": "none"}},
        {"label": "ca", "where": {"attention.kind": "ca"}}]
METRICS = [{"key": "top1", "label": "Top-1", "fmt": ".2f", "delta": True}]


def spec(**kw) -> TableSpec:
    return TableSpec(**{"name": "t", "rows": ROWS, "metrics": METRICS, "baseline": "base", **kw})


def records() -> list[dict]:
    out = []
    for s, secs in enumerate((1800.0, 3600.0)):  # base: 0.5 h + 1 h
        out.append(record(f"b{s}", {"attention.kind": "none"}, s, 70.0 + s, device_seconds=secs, seconds=secs))
    # ca: a completed 2-process run of 900 s wall (0.5 device-h), a failed one (spent 0.25 h),
    # and an older record without device_seconds: seconds x world_size = 600 x 3 (0.5 h)
    out.append(record("c0", {"attention.kind": "ca"}, 0, 72.0, device_seconds=1800.0, seconds=900.0, world_size=2))
    out.append(record("c1", {"attention.kind": "ca"}, 1, None, status="failed", device_seconds=900.0, seconds=900.0))
    out.append(record("c2", {"attention.kind": "ca"}, 2, 73.0, seconds=600.0, world_size=3))
    return out


def test_compute_column_sums_every_recorded_run_and_totals():
    t = build_table(spec(compute=True), records())
    col = "Compute (device-h)"
    shown = dict(zip(t.display["Settings"].str.rstrip("*"), t.display[col]))
    assert shown == {"base": "1.500", "ca": "1.250"}
    sums = dict(zip(t.values["setting"], t.values["device_seconds_sum"]))
    assert sums["base"] == pytest.approx(1.5) and sums["ca"] == pytest.approx(1.25)
    note = next(n for n in t.footnotes if n.startswith(col))
    assert "total 2.750" in note
    assert "Top-1" in t.display.columns  # the spec's own metrics stay


def test_without_compute_no_column():
    t = build_table(spec(), records())
    assert "Compute (device-h)" not in t.display.columns
    assert not any(n.startswith("Compute") for n in t.footnotes)


def test_bad_compute_values():
    with pytest.raises(ConfigError, match="compute='yes'; allowed: true, false"):
        spec(compute="yes")
    with pytest.raises(ConfigError, match="delta does not go with aggregate sum"):
        spec(metrics=[*METRICS, {"key": "device_seconds", "label": "c", "aggregate": "sum", "delta": True}])


def test_report_total_text():
    recs = records()
    for r in recs:
        r["device_kind"] = "CPU X"
    text = total_text(recs)
    assert text == "Compute: 2.75 device-hours over 5 runs (CPU X)"
    assert total_text([{"status": "missing"}]) == ""
