"""LaTeX tables that fit a paper: every shipped spec compiles in a two-column article with no
overfull box and is shrunk little if at all; empty columns dropped, short headers with a legend,
``wide: true`` for ``table*``, math minus, TeX quotes."""
from __future__ import annotations

import io
import math
import re
import shutil
import subprocess

import pandas as pd
import pytest

from ablate.errors import ConfigError
from ablate.report import build_table, list_tables, load_table_spec
from ablate.report.formats.csv import to_csv
from ablate.report.formats.md import to_markdown
from ablate.report.formats.tex import TABLE_COLSEP, TABLE_SIZE, latex_document, to_latex
from ablate.report.spec import TableSpec
from tests.report._synth import cells_of, record, records_for

# A shipped table may be shrunk to no less than this share of its natural size to fit its
# width (\columnwidth, or \textwidth with wide: true): its text stays readable.
MIN_SCALE = 0.85

ROWS = [{"label": "plain", "where": {"attention.kind": "none"}, "note": 'the "plain" net'},
        {"label": "+ SE", "where": {"attention.kind": "se"}},
        {"label": "+ CA", "where": {"attention.kind": "ca"}}]


def _spec(**kw) -> TableSpec:
    metrics = kw.pop("metrics", [{"key": "top1", "label": "Top-1 (%)", "best": "max", "delta": True}])
    return TableSpec(name="fit_t", title="Fit", rows=ROWS, baseline="plain", metrics=metrics, **kw)


def _records(top1={"none": 70.0, "se": 68.0, "ca": 75.0}, failed=False) -> list[dict]:
    recs = [record(f"{k}{s}", {"attention.kind": k}, s, v + 0.3 * s) for k, v in top1.items() for s in range(5)]
    if failed:
        recs.append(record("sefail", {"attention.kind": "se"}, 9, None, status="failed"))
    return recs


def _header(tex: str) -> str:
    return tex.split("\\toprule", 1)[1].split("\\midrule", 1)[0]


def test_notes_column_becomes_a_line_under_the_latex_table():
    table = build_table(_spec(), _records())
    assert "Notes" not in to_latex(table)  # an empty Notes column is dropped
    assert "\\begin{tabular}{@{}lrr@{}}" in to_latex(table)  # Settings, Top-1, n
    assert "| Settings | Top-1 (%) | n | Notes |" in to_markdown(table)  # Markdown unchanged
    holes = build_table(_spec(), _records(failed=True))
    tex = to_latex(holes)
    assert "Notes" not in _header(tex) and "\\begin{tabular}{@{}lrr@{}}" in tex
    assert tex.rstrip().endswith("\\par Notes: + SE*: 1 failed.\\par}\n\\end{table}")
    assert "+ SE*" in tex.split("\\midrule")[1]  # the row keeps its mark
    csv = pd.read_csv(io.StringIO(to_csv(holes)))  # the CSV keeps every column
    assert csv.set_index("setting").loc["+ SE", "notes"] == "1 failed"


def test_short_headers_with_a_legend():
    metrics = [{"key": "top1", "label": "Top-1 accuracy (%)", "short": "Acc.", "best": "max", "delta": True, "power": True},
               {"key": "latency_ms", "label": "Latency (ms)"}]
    table = build_table(_spec(metrics=metrics), _records())
    tex = to_latex(table)
    head = _header(tex)
    assert "Acc." in head and "accuracy" not in head and "n\\textsubscript{80}" in head and "power" not in head
    assert "\\par Columns: n\\textsubscript{80} = Seeds for 80\\% power; Acc. = Top-1 accuracy (\\%)." in tex \
        or "\\par Columns: Acc. = Top-1 accuracy (\\%); n\\textsubscript{80} = Seeds for 80\\% power." in tex
    assert "Latency\\\\{}(ms)" in head  # a header's parenthesis goes on a second line
    md = to_markdown(table)
    assert "Top-1 accuracy (%)" in md and "Acc." not in md and "Columns:" not in md


@pytest.mark.parametrize("short", ["Settings", "n", "Latency (ms)", "Seeds for 80% power"])
def test_short_header_taken_by_another_column_is_one_line_error(short):
    metrics = [{"key": "top1", "label": "Top-1 (%)", "short": short}, {"key": "latency_ms", "label": "Latency (ms)"}]
    with pytest.raises(ConfigError, match=rf"metric 'top1': short '{re.escape(short)}' is another column's header; allowed: any header but") as e:
        _spec(metrics=metrics)
    assert "\n" not in str(e.value)


