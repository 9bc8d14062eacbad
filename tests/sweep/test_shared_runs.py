"""Sweeps that say they share runs do: a ``shares:`` claim holds when both cells plan the same run
keys (and thread count) at their common seeds, and across all shipped sweeps no two cells with
the same dataset, model and attention use different recipes unless a grid axis varies it (the
reduction sweep once measured Table 3 on another task than Table 1's)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ablate.errors import ConfigError
from ablate.sweep import list_sweeps, load_sweep
from ablate.sweep.shares import check_shares, recipe_conflicts
from tests.helpers import ROOT

GRIDS = [n for n in list_sweeps() if load_sweep(n).kind == "grid"]


def variant(tmp_path: Path, name: str, **changes) -> str:
    """A copy of a shipped sweep file with some keys changed (``overrides_add`` appends overrides);
    its claims point at the shipped sweeps by path. Returns the copy's path."""
    data = yaml.safe_load((ROOT / "sweeps" / f"{name}.yaml").read_text())
    data["overrides"] = [*data.get("overrides", []), *changes.pop("overrides_add", [])]
    data.update(changes)
    for share in data.get("shares", []):
        share["sweep"] = str(ROOT / "sweeps" / f"{share['sweep']}.yaml")
    path = tmp_path / f"{name}_variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_shipped_claims_hold(home):
    claims = {n: load_sweep(n).shares for n in GRIDS}
    # Table 3's r = 32, and the official cells of ca_act, ca_gate and ca_pool, are the branches CA runs
    assert all(claims[n] for n in ("reduction", "ca_act", "ca_gate", "ca_pool"))
    for name in GRIDS:
        assert check_shares(load_sweep(name)) == [], name


def test_reduction_r32_is_the_branches_ca_run_at_every_common_seed(home):
    from ablate.sweep.runner import plan_sweep

    red, br = load_sweep("reduction"), load_sweep("branches")
    red.seeds = br.seeds = [0, 1]
    red.grid, br.grid = {"attention.reduction": [32]}, {"attention": ["ca"]}  # just those cells, planned as launched
    r32 = {r.plan.seed: r.key for r in plan_sweep(red)}
    ca = {r.plan.seed: r.key for r in plan_sweep(br)}
    assert r32 == ca and len(r32) == 2


def test_a_claim_on_another_task_is_caught(home, tmp_path):
    """The bug this guards: the reduction sweep on a task with other clutter than Table 1's."""
    spec = load_sweep(variant(tmp_path, "reduction", overrides_add=["data.clutter=8"]))
    (problem,) = check_shares(spec)
    assert "cell attention.reduction=32 = sweep" in problem and "attention=ca" in problem
    assert "seed 0 plans run" in problem and "data.clutter 8 vs 24" in problem


def test_a_claim_on_runs_made_with_other_threads_is_caught(home, tmp_path):
    path = variant(tmp_path, "reduction")
    data = yaml.safe_load(Path(path).read_text())
    data["overrides"] = [o for o in data["overrides"] if not o.startswith("trainer.threads")]
    Path(path).write_text(yaml.safe_dump(data))
    (problem,) = check_shares(load_sweep(path))
    assert "same runs, but made differently (trainer.threads null vs 1)" in problem


def test_a_claim_without_common_seeds_is_caught(home, tmp_path):
    (problem,) = check_shares(load_sweep(variant(tmp_path, "reduction", seeds=[50, 51])))
    assert "no seed in common (50,51 vs 0,1,2,3,4,5,6,7,8,9)" in problem


def test_a_claim_naming_a_cell_the_other_sweep_lacks_is_caught(home, tmp_path):
    path = variant(tmp_path, "reduction", shares=[{"cell": {"attention.reduction": 32}, "sweep": "branches",
                                                  "sweep_cell": {"attention": "eca"}}])
    (problem,) = check_shares(load_sweep(path))
    assert "attention=eca is not on the grid; allowed: none, se, cbam, ca_h, ca_w, ca" in problem


@pytest.mark.parametrize("share, message", [
    ({"cell": {"attention.ratio": 32}, "sweep": "branches", "sweep_cell": {"attention": "ca"}},
     "shares[0].cell: unknown axis 'attention.ratio'; allowed: every grid axis once (attention.reduction)"),
    ({"cell": {"attention.reduction": 64}, "sweep": "branches", "sweep_cell": {"attention": "ca"}},
     "shares[0].cell: attention.reduction=64 is not on the grid; allowed: 4, 8, 16, 32"),
    ({"cell": {"attention.reduction": 32}, "sweep_cell": {"attention": "ca"}},
     "shares[0]: sweep is missing; allowed: the name of another sweep file"),
    ({"cell": {"attention.reduction": 32}, "sweep": "branches", "sweep_cell": {"attention": "ca"}, "seed": 1},
     "seed"),
])
def test_a_bad_claim_is_one_line_at_load(tmp_path, share, message):
    data = yaml.safe_load((ROOT / "sweeps" / "reduction.yaml").read_text())
    data["shares"] = [share]
    path = tmp_path / "reduction.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="^sweep 'reduction'") as exc:
        load_sweep(str(path))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_recipe_conflict_between_two_sweeps_is_caught(home, tmp_path):
    branches = load_sweep("branches")
    other = load_sweep(variant(tmp_path, "reduction", overrides_add=["data.clutter=8"]))
    problems = recipe_conflicts([branches, other])
    assert len(problems) == 1 and "attention.reduction=32" in problems[0] and "attention=ca" in problems[0]
    assert "data.clutter 24 vs 8" in problems[0] or "data.clutter 8 vs 24" in problems[0]
    assert recipe_conflicts([branches, load_sweep("reduction")]) == []  # a grid axis may vary what it ablates


@pytest.mark.slow
def test_shipped_sweeps_measure_one_setting_with_one_recipe(home):
    """Every pair of cells of two shipped grid sweeps with the same dataset, model and attention
    differs only in a grid axis of one of them (composes every cell once: ~10-20 s)."""
    assert recipe_conflicts([load_sweep(n) for n in GRIDS]) == []
