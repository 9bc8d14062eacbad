"""Markdown: a GitHub-flavoured table (bold = ``**``), title above, footnotes below. Written
directly: pandas' ``to_markdown`` needs the optional ``tabulate`` package."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats._common import flat

if TYPE_CHECKING:
    from ablate.report.table import Table


@TABLE_FORMATS.register("md")
def to_markdown(table: "Table") -> str:
    """A GitHub-flavoured Markdown table (bold = ``**``), title above, footnotes below."""
    df, bold = table.display, table.bold
    cols = [flat(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |",
             "| " + " | ".join("---" if i == 0 or c == "Notes" else "---:" for i, c in enumerate(cols)) + " |"]
    for i in range(len(df)):
        cells = []
        for j in range(df.shape[1]):
            text = str(df.iat[i, j]).replace("|", "\\|")
            cells.append(f"**{text}**" if bold.iat[i, j] and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    out = (f"**{table.spec.title}**\n\n" if table.spec.title else "") + "\n".join(lines) + "\n"
    if table.footnotes:
        out += "\n" + "\n".join(f"- {n}" for n in table.footnotes) + "\n"
    return out
