"""Plots: top-1 vs a knob with error bars, top-1 vs MAdds with the Pareto front (from records and
from an Optuna study), per-epoch curves; PNG and PDF written."""
from __future__ import annotations

import numpy as np
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


def curves_store(spec, recs) -> InMemoryStore:
    """A store with three epochs per run of every metric the spec's curves draw (and val_top1),
    rising to the run's final value."""
    store = InMemoryStore()
    curves = {p.y for p in spec.plots or [] if p.kind == "curves"} | {"val_top1"}
    for r in recs:
        final = r.get("miou") if r.get("miou") is not None else r["top1"]
        for e in range(3):
            store.append_metrics(r["run_key"], {"epoch": e, **{y: final * (e + 1) / 3 for y in curves}})
    return store


def _branches(seeds=(0, 1, 2), top1=None, madds=None):
    """Records of the branches table's six cells (labelled as the table names them), their
    metrics in a store, and the report's style built from the table."""
    from ablate.report.cells import setting_labels
    from ablate.report.plots import SettingStyle, label_settings
    from ablate.report.spec import load_table_spec
    from tests.report._synth import records_for

    spec = load_table_spec("branches")
    top1 = top1 or (lambda i, seed: (75.4, 75.6, 74.7, 76.3, 81.0, 99.9)[i] + seed)
    madds = madds or (0.708, 0.709, 0.766, 0.740, 0.740, 0.772)  # baseline and SE almost on top of each other
    recs = records_for(spec, seeds=seeds, top1=top1)
    for r in recs:
        r["madds"] = madds[int(r["run_key"][1])] * 1e6
    recs = label_settings(recs, setting_labels(spec, recs))
    store = curves_store(spec, recs)
    return spec, recs, store, SettingStyle().add_table(spec, recs)


def _legend_labels(ax):
    return [t.get_text().split(" (n=")[0] for t in ax.get_legend().get_texts()]


def test_one_colour_per_setting_shared_by_every_plot_legends_in_table_order():
    from matplotlib.colors import to_hex

    spec, recs, store, style = _branches()
    rows = [r.label for r in spec.rows]
    curves = plot_curves(recs, store.metrics, "val_top1", style=style)
    pareto = plot_pareto(recs, "madds", "top1", series="attention.kind", style=style)
    assert _legend_labels(curves.axes[0]) == rows  # table order, not alphabetical
    assert [s for s in _legend_labels(pareto.axes[0]) if s in rows] == rows
    line_colour = {ln.get_label().split(" (n=")[0]: to_hex(ln.get_color()) for ln in curves.axes[0].lines}
    mean_colour = {c.get_label().split(" (n=")[0]: to_hex(c.get_facecolor()[0]) for c in pareto.axes[0].collections
                   if c.get_label().split(" (n=")[0] in rows}
    assert line_colour == mean_colour and len(set(line_colour.values())) == len(rows)
    assert line_colour == {r: to_hex(style.colour(r)) for r in rows}
    # the style is the report's: the same label gets the same colour in a later table of the report
    assert style.colour("+ CA (H+W)") == style.colour(rows[-1]) and style.order(["+ SE", "zzz", rows[0]]) == [rows[0], "+ SE", "zzz"]


def test_table_columns_share_their_row_colour_and_take_a_marker():
    from ablate.report.plots import SettingStyle
    from ablate.report.spec import load_table_spec
    from tests.report._synth import records_for

    spec = load_table_spec("attention_widths")
    style = SettingStyle().add_table(spec, records_for(spec, seeds=(0,)))
    assert style.colour("+ SE / ×1.0") == style.colour("+ SE / ×0.5") != style.colour("+ CA / ×1.0")
    assert style.marker("+ SE / ×1.0") == style.marker("+ CA / ×1.0") != style.marker("+ SE / ×0.5")


