"""``ablate table`` and ``ablate report``: argument parsing for the report package.

``ablate table SPEC [paths.* overrides] [--format md,tex,html,csv] [--wandb SRC] [--out DIR]``
prints the table (rich) and writes it in each format; ``ablate report SWEEP [--wandb SRC]
[--out DIR]`` writes one self-contained HTML page with every table and plot of a sweep. SRC is
``ENTITY/PROJECT`` (W&B public API) or a directory of offline W&B runs.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional

from ablate.report.spec import FORMATS


def _wandb_source(text: Optional[str]) -> Optional[str]:
    """``--wandb`` value -> a ``get_store`` source (``wandb:...``), or None for the local store."""
    if text is None:
        return None
    if os.path.isdir(text):
        return "wandb:" + str(Path(text).resolve())
    if text.count("/") != 1 or not all(text.split("/")):
        raise ValueError(f"--wandb {text!r}; allowed: ENTITY/PROJECT or an existing directory with offline W&B runs")
    return "wandb:" + text


def parse_formats(text: Optional[str]) -> Optional[list[str]]:
    """``md,tex`` -> ["md", "tex"] (one-line ValueError on an unknown format)."""
    if text is None:
        return None
    from ablate.report.render import check_formats

    fmts = [f.strip() for f in text.split(",") if f.strip()]
    if not fmts:
        raise ValueError(f"--format {text!r}; allowed: a comma-separated list of {', '.join(FORMATS)}")
    return check_formats(fmts)


def table_command(argv: list[str]) -> int:
    """``ablate table``: build ``analysis/SPEC.yaml`` from the results store (or W&B)."""
    p = argparse.ArgumentParser(prog="ablate table", description="Build a paper-style table from finished runs.")
    p.add_argument("spec", nargs="?", help="a table spec in analysis/ (or a path to a spec YAML)")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/data/ablate (others are ignored)")
    p.add_argument("--list", action="store_true", help="list the table specs and exit")
    p.add_argument("--format", help=f"comma-separated output formats ({', '.join(FORMATS)}); default: the spec's")
    p.add_argument("--wandb", metavar="SRC", help="read runs from W&B: ENTITY/PROJECT, or a dir with offline runs")
    p.add_argument("--out", help="output directory (default: paths.tables_dir)")
    args = p.parse_intermixed_args(argv)
    from ablate.report import build_table, list_tables, load_table_spec

    if args.list or not args.spec:
        print("\n".join(list_tables()))
        return 0
    from ablate.report.render import print_table, write_table
    from ablate.report.sources import project_paths, sequential_state, table_records

    formats = parse_formats(args.format)
    spec = load_table_spec(args.spec)
    paths = project_paths(args.overrides)
    records, expected, _ = table_records(spec, _wandb_source(args.wandb), paths)
    table = build_table(spec, records, expected, sequential=sequential_state(paths, spec.sweep))
    print_table(table)
    for path in write_table(table, args.out or paths.tables_dir, formats):
        print(f"wrote {path}")
    return 0


def report_command(argv: list[str]) -> int:
    """``ablate report``: one self-contained HTML page with every table and plot of a sweep."""
    p = argparse.ArgumentParser(prog="ablate report",
                                description="Write an HTML report (tables, plots, attention maps) of a sweep.")
    p.add_argument("sweep", help="a sweep (name or path of its YAML) with a manifest, or named by a table spec")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/data/ablate (others are ignored)")
    p.add_argument("--wandb", metavar="SRC", help="read runs from W&B: ENTITY/PROJECT, or a dir with offline runs")
    p.add_argument("--out", help="output directory (default: <paths.output_dir>/reports/SWEEP)")
    args = p.parse_intermixed_args(argv)
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths
    from ablate.sweep.spec import sweep_name

    sweep = sweep_name(args.sweep)  # a sweep YAML path works as for `ablate sweep`
    out = build_report(sweep, store=_wandb_source(args.wandb), paths=project_paths(args.overrides),
                       out_dir=Path(args.out) if args.out else None)
    print(f"wrote {out}")
    for png in sorted((out.parent / "plots").glob("*.png")):
        print(f"wrote {png}")
    return 0
