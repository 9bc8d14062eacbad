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
from ablate.report.plots import SettingStyle, label_settings
from ablate.report.formats import write_table
from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats.html import html_page, to_html
from ablate.report.compute import total_text
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
figure { display: inline-table; margin: 0.6em 1em 0.6em 0; vertical-align: top; }
figure img { display: block; border: 1px solid #ddd; }
figcaption { display: table-caption; caption-side: bottom; font-size: 0.85em; color: #444; padding-top: 0.3em; }
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
             + f". Source: {html.escape(_describe(st))}. Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}."
             + (f" {html.escape(compute)}." if (compute := total_text(records)) else "") + "</p>"]
    built = []  # the tables, for the provenance section (the runs behind each cell)
    style = SettingStyle()  # one colour per setting, legends in table order: shared by every plot of the page
    for spec in specs or [None]:
        recs, exp = (records, expected) if spec is None else sweep_records(st, sweep, manifest, spec.where)
        if spec is not None:
            table = build_table(spec, recs, exp, sequential=manifest.sequential if manifest is not None else None)
            write_table(table, out_dir / "tables", formats=TABLE_FORMATS.names())
            built.append(table)
            where = f"analysis/{spec.name}.yaml" if (Path(analysis_dir()) / f"{spec.name}.yaml").is_file() else f"{spec.name}.yaml"
            parts += [f"<h2>Table {html.escape(spec.name)} ({html.escape(where)})</h2>", to_html(table)]
            recs = label_settings(recs, setting_labels(spec, recs))  # plots name settings like the table
            style.add_table(spec, recs)
        else:
            parts.append("<h2>Runs</h2><p>No table spec in analysis/ names this sweep; plots only.</p>")
        for i, plot in enumerate((spec.plots if spec is not None else []) or DEFAULT_PLOTS):
            name = f"{spec.name if spec else sweep}-{i}-{plot.kind}"
            parts.append(_figure_html(name, plot, recs, st, out_dir / "plots", manifest, style))
    parts.append(provenance_html(records, built))
    page = html_page(f"ablate report: {sweep}", "\n".join(parts), REPORT_CSS + PROVENANCE_CSS)
    out = out_dir / "report.html"
    from ablate.io import atomic_write

    atomic_write(out, lambda fh: fh.write(page))
    return out


def _describe(store: ResultsStore) -> str:
    return f"run dirs in {store.root}" if isinstance(store, RunDirStore) else type(store).__name__


def _figure_html(name: str, plot: PlotSpec, records: list[dict], store: ResultsStore, plot_dir: Path,
                 manifest: Optional[SweepManifest] = None, style: Optional[SettingStyle] = None) -> str:
    """Draw one plot, save PNG + PDF, and return a <figure> with the PNG inlined at its own pixel
    size (width/height attributes: never scaled down) and the figure's caption."""
    try:
        fig = make_figure(plot, records, store, manifest, style)
    except ValueError as exc:
        log.warning("report: plot %s skipped: %s", name, exc)
        return f"<p class=\"skipped\">Plot {html.escape(name)} not drawn: {html.escape(str(exc))}</p>"
    from PIL import Image

    from ablate.report.plots import caption_of, save_figure, title_of

    caption, title = caption_of(fig), plot.title or title_of(fig)
    png, pdf = save_figure(fig, plot_dir, name)
    with Image.open(png) as im:
        width, height = im.size
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    text = ". ".join(t for t in (title.rstrip("."), caption) if t) or name
    return (f"<figure><img alt=\"{html.escape(name)}\" width=\"{width}\" height=\"{height}\" "
            f"src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{html.escape(text)} (files: {png.name}, {pdf.name})</figcaption></figure>")


# --- provenance: what every number was made with --------------------------------------------
PROVENANCE = (("git_commit", "git commit"), ("torch", "torch"), ("device", "device"), ("threads", "threads"),
              ("cpu", "CPU"), ("host", "host"))
PROVENANCE_CSS = """
table.provenance { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.provenance th, table.provenance td { padding: 0.2em 0.7em; text-align: left; vertical-align: top; border-bottom: 1px solid #ddd; }
table.provenance code { font-size: 0.95em; }
"""


def provenance_html(records: list, tables: list) -> str:
    """The report's provenance section: the commits, torch versions, devices, thread counts, CPUs
    and hosts of the sweep's runs (with how many runs each), then, per table, the runs behind
    each cell (seed, run key and commit of every completed run; the others with their status),
    so any number on the page can be traced to its run dirs."""
    recs = [r for r in records if r.get("status") is not None]
    rows = []
    for key, label in PROVENANCE:
        counts = Counter("unknown" if r.get(key) is None else str(r.get(key)) for r in recs)
        shown = "; ".join(f"<code>{html.escape(v)}</code> ({c} run{'s' if c != 1 else ''})" for v, c in counts.most_common())
        rows.append(f"<tr><th>{label}</th><td>{shown or '–'}</td></tr>")
    parts = ["<h2 id=\"provenance\">Provenance</h2>",
             f"<p class=\"meta\">{len(recs)} runs with a record. A run's files are in its run dir, named by its run key; "
             "a commit ending in +dirty had uncommitted changes.</p>",
             "<table class=\"provenance\"><tbody>" + "".join(rows) + "</tbody></table>"]
    by_key = {r.get("run_key"): r for r in recs}
    for table in tables:
        body = []
        for _, v in table.values.iterrows():
            cell = str(v["setting"]) + (f" / {v['column']}" if "column" in v and isinstance(v["column"], str) else "")
            done = [k for k in str(v.get("run_keys") or "").split() if k]
            runs = ", ".join(f"{_seed(by_key.get(k))}: <code>{html.escape(k)}</code>{_short_commit(by_key.get(k))}"
                             for k in done)
            other = ", ".join(f"<code>{html.escape(k)}</code> {html.escape(st)}" for k, _, st in
                              (o.rpartition(":") for o in str(v.get("other_runs") or "").split()))
            body.append(f"<tr><td>{html.escape(cell)}</td><td>{len(done)}</td><td>{runs or '–'}</td><td>{other or '–'}</td></tr>")
        parts.append(f"<h3>Runs behind each cell of table {html.escape(table.spec.name)}</h3>"
                     "<table class=\"provenance\"><thead><tr><th>cell</th><th>n</th><th>completed runs (seed: run key, commit)</th>"
                     "<th>other runs</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    return "\n".join(parts)


def _seed(rec: Any) -> str:
    seed = None if rec is None else rec.get("seed")
    return "seed ?" if seed is None else f"seed {seed}"


def _short_commit(rec: Any) -> str:
    commit = None if rec is None else rec.get("git_commit")
    if not commit:
        return ""
    head, dirty = (commit[:-6], "+dirty") if commit.endswith("+dirty") else (commit, "")
    return f" <code>{html.escape(head[:12] + dirty)}</code>"
