"""LaTeX through ``pandas.io.formats.style.Styler``: a booktabs ``table`` float with escaping,
bold best cells, \\multicolumn headers for pivot tables and the footnotes under the rules."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import pandas as pd

from ablate.report.kinds import TABLE_FORMATS

if TYPE_CHECKING:
    from ablate.report.table import Table

# Unicode in cells -> LaTeX that pdflatex with the default fonts typesets (after escaping).
_LATEX_SYMBOLS = {"±": r"$\pm$", "†": r"$^{\dagger}$", "–": "--", "≥": r"$\geq$", "×": r"$\times$",
                  "Δ": r"$\Delta$", "·": r"$\cdot$", "α": r"$\alpha$", "π": r"$\pi$", "≤": r"$\leq$",
                  "<": r"$<$", ">": r"$>$"}
# pandas escapes cells (Styler.format(escape="latex")); captions and notes need the same rules.
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


WIDE_COLUMNS = 8  # more columns than this: \resizebox the tabular to the line width


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in free text (captions, notes), then map symbols."""
    return _latex_symbols("".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text)))


def _latex_symbols(text: str) -> str:
    for k, v in _LATEX_SYMBOLS.items():
        text = text.replace(k, v)
    return text


def _styler(table: "Table", escape: str, symbols=None):
    """A Styler over ``display`` with bold cells as CSS and the index hidden."""
    df = table.display
    mark = table.bold.to_numpy()
    fmt = (lambda s: symbols(str(s))) if symbols else (lambda s: str(s))
    st = df.style.format(fmt, escape=escape).format_index(fmt, escape=escape, axis=1)
    st = st.apply(lambda d: pd.DataFrame(
        [["font-weight: bold;" if mark[i, j] else "" for j in range(d.shape[1])] for i in range(d.shape[0])],
        index=d.index, columns=d.columns), axis=None)
    return st.hide(axis="index")


@TABLE_FORMATS.register("tex")
def to_latex(table: "Table") -> str:
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


def latex_document(tables: Iterable["Table"]) -> str:
    """A standalone document holding ``tables`` (to compile, or to look at with pdftoppm)."""
    body = "\n\n".join(to_latex(t) for t in tables)
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
            "\\usepackage[landscape,margin=1.5cm]{geometry}\n\\begin{document}\n" + body + "\n\\end{document}\n")
