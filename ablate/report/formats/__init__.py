"""Table output formats: one module of this package per format, each registered in ``TABLE_FORMATS``.

A format is a function ``render(table) -> str`` whose name is the file extension
(``<tables_dir>/<spec name>.<format>``): ``md`` (Markdown), ``tex`` (LaTeX, booktabs), ``html``
(a self-contained page) and ``csv`` (the numbers behind every cell). A new format is one new
module here; table specs and ``--format`` accept it by its name.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from ablate.errors import check_choice
from ablate.report.kinds import TABLE_FORMATS

if TYPE_CHECKING:
    from ablate.report.table import Table

__all__ = ["TABLE_FORMATS", "check_formats", "render", "render_all", "write_table", "write_texts"]


def check_formats(formats: Iterable[str]) -> list[str]:
    """Validate output formats (one-line ConfigError naming the allowed ones)."""
    return [check_choice("format", f, TABLE_FORMATS.names()) for f in formats]


def render(table: "Table", fmt: str) -> str:
    return TABLE_FORMATS.get(fmt)(table)


def write_table(table: "Table", out_dir: str | Path, formats: Optional[Iterable[str]] = None) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for each format (default: the spec's); returns the paths."""
    return write_texts(out_dir, table.spec.name, render_all(table, formats))


def render_all(table: "Table", formats: Optional[Iterable[str]] = None) -> dict[str, str]:
    """Each format's text (default: the spec's formats), in order."""
    return {fmt: render(table, fmt) for fmt in check_formats(formats if formats is not None else table.spec.formats)}


def write_texts(out_dir: str | Path, name: str, texts: dict[str, str]) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for each rendered format (atomically); returns the paths."""
    from ablate.io import atomic_write

    paths = []
    for fmt, text in texts.items():
        path = Path(out_dir) / f"{name}.{fmt}"
        atomic_write(path, lambda fh: fh.write(text))
        paths.append(path)
    return paths
