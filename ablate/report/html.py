"""``ablate report <sweep>``: one self-contained HTML page with every table and plot of a sweep.

The page has inline CSS, no scripts and no external resources; plots are embedded as base64
PNG (the PDF twins and every table format are written beside it). Tables are the specs in
``analysis/`` whose ``sweep`` is this sweep, plus the sweep file's own ``table:``; plots are each spec's ``plots`` (default: per-epoch
curves and the top-1 vs MAdds Pareto plot). A plot that cannot be drawn (no completed run, no
checkpoint for the attention maps) is reported on the page with its reason, not dropped.
"""
from __future__ import annotations

import base64
import html
import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

from ablate.errors import ConfigError
from ablate.report.cells import setting_labels
from ablate.report.plots import label_settings
from ablate.report.formats import write_table
from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats.html import html_page, to_html
from ablate.report.sources import open_store, project_paths, read_sweep_manifest, reports_dir, sweep_records
from ablate.report.spec import PlotSpec, analysis_dir, list_tables, tables_for_sweep
from ablate.report.figures import make_figure
from ablate.report.table import build_table
from ablate.track.manifest import SweepManifest
from ablate.track.store import ResultsStore, RunDirStore

log = logging.getLogger("ablate")
DEFAULT_PLOTS = [PlotSpec(kind="curves", y="val_top1"), PlotSpec(kind="pareto", x="madds", y="top1")]
REPORT_CSS = """
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
figure { display: inline-block; margin: 0.6em 1em 0.6em 0; vertical-align: top; }
figure img { max-width: 760px; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #555; }
p.skipped { color: #a00; font-size: 0.9em; }
p.meta { color: #555; font-size: 0.85em; }
"""


def known_sweeps(paths: Any) -> list[str]:
    """Sweeps a report can be built for: named by a table spec, or with a manifest."""
    from ablate.report.spec import load_table_spec

    named = {load_table_spec(n).sweep for n in list_tables()} - {None}
    sweeps_dir = Path(paths.sweeps_dir)
    planned = set(SweepManifest.launched(sweeps_dir))
    return sorted(named | planned)


def build_report(sweep: str, *, store: Union[None, str, ResultsStore] = None, paths: Any = None,
                 out_dir: Optional[Path] = None) -> Path:
    """Write ``<out_dir>/report.html`` (default ``<output_dir>/reports/<sweep>/``); return it."""
    paths = paths if paths is not None else project_paths()
    specs = tables_for_sweep(sweep)
    manifest = read_sweep_manifest(paths, sweep)
    own = manifest.table if manifest is not None else None  # the sweep file's own `table:`, recorded at launch
    if own and all(s.name != own and not own.endswith(f"/{s.name}.yaml") for s in specs):
        from ablate.report.spec import load_table_spec

        specs = [load_table_spec(own), *specs]
    if not specs and manifest is None:
        raise ConfigError(f"unknown sweep {sweep!r} (no table spec names it, no manifest in {paths.sweeps_dir}); "
                         f"allowed: {', '.join(known_sweeps(paths)) or '(none)'}")
    st = open_store(store, paths, manifest)
    out_dir = Path(out_dir) if out_dir is not None else reports_dir(paths) / sweep
    records, expected = sweep_records(st, sweep, manifest)
    statuses = Counter(r.get("status", "unknown") for r in records)
    planned = len(expected) if expected is not None else len(records)
    parts = [f"<h1>Sweep {html.escape(sweep)}</h1>",
             f"<p class=\"meta\">{planned} planned runs; "
             + ", ".join(f"{c} {html.escape(str(s))}" for s, c in sorted(statuses.items()))
             + (f", {planned - len(records)} missing" if planned > len(records) else "")
             + f". Source: {html.escape(_describe(st))}. Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.</p>"]
    for spec in specs or [None]:
        recs, exp = (records, expected) if spec is None else sweep_records(st, sweep, manifest, spec.where)
        if spec is not None:
            table = build_table(spec, recs, exp, sequential=manifest.sequential if manifest is not None else None)
            write_table(table, out_dir / "tables", formats=TABLE_FORMATS.names())
            where = f"analysis/{spec.name}.yaml" if (Path(analysis_dir()) / f"{spec.name}.yaml").is_file() else f"{spec.name}.yaml"
            parts += [f"<h2>Table {html.escape(spec.name)} ({html.escape(where)})</h2>", to_html(table)]
            recs = label_settings(recs, setting_labels(spec, recs))  # plots name settings like the table
        else:
            parts.append("<h2>Runs</h2><p>No table spec in analysis/ names this sweep; plots only.</p>")
        for i, plot in enumerate((spec.plots if spec is not None else []) or DEFAULT_PLOTS):
            name = f"{spec.name if spec else sweep}-{i}-{plot.kind}"
            parts.append(_figure_html(name, plot, recs, st, out_dir / "plots", manifest))
    page = html_page(f"ablate report: {sweep}", "\n".join(parts), REPORT_CSS)
    out = out_dir / "report.html"
    from ablate.io import atomic_write

    atomic_write(out, lambda fh: fh.write(page))
    return out


def _describe(store: ResultsStore) -> str:
    return f"run dirs in {store.root}" if isinstance(store, RunDirStore) else type(store).__name__


def _figure_html(name: str, plot: PlotSpec, records: list[dict], store: ResultsStore, plot_dir: Path,
                 manifest: Optional[SweepManifest] = None) -> str:
    """Draw one plot, save PNG + PDF, and return a <figure> with the PNG inlined."""
    try:
        fig = make_figure(plot, records, store, manifest)
    except ValueError as exc:
        log.warning("report: plot %s skipped: %s", name, exc)
        return f"<p class=\"skipped\">Plot {html.escape(name)} not drawn: {html.escape(str(exc))}</p>"
    from ablate.report.plots import save_figure

    png, pdf = save_figure(fig, plot_dir, name)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f"<figure><img alt=\"{html.escape(name)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{html.escape(plot.title or name)} (files: {png.name}, {pdf.name})</figcaption></figure>")
