"""A sweep whose runs start from another sweep's runs (``init_from`` in a sweep file).

``init_from: {sweep: seg_pretrain, match: [attention]}``: each run of this sweep gets
``model.init_from=<key>``, the run key of the source sweep's run with the same values of the
``match`` grid axes and the same seed (so the key of every dependent run holds its source's key,
and is known before anything trains: both sweeps are planned first). Launching this sweep
launches the source sweep first, which trains only its runs whose result does not stand yet
(finished ones are reused), then plans and launches this one. A source sweep that misses a
combination is one line naming it.
"""
from __future__ import annotations

from ablate.errors import ConfigError


def _value(overrides, axis: str) -> str | None:
    hit = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == axis]
    return hit[-1] if hit else None


def source_spec(spec):
    from ablate.sweep.files import load_sweep

    source = load_sweep(spec.init_from["sweep"])
    if source.kind != "grid":
        raise ConfigError(f"sweep {spec.name!r}: init_from.sweep={source.name!r} is a {source.kind} sweep; allowed: a grid sweep")
    return source


def source_overrides(extra) -> list[str]:
    """The command line's overrides that also apply to the source sweep: where things go."""
    return [o for o in extra if o.split("=", 1)[0].lstrip("+~").startswith("paths.")]


def with_sources(spec, extra: list[str] | tuple, plan_sweep) -> dict[tuple, str]:
    """``{(match values..., seed): source run key}`` from the source sweep planned by ``plan_sweep``."""
    source = source_spec(spec)
    match = list(spec.init_from.get("match") or [])
    keys: dict[tuple, str] = {}
    for run in plan_sweep(source, source_overrides(extra)):
        keys.setdefault((*(_value(run.overrides, a) for a in match), _value(run.overrides, "seed")), run.key)
    return keys


def add_init_from(spec, sets: list[list[str]], keys: dict[tuple, str]) -> list[list[str]]:
    """Each run's overrides with ``model.init_from=<its source run's key>``."""
    match = list(spec.init_from.get("match") or [])
    out = []
    for overrides in sets:
        want = (*(_value(overrides, a) for a in match), _value(overrides, "seed"))
        if want not in keys:
            named = ", ".join(f"{a}={v}" for a, v in zip([*match, "seed"], want))
            raise ConfigError(f"sweep {spec.name!r}: init_from: sweep {spec.init_from['sweep']!r} has no run with "
                              f"{named}; allowed: combinations its grid and seeds have")
        out.append([*overrides, f"model.init_from={keys[want]}"])
    return out


def launch_sources(spec, extra, launch) -> None:
    """Launch the source sweep (``launch``: the grid launcher); finished runs are reused."""
    launch(source_spec(spec), source_overrides(extra))