def _overlaps(boxes):
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def test_pareto_labels_do_not_overlap():
    """Baseline and SE sit almost on one point (the labels used to print over each other): every
    setting is still labelled, no two labels' rendered boxes overlap, none leaves the axes."""
    from matplotlib.text import Text

    from ablate.report.plots import text_boxes

    _, recs, _, style = _branches()
    fig = plot_pareto(recs, "madds", "top1", series="attention.kind", style=style)
    fig.canvas.draw()
    labels = fig.ablate_labels
    assert sorted(t.get_text() for t in labels) == sorted(r for r in style.order({r["setting"] for r in recs}))
    boxes = text_boxes(fig, labels)
    assert not _overlaps(boxes)
    ax_box = fig.axes[0].get_window_extent()
    assert all(ax_box.x0 <= b.x0 and b.x1 <= ax_box.x1 and ax_box.y0 <= b.y0 and b.y1 <= ax_box.y1 for b in boxes)
    # no label covers a setting's mean marker
    ax = fig.axes[0]
    means = [ax.transData.transform(c.get_offsets()[0]) for c in ax.collections if " (n=" in str(c.get_label())]
    assert not [m for m in means for b in boxes if b.contains(*m)]
    # the scene is a real test: the old fixed offset (4, 3) put the two labels on each other
    naive = [ax.annotate(t.get_text(), t.xy, xytext=(4, 3), textcoords="offset points", fontsize=7) for t in labels]
    assert _overlaps([Text.get_window_extent(t, fig.canvas.get_renderer()) for t in naive])


