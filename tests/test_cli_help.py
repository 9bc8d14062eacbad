"""Small things users hit: ``ablate --version``, help texts without reStructuredText markup, and
``ablate train -m`` calls that each keep their own multirun dir and leave no empty dirs."""
from __future__ import annotations

import os
from importlib.metadata import version

import pytest

from ablate.cli import COMMANDS, main
from tests.helpers import TINY


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_comes_from_the_package_metadata(flag, capsys):
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"ablate {version('ablate')}\n"


def _help(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse and Hydra end --help with exit(0)
        code = exc.code
    assert code in (0, None), argv
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["--help"], *([name, "--help"] for name in COMMANDS)],
                         ids=lambda a: " ".join(a) or "(none)")
def test_help_has_no_rst_markup(argv, home, capsys):
    text = _help(argv, capsys)
    assert text.strip() and "``" not in text, text


def test_top_level_help_names_every_command(capsys):
    text = _help(["--help"], capsys)
    for name in COMMANDS:
        assert f"\n  {name} " in text
    assert "ablate train is powered by" not in _help(["train", "--help"], capsys)


def _dirs(root):
    return [d for d, _, _ in os.walk(root)]


@pytest.mark.slow
def test_two_multirun_calls_keep_their_own_dirs_and_leave_none_empty(home):
    multirun = home / "outputs" / "multirun"
    assert main(["train", "-m", "seed=0,1", *TINY]) == 0
    first = sorted(multirun.iterdir())
    assert main(["train", "-m", "seed=0,1", *TINY]) == 0  # same grid: its runs are found, not re-trained
    calls = sorted(multirun.iterdir())
    assert len(first) == 1 and len(calls) == 2 and first[0] in calls
    for call in calls:  # each call's record of what it ran, untouched by the next call
        assert [p.name for p in call.iterdir()] == ["multirun.yaml"]
        assert "seed=0,1" in (call / "multirun.yaml").read_text()
    empty = [d for d in _dirs(home / "outputs") if not os.listdir(d)]
    assert not empty
    assert len(list((home / "outputs" / "runs").glob("*/result.json"))) == 2
