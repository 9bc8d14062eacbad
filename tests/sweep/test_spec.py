"""Sweep files: validation, expansion, and every shipped sweep plans without compute."""
from __future__ import annotations

import pytest

from ablate.sweep import SweepSpec, list_sweeps, load_sweep
from ablate.sweep.runner import plan_sweep


def test_grid_expansion_is_the_cartesian_product_times_seeds():
    spec = SweepSpec(name="s", overrides=["data.n_train=64"], grid={"attention": ["none", "ca"], "attention.reduction": [8, 16]}, seeds=[0, 1])
    runs = spec.expand(["trainer.epochs=1"])
    assert len(runs) == 2 * 2 * 2
    assert runs[0] == ["data.n_train=64", "trainer.epochs=1", "attention=none", "attention.reduction=8", "seed=0", "sweep=s"]
    assert len({tuple(r) for r in runs}) == 8


@pytest.mark.parametrize("kw, msg", [
    ({"kind": "random"}, "unknown kind 'random'; allowed: grid"),
    ({"seeds": []}, "seeds is empty"),
    ({"grid": {"attention": []}}, "grid axis 'attention' has no values"),
])
def test_bad_sweep_values(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SweepSpec(name="s", **kw)


def test_unknown_sweep_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown sweep 'nope'; allowed: .*branches"):
        load_sweep("nope")


def test_unknown_key_in_sweep_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("grid: {attention: [none]}\nsedes: [0]\n")
    with pytest.raises(ValueError, match="sedes"):
        load_sweep(str(p))


GRID_SWEEPS = [n for n in list_sweeps() if load_sweep(n).kind == "grid"]  # studies: tests/sweep/


@pytest.mark.parametrize("name", GRID_SWEEPS)
def test_every_shipped_grid_sweep_plans(name, home):
    from tests.imagenet_tree import write_stand_in

    write_stand_in(name, home)  # a sweep on files (ImageNet) plans against a stand-in tree
    spec = load_sweep(name)
    runs = plan_sweep(spec, ["trainer.epochs=1"])
    n_cells = 1
    for values in spec.grid.values():
        n_cells *= len(values)
    assert len(runs) == n_cells * len(spec.seeds)
    assert len({r.key for r in runs}) == len(runs)


def test_a_bad_run_stops_the_whole_sweep_before_compute(tmp_path, home):
    p = tmp_path / "bad.yaml"
    p.write_text("grid: {attention: [none, ca]}\nseeds: [0]\noverrides: [attention.branches=diag]\n")
    with pytest.raises(ValueError, match="diag"):
        plan_sweep(load_sweep(str(p)))
    assert not (home / "outputs" / "runs").exists()