def test_tuning_pareto_labels_only_the_front_without_overlap():
    """A study's 30 trials, most of them in a pile: only the front is labelled, none overlap."""
    from ablate.report.plots import MAX_LABELLED, text_boxes

    recs, rng = [], np.random.default_rng(0)
    for i in range(30):
        r, m = (2, 4, 8, 16, 32, 64)[i % 6], 2 + 2 * (i // 6)
        recs.append(record(f"t{i}", {"attention.kind": "ca", "attention.reduction": r, "attention.min_mid": m}, 0,
                           70 + rng.normal(0, 2), madds=(10 + 2 / r + 0.05 * m + rng.normal(0, 0.01)) * 1e6))
    fig = plot_pareto(recs, "madds", "top1", study_objectives={"top1": "maximize", "madds": "minimize"})
    fig.canvas.draw()
    from ablate.report.plots import completed_frame

    df, _ = completed_frame(recs)
    assert df["setting"].nunique() > MAX_LABELLED
    on_front = pareto_front(df.assign(madds=df["madds"] / 1e6), "madds", "top1")["setting"]
    labels = [t.get_text() for t in fig.ablate_labels]
    assert sorted(labels) == sorted(on_front) and 1 < len(labels) < 10
    assert not _overlaps(text_boxes(fig, fig.ablate_labels))
    assert fig.axes[0].get_legend().get_texts()[-1].get_text().startswith("Optuna study front")
    assert len(fig.axes[0].get_legend().get_texts()) == 2  # single runs, the front: no 30-entry legend


def test_captions_say_what_the_bands_and_bars_are():
    from ablate.report.plots import caption_of

    _, recs, store, style = _branches()
    cap = caption_of(plot_curves(recs, store.metrics, "val_top1", style=style))
    assert "bands: ± 1 std over the seeds (n = 3 seeds per setting)" in cap and "mean" in cap
    cap = caption_of(plot_pareto(recs, "madds", "top1", style=style))
    assert "mean over its seeds (n = 3 seeds per setting)" in cap and "Pareto front of the setting means" in cap
    cap = caption_of(plot_metric_vs(reduction_records(), x="attention.reduction", y="top1", series="attention.kind"))
    assert "error bars: ± 1 std over the seeds (n = 3 seeds per setting" in cap
    uneven = [r for r in recs if r["run_key"] != "c0s2"]  # the baseline with 2 seeds
    cap = caption_of(plot_curves(uneven, store.metrics, "val_top1", style=style))
    assert "n = 2–3 seeds per setting" in cap


def test_metric_vs_a_table_row_key_colours_each_point_by_its_setting():
    """Top-1 vs r with one table row per r: the line is neutral, each point its row's colour."""
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex

    from ablate.report.cells import setting_labels
    from ablate.report.plots import SettingStyle, label_settings
    from ablate.report.spec import load_table_spec

    spec = load_table_spec("reduction")
    recs = reduction_records()
    recs = label_settings(recs, setting_labels(spec, recs))
    style = SettingStyle().add_table(spec, recs)
    fig = plot_metric_vs(recs, x="attention.reduction", y="top1", series="attention.kind", style=style)
    ax = fig.axes[0]
    points = {tuple(c.get_offsets()[0]): to_hex(c.get_facecolor()[0]) for c in ax.collections
              if isinstance(c, PathCollection) and len(c.get_offsets()) == 1}
    assert points == {(r, mu): to_hex(style.colour(lab)) for r, mu, lab in
                      ((4, 70.0, "r = 4"), (8, 72.0, "r = 8"), (16, 71.0, "r = 16"), (32, 74.0, "r = 32 (official)"))}
    assert _legend_labels(ax)[1:] == ["r = 4", "r = 8", "r = 16", "r = 32 (official)"]


def test_save_figure_keeps_150_dpi_and_fits_the_report_width(tmp_path):
    from PIL import Image

    from ablate.report.plots import FIG_DPI, MAX_WIDTH_PX
    import matplotlib.pyplot as plt

    small, wide = plt.figure(figsize=(5, 3)), plt.figure(figsize=(14, 3))
    for fig in (small, wide):
        fig.add_subplot().plot([0, 1], [0, 1])
    with Image.open(save_figure(small, tmp_path, "small")[0]) as im:
        assert im.info["dpi"][0] == pytest.approx(FIG_DPI, abs=0.5) and im.size[0] < MAX_WIDTH_PX
    with Image.open(save_figure(wide, tmp_path, "wide")[0]) as im:
        assert MAX_WIDTH_PX - 30 <= im.size[0] <= MAX_WIDTH_PX


@pytest.mark.parametrize("name", __import__("ablate.report.spec", fromlist=["list_tables"]).list_tables())
def test_every_shipped_plot_draws_with_a_caption_and_no_overlapping_labels(name):
    """Each spec's plots (but attention maps and masks, which need checkpoints) on synthetic runs of
    every cell: drawn with the report's style, captioned, labels apart, legends in table order."""
    import matplotlib.pyplot as plt

    from ablate.report.cells import setting_labels
    from ablate.report.figures import make_figure
    from ablate.report.plots import SettingStyle, caption_of, label_settings, text_boxes
    from ablate.report.spec import load_table_spec
    from tests.report._synth import records_for

    spec = load_table_spec(name)
    recs = records_for(spec, seeds=(0, 1))
    for i, r in enumerate(recs):
        r["madds"] = (300 + i % 7) * 1e6
    store = curves_store(spec, recs)
    recs = label_settings(recs, setting_labels(spec, recs))
    style = SettingStyle().add_table(spec, recs)
    table_order = list(style.order({r["setting"] for r in recs}))
    for plot in spec.plots or []:
        if plot.kind in ("attention_maps", "masks"):  # drawn from checkpoints (their own tests)
            continue
        fig = make_figure(plot, recs, store, None, style)
        fig.canvas.draw()
        assert "± 1 std" in caption_of(fig) or plot.kind == "pareto"
        assert "seeds per setting" in caption_of(fig)
        assert not _overlaps(text_boxes(fig, getattr(fig, "ablate_labels", [])))
        shown = [s for s in _legend_labels(fig.axes[0]) if s in table_order]
        assert shown == [s for s in table_order if s in shown]
        plt.close(fig)
