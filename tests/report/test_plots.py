"""Plots: top-1 vs a knob with error bars, top-1 vs MAdds with the Pareto front (from records and
from an Optuna study), per-epoch curves; PNG and PDF written."""
from __future__ import annotations

import pandas as pd
import pytest

from ablate.report.plots import pareto_front, plot_curves, plot_metric_vs, plot_pareto, save_figure
from ablate.track.store import InMemoryStore
from tests.report._synth import record


def reduction_records():
    recs = []
    for r, mu in ((4, 70.0), (8, 72.0), (16, 71.0), (32, 74.0)):
        for s, dx in enumerate((-1.0, 0.0, 1.0)):
            recs.append(record(f"r{r}s{s}", {"attention.kind": "ca", "attention.reduction": r}, s, mu + dx,
                               madds=(10 + 40 / r) * 1e6))
    recs.append(record("bad", {"attention.kind": "ca", "attention.reduction": 8}, 9, 5.0, status="diverged"))
    return recs


def test_metric_vs_knob_has_mean_and_std_error_bars(tmp_path):
    fig = plot_metric_vs(reduction_records(), x="attention.reduction", y="top1", series="attention.kind")
    ax = fig.axes[0]
    line = ax.lines[0]
    assert list(line.get_xdata()) == [4, 8, 16, 32]
    assert list(line.get_ydata()) == pytest.approx([70.0, 72.0, 71.0, 74.0])  # the diverged run is not averaged
    segs = [c for c in ax.collections if hasattr(c, "get_segments")][0].get_segments()
    assert [s[1][1] - s[0][1] for s in segs] == pytest.approx([2.0] * 4)  # +- 1 sample std (ddof=1)
    png, pdf = save_figure(fig, tmp_path, "r")
    assert png.stat().st_size > 5_000 and pdf.stat().st_size > 2_000


def test_pareto_front_is_the_non_dominated_set():
    pts = pd.DataFrame({"x": [1, 2, 2, 3, 4, 5], "y": [50, 60, 55, 58, 70, 70]}, index=list("abcdef"))
    assert list(pareto_front(pts, "x", "y").index) == ["a", "b", "e"]  # c, d dominated by b; f by e


def test_pareto_plot_draws_the_front_of_setting_means(tmp_path):
    fig = plot_pareto(reduction_records(), "madds", "top1", series="attention.kind")
    front = [ln for ln in fig.axes[0].lines if "front" in ln.get_label()][0]
    # settings: r=32 (11.25M, 74), r=16 (12.5, 71), r=8 (15, 72), r=4 (20, 70): front is r=32 only
    assert list(front.get_xdata()) == pytest.approx([11.25]) and list(front.get_ydata()) == pytest.approx([74.0])
    assert save_figure(fig, tmp_path, "p")[0].stat().st_size > 5_000


def test_pareto_front_of_a_study_is_its_completed_trials():
    # one trial per run; directions from the study's manifest: max top-1, min MAdds
    recs = [{**r, "status": "completed"} for r in reduction_records()]
    objectives = {"top1": "maximize", "madds": "minimize"}
    fig = plot_pareto(recs, "madds", "top1", study_objectives=objectives)
    line = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("Optuna study front")][0]
    runs = pd.DataFrame(recs)
    want = pareto_front(runs.assign(madds=runs["madds"] / 1e6), "madds", "top1")
    assert list(line.get_xdata()) == pytest.approx(list(want["madds"]))
    # directions the front does not model (max MAdds): the front of setting means instead
    fig = plot_pareto(recs, "madds", "top1", study_objectives={"top1": "maximize", "madds": "maximize"})
    assert any(ln.get_label() == "Pareto front of setting means" for ln in fig.axes[0].lines)


def test_curves_mean_over_seeds_per_setting(tmp_path):
    store = InMemoryStore()
    recs = reduction_records()[:6]  # r=4 and r=8, 3 seeds each
    for rec in recs:
        for e in range(3):
            store.append_metrics(rec["run_key"], {"epoch": e, "val_top1": rec["top1"] * (e + 1) / 3})
    fig = plot_curves(recs, store.metrics, "val_top1", series="attention.reduction")
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert set(lines) == {"reduction=4 (n=3)", "reduction=8 (n=3)"}
    assert list(lines["reduction=8 (n=3)"].get_ydata()) == pytest.approx([24.0, 48.0, 72.0])
    assert save_figure(fig, tmp_path, "c")[1].suffix == ".pdf"
    with pytest.raises(ValueError, match="no per-epoch rows with 'val_top5'"):
        plot_curves(recs, store.metrics, "val_top5")


def test_unknown_plot_keys_name_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown x key 'attention\.ratio'; allowed: .*attention\.reduction"):
        plot_metric_vs(reduction_records(), x="attention.ratio")
    with pytest.raises(ValueError, match=r"unknown metric 'acc'; allowed: .*top1"):
        plot_pareto(reduction_records(), y="acc")
