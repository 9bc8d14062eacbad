"""LaTeX through ``pandas.io.formats.style.Styler``: a booktabs ``table`` float with escaping,
bold best cells, \\multicolumn headers for pivot tables and the footnotes under the rules.

Made to fit a paper's column (``Table.compact``): the Notes column becomes a line under the
table, columns empty in every row are left out, metrics' ``short`` headers replace their labels
(a legend under the table gives the full ones); a header's parenthesis ("(%)") goes on a second
line, and so do a cell's interval and delta, except in a ``wide`` table without column groups.
The tabular is set ``\\small`` with 4 pt column gaps and is only ever shrunk, never enlarged, to
``\\linewidth``: ``\\columnwidth`` in a ``table``, ``\\textwidth`` in the ``table*`` of a spec
with ``wide: true`` (both columns of a two-column page). Negative numbers get a math minus,
quotes are TeX quotes (``...''), Unicode symbols map to what pdflatex's default fonts have.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

from ablate.report.kinds import TABLE_FORMATS

if TYPE_CHECKING:
    from ablate.report.table import Table

# Unicode in cells -> LaTeX that pdflatex with the default fonts typesets (after escaping).
_LATEX_SYMBOLS = {"±": r"$\pm$", "†": r"$^{\dagger}$", "–": "--", "≥": r"$\geq$", "×": r"$\times$",
                  "Δ": r"$\Delta$", "·": r"$\cdot$", "α": r"$\alpha$", "π": r"$\pi$", "≤": r"$\leq$",
                  "<": r"$<$", ">": r"$>$", "−": r"$-$", "“": "``", "”": "''", "‘": "`", "’": "'"}
_SUBSCRIPT = re.compile("[\u2080-\u2089]+")  # "n₈₀" -> n\textsubscript{80}
# pandas escapes cells (Styler.format(escape="latex")); captions and notes need the same rules.
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_MINUS = re.compile(r"(?<![\w.])-(?=\.?\d)")  # "-1.38", "(-0.5": a minus sign; "Top-1", "1e-05": hyphens
_STRAIGHT_QUOTES = re.compile(r'"([^"\n]*)"')
TABLE_SIZE = r"\small"
TABLE_COLSEP = "4pt"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in free text (captions, notes), then map symbols."""
    return _latex_symbols("".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text)))


def _latex_symbols(text: str) -> str:
    text = _STRAIGHT_QUOTES.sub(r"``\1''", _MINUS.sub("\N{MINUS SIGN}", text))
    text = _SUBSCRIPT.sub(lambda m: "\\textsubscript{%s}" % "".join(str(ord(c) - 0x2080) for c in m.group()), text)
    for k, v in _LATEX_SYMBOLS.items():
        text = text.replace(k, v)
    return text


def _styler(table: "Table", escape: str, symbols=None):
    """A Styler over ``display`` with bold cells as CSS and the index hidden."""
    import pandas as pd  # here, not at import: specs validate format names without pandas

    df = table.display
    mark = table.bold.to_numpy()
    fmt = (lambda s: symbols(str(s))) if symbols else (lambda s: str(s))
    st = df.style.format(fmt, escape=escape).format_index(fmt, escape=escape, axis=1)
    st = st.apply(lambda d: pd.DataFrame(
        [["font-weight: bold;" if mark[i, j] else "" for j in range(d.shape[1])] for i in range(d.shape[0])],
        index=d.index, columns=d.columns), axis=None)
    return st.hide(axis="index")


# "75.43 ± 8.21 [70.1, 80.8] (+4.79†)": the value, then its interval and its delta, each optional
_PARTS = re.compile(r"^(.+?)(?: (\[[^\[\]]*\]))?(?: (\([+-][^()]*\)))?$")


def _stacked(text: object) -> str:
    """A cell with an interval or a delta as lines under the value (a narrow column's cells)."""
    m = _PARTS.match(str(text))
    parts = [_latex_symbols(g) for g in (m.groups() if m else [str(text)]) if g]
    if len(parts) == 1:
        return parts[0]
    return "\\begin{tabular}[t]{@{}r@{}}" + "\\\\{}".join(parts) + "\\end{tabular}"  # {}: a "[" opening the next line is text


_UNIT = re.compile(r"^(.+) (\([^()]*\))$")  # "Top-1 (%)": a header, then its unit or condition


def _stacked_header(text: object) -> str:
    """A header with a parenthesis as two lines, bottom-aligned: "Top-1" over "(%)"."""
    m = _UNIT.match(str(text))
    if m is None:
        return _latex_symbols(str(text))
    name, unit = (_latex_symbols(g) for g in m.groups())
    return f"\\begin{{tabular}}[b]{{@{{}}c@{{}}}}{name}\\\\{{}}{unit}\\end{{tabular}}"


def _column_format(table: "Table") -> str:
    """Row header left-aligned, numbers right-aligned, no gap outside the first and last column."""
    return "@{}l" + "r" * (table.display.shape[1] - 1) + "@{}"


@TABLE_FORMATS.register("tex")
def to_latex(table: "Table") -> str:
    """A booktabs ``table`` (``table*`` with ``wide: true``): caption, label ``tab:<name>``, the
    compact table (see the module's docstring) shrunk to the line width only if wider, footnotes
    under the rules."""
    import pandas as pd

    table = table.compact()
    st = _styler(table, "latex", _latex_symbols)
    if not table.spec.wide or table.pivot:  # a column or many column groups: stack intervals and deltas
        st = st.format(_stacked, escape="latex", subset=pd.IndexSlice[:, list(table.display.columns[1:])])
    st = st.format_index(_stacked_header, escape="latex", axis=1)
    env = "table*" if table.spec.wide else "table"
    latex = st.to_latex(
        hrules=True, column_format=_column_format(table), environment=env,
        caption=latex_escape(table.spec.title or table.spec.name), label="tab:" + re.sub(r"[^A-Za-z0-9_:-]", "-", table.spec.name),
        position="tbp" if table.spec.wide else "htbp", position_float="centering", multicol_align="c", convert_css=True,
    )
    # \width is the tabular's natural width: shrink to the column (or text) width, never enlarge.
    latex = latex.replace("\\begin{tabular}", f"{TABLE_SIZE}\\setlength{{\\tabcolsep}}{{{TABLE_COLSEP}}}%\n"
                          "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n\\begin{tabular}", 1)
    cut = latex.rindex("\\end{tabular}") + len("\\end{tabular}")  # the outer one (cells may hold tabulars)
    latex = latex[:cut] + "}" + latex[cut:]
    notes = "\n".join(f"\\par {latex_escape(n)}" for n in table.footnotes)
    end = f"\\end{{{env}}}"
    latex = latex.replace(end, f"\\par\\smallskip{{\\footnotesize\\raggedright\n{notes}\\par}}\n{end}")
    return "% needs \\usepackage{booktabs} and \\usepackage{graphicx}\n" + latex


def latex_document(tables: Iterable["Table"], options: str = "twocolumn") -> str:
    """A standalone article holding ``tables`` (to compile, or to look at with pdftoppm); a
    two-column page by default, the narrowest a paper's table has to fit."""
    body = "\n\n".join(to_latex(t) for t in tables)
    return (f"\\documentclass[{options}]{{article}}\n\\usepackage[T1]{{fontenc}}\n\\usepackage{{booktabs}}\n"
            "\\usepackage{graphicx}\n\\begin{document}\n" + body + "\n\\end{document}\n")
