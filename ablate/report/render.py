"""Print a built ``Table`` on the terminal (rich); files are written by ``ablate.report.formats``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ablate.report.formats._common import flat

if TYPE_CHECKING:
    from ablate.report.table import Table


def table_cells(table: "Table") -> dict:
    """What ``print_table`` shows, as plain lists (title, column names, cell strings, bold
    flags, footnotes): a table cache keeps these, so a cached table prints without pandas."""
    display = table.display
    return {"title": table.spec.title or table.spec.name,
            "columns": [flat(c) for c in display.columns],
            "rows": [[str(display.iat[i, j]) for j in range(display.shape[1])] for i in range(len(display))],
            "bold": [[bool(table.bold.iat[i, j]) for j in range(display.shape[1])] for i in range(len(display))],
            "footnotes": list(table.footnotes)}


def print_table(table: "Table", console=None) -> None:
    """Print with rich (bold cells styled, not marked up: cells may contain brackets)."""
    print_cells(**table_cells(table), console=console)


def print_cells(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], bold: Sequence[Sequence[bool]],
                footnotes: Sequence[str], console=None) -> None:
    """``print_table`` from ``table_cells``'s lists."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=title)
    for i, name in enumerate(columns):
        rt.add_column(name, justify="left" if i == 0 or name == "Notes" else "right")
    for row, marks in zip(rows, bold):
        rt.add_row(*(Text(cell, style="bold" if mark else "") for cell, mark in zip(row, marks)))
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or logged: rich would wrap at 80 columns
            console = Console(width=160)
    console.print(rt)
    for note in footnotes:
        console.print(Text(note, style="dim"))
