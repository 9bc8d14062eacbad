"""The figures a report draws: one ``PLOT_KINDS`` entry per ``kind`` a table spec's ``plots`` names.

Each kind is ``draw(plot, records, store, manifest, style) -> matplotlib Figure`` (``style``: the
report's ``plots.SettingStyle``, one colour per setting and legends in table order, shared by
all its plots; None: a fresh one) and may attach a caption (``plots.set_caption``); it raises a
``ConfigError`` with the reason when it cannot be drawn (no completed run, no checkpoint): the
report shows the reason instead of the figure. The drawing code (matplotlib, models) is imported
only when a figure is drawn, so specs validate their plot kinds without it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ablate.report.kinds import PLOT_KINDS

if TYPE_CHECKING:
    from ablate.report.plots import SettingStyle
    from ablate.report.spec import PlotSpec
    from ablate.track.manifest import SweepManifest
    from ablate.track.store import ResultsStore


def make_figure(plot: "PlotSpec", records: list, store: "ResultsStore", manifest: Optional["SweepManifest"] = None,
                style: Optional["SettingStyle"] = None):
    """The matplotlib figure of ``plot`` over ``records``."""
    return PLOT_KINDS.get(plot.kind)(plot, records, store, manifest, style)


@PLOT_KINDS.register("metric_vs")
def metric_vs(plot, records, store, manifest, style=None):
    """A metric against a config key (``x``), one line per ``series``."""
    from ablate.report import plots

    return plots.plot_metric_vs(records, plot.x, plot.y, plot.series, plot.where, plot.title, style)


@PLOT_KINDS.register("pareto")
def pareto(plot, records, store, manifest, style=None):
    """``y`` against ``x`` (MAdds) per run and setting, with the front (a study's, from its manifest)."""
    from ablate.report import plots

    study = manifest is not None and manifest.kind == "optuna"
    objectives = dict(zip(manifest.objectives or [], manifest.directions or [])) if study else None
    return plots.plot_pareto(records, plot.x or "madds", plot.y, plot.series, plot.where, plot.title,
                             study_objectives=objectives, style=style)


@PLOT_KINDS.register("curves")
def curves(plot, records, store, manifest, style=None):
    """A per-epoch metric per setting, mean ± std over seeds (from each run's metrics.jsonl)."""
    from ablate.report import plots

    y = "val_top1" if plot.y == "top1" else plot.y  # metrics.jsonl names the per-epoch top-1 val_top1
    return plots.plot_curves(records, store.metrics, y, plot.series, plot.where, plot.title, style)


@PLOT_KINDS.register("masks")
def masks(plot, records, store, manifest, style=None):
    """Segmentation: predicted masks beside the ground truth on validation images, one column per
    setting (its median-mIoU run's checkpoint; ablate/report/seg_masks.py)."""
    from ablate.report.seg_masks import plot_masks

    return plot_masks(records, store, plot.where, style)


@PLOT_KINDS.register("attention_maps")
def attention_maps(plot, records, store, manifest, style=None):
    """Each attention setting's spatial gate and block output on one validation image per class,
    from the checkpoint of the setting's median run (named in the caption)."""
    from ablate.report.attention_maps import attention_runs, plot_attention_maps

    return plot_attention_maps(attention_runs(records, store, plot.where, style), style=style)
