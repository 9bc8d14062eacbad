"""Studies read well in Optuna's own tools: metric names on the study, each trial's run dir beside
its run key, a trial that ran all its epochs is COMPLETE whatever the pruner says at the last one,
and the printed ``optuna trials`` command works with the real ``optuna`` CLI."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.sweep.storage import optuna_cli_command
from tests.helpers import TINY

OPTUNA = str(Path(sys.executable).with_name("optuna"))


def load_study(home: Path, name: str):
    import optuna

    from ablate.sweep.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(f"journal://{home / 'outputs' / 'sweeps' / name / 'optuna.journal'}"))


def test_the_printed_command_reads_the_study_with_the_real_optuna_cli(home, tmp_path, capsys):
    sweep = tmp_path / "cli2.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\nsearch: {attention.reduction: [8, 16]}\n"
                     "objectives: [top1, madds]\nn_trials: 2\npruner: none\nsampler: random\n")
    assert main(["tune", str(sweep), *TINY]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "optuna CLI: " in x]
    cmd = line.split("optuna CLI: ", 1)[1]
    journal = home / "outputs" / "sweeps" / "cli2" / "optuna.journal"
    assert cmd == f"optuna trials --study-name cli2 --storage {journal} --storage-class JournalFileBackend"
    args = shlex.split(cmd)
    got = subprocess.run([OPTUNA, *args[1:], "-f", "json"], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-1500:]
    trials = json.loads(got.stdout)
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:  # run key and run dir of each trial, as the optuna CLI shows them
        run_dir = Path(t["user_attrs"]["run_dir"])
        assert run_dir.name == t["user_attrs"]["run_key"] and (run_dir / "result.json").is_file()
        assert run_dir.parent == home / "outputs" / "runs"
    # the study names its objectives (Optuna's dashboard and plots label axes with them)
    assert load_study(home, "cli2").metric_names == ["top1", "madds"]
    # an RDB URL is printed as its URL, the password left out
    assert optuna_cli_command("s", "postgresql+psycopg2://me:secret@db:5432/o") == \
        "optuna trials --study-name s --storage 'postgresql+psycopg2://me:***@db:5432/o'"


@pytest.fixture
def always_prune(monkeypatch):
    """A pruner that asks to prune at every report (registered for one test)."""
    import optuna

    from ablate.sweep.samplers import PRUNERS

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    PRUNERS.names()  # load the registry before adding to it
    monkeypatch.setitem(PRUNERS._entries, "always", lambda epochs, **opts: Always())
    monkeypatch.setitem(PRUNERS._meta, "always", {})


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_prune_decision_at_the_last_epoch_does_not_prune(home, tmp_path, always_prune, epochs):
    from optuna.trial import TrialState

    sweep = tmp_path / f"p{epochs}.yaml"
    sweep.write_text("kind: optuna\nsearch: {attention: [none]}\nn_trials: 1\npruner: always\n")
    assert main(["tune", str(sweep), *TINY, f"trainer.epochs={epochs}"]) == 0
    (trial,) = load_study(home, f"p{epochs}").get_trials()
    rec = json.loads((Path(trial.user_attrs["run_dir"]) / "result.json").read_text())
    if epochs == 1:  # the pruner said prune after the only epoch: the trial ran all its epochs
        assert trial.state == TrialState.COMPLETE and rec["status"] == "completed" and rec["epochs"] == 1
        assert trial.values == [pytest.approx(rec["top1"])] and trial.intermediate_values.keys() == {0}
    else:            # ... said prune after the first of two: pruned there, its record says so
        assert trial.state == TrialState.PRUNED and rec["status"] == "pruned" and rec["epochs"] == 1
        assert "after epoch 1" in rec["message"]
