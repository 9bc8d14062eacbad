"""HTML: a self-contained page (inline CSS, no scripts) with the table and its footnotes; the
fragment (``to_html``) is what ``ablate report`` puts on its page."""
from __future__ import annotations

import html as _html
from typing import TYPE_CHECKING

from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats.tex import _styler

if TYPE_CHECKING:
    from ablate.report.table import Table

TABLE_CSS = """
table.ablate { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
table.ablate caption { font-weight: bold; text-align: left; padding-bottom: 0.4em; }
table.ablate th, table.ablate td { padding: 0.25em 0.7em; text-align: right; white-space: nowrap; }
table.ablate th { border-bottom: 1px solid #333; }
table.ablate thead tr:first-child th { border-top: 2px solid #333; }
table.ablate tbody tr:last-child td { border-bottom: 2px solid #333; }
table.ablate td:first-child, table.ablate td:last-child { text-align: left; }
ul.footnotes { font-size: 0.85em; color: #444; margin-top: 0.2em; }
"""


def to_html(table: "Table") -> str:
    """An HTML fragment: the table (escaped, bold best cells) and its footnotes."""
    st = _styler(table, "html").set_caption(_html.escape(table.spec.title or table.spec.name))
    st = st.set_table_attributes('class="ablate"')
    notes = "".join(f"<li>{_html.escape(n)}</li>" for n in table.footnotes)
    return st.to_html() + (f'<ul class="footnotes">{notes}</ul>' if notes else "")


def html_page(title: str, body: str, extra_css: str = "") -> str:
    """A self-contained page: inline CSS, no scripts, no external resources."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_html.escape(title)}</title><style>body {{ font-family: sans-serif; margin: 2em; }}"
            f"{TABLE_CSS}{extra_css}</style></head><body>\n{body}\n</body></html>\n")


@TABLE_FORMATS.register("html")
def to_html_page(table: "Table") -> str:
    return html_page(table.spec.title or table.spec.name, to_html(table))
