"""Print a built ``Table`` on the terminal (rich); files are written by ``ablate.report.formats``."""
from __future__ import annotations

from ablate.report.formats._common import flat
from ablate.report.table import Table


def print_table(table: Table, console=None) -> None:
    """Print with rich (bold cells styled, not marked up: cells may contain brackets)."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=table.spec.title or table.spec.name)
    for i, col in enumerate(table.display.columns):
        name = flat(col)
        rt.add_column(name, justify="left" if i == 0 or name == "Notes" else "right")
    for i in range(len(table.display)):
        rt.add_row(*(Text(str(table.display.iat[i, j]), style="bold" if table.bold.iat[i, j] else "")
                     for j in range(table.display.shape[1])))
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or logged: rich would wrap at 80 columns
            console = Console(width=160)
    console.print(rt)
    for note in table.footnotes:
        console.print(Text(note, style="dim"))
