"""Sweeps that share runs, checked: a sweep file's ``shares:`` says that one of its cells is a
cell of another sweep (the reduction sweep's r = 32 is the branches sweep's CA), and
``check_shares`` verifies that both cells plan the same runs: the same run key at every seed both
sweeps have (so one table's row is measured on exactly the runs of the other's), and the same
thread count and device (not part of the key, but a run's numbers depend on them, and whichever
sweep trains a shared run first decides how it is made).

``recipe_conflicts`` is the check without a claim: across sweep files, two cells with the same
dataset, model and attention must have one recipe (data, optimiser, trainer) unless a grid axis
varies it, so no table of the project is measured on a task or budget that another silently
does not share.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ablate.errors import ConfigError
from ablate.sweep.spec import SweepSpec

# Settings outside the run key that still change a run's numbers (``RunRecord.NUMERICS``).
HOW_MADE = ("trainer.threads", "trainer.device")
# What makes two cells the "same setting" for recipe_conflicts: the task, the network, the module.
IDENTITY = ("data.name", "model", "attention")


def check_shares(spec: SweepSpec) -> list[str]:
    """One line per broken ``shares:`` claim of ``spec`` (empty: every claim holds)."""
    from ablate.sweep.files import load_sweep

    problems = []
    for i, share in enumerate(spec.shares):
        claim = f"sweep {spec.name!r} cell {_show(share.cell)} = sweep {share.sweep!r} cell {_show(share.sweep_cell)}"
        try:
            other = load_sweep(share.sweep)
            if other.kind != "grid":
                raise ConfigError(f"sweep {share.sweep!r} is kind {other.kind!r}; allowed: a grid sweep")
            other.select(share.sweep_cell, f"the cell shares[{i}] of sweep {spec.name!r} names")
        except ConfigError as exc:
            problems.append(f"{claim}: {exc}")
            continue
        seeds = sorted(set(spec.seeds) & set(other.seeds))
        if not seeds:
            problems.append(f"{claim}: the two sweeps have no seed in common ({_seeds(spec)} vs {_seeds(other)})")
            continue
        mine = _planned(spec, share.cell, seeds)
        theirs = _planned(other, share.sweep_cell, seeds)
        for seed in seeds:
            (key_a, cfg_a), (key_b, cfg_b) = mine[seed], theirs[seed]
            if key_a != key_b:
                diff = _differences(cfg_a, cfg_b, semantic=True)
                problems.append(f"{claim}: seed {seed} plans run {key_a} here and {key_b} there; they differ in {diff}")
                break
            diff = _differences(cfg_a, cfg_b, keys=HOW_MADE)
            if diff != "nothing":
                problems.append(f"{claim}: same runs, but made differently ({diff}): whichever sweep trains a "
                                "shared run first decides its numerics; set the same values in both sweep files")
                break
    return problems


def recipe_conflicts(specs: Iterable[SweepSpec], seed: int = 0) -> list[str]:
    """One line per pair of cells of different sweeps with the same dataset, model and attention
    (``IDENTITY``) whose configs differ in a key that neither sweep has as a grid axis: the same
    setting measured with two recipes. The comparison does not depend on the seed (``seed`` is
    the one both cells are composed with)."""
    import itertools

    cells = []  # (sweep, its axes, identity, semantic config, flat config)
    for spec in specs:
        for overrides in spec.cells():
            cfg = _config([*overrides, f"seed={seed}"])
            flat = _flatten(_semantic(cfg))
            ident = tuple(_pick(flat, k) for k in IDENTITY)
            cells.append((spec.name, tuple(spec.grid), ident, flat, overrides))
    problems = []
    for a, b in itertools.combinations(cells, 2):
        if a[0] == b[0] or a[2] != b[2]:
            continue
        axes = a[1] + b[1]
        differ = [k for k in sorted(set(a[3]) | set(b[3]))
                  if a[3].get(k, _UNSET) != b[3].get(k, _UNSET) and not _under(k, axes)]
        if differ:
            shown = ", ".join(f"{k} {_val(a[3], k)} vs {_val(b[3], k)}" for k in differ[:6])
            problems.append(f"sweep {a[0]!r} [{' '.join(a[4])}] and sweep {b[0]!r} [{' '.join(b[4])}]: same "
                            f"dataset, model and attention, but {shown}: make it a grid axis or use one recipe")
    return problems


# --- helpers ---------------------------------------------------------------------------------
_UNSET = object()


def _planned(spec: SweepSpec, cell: Mapping[str, Any], seeds: list[int]) -> dict[int, tuple[str, dict]]:
    """seed -> (run key, resolved config) of ``cell``'s runs, planned exactly as ``ablate sweep`` plans them."""
    from ablate.config import compose
    from ablate.train.run import prepare

    base = spec.select(dict(cell))
    out = {}
    for seed in seeds:
        plan = prepare(compose(spec.run_overrides(base, seed)))
        out[seed] = (plan.key, plan.config)
    return out


def _config(overrides: list[str]) -> dict:
    from ablate.config import compose, to_container

    return to_container(compose(overrides))


def _semantic(cfg: Mapping[str, Any]) -> dict:
    from ablate.track.runkey import semantic_config

    return semantic_config(cfg)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _pick(flat: Mapping[str, Any], key: str) -> Any:
    """``key``'s value, or for a group (``model``) every key under it, as a hashable tuple."""
    if key in flat:
        return flat[key]
    return tuple(sorted((k, repr(v)) for k, v in flat.items() if k.startswith(key + ".")))


def _under(key: str, axes: Iterable[str]) -> bool:
    """``key`` is a grid axis or inside one (``attention.reduction`` under the axis ``attention``)."""
    return any(key == a or key.startswith(a + ".") for a in axes)


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], semantic: bool = False,
                 keys: Optional[Iterable[str]] = None) -> str:
    fa, fb = (_flatten(_semantic(a)), _flatten(_semantic(b))) if semantic else (_flatten(a), _flatten(b))
    names = list(keys) if keys is not None else sorted(set(fa) | set(fb))
    differ = [k for k in names if fa.get(k, _UNSET) != fb.get(k, _UNSET)]
    if not differ:
        return "nothing"
    return ", ".join(f"{k} {_val(fa, k)} vs {_val(fb, k)}" for k in differ[:6]) + (", ..." if len(differ) > 6 else "")


def _val(flat: Mapping[str, Any], key: str) -> str:
    v = flat.get(key, _UNSET)
    return "(unset)" if v is _UNSET else "null" if v is None else str(v)


def _show(cell: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.items())


def _seeds(spec: SweepSpec) -> str:
    return ",".join(str(s) for s in spec.seeds)
