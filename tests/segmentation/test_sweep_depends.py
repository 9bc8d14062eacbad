"""A sweep that starts from another sweep's runs: its runs' keys hold their sources' keys,
launching it trains the source sweep first and reuses its finished runs."""
from __future__ import annotations

import pytest

from tests.segmentation.test_segmentation import SEG

pytestmark = pytest.mark.slow


def _sweeps(home):
    import yaml

    (home / "sweeps").mkdir(exist_ok=True)
    common = ["trainer.threads=1", "trainer.latency_repeats=1", "tracking=disabled", "data.batch_size=32"]
    (home / "sweeps" / "src.yaml").write_text(yaml.safe_dump({
        "overrides": [*common, "data.n_train=64", "data.n_val=16", "trainer.epochs=1"],
        "grid": {"attention": ["none", "ca"]}, "seeds": [0, 1]}))
    (home / "sweeps" / "dst.yaml").write_text(yaml.safe_dump({
        "overrides": [*common, *SEG], "grid": {"attention": ["none", "ca"]}, "seeds": [0, 1],
        "init_from": {"sweep": "src", "match": ["attention"]}}))


def test_dependent_sweep_keys_hold_the_source_keys_and_launching_reuses_finished_sources(home, monkeypatch):
    from ablate.sweep import files as sweep_files
    from ablate.sweep.launching import launch
    from ablate.sweep.runner import plan_sweep

    _sweeps(home)
    monkeypatch.setattr(sweep_files, "sweeps_dir", lambda: home / "sweeps")
    src, dst = sweep_files.load_sweep("src"), sweep_files.load_sweep("dst")
    sources = {(r.config["attention"]["kind"], r.config["seed"]): r.key for r in plan_sweep(src)}
    planned = plan_sweep(dst)
    assert len(planned) == 4
    for r in planned:
        assert r.config["model"]["init_from"] == sources[r.config["attention"]["kind"], r.config["seed"]]
    launched = launch(dst)
    store = planned[0].store
    assert all(store.status(k) == "completed" for k in sources.values())  # the sources ran first
    assert all(store.get(r.key)["init_from"] == r.config["model"]["init_from"] for r in launched.runs)
    # relaunch: nothing trains again, the sources are reused
    again = launch(dst)
    assert again.ran == [] and [r.key for r in again.runs] == [r.key for r in planned]


def test_init_from_must_name_grid_axes(home):
    from ablate.errors import ConfigError
    from ablate.sweep.spec import SweepSpec

    with pytest.raises(ConfigError, match="init_from.match axis 'width' is not on the grid; allowed: attention"):
        SweepSpec(name="x", grid={"attention": ["ca"]}, init_from={"sweep": "y", "match": ["width"]})
