"""A researcher's own sweep and table files, anywhere on disk: every command takes the sweep
file's path (`sweep`, `status`, `report`), a table file's path (`table`), and the report builds
the table the sweep file names (a path beside the sweep file works)."""
from __future__ import annotations

import pytest

from ablate.cli import main
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def test_sweep_status_report_and_table_take_paths(home, tmp_path, capsys):
    mine = tmp_path / "my_study"
    mine.mkdir()
    (mine / "my_table.yaml").write_text(
        "title: My own table\nsweep: my_sweep\nrows:\n  - {label: plain, where: {attention.kind: none}}\n"
        "  - {label: ca, where: {attention.kind: ca}}\nbaseline: plain\n"
        "metrics:\n  - {key: top1, label: Top-1, delta: true}\nformats: [md]\n")
    sweep = mine / "my_sweep.yaml"
    sweep.write_text("table: my_table.yaml\ngrid:\n  attention: [none, ca]\nseeds: [0]\n")
    assert main(["sweep", str(sweep), *TINY]) == 0
    assert "My own table" in capsys.readouterr().out
    assert main(["status", str(sweep)]) == 0
    assert "completed 2" in capsys.readouterr().out
    assert main(["report", str(sweep)]) == 0
    page = (home / "outputs" / "reports" / "my_sweep" / "report.html").read_text()
    assert "My own table" in page and "my_table.yaml" in page
    assert main(["table", str(mine / "my_table.yaml"), "--format", "md"]) == 0
    assert "My own table" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "nope.yaml")]) == 2
    assert "unknown sweep" in capsys.readouterr().err
