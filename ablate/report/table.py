"""Build a paper-style table from run records: mean ± std (n) per cell, deltas, significance.

Honesty rules: every cell says how many runs it averages (an ``n`` column per row or per column
group); runs that are missing, failed, diverged or pruned are counted in a ``Notes`` column,
the row is marked ``*`` and a footnote says so, never dropped silently; one cell never pools
different settings (``cells.check_one_setting``). Deltas against the baseline row carry a
dagger when the test over seeds gives p < alpha, and the CSV has the p-value and the delta's CI.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd

from ablate.errors import ConfigError
from ablate.report.compute import COMPUTE_KEY
from ablate.report.cells import RunFrame, check_one_setting, check_where_keys, layout
from ablate.report.spec import POWER_LABEL, POWER_SHORT, MetricSpec, TableSpec
from ablate.report.sequential import Design, decision, look_level
from ablate.track.record import METRICS, NUMERICS
from ablate.report.stats import Comparison, Summary, compare, seeds_for_power, summarize

NOT_COMPLETED_MARK = "*"
SIGNIFICANT_MARK = "†"
EMPTY = "–"
MISSING_STATUS = "missing"  # an expected run (sweep manifest) without a record
# Metrics every run record has (RunRecord's metric fields); any other numeric record key works too.
RESULT_METRICS = METRICS
TEST_NAMES = {
    "welch": "Welch's t-test over seeds (CI: Welch's t-interval)",
    "mannwhitney": "Mann-Whitney U test over seeds (CI: Hodges-Lehmann shift, inverted test)",
    "ttest_rel": "paired t-test, runs paired by seed (CI: paired t-interval)",
    "wilcoxon": "Wilcoxon signed-rank test, runs paired by seed (CI: Hodges-Lehmann, inverted test)",
    "fisher": "Fisher's exact test on the share, central p (CI: exact odds ratio)",
}


@dataclass
class Table:
    """A built table.

    Attributes:
        display: strings as printed; first column is the row header; MultiIndex columns
            (group, metric) when the spec pivots on ``column_key``.
        values: one row per cell with the numbers (CSV): n, holes, mean/std/CI per metric,
            delta, p-value, test and the delta's CI.
        bold: same shape as ``display``; True where a cell is the best of its column.
        footnotes: explanations of the markers, one string each.
    """

    spec: TableSpec
    display: pd.DataFrame
    values: pd.DataFrame
    bold: pd.DataFrame
    footnotes: list[str] = field(default_factory=list)

    @property
    def has_holes(self) -> bool:
        return bool((self.values["missing"] > 0).any() or (self.values["not_completed"] > 0).any())

    @property
    def pivot(self) -> bool:
        return self.spec.column_key is not None

    def compact(self) -> "Table":
        """This table for a page's column (LaTeX): the Notes column becomes a last footnote (one
        ``row: notes`` per row that has any), other columns empty in every row are dropped, short
        headers replace labels (a metric's ``short``, the power column's n₈₀) with a first
        footnote, the legend, giving their full labels. ``values`` (the CSV) keeps every column."""
        display, bold = self.display, self.bold
        notes_col = _col(self.pivot, "Notes")
        notes = []
        if notes_col in display.columns:
            notes = [f"{label}: {text}" for label, text in zip(display.iloc[:, 0], display[notes_col]) if text]
            display, bold = display.drop(columns=[notes_col]), bold.drop(columns=[notes_col])
        if len(display):
            keep = [j for j in range(display.shape[1]) if j == 0 or (display.iloc[:, j] != "").any()]
            display, bold = display.iloc[:, keep], bold.iloc[:, keep]
        shorts = {m.label: m.short for m in self.spec.metrics if m.short and m.short != m.label}
        if any(m.power for m in self.spec.metrics):
            shorts[POWER_LABEL] = POWER_SHORT
        shown = {c[1] if isinstance(c, tuple) else c for c in display.columns}
        shorts = {k: v for k, v in shorts.items() if k in shown}
        level = {"level": 1} if self.pivot else {}
        display = display.rename(columns=shorts, **level)
        bold = bold.rename(columns=shorts, **level)
        legend = ["Columns: " + "; ".join(f"{v} = {k}" for k, v in shorts.items()) + "."] if shorts else []
        tail = ["Notes: " + "; ".join(notes) + "."] if notes else []
        return Table(self.spec, display, self.values, bold, legend + list(self.footnotes) + tail)


@dataclass
class _Cell:
    row: str
    column: Optional[str]
    counts: Counter
    missing: int
    n: int
    data: dict = field(default_factory=dict)     # metric id -> (values, seeds)
    summary: dict = field(default_factory=dict)  # metric id -> Summary
    comp: dict = field(default_factory=dict)     # metric id -> Comparison
    power: dict = field(default_factory=dict)    # metric id -> seeds per cell for 80% power
    mixed: list = field(default_factory=list)    # "numerics differ: threads 1, 2" (runs made differently)
    level: Optional[float] = None                # alpha its comparisons were tested at
    decision: Optional[str] = None               # sequential: effect / no effect / not shown / undecided
    runs: list = field(default_factory=list)     # (seed, run key, status, git commit) of every run in the cell

    @property
    def name(self) -> str:
        return self.row if self.column is None else f"{self.row} / {self.column}"

    @property
    def not_completed(self) -> int:
        return sum(self.counts.values())

    def notes(self) -> str:
        parts = [f"{c} {s}" for s, c in sorted(self.counts.items())]
        return ", ".join(parts + ([f"{self.missing} missing"] if self.missing else []) + self.mixed)


def build_table(spec: TableSpec, records: Iterable[dict], expected: Optional[list[dict]] = None,
                sequential: Optional[dict] = None, seeds: Optional[Iterable[int]] = None) -> Table:
    """Aggregate ``records`` into the cells of ``spec``.

    ``expected`` lists the runs that should exist (a sweep manifest's ``runs``: run_key and
    config); records outside it are ignored and expected runs without a record are missing.
    ``sequential`` is the manifest's record of ``--until-decided`` (its design and each
    comparison's looks): each comparison is then tested at its look's nominal level.
    ``seeds`` (the sweep file's, when there is no manifest) counts as missing each seed a cell
    has no run for; without either, an empty cell counts one missing run.
    """
    records = list(records)
    if expected is not None:
        wanted = {e["run_key"] for e in expected}
        records = [r for r in records if r.get("run_key") in wanted]
        have = {r.get("run_key") for r in records}
        records += [{"run_key": e["run_key"], "status": MISSING_STATUS, "config": e["config"]}
                    for e in expected if e["run_key"] not in have]
    frame = RunFrame.build(records)
    _check_metrics(spec, frame)
    check_where_keys(spec, frame)  # a typo in a where key is an error, not an empty row
    rows, cols = layout(spec, frame)
    cells: dict[tuple[str, Optional[str]], _Cell] = {}
    for rlabel, _, rwhere in rows:
        for clabel, cwhere in cols:
            mask = frame.mask({**spec.where, **rwhere, **cwhere})
            name = rlabel if clabel is None else f"{rlabel} / {clabel}"
            check_one_setting(spec, name, frame, mask)
            cells[(rlabel, clabel)] = _fill(spec, frame.df.loc[mask], rlabel, clabel, expected is not None,
                                            None if seeds is None else set(seeds))
    base = _baseline_label(spec, rows)
    design = Design(**sequential["design"]) if sequential else None
    tracks = (sequential or {}).get("tracks", {})
    for (rlabel, clabel), cell in cells.items():
        ref = cells.get((base, clabel)) if base is not None else None
        if ref is None or rlabel == base:
            continue
        level = spec.alpha
        if design is not None:  # this look's nominal level, after the looks the comparison had
            level = look_level(design, tracks.get(cell.name, []), cell.n, ref.n, spec.alpha)
        cell.level = level
        for m in spec.metrics:
            if m.delta and cell.data[m.id][0] and ref.data[m.id][0]:
                (x, xs), (b, bs) = cell.data[m.id], ref.data[m.id]
                cell.comp[m.id] = compare(x, b, spec.effective_test, x_seeds=xs, base_seeds=bs,
                                          threshold=m.threshold, alpha=level, bounds=m.range)
                if m.power:
                    sx, sb = cell.summary[m.id], ref.summary[m.id]
                    cell.power[m.id] = seeds_for_power(cell.comp[m.id].delta, sx.std, sb.std, spec.effective_test,
                                                       alpha=spec.alpha)
        if design is not None:
            m = decision_metric(spec)
            c = cell.comp.get(m.id) if m is not None else None
            if c is not None:
                cell.decision = decision(c.p, c.ci_low, c.ci_high, level, design, cell.n, ref.n)
    best = _best_cells(spec, cells, cols)
    return _assemble(spec, rows, cols, cells, best, base, design)


def _contrast_notes(spec: TableSpec, cells: dict, cols: list, rows: list) -> list[str]:
    """One line per ``contrasts`` pair and delta metric: the difference, its test and interval."""
    label_of = {str(v): lab for lab, v, _ in rows} | {lab: lab for lab, _, _ in rows}
    out = []
    for a, b in spec.contrasts:
        ra, rb = label_of[str(a)], label_of[str(b)]
        for clabel, _ in cols:
            ca, cb = cells[(ra, clabel)], cells[(rb, clabel)]
            for m in spec.metrics:
                if not (m.delta and m.aggregate == "mean_std") or not ca.data[m.id][0] or not cb.data[m.id][0]:
                    continue
                (x, xs), (y, ys) = ca.data[m.id], cb.data[m.id]
                c = compare(x, y, spec.effective_test, x_seeds=xs, base_seeds=ys, alpha=spec.alpha, bounds=m.range)
                where = "" if clabel is None else f" ({clabel})"
                mark = SIGNIFICANT_MARK if c.significant() else ""
                out.append(f"{ra} vs {rb}{where}, {m.label}: {format(c.delta, '+' + m.fmt.lstrip('+'))}{mark} "
                           f"(p = {c.p:.2g}, {c.test}; {c.estimand} {c.estimate:.3g}, "
                           f"{100 * c.confidence:g}% CI [{c.ci_low:.3g}, {c.ci_high:.3g}]).")
    return out


def decision_metric(spec: TableSpec) -> Optional[MetricSpec]:
    """The metric ``--until-decided`` decides on: the first mean ± std metric with a delta."""
    return next((m for m in spec.metrics if m.delta and m.aggregate == "mean_std"), None)


def _check_metrics(spec: TableSpec, frame: RunFrame) -> None:
    known = sorted(set(RESULT_METRICS) | {c for c in frame.df.columns if c not in frame.config_keys
                                          and pd.api.types.is_numeric_dtype(frame.df[c])})
    for m in spec.metrics:
        if m.key not in known:
            raise ConfigError(f"table {spec.name!r}: unknown metric key {m.key!r}; allowed: {', '.join(known)}")


def _fill(spec: TableSpec, sub: pd.DataFrame, row: str, column: Optional[str], has_manifest: bool,
          seeds_wanted: Optional[set] = None) -> _Cell:
    status = sub["status"] if "status" in sub.columns else pd.Series(["unknown"] * len(sub), dtype=object)
    status = status.fillna("unknown")
    counts = Counter(s for s in status if s not in ("completed", MISSING_STATUS))
    missing = int((status == MISSING_STATUS).sum())
    if not has_manifest and seeds_wanted:  # the sweep file's seeds this cell has no run of
        have = set(pd.to_numeric(sub["seed"], errors="coerce").dropna().astype(int)) if "seed" in sub.columns else set()
        missing = len(seeds_wanted - have)
    elif not has_manifest and len(sub) == 0:
        missing = 1  # a cell with no run at all is a hole even without a manifest
    done = sub[status == "completed"]
    cell = _Cell(row, column, counts, missing, len(done))
    cell.mixed = _mixed_numerics(done)
    cell.runs = _cell_runs(sub, status)
    # Seeds pair runs across rows (paired tests); a record without one pairs with nothing.
    seeds = done["seed"].fillna(-1) if "seed" in done.columns else pd.Series(-1, index=done.index)
    for m in spec.metrics:
        # A sum (compute) counts every recorded run of the cell: a failed run spent compute too.
        runs = sub[status != MISSING_STATUS] if m.aggregate == "sum" else done
        raw = runs[m.key] if m.key in runs.columns else pd.Series(np.nan, index=runs.index)
        vals = pd.to_numeric(raw, errors="coerce").astype(float)
        ok = np.isfinite(vals)
        xs = (vals[ok] * m.scale).tolist()
        run_seeds = seeds if runs is done else (runs["seed"].fillna(-1) if "seed" in runs.columns
                                                   else pd.Series(-1, index=runs.index))
        cell.data[m.id] = (xs, [int(s) for s in run_seeds[ok]])
        cell.summary[m.id] = summarize(xs, m.threshold, m.range)
    return cell


def _cell_runs(sub: pd.DataFrame, status: pd.Series) -> list[tuple]:
    """(seed, run key, status, git commit) of each run in a cell, in seed order: what its numbers
    are made of (the CSV's ``run_keys``, ``git_commits`` and ``other_runs``; the report's provenance)."""
    def col(name: str) -> list:
        return [None if pd.isna(v) else v for v in sub[name]] if name in sub.columns else [None] * len(sub)

    seeds = pd.to_numeric(pd.Series(col("seed"), dtype=object), errors="coerce")
    rows = list(zip([None if np.isnan(x) else int(x) for x in seeds], col("run_key"), list(status), col("git_commit")))
    return sorted(rows, key=lambda r: (r[0] is None, r[0] or 0, str(r[1])))


def _mixed_numerics(done: pd.DataFrame) -> list[str]:
    """A note when the cell's runs were made under different numerics (thread count, device, CPU,
    torch): the same config can give other numbers under them, so averaging them is worth a flag."""
    differ = []
    for key in NUMERICS:
        if key in done.columns:
            values = sorted({str(v) for v in done[key].dropna()})
            if len(values) > 1:
                differ.append(f"{key} {', '.join(values)}")
    return [f"numerics differ: {'; '.join(differ)}"] if differ else []


def _baseline_label(spec: TableSpec, rows: list[tuple[str, Any, dict]]) -> Optional[str]:
    if spec.baseline is None:
        return None
    for label, value, _ in rows:
        if str(spec.baseline) in (label, str(value)):
            return label
    raise ConfigError(f"table {spec.name!r}: unknown baseline {spec.baseline!r}; allowed: {', '.join(r[0] for r in rows)}")


def _score(m: MetricSpec, s: Summary) -> float:
    """The number a cell is ranked by, rounded as displayed so shown ties are all bold."""
    if m.aggregate == "share":
        return round(s.hits / s.n, 9)
    if m.aggregate == "sum":
        return float(format(s.mean * s.n, m.fmt).replace(",", "")) if "%" not in m.fmt else s.mean * s.n
    return float(format(s.mean, m.fmt).replace(",", "")) if "%" not in m.fmt else s.mean


def _best_cells(spec: TableSpec, cells: dict, cols: list) -> set[tuple[str, Optional[str], str]]:
    best = set()
    for m in spec.metrics:
        if m.best is None:
            continue
        for clabel, _ in cols:
            scored = {(r, c): _score(m, cell.summary[m.id]) for (r, c), cell in cells.items()
                      if c == clabel and cell.summary[m.id].n > 0}
            if not scored:
                continue
            target = (max if m.best == "max" else min)(scored.values())
            if len(scored) > 1 and all(v == target for v in scored.values()):
                continue  # every cell ties: nothing is best, nothing is bold
            best |= {(r, c, m.id) for (r, c), v in scored.items() if v == target}
    return best


def format_cell(m: MetricSpec, s: Summary, comp: Optional[Comparison], spec: TableSpec) -> str:
    """``74.30 ± 0.12 [73.9, 74.7] (+1.20†)``: mean ± std, optional CI, delta and marker."""
    if s.n == 0:
        return EMPTY
    if m.aggregate == "share":
        text = f"{s.hits}/{s.n}"
    elif m.aggregate == "sum":
        text = format(s.mean * s.n, m.fmt)
    elif m.aggregate == "mean" or np.isnan(s.std):
        text = format(s.mean, m.fmt)
    else:
        text = f"{format(s.mean, m.fmt)} ± {format(s.std, m.fmt)}"
    if spec.ci and m.aggregate == "mean_std" and not np.isnan(s.ci_low):
        text += f" [{format(s.ci_low, m.fmt)}, {format(s.ci_high, m.fmt)}]"
    if comp is not None and not np.isnan(comp.delta):
        mark = SIGNIFICANT_MARK if comp.significant() else ""
        delta = f"{comp.delta:+.0f} pp" if m.aggregate == "share" else format(comp.delta, "+" + m.fmt.lstrip("+"))
        text += f" ({delta}{mark})"
    return text


def _assemble(spec, rows, cols, cells, best, base, design: Optional[Design] = None) -> Table:
    pivot = spec.column_key is not None
    disp_rows, bold_rows, val_rows = [], [], []
    for rlabel, _, _ in rows:
        row_cells = [cells[(rlabel, c)] for c, _ in cols]
        holes = any(c.missing or c.not_completed for c in row_cells)
        disp = {_col(pivot, spec.row_header): rlabel + (NOT_COMPLETED_MARK if holes else "")}
        bold = {_col(pivot, spec.row_header): False}
        notes = []
        for (clabel, _), cell in zip(cols, row_cells):
            for m in spec.metrics:
                key = _col(pivot, m.label, clabel)
                disp[key] = format_cell(m, cell.summary[m.id], cell.comp.get(m.id), spec)
                bold[key] = (rlabel, clabel, m.id) in best
                if m.power:
                    key = _col(pivot, POWER_LABEL, clabel)
                    disp[key], bold[key] = _format_power(cell.power.get(m.id)), False
            disp[_col(pivot, "n", clabel)], bold[_col(pivot, "n", clabel)] = str(cell.n), False
            if cell.notes():
                notes.append(cell.notes() if clabel is None else f"{clabel}: {cell.notes()}")
            val_rows.append(_values_row(spec, cell, best))
        disp[_col(pivot, "Notes")], bold[_col(pivot, "Notes")] = "; ".join(notes), False
        disp_rows.append(disp)
        bold_rows.append(bold)
    display, bold = pd.DataFrame(disp_rows), pd.DataFrame(bold_rows)
    if pivot:
        display.columns = bold.columns = pd.MultiIndex.from_tuples(display.columns)
    table = Table(spec, display, pd.DataFrame(val_rows), bold)
    table.footnotes = _footnotes(spec, table, base, design, cells)
    holes = table.footnotes.pop() if table.has_holes else None
    table.footnotes += _contrast_notes(spec, cells, cols, rows) + ([holes] if holes else [])
    return table


def _format_power(n: Optional[float]) -> str:
    if n is None or np.isnan(n):
        return EMPTY
    return "> 1000" if np.isinf(n) else str(int(n))


def _col(pivot: bool, name: str, group: Optional[str] = None):
    """Flat column name, or (group, name) under a pivot (("Settings", "") for the row header)."""
    if not pivot:
        return name
    return (group, name) if group is not None else (name, "")


def _values_row(spec: TableSpec, cell: _Cell, best: set) -> dict:
    """One CSV row; every column holds what its name says (docs/statistics.md lists them)."""
    v: dict[str, Any] = {"setting": cell.row}
    if cell.column is not None:
        v["column"] = cell.column
    v.update(n=cell.n, missing=cell.missing, not_completed=cell.not_completed,
             **{s: cell.counts.get(s, 0) for s in ("failed", "diverged", "pruned")}, notes=cell.notes())
    for m in spec.metrics:
        s = cell.summary[m.id]
        if m.aggregate == "share":  # the share of seeds reaching the threshold, and its exact CI
            v.update({f"{m.id}": s.share, f"{m.id}_hits": s.hits, f"{m.id}_n": s.n,
                      f"{m.id}_ci_low": s.ci_low, f"{m.id}_ci_high": s.ci_high})
        elif m.aggregate == "sum":  # the total over the cell's recorded runs (compute)
            v.update({f"{m.id}_sum": s.mean * s.n if s.n else 0.0, f"{m.id}_n": s.n})
        else:  # the metric's mean, sample std and 95% t-interval (clipped to its range)
            v.update({f"{m.id}_mean": s.mean, f"{m.id}_std": s.std, f"{m.id}_n": s.n,
                      f"{m.id}_ci_low": s.ci_low, f"{m.id}_ci_high": s.ci_high})
        if m.delta:
            c = cell.comp.get(m.id, Comparison())
            est = c.estimand or "estimate"
            v.update({f"{m.id}_delta": c.delta, f"{m.id}_test": c.test, f"{m.id}_p": c.p, f"{m.id}_alpha": c.alpha,
                      f"{m.id}_significant": c.significant(), f"{m.id}_estimand": c.estimand,
                      f"{m.id}_{est}" if est != "delta" else f"{m.id}_delta_estimate": c.estimate,
                      f"{m.id}_{est}_ci_low": c.ci_low, f"{m.id}_{est}_ci_high": c.ci_high})
        if m.power:
            v[f"{m.id}_seeds_for_80pct_power"] = cell.power.get(m.id, np.nan)
        if m.best:
            v[f"{m.id}_best"] = (cell.row, cell.column, m.id) in best
    if cell.decision is not None:
        v["decision"] = cell.decision
    done = [r for r in cell.runs if r[2] == "completed"]  # what the cell's numbers average, by seed
    v["run_keys"] = " ".join(str(r[1]) for r in done)
    v["git_commits"] = " ".join(dict.fromkeys(str(r[3] or "unknown") for r in done))
    v["other_runs"] = " ".join(f"{r[1]}:{r[2]}" for r in cell.runs if r[2] != "completed")
    return v


def _footnotes(spec: TableSpec, table: Table, base: Optional[str], design: Optional[Design] = None,
               cells: Optional[dict] = None) -> list[str]:
    notes = ["Cells: mean ± sample std over seeds; n = completed runs per cell."]
    if spec.ci:
        notes.append("[a, b]: 95% t-interval of the mean, clipped to the metric's range.")
    for m in spec.metrics:
        if m.aggregate == "share":
            notes.append(f"{m.label}: k/n seeds reached {m.key} ≥ {m.threshold:g}.")
    for m in spec.metrics:
        if m.aggregate == "sum" and cells:
            total = sum(c.summary[m.id].mean * c.summary[m.id].n for c in cells.values() if c.summary[m.id].n)
            what = ("device-hours per cell (wall time x processes), summed over all its recorded runs"
                    if m.key == COMPUTE_KEY else "summed over all the cell's recorded runs")
            notes.append(f"{m.label}: {what}; total {format(total, m.fmt)}.")
    if table.bold.to_numpy().any():
        notes.append("Bold: best value per column.")
    if base is not None and any(m.delta for m in spec.metrics):
        tests = {TEST_NAMES["fisher" if m.aggregate == "share" else spec.effective_test] for m in spec.metrics if m.delta}
        level = "its look's nominal level (below)" if design is not None else f"{spec.alpha:g}"
        notes.append(f"(±d): difference to the baseline row “{base}”"
                     f"{' in the same column group' if table.pivot else ''}; "
                     f"{SIGNIFICANT_MARK} p < {level} ({'; '.join(sorted(tests))}, two-sided). "
                     "The CSV has each p-value and the interval that inverts the same test.")
    if any(m.power for m in spec.metrics):
        notes.append(f"{POWER_LABEL}: seeds per cell for 80% power at the observed difference and spread "
                     f"(two-sample t-test, α = {spec.alpha:g}; rank tests: divided by their efficiency 3/π).")
    if design is not None and cells:
        done = [f"{c.name}: {c.decision} at n = {c.n} (nominal α {c.level:.3g})" for c in cells.values() if c.decision]
        notes.append(f"Sequential: {design.describe()}. " + "; ".join(done) + ".")
    notes += [f"{r.label}: {r.note}." for r in spec.rows if r.note]  # what each row (baseline) is
    if table.has_holes:
        notes.append(f"{NOT_COMPLETED_MARK} some runs of this row are missing or did not complete (see Notes); "
                     "the cells average the completed runs only.")
    return notes
