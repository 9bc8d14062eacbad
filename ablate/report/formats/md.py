"""Markdown: a GitHub-flavoured table (bold = ``**``), title above, footnotes below. Written
directly: pandas' ``to_markdown`` needs the optional ``tabulate`` package.

Every piece of text (title, headers, cells, footnotes) is escaped, so labels and values render
literally: ``<script>`` stays text (no raw HTML), ``a_b_c`` is no emphasis, ``$x$`` no math,
``|`` no column break, a newline no broken row, and a footnote starting ``#`` or ``1.`` no
heading or list.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats._common import flat

if TYPE_CHECKING:
    from ablate.report.table import Table

# Inline Markdown/GFM specials (emphasis, code, links, raw HTML, tables, math, strikethrough):
# a backslash before ASCII punctuation makes it literal (CommonMark).
_INLINE = frozenset("\\`*_[]<>|$~")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")  # "&lt;" in a label must not become "<"
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d+[.)])")  # a heading, list item or setext line


def md_escape(text: object, block: bool = False) -> str:
    """``text`` as Markdown that renders literally; ``block``: it starts a line (a footnote)."""
    s = re.sub(r"\s*[\r\n]+\s*", " ", str(text))
    s = _ENTITY.sub("&amp;", s)
    s = "".join("\\" + ch if ch in _INLINE else ch for ch in s)
    if block:
        s = s.lstrip()
        m = _BLOCK_START.match(s)
        if m:
            s = s[: m.end() - 1] + "\\" + s[m.end() - 1:]
    return s


@TABLE_FORMATS.register("md")
def to_markdown(table: "Table") -> str:
    """A GitHub-flavoured Markdown table (bold = ``**``), title above, footnotes below."""
    df, bold = table.display, table.bold
    cols = [flat(c) for c in df.columns]
    lines = ["| " + " | ".join(md_escape(c) for c in cols) + " |",
             "| " + " | ".join("---" if i == 0 or c == "Notes" else "---:" for i, c in enumerate(cols)) + " |"]
    for i in range(len(df)):
        cells = []
        for j in range(df.shape[1]):
            text = md_escape(df.iat[i, j])
            cells.append(f"**{text}**" if bold.iat[i, j] and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    out = (f"**{md_escape(table.spec.title)}**\n\n" if table.spec.title else "") + "\n".join(lines) + "\n"
    if table.footnotes:
        out += "\n" + "\n".join(f"- {md_escape(n, block=True)}" for n in table.footnotes) + "\n"
    return out
