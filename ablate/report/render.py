"""Render a built ``Table``: rich terminal, Markdown, LaTeX (booktabs), HTML and CSV.

LaTeX and HTML go through ``pandas.io.formats.style.Styler`` (escaping, bold via CSS, booktabs
rules, \\multicolumn headers for pivot tables); Markdown is written directly because pandas'
``to_markdown`` needs the optional ``tabulate`` package. Every format carries the footnotes
that explain the markers (``*`` holes, ``†`` significance, bold = best).
"""
from __future__ import annotations

import html as _html
import re
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from ablate.errors import ConfigError
from ablate.report.spec import FORMATS
from ablate.report.table import Table

# Unicode in cells -> LaTeX that pdflatex with the default fonts typesets (after escaping).
_LATEX_SYMBOLS = {"±": r"$\pm$", "†": r"$^{\dagger}$", "–": "--", "≥": r"$\geq$", "×": r"$\times$",
                  "Δ": r"$\Delta$", "·": r"$\cdot$", "α": r"$\alpha$", "π": r"$\pi$", "≤": r"$\leq$",
                  "<": r"$<$", ">": r"$>$"}
# pandas escapes cells (Styler.format(escape="latex")); captions and notes need the same rules.
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


WIDE_COLUMNS = 8  # more columns than this: \resizebox the tabular to the line width


def _flat(col) -> str:
    return " ".join(str(c) for c in col if c) if isinstance(col, tuple) else str(col)


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (bold = ``**``), title above, footnotes below."""
    df, bold = table.display, table.bold
    cols = [_flat(c) for c in df.columns]
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


def print_table(table: Table, console=None) -> None:
    """Print with rich (bold cells styled, not marked up: cells may contain brackets)."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=table.spec.title or table.spec.name)
    for i, col in enumerate(table.display.columns):
        name = _flat(col)
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


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in free text (captions, notes), then map symbols."""
    return _latex_symbols("".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text)))


def _latex_symbols(text: str) -> str:
    for k, v in _LATEX_SYMBOLS.items():
        text = text.replace(k, v)
    return text


def _styler(table: Table, escape: str, symbols=None):
    """A Styler over ``display`` with bold cells as CSS and the index hidden."""
    df = table.display
    mark = table.bold.to_numpy()
    fmt = (lambda s: symbols(str(s))) if symbols else (lambda s: str(s))
    st = df.style.format(fmt, escape=escape).format_index(fmt, escape=escape, axis=1)
    st = st.apply(lambda d: pd.DataFrame(
        [["font-weight: bold;" if mark[i, j] else "" for j in range(d.shape[1])] for i in range(d.shape[0])],
        index=d.index, columns=d.columns), axis=None)
    return st.hide(axis="index")


def to_latex(table: Table) -> str:
    """A booktabs ``table`` float: caption, label ``tab:<name>``, footnotes under the rules."""
    st = _styler(table, "latex", _latex_symbols)
    ncols = table.display.shape[1]
    latex = st.to_latex(
        hrules=True, column_format="l" + "r" * (ncols - 2) + "l", environment="table",
        caption=latex_escape(table.spec.title or table.spec.name), label="tab:" + re.sub(r"[^A-Za-z0-9_:-]", "-", table.spec.name),
        position="htbp", position_float="centering", multicol_align="c", convert_css=True,
    )
    if ncols > WIDE_COLUMNS:  # pivot tables: fit the text width instead of running off the page
        latex = latex.replace("\\begin{tabular}", "\\resizebox{\\linewidth}{!}{%\n\\begin{tabular}", 1)
        latex = latex.replace("\\end{tabular}", "\\end{tabular}}", 1)
    notes = "\n".join(f"\\par {latex_escape(n)}" for n in table.footnotes)
    latex = latex.replace("\\end{table}", f"\\par\\smallskip{{\\footnotesize\\raggedright\n{notes}\\par}}\n\\end{{table}}")
    return "% needs \\usepackage{booktabs}" + (" and \\usepackage{graphicx}" if ncols > WIDE_COLUMNS else "") + "\n" + latex


def latex_document(tables: Iterable[Table]) -> str:
    """A standalone document holding ``tables`` (to compile, or to look at with pdftoppm)."""
    body = "\n\n".join(to_latex(t) for t in tables)
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
            "\\usepackage[landscape,margin=1.5cm]{geometry}\n\\begin{document}\n" + body + "\n\\end{document}\n")


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


def to_html(table: Table) -> str:
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


def to_csv(table: Table) -> str:
    """The numbers behind every cell: n, holes, mean/std/CI, delta, p-value, the delta's CI."""
    return table.values.to_csv(index=False)


def check_formats(formats: Iterable[str]) -> list[str]:
    """Validate a list of output formats (one-line ValueError naming the allowed ones)."""
    out = []
    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"unknown format {f!r}; allowed: {', '.join(FORMATS)}")
        out.append(f)
    return out


def write_table(table: Table, out_dir: str | Path, formats: Optional[Iterable[str]] = None) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for each format (default: the spec's); returns the paths."""
    from ablate.io import atomic_write

    render = {"md": to_markdown, "tex": to_latex, "csv": to_csv,
              "html": lambda t: html_page(t.spec.title or t.spec.name, to_html(t))}
    paths = []
    for fmt in check_formats(formats if formats is not None else table.spec.formats):
        path = Path(out_dir) / f"{table.spec.name}.{fmt}"
        text = render[fmt](table)
        atomic_write(path, lambda fh: fh.write(text))
        paths.append(path)
    return paths
