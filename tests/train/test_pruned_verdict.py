"""`pruned` is a verdict of a study, not of a config: the study that pruned a run takes it as
final; `ablate train` and grid sweeps of the same config resume and finish it."""
from __future__ import annotations

import pytest

from ablate.cli import main
from ablate.config import compose
from ablate.train.engine import Pruned
from ablate.train.run import prepare, run
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def _prune(epoch: int, row: dict) -> None:
    raise Pruned(f"pruned after epoch {epoch + 1}")


def test_a_pruned_run_stays_pruned_for_its_study_and_resumes_for_anyone_else(home):
    over = [*TINY, "trainer.epochs=2", "sweep=s1"]
    rec = run(prepare(compose(over)), on_epoch_end=_prune, study="s1")
    assert rec.status == "pruned" and rec.epochs == 1
    again = run(prepare(compose(over)), study="s1")  # the study's own verdict: nothing to do
    assert again.status == "pruned" and again.finished_at == rec.finished_at
    # another study of the same config, a grid sweep or `ablate train`: not their verdict
    assert main(["train", *TINY, "trainer.epochs=2"]) == 0
    done = prepare(compose(over)).store.get(rec.run_key)
    assert done.status == "completed" and done.epochs == 2 and done.resumed_from == 1
