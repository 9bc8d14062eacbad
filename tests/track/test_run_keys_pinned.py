"""The run keys of every shipped grid sweep's runs, pinned: a refactor that changes a key would
orphan every finished run of that sweep (a relaunch would re-train it), so any change to what a
key hashes must be deliberate and show up here. Regenerate the file only for such a change."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ablate.sweep import list_sweeps, load_sweep
from ablate.sweep.runner import plan_sweep

PINNED = json.loads((Path(__file__).parent / "shipped_run_keys.json").read_text())


def test_every_shipped_grid_sweep_is_pinned():
    grids = sorted(n for n in list_sweeps() if load_sweep(n).kind == "grid")
    assert sorted(PINNED) == grids


@pytest.mark.parametrize("name", sorted(PINNED))
def test_run_keys_of_shipped_sweeps_are_unchanged(name, home):
    now = sorted(" ".join(r.overrides) + " -> " + r.key for r in plan_sweep(load_sweep(name)))
    assert now == PINNED[name]
