"""Renderers: Markdown, LaTeX (escaping; every shipped spec compiles with pdflatex), HTML, CSV,
rich, and ``ablate table --format``."""
from __future__ import annotations

import io
import subprocess

import pandas as pd
import pytest

from ablate.report import build_table, list_tables, load_table_spec
from ablate.report.formats import write_table
from ablate.report.kinds import TABLE_FORMATS
from ablate.report.formats.csv import to_csv
from ablate.report.formats.html import to_html
from ablate.report.formats.md import to_markdown
from ablate.report.formats.tex import latex_document, to_latex
from ablate.report.render import print_table
from ablate.report.spec import TableSpec
from tests.report._synth import record, records_for

SPEC = TableSpec(name="esc_t", title="Rates & costs: 100% of #runs_x",
                 rows=[{"label": "plain_net", "where": {"attention.kind": "none"}},
                       {"label": "CA & more", "where": {"attention.kind": "ca"}}],
                 metrics=[{"key": "top1", "label": "Top-1 (%)", "best": "max", "delta": True}], baseline="plain_net")


def table():
    recs = [record(f"b{s}", {"attention.kind": "none"}, s, 70.0 + 0.1 * s) for s in range(4)]
    recs += [record(f"c{s}", {"attention.kind": "ca"}, s, 75.0 + 0.1 * s) for s in range(4)]
    recs.append(record("cf", {"attention.kind": "ca"}, 9, None, status="failed"))
    return build_table(SPEC, recs)


def test_markdown_bold_delta_and_footnotes():
    md = to_markdown(table())
    lines = md.splitlines()
    # Markdown specials are escaped (`_` would start emphasis, `*` a nested list in a footnote).
    assert lines[0] == "**Rates & costs: 100% of #runs\\_x**"
    assert "| Settings | Top-1 (%) | n | Notes |" in md
    assert "| CA & more\\* | **75.15 ± 0.13 (+5.00†)** | 4 | 1 failed |" in md
    assert "| plain\\_net | 70.15 ± 0.13 | 4 |  |" in md
    assert any(ln.startswith("- † p \\< 0.05") or "† p \\< 0.05" in ln for ln in lines)
    assert any(ln.startswith("- \\*") for ln in lines)


def test_latex_is_booktabs_escaped_and_bold():
    tex = to_latex(table())
    for needle in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{Rates \& costs: 100\% of \#runs\_x}",
                   r"plain\_net", r"CA \& more*", r"Top-1\\{}(\%)",
                   r"\bfseries \begin{tabular}[t]{@{}r@{}}75.15 $\pm$ 0.13\\{}(+5.00$^{\dagger}$)\end{tabular}",
                   r"\label{tab:esc_t}"):
        assert needle in tex, needle
    body = tex.split(r"\begin{tabular}")[1]
    assert "_" not in body.replace(r"\_", "") and "%" not in body.replace(r"\%", "")


def test_html_is_escaped_with_bold_css():
    page = to_html(table())
    assert "CA &amp; more*" in page and "Rates &amp; costs" in page
    assert "font-weight: bold" in page and "75.15 ± 0.13 (+5.00†)" in page
    assert "<script" not in page


def test_csv_has_p_values_and_delta_ci():
    csv = pd.read_csv(io.StringIO(to_csv(table())))
    row = csv.set_index("setting").loc["CA & more"]
    assert row["top1_p"] < 1e-6 and row["top1_delta"] == pytest.approx(5.0)
    assert row["top1_delta_ci_low"] <= 5.0 <= row["top1_delta_ci_high"] and row["failed"] == 1


def test_rich_output_keeps_brackets_and_marks():
    from rich.console import Console

    buf = io.StringIO()
    t = build_table(TableSpec(**{**SPEC.__dict__, "ci": True}), table_records())
    print_table(t, Console(file=buf, width=200))
    out = buf.getvalue()
    assert "[" in out and "75.15 ± 0.13 [" in out and "+5.00†" in out  # CI brackets are not eaten as markup


def table_records():
    return [record(f"{k}{s}", {"attention.kind": k}, s, (70.0 if k == "none" else 75.0) + 0.1 * s)
            for k in ("none", "ca") for s in range(4)]


def test_write_table_every_format(tmp_path):
    paths = write_table(table(), tmp_path, ["md", "tex", "html", "csv"])
    assert [p.name for p in paths] == ["esc_t.md", "esc_t.tex", "esc_t.html", "esc_t.csv"]
    assert (tmp_path / "esc_t.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match=f"unknown format 'docx'; allowed: {', '.join(TABLE_FORMATS.names())}"):
        write_table(table(), tmp_path, ["docx"])


def test_cli_table_formats_and_bad_format(home, capsys):
    from ablate.cli import main
    from ablate.track.store import RunDirStore

    s = load_table_spec("reduction")
    store = RunDirStore(home / "outputs" / "runs")
    for rec in records_for(s):
        rec["sweep"] = "reduction"
        store.put(rec)
    assert main(["table", "reduction", "--format", "md,tex,csv"]) == 0
    out = capsys.readouterr().out
    assert "r = 32 (official)" in out
    tables = home / "outputs" / "tables"
    assert sorted(p.name for p in tables.iterdir()) == ["reduction.csv", "reduction.md", "reduction.tex"]
    assert main(["table", "reduction", "--format", "md,pdf"]) == 2
    assert f"unknown format 'pdf'; allowed: {', '.join(TABLE_FORMATS.names())}" in capsys.readouterr().err


@pytest.mark.service
def test_latex_of_every_spec_compiles(latex_available, tmp_path):
    tables = []
    for name in list_tables():
        s = load_table_spec(name)
        if s.row_key is not None and s.row_key.values is None:
            continue
        tables.append(build_table(s, records_for(s)))
    tables.append(table())  # _ % & # in title, labels and headers; a failed run (* marker)
    tex = tmp_path / "tables.tex"
    tex.write_text(latex_document(tables))
    res = subprocess.run([latex_available, "-halt-on-error", "-interaction=nonstopmode", tex.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 5000
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert "Missing character" not in log  # every symbol (±, †, ×, ≥) mapped to LaTeX
    png = subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "tables.pdf", "page"],
                         cwd=tmp_path, capture_output=True, timeout=60)
    assert png.returncode == 0 and list(tmp_path.glob("page*.png"))
