"""Build a paper-style table from run records: one row per setting, mean ± std (n) per cell.

Honesty rules: every cell says how many runs it averages; runs that are missing, failed,
diverged or pruned are counted in a ``Notes`` column and marked, never dropped silently.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from ablate.report.spec import MetricSpec, TableSpec
from ablate.track.store._base import flatten, matches

NOT_COMPLETED_MARK = "*"


@dataclass
class Table:
    """A built table: ``display`` (strings, as printed) and ``values`` (numbers, for CSV)."""

    spec: TableSpec
    display: pd.DataFrame
    values: pd.DataFrame

    @property
    def has_holes(self) -> bool:
        return bool((self.values["missing"] > 0).any() or (self.values["not_completed"] > 0).any())


def build_table(spec: TableSpec, records: Iterable[dict], expected: Optional[list[dict]] = None) -> Table:
    """Aggregate ``records`` per row of ``spec``.

    ``expected`` lists the runs that should exist (a sweep manifest's ``runs``: run_key and
    config); those without a record are reported as missing.
    """
    recs = [flatten(r) for r in records]
    exp = [flatten({"run_key": e["run_key"], "config": e["config"]}) for e in (expected or [])]
    if expected is not None:
        wanted = {e["run_key"] for e in exp}
        recs = [r for r in recs if r.get("run_key") in wanted]
    have = {r.get("run_key") for r in recs}
    disp_rows, val_rows = [], []
    for row in spec.rows:
        where = {**spec.where, **row.where}
        cell = [r for r in recs if matches(r, where)]
        done = [r for r in cell if r.get("status") == "completed"]
        other = Counter(r.get("status", "unknown") for r in cell if r.get("status") != "completed")
        missing = sum(1 for e in exp if matches(e, where) and e["run_key"] not in have)
        if not exp and not cell:
            missing = 1  # a row with no run at all is a hole even without a manifest
        vals = {"setting": row.label, "n": len(done), "missing": missing, "not_completed": sum(other.values())}
        disp = {spec.row_header: row.label + (NOT_COMPLETED_MARK if missing or other else "")}
        for m in spec.metrics:
            xs = [float(r[m.key]) * m.scale for r in done if r.get(m.key) is not None]
            mean, std = _mean_std(xs)
            vals[f"{m.key}_mean"], vals[f"{m.key}_std"] = mean, std
            disp[m.label] = _fmt_cell(m, mean, std, len(xs))
        notes = [f"{c} {s}" for s, c in sorted(other.items())] + ([f"{missing} missing"] if missing else [])
        disp["n"] = str(len(done))
        disp["Notes"] = ", ".join(notes)
        vals["notes"] = disp["Notes"]
        disp_rows.append(disp)
        val_rows.append(vals)
    return Table(spec, pd.DataFrame(disp_rows), pd.DataFrame(val_rows))


def _mean_std(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))  # sample std (ddof=1)


def _fmt_cell(m: MetricSpec, mean: float, std: float, n: int) -> str:
    if n == 0:
        return "–"
    if m.aggregate == "mean" or math.isnan(std):
        return format(mean, m.fmt)
    return f"{format(mean, m.fmt)} ± {format(std, m.fmt)}"


def to_markdown(table: Table) -> str:
    df = table.display
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(cols))) + " |"]
    lines += ["| " + " | ".join(str(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    out = (f"**{table.spec.title}**\n\n" if table.spec.title else "") + "\n".join(lines) + "\n"
    if table.has_holes:
        out += f"\n{NOT_COMPLETED_MARK} some runs of this row are missing or did not complete (see Notes); the cell averages the completed ones.\n"
    return out


def print_table(table: Table) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    rt = RichTable(title=table.spec.title or table.spec.name)
    for i, col in enumerate(table.display.columns):
        rt.add_column(col, justify="left" if i == 0 or col == "Notes" else "right")
    for rec in table.display.itertuples(index=False):
        rt.add_row(*(str(v) for v in rec))
    console = Console()
    console.print(rt)
    if table.has_holes:
        console.print(f"{NOT_COMPLETED_MARK} some runs are missing or did not complete (see Notes).")


def write_table(table: Table, out_dir: str | Path) -> list[Path]:
    """Write the spec's formats as ``<out_dir>/<name>.<fmt>``; returns the paths."""
    from ablate.io import atomic_write

    out_dir = Path(out_dir)
    paths = []
    for fmt in table.spec.formats:
        path = out_dir / f"{table.spec.name}.{fmt}"
        if fmt == "md":
            atomic_write(path, lambda fh: fh.write(to_markdown(table)))
        elif fmt == "csv":
            atomic_write(path, lambda fh: table.values.to_csv(fh, index=False))
        paths.append(path)
    return paths
