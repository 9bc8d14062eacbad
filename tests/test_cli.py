"""The `ablate` command: bad input ends with one line and exit status 2, before any run."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ablate.cli import main


@pytest.mark.parametrize("argv, words", [
    (["sweep", "nope"], ["unknown sweep 'nope'", "branches"]),
    (["table", "nope"], ["unknown table spec 'nope'", "branches"]),
    (["train", "attention=foo"], ["attention/foo", "ca"]),
    (["train", "attention.branches=diag", "attention=ca"], ["'diag'", "hw"]),
    (["sweep", "branches", "attention.reduction=0"], ["reduction", "0"]),
    (["sweep", "branches", "--seeds", "a,b"], ["--seeds", "integers"]),
    (["sweep", "branches", "launcher.name=moon"], ["'moon'", "local"]),
    (["frobnicate"], ["unknown command 'frobnicate'", "train, sweep, table"]),
])
def test_bad_input_one_line_exit_2(argv, words, home, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ablate: error:") and "search path" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not (home / "outputs" / "runs").exists()


def test_lists(capsys, home):
    assert main(["sweep", "--list"]) == 0 and "branches" in capsys.readouterr().out
    assert main(["table", "--list"]) == 0 and "branches" in capsys.readouterr().out


def test_dry_run_plans_without_training(capsys, home):
    assert main(["sweep", "branches", "--dry-run", "--seeds", "0"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "missing" in ln]
    assert len(lines) == 6
    assert not (home / "outputs" / "runs").exists()


def test_console_entry_points(home):
    from pathlib import Path

    script = Path(sys.executable).parent / "ablate"  # the console script pip installed
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "ablate", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "train" in out.stdout
