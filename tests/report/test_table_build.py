"""Tables from synthetic records in a temporary store: values, std, n, deltas, significance
markers, bold positions, holes, pivots, pooled settings and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ablate.report import build_table, list_tables, load_table_spec
from ablate.report.spec import TableSpec
from ablate.report.table import NOT_COMPLETED_MARK, SIGNIFICANT_MARK
from ablate.track.store import InMemoryStore, RunDirStore
from ablate.report.kinds import PLOT_KINDS, TABLE_FORMATS
from tests.report._synth import record, records_for

ROWS = [{"label": "base", "where": {"attention.kind": "none"}},
        {"label": "clear", "where": {"attention.kind": "ca"}},
        {"label": "noise", "where": {"attention.kind": "se"}},
        {"label": "holes", "where": {"attention.kind": "cbam"}}]
METRICS = [{"key": "top1", "label": "Top-1", "fmt": ".2f", "best": "max", "delta": True},
           {"key": "latency_ms", "label": "ms", "fmt": ".1f", "best": "min"}]


def spec(**kw) -> TableSpec:
    return TableSpec(**{"name": "t", "rows": ROWS, "metrics": METRICS, "baseline": "base", **kw})


def synthetic_store(tmp_path) -> RunDirStore:
    """5 seeds per row: base ~ N(70, 0.5); clear ~ N(76, 0.5); noise drawn like base; holes:
    2 completed, 1 failed, 1 diverged (its top1 10.0 must not be averaged), 1 pruned."""
    rng = np.random.default_rng(7)
    store = RunDirStore(tmp_path / "runs")
    base, clear, noise = rng.normal(70, 0.5, 5), rng.normal(76, 0.5, 5), rng.normal(70, 0.5, 5)
    for s in range(5):
        store.put(record(f"b{s}", {"attention.kind": "none"}, s, float(base[s]), latency_ms=2.0))
        store.put(record(f"c{s}", {"attention.kind": "ca"}, s, float(clear[s]), latency_ms=3.0))
        store.put(record(f"n{s}", {"attention.kind": "se"}, s, float(noise[s]), latency_ms=2.0))
    store.put(record("h0", {"attention.kind": "cbam"}, 0, 71.0))
    store.put(record("h1", {"attention.kind": "cbam"}, 1, 73.0))
    store.put(record("h2", {"attention.kind": "cbam"}, 2, None, status="failed", message="boom"))
    store.put(record("h3", {"attention.kind": "cbam"}, 3, 10.0, status="diverged"))
    store.put(record("h4", {"attention.kind": "cbam"}, 4, 33.0, status="pruned"))
    return store


def test_values_std_n_deltas_markers_and_bold(tmp_path):
    store = synthetic_store(tmp_path)
    recs = list(store.records())
    t = build_table(spec(), recs)
    v = t.values.set_index("setting")
    by = {r["run_key"]: r["top1"] for r in recs}
    base = [by[f"b{s}"] for s in range(5)]
    clear = [by[f"c{s}"] for s in range(5)]
    assert v.loc["base", "top1_mean"] == pytest.approx(np.mean(base))
    assert v.loc["base", "top1_std"] == pytest.approx(np.std(base, ddof=1))
    assert list(v["n"]) == [5, 5, 5, 2]
    assert v.loc["clear", "top1_delta"] == pytest.approx(np.mean(clear) - np.mean(base))
    # a clear difference is marked, a pure-noise one is not
    assert v.loc["clear", "top1_p"] < 0.001 and v.loc["clear", "top1_significant"]
    assert v.loc["noise", "top1_p"] > 0.05 and not v.loc["noise", "top1_significant"]
    d = t.display.set_index("Settings")
    assert d.loc["clear", "Top-1"].endswith(f"{SIGNIFICANT_MARK})") and d.loc["clear", "Top-1"].count("(+") == 1
    assert SIGNIFICANT_MARK not in d.loc["noise", "Top-1"] and SIGNIFICANT_MARK not in d.loc["base", "Top-1"]
    assert d.loc["base", "Top-1"] == f"{np.mean(base):.2f} ± {np.std(base, ddof=1):.2f}"  # baseline: no delta
    # the delta's CI (Welch's t-interval, the test's own) brackets the delta and excludes 0 for the
    # clear row only, as its p-value says; it is clipped to the metric's span
    lo, hi = v.loc["clear", "top1_delta_ci_low"], v.loc["clear", "top1_delta_ci_high"]
    assert lo < v.loc["clear", "top1_delta"] < hi and lo > 0
    assert v.loc["noise", "top1_delta_ci_low"] < 0 < v.loc["noise", "top1_delta_ci_high"]
    assert v.loc["clear", "top1_estimand"] == "delta" and v.loc["clear", "top1_test"] == "welch"
    assert (v["top1_delta_ci_low"].dropna() >= -100).all() and (v["top1_ci_high"].dropna() <= 100).all()
    # bold: max top-1 is "clear"; min latency ties between base, noise and holes (2.0 ms)
    bold = t.bold.set_index(t.display["Settings"])
    assert bold["Top-1"].tolist() == [False, True, False, False]
    assert bold["ms"].tolist() == [True, False, True, True]
    assert any(SIGNIFICANT_MARK in n and "Welch" in n for n in t.footnotes)


def test_failed_diverged_pruned_are_marked_not_averaged(tmp_path):
    t = build_table(spec(), synthetic_store(tmp_path).records())
    v = t.values.set_index("setting")
    assert v.loc["holes", "top1_mean"] == pytest.approx(72.0)  # 71 and 73; diverged 10, pruned 33 excluded
    assert (v.loc["holes", "failed"], v.loc["holes", "diverged"], v.loc["holes", "pruned"]) == (1, 1, 1)
    assert v.loc["holes", "not_completed"] == 3 and v.loc["holes", "notes"] == "1 diverged, 1 failed, 1 pruned"
    labels = list(t.display["Settings"])
    assert labels == ["base", "clear", "noise", "holes" + NOT_COMPLETED_MARK]
    assert t.has_holes and any(n.startswith(NOT_COMPLETED_MARK) for n in t.footnotes)


def test_missing_runs_from_the_manifest_are_counted():
    recs = [record("a", {"attention.kind": "none"}, 0, 70.0), record("b", {"attention.kind": "none"}, 1, 71.0)]
    expected = [{"run_key": r["run_key"], "config": r["config"]} for r in recs]
    expected += [{"run_key": f"ca{s}", "config": {"seed": s, "attention": {"kind": "ca"}}} for s in range(3)]
    t = build_table(spec(rows=ROWS[:2]), recs, expected=expected)
    v = t.values.set_index("setting")
    assert v.loc["clear", "n"] == 0 and v.loc["clear", "missing"] == 3 and v.loc["clear", "notes"] == "3 missing"
    d = t.display.set_index("Settings")
    assert d.loc["clear*", "Top-1"] == "–" and d.loc["clear*", "n"] == "0"
    assert math.isnan(v.loc["clear", "top1_delta"])


def test_pivot_rows_by_key_columns_by_key_with_per_column_baseline():
    s = TableSpec(name="p", row_key={"key": "attention.kind", "values": ["none", "ca"]},
                  column_key={"key": "model.width", "values": [1.0, 0.5], "labels": {"1.0": "w1", "0.5": "w.5"}},
                  baseline="none", metrics=[{"key": "top1", "label": "Top-1", "best": "max", "delta": True}])
    recs = records_for(s, seeds=range(4), top1=lambda i, seed: [70, 60, 75, 61][i] + 0.1 * seed)
    t = build_table(s, recs)
    v = t.values.set_index(["setting", "column"])
    assert v.loc[("ca", "w1"), "top1_delta"] == pytest.approx(5.0)   # vs none at width 1.0 ...
    assert v.loc[("ca", "w.5"), "top1_delta"] == pytest.approx(1.0)  # ... and vs none at width 0.5
    assert list(t.display.columns[:4]) == [("Settings", ""), ("w1", "Top-1"), ("w1", "n"), ("w.5", "Top-1")]
    assert t.bold[("w1", "Top-1")].tolist() == [False, True] and t.bold[("w.5", "Top-1")].tolist() == [False, True]
    assert t.display[("w1", "n")].tolist() == ["4", "4"]


def test_row_key_values_are_discovered_when_not_listed():
    s = TableSpec(name="r", row_key={"key": "attention.reduction"}, metrics=[{"key": "top1", "label": "T"}])
    recs = [record(f"k{r}{sd}", {"attention.kind": "ca", "attention.reduction": r}, sd, 70.0) for r in (32, 8) for sd in (0, 1)]
    assert list(build_table(s, recs).values["setting"]) == ["8", "32"]


def test_pooling_different_settings_is_an_error_naming_the_keys():
    recs = [record("a", {"attention.kind": "ca", "attention.reduction": 8}, 0, 70.0),
            record("b", {"attention.kind": "ca", "attention.reduction": 32}, 1, 71.0),
            record("c", {"attention.kind": "none"}, 0, 65.0)]
    recs[1]["config"]["paths"] = {"root": "/elsewhere"}  # non-semantic keys may differ
    with pytest.raises(ValueError, match=r"cell 'clear'.*differ in attention\.reduction \(attention\.reduction: 32, 8\)") as e:
        build_table(spec(rows=ROWS[:2]), recs)
    assert "\n" not in str(e.value) and "paths" not in str(e.value)


def test_paired_test_uses_seed_pairs():
    # Seed effects of +-5 hide a consistent +0.5 gain from Welch; pairing by seed reveals it.
    seed_fx = [-5.0, 3.0, 0.0, 5.0, -3.0, 1.0]
    recs = [record(f"b{s}", {"attention.kind": "none"}, s, 70 + fx) for s, fx in enumerate(seed_fx)]
    recs += [record(f"c{s}", {"attention.kind": "ca"}, s, 70.5 + fx + 0.01 * s) for s, fx in enumerate(seed_fx)]
    welch = build_table(spec(rows=ROWS[:2]), recs).values.set_index("setting")
    paired = build_table(spec(rows=ROWS[:2], pair_by_seed=True), recs).values.set_index("setting")
    assert welch.loc["clear", "top1_p"] > 0.5 and not welch.loc["clear", "top1_significant"]
    assert paired.loc["clear", "top1_test"] == "ttest_rel" and paired.loc["clear", "top1_p"] < 0.001
    wil = build_table(spec(rows=ROWS[:2], pair_by_seed=True, test="wilcoxon"), recs).values.set_index("setting")
    assert wil.loc["clear", "top1_test"] == "wilcoxon" and wil.loc["clear", "top1_p"] == pytest.approx(0.03125)


def test_share_of_seeds_uses_fisher():
    m = [{"key": "top1", "label": "Solved", "aggregate": "share", "threshold": 90, "best": "max", "delta": True}]
    recs = [record(f"b{s}", {"attention.kind": "none"}, s, 33.0) for s in range(6)]
    recs += [record(f"c{s}", {"attention.kind": "ca"}, s, 99.0) for s in range(6)]
    recs += [record(f"n{s}", {"attention.kind": "se"}, s, 99.0 if s < 2 else 33.0) for s in range(6)]
    t = build_table(spec(rows=ROWS[:3], metrics=m), recs)
    d = t.display.set_index("Settings")["Solved"]
    assert d["base"] == "0/6" and d["clear"] == f"6/6 (+100 pp{SIGNIFICANT_MARK})" and d["noise"] == "2/6 (+33 pp)"
    v = t.values.set_index("setting")
    assert v.loc["clear", "top1_share_p"] == pytest.approx(0.0021645, rel=1e-3) and v.loc["clear", "top1_share_test"] == "fisher"
    # the share columns hold shares (not the top-1 mean), with the exact interval of each share
    assert v.loc["noise", "top1_share"] == pytest.approx(2 / 6) and v.loc["noise", "top1_share_hits"] == 2
    assert "top1_share_mean" not in v.columns and 0 < v.loc["noise", "top1_share_ci_low"] < 2 / 6 < v.loc["noise", "top1_share_ci_high"] < 1


def test_ci_column_and_in_memory_store():
    store = InMemoryStore()
    for s, x in enumerate([70.0, 72.0, 74.0]):
        store.put(record(f"b{s}", {"attention.kind": "none"}, s, x))
    t = build_table(spec(rows=ROWS[:1], ci=True), store.records())
    v = t.values.iloc[0]
    assert v["top1_ci_low"] == pytest.approx(72 - 4.302653 * 2 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2) * s / sqrt(n)
    assert t.display.iloc[0]["Top-1"] == "72.00 ± 2.00 [67.03, 76.97]"


@pytest.mark.parametrize("kw, msg", [
    ({"formats": ["pdf"]}, f"unknown format 'pdf'; allowed: {', '.join(TABLE_FORMATS.names())}"),
    ({"baseline": "nope"}, "unknown baseline 'nope'; allowed: base, clear, noise, holes"),
    ({"test": "anova"}, "unknown test 'anova'; allowed: auto, welch, mannwhitney, ttest_rel, wilcoxon"),
    ({"test": "wilcoxon"}, "test 'wilcoxon' is paired; set pair_by_seed"),
    ({"metrics": [{"key": "top1", "label": "x", "best": "biggest"}]}, "unknown best 'biggest'; allowed: max, min"),
    ({"metrics": [{"key": "top1", "label": "x", "aggregate": "share"}]}, "threshold goes with aggregate share"),
    ({"metrics": [{"key": "top1", "label": "x", "fmt": "zz"}]}, "bad fmt 'zz'"),
    ({"plots": [{"kind": "violin"}]}, f"unknown kind 'violin'; allowed: {', '.join(PLOT_KINDS.names())}"),
    ({"row_key": {"key": "attention.kind"}}, "give rows or row_key, not both"),
    ({"baseline": None}, "delta: true but baseline is not set"),
])
def test_bad_spec_values_name_the_allowed_ones(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        spec(**kw)


def test_unknown_metric_key_names_the_known_ones():
    bad = spec(metrics=[{"key": "top_1", "label": "x"}], baseline=None)
    with pytest.raises(ValueError, match=r"unknown metric key 'top_1'; allowed: .*latency_ms.*top1"):
        build_table(bad, [record("a", {"attention.kind": "none"}, 0, 70.0)])


@pytest.mark.parametrize("name", list_tables())
def test_every_shipped_spec_builds_from_synthetic_records(name):
    s = load_table_spec(name)
    if s.row_key is not None and s.row_key.values is None:
        pytest.skip(f"{name}: row_key values are discovered from runs")
    t = build_table(s, records_for(s))
    assert (t.values["n"] == 3).all() and not t.has_holes
    assert len(t.display) == (len(s.rows) or len(s.row_key.values))


def test_no_bold_when_every_cell_ties():
    recs = [record(f"{k}{s}", {"attention.kind": k}, s, 70.0 + s) for k in ("none", "ca") for s in range(2)]
    t = build_table(spec(rows=ROWS[:2]), recs)  # equal top-1 and latency in both rows
    assert not t.bold.to_numpy().any() and not any(n.startswith("Bold") for n in t.footnotes)


def _grid_sweeps_with_tables():
    from ablate.sweep import list_sweeps, load_sweep

    out = []
    for name in list_sweeps():
        s = load_sweep(name)
        if getattr(s, "kind", "grid") == "grid" and s.table in list_tables():
            out.append(name)
    return out


@pytest.mark.parametrize("sweep", _grid_sweeps_with_tables())
def test_every_sweep_fills_every_cell_of_its_table(sweep, home):
    """The sweep's composed run configs land in the table's cells: one setting per cell, n = seeds."""
    from ablate.config import compose, to_container
    from ablate.sweep import load_sweep
    from ablate.track.runkey import run_key

    sw = load_sweep(sweep)
    configs = [to_container(compose(o)) for o in sw.expand(["trainer.epochs=1"])]
    recs = [record(run_key(c), {}, c["seed"], 50.0 + i % 7) | {"config": c} for i, c in enumerate(configs)]
    t = build_table(load_table_spec(sw.table), recs, expected=[{"run_key": r["run_key"], "config": r["config"]} for r in recs])
    assert (t.values["n"] == len(sw.seeds)).all() and t.values["missing"].sum() == 0, t.values[["setting", "n"]]


def test_contrasts_test_rows_against_each_other_not_only_the_baseline(tmp_path):
    t = build_table(spec(contrasts=[["clear", "noise"], ["noise", "base"]]), synthetic_store(tmp_path).records())
    lines = [n for n in t.footnotes if " vs " in n]
    assert len(lines) == 2
    assert lines[0].startswith("clear vs noise, Top-1: +") and SIGNIFICANT_MARK in lines[0] and "95% CI [" in lines[0]
    assert lines[1].startswith("noise vs base") and SIGNIFICANT_MARK not in lines[1]
    with pytest.raises(ValueError, match="contrast .*allowed: two of base, clear"):
        spec(contrasts=[["clear", "nope"]])