def test_negative_delta_gets_a_math_minus_and_hyphens_stay():
    tex = to_latex(build_table(_spec(), _records()))
    assert "{}($-$2.00" in tex and "-2.00" not in tex  # + SE is 2 points below the plain net
    assert "Top-1" in tex and "Top$-$1" not in tex
    assert "(-2.00" in to_markdown(build_table(_spec(), _records()))  # Markdown unchanged


def test_quotes_are_tex_quotes():
    tex = to_latex(build_table(_spec(), _records()))
    assert "baseline row ``plain''" in tex and "the ``plain'' net" in tex
    assert '"' not in tex and "'plain'" not in tex


def test_wide_is_a_table_star_on_one_line_narrow_stacks_deltas():
    narrow, wide = (to_latex(build_table(_spec(wide=w), _records())) for w in (False, True))
    assert narrow.count("\\begin{table}[htbp]") == 1 and "table*" not in narrow
    assert wide.count("\\begin{table*}[tbp]") == 1 and wide.count("\\end{table*}") == 1
    assert "\\begin{tabular}[t]{@{}r@{}}75.60 $\\pm$ 0.47\\\\{}(+5.00$^{\\dagger}$)\\end{tabular}" in narrow
    assert "75.60 $\\pm$ 0.47 (+5.00$^{\\dagger}$)" in wide
    for tex in (narrow, wide):  # shrunk to the line width only when wider, never enlarged
        assert "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%" in tex


def _shipped_tables():
    tables = []
    for i, name in enumerate(list_tables()):
        spec = load_table_spec(name)
        if spec.row_key is not None and spec.row_key.values is None:
            continue
        # differences of either sign, some significant, ten seeds
        recs = records_for(spec, seeds=range(10), top1=lambda c, seed: 70.0 + 9.0 * math.sin(2.1 * c) + 0.4 * seed)
        if i % 2 == 0:  # a failed run: the Notes column and the * marker
            flat = cells_of(spec)[-1][2]
            recs.append(record("failed", flat, 99, None, status="failed"))
        tables.append(build_table(spec, recs))
    return tables


def _measured_document(tables) -> str:
    """``latex_document(tables)`` with, before each table, its tabular's natural width in the log."""
    doc = latex_document(tables)
    parts = []
    for t in tables:
        tex = to_latex(t)
        tabular = tex[tex.index("\\begin{tabular}"): tex.rindex("\\end{tabular}") + len("\\end{tabular}")]
        parts.append(f"\\setbox0\\hbox{{{TABLE_SIZE}\\setlength{{\\tabcolsep}}{{{TABLE_COLSEP}}}{tabular}}}"
                     f"\\typeout{{ABLATE-WIDTH {t.spec.name} \\the\\wd0}}")
    probe = "\\typeout{ABLATE-WIDTH columnwidth \\the\\columnwidth}\\typeout{ABLATE-WIDTH textwidth \\the\\textwidth}\n"
    return doc.replace("\\begin{document}\n", "\\begin{document}\n" + probe + "\n".join(parts) + "\n", 1)


@pytest.mark.service
@pytest.mark.parametrize("engine", ["pdflatex", "lualatex"])
def test_every_shipped_spec_fits_a_two_column_article(latex_available, engine, tmp_path):
    exe = latex_available if engine == "pdflatex" else shutil.which(engine)
    if exe is None:
        pytest.skip(f"{engine} not on PATH; run scripts/services/latex.sh")
    tables = _shipped_tables()
    doc = _measured_document(tables)
    assert doc.startswith("\\documentclass[twocolumn]{article}")
    (tmp_path / "fit.tex").write_text(doc)
    res = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode", "fit.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "fit.log").read_text(errors="replace")
    assert res.returncode == 0, res.stdout[-3000:]
    assert re.findall(r"Overfull \\hbox.*", log) == []
    assert "Missing character" not in log
    width = {k: float(v) for k, v in re.findall(r"ABLATE-WIDTH (\S+) ([\d.]+)pt", log)}
    assert width["columnwidth"] < width["textwidth"]
    for t in tables:
        target = width["textwidth" if t.spec.wide else "columnwidth"]
        assert width[t.spec.name] * MIN_SCALE <= target, (t.spec.name, width[t.spec.name], target)
    assert doc.count("\\begin{table*}") == sum(t.spec.wide for t in tables) > 0
