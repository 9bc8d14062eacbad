"""The run keys of every shipped grid sweep's runs, pinned: a refactor that changes a key would
orphan every finished run of that sweep (a relaunch would re-train it), so any change to what a
key hashes must be deliberate and show up here. Regenerate the file only for such a change."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ablate.sweep import list_sweeps, load_sweep
from ablate.sweep.runner import plan_sweep
from tests.imagenet_tree import write_stand_in

PINNED = json.loads((Path(__file__).parent / "shipped_run_keys.json").read_text())


def plan_keys(name: str, home: Path, monkeypatch) -> list[str]:
    """Sweeps whose runs read files have the fingerprint of the user's copy of the data in their
    keys: they are pinned on a stand-in in the data's layout with a fixed fingerprint, so the pin
    guards everything else the key hashes."""
    sub = write_stand_in(name, home)
    if sub is not None:
        monkeypatch.setattr("ablate.train.run._data_fingerprint", lambda *a, **k: f"pinned-{sub}")
    return sorted(" ".join(r.overrides) + " -> " + r.key for r in plan_sweep(load_sweep(name)))


def test_every_shipped_grid_sweep_is_pinned():
    grids = sorted(n for n in list_sweeps() if load_sweep(n).kind == "grid")
    assert sorted(PINNED) == grids


@pytest.mark.parametrize("name", sorted(PINNED))
def test_run_keys_of_shipped_sweeps_are_unchanged(name, home, monkeypatch):
    assert plan_keys(name, home, monkeypatch) == PINNED[name]
