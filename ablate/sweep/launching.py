"""``launch``: the one entry point that runs a sweep, whatever its kind.

A sweep file's ``kind`` picks the procedure from ``SWEEP_KINDS`` (a ``Registry``): ``grid``
plans every run (compose + validate, before any compute), writes the manifest and hands the
runs not done yet to the launcher its runs' config names; ``optuna`` creates the study and
starts its workers (``ablate.sweep.study.tune``). ``launch_rounds`` runs a grid in rounds,
adding seeds where a caller-supplied ``look`` says so (``--until-decided``): this layer knows
runs, seeds and launchers, the caller knows tables and tests.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ablate.registry import Registry
from ablate.sweep.runner import PlannedRun, pending, plan_sweep, remove_stale_locks, write_manifest
from ablate.track.manifest import SweepManifest
from ablate.track.record import RunRecord

log = logging.getLogger("ablate")

SWEEP_KINDS: Registry[Callable[..., "Launched"]] = Registry("sweep kind")


@dataclass
class Launched:
    """What a launch did: the planned runs (grid), those it ran, and a study's summary lines."""

    runs: list[PlannedRun] = field(default_factory=list)
    ran: list[PlannedRun] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def launch(spec, overrides: list[str] | tuple = (), *, dry_run: bool = False, **options: Any) -> Launched:
    """Run ``spec`` (a ``SweepSpec`` or ``StudySpec``) with ``overrides`` on every run."""
    return SWEEP_KINDS.get(spec.kind)(spec, list(overrides), dry_run=dry_run, **options)


@SWEEP_KINDS.register("grid")
def launch_grid(spec, overrides: list[str], *, dry_run: bool = False, seeds_by_cell: Optional[dict] = None,
                sequential: Optional[dict] = None) -> Launched:
    """Plan every run, record the manifest, launch the runs whose result does not stand yet."""
    from ablate.sweep.launchers import get_launcher

    if getattr(spec, "init_from", None) and not dry_run:  # the source sweep first; its finished runs are reused
        from ablate.sweep.depends import launch_sources

        launch_sources(spec, overrides, launch_grid)
    runs = plan_sweep(spec, overrides, seeds_by_cell)
    todo = pending(runs)
    first = runs[0].config
    launcher = get_launcher(first["launcher"])
    launcher.check_runs(todo)
    log.info("sweep %s: %d runs, %d to run, launcher %s", spec.name, len(runs), len(todo), launcher.name)
    if dry_run:  # run nothing, change nothing: the manifest is a launch's record
        for r in runs:
            print(f"{r.key}  {r.store.status(r.key) or 'missing':10s} {' '.join(r.overrides)}")
        from ablate.sweep.cost import summary  # torch only for a run no finished run of its cell times

        print(summary(todo, runs, launcher, SweepManifest.read(first["paths"]["sweeps_dir"], spec.name)))
        return Launched(runs, [])
    write_manifest(spec, runs, first["paths"]["sweeps_dir"], overrides, sequential=sequential)
    remove_stale_locks(runs, todo)
    if todo:  # nothing to run starts nothing (no worker pool, no cluster check)
        launcher.launch(todo)
    return Launched(runs, todo)


@SWEEP_KINDS.register("optuna")
def launch_study(spec, overrides: list[str], *, dry_run: bool = False, workers: Optional[int] = None) -> Launched:
    """Create (or resume) the study and work it until it holds ``n_trials`` trials."""
    from ablate.sweep.study import tune

    return Launched(lines=tune(spec, overrides, workers=workers, dry_run=dry_run))


# --- rounds (--until-decided) ------------------------------------------------------------
Look = Callable[[list[dict], list[RunRecord], dict], dict]


def cell_id(cell: tuple[str, ...]) -> str:
    """A grid cell's name in the manifest: its overrides, space-separated (no seed)."""
    return " ".join(cell)


def launch_rounds(spec, overrides: list[str] | tuple, look: Look, *, design: dict, dry_run: bool = False) -> dict:
    """Run the grid in rounds: after each, ``look(runs, records, state)`` returns the seeds to
    add per grid cell (``{cell_id: [seeds]}``; empty: stop). ``runs`` are the planned runs
    (``run_key``, ``config``, ``overrides``, ``cell``). ``state`` (``seeds`` per cell plus
    whatever ``look`` records in it) lives in the manifest as ``sequential``, so a relaunch with
    the same ``design`` resumes it; another design is refused. Returns the final state.
    """
    overrides = list(overrides)
    cells = spec.cells(overrides)
    runs = plan_sweep(spec, overrides)  # every run validated before any compute
    sweeps_dir = runs[0].config["paths"]["sweeps_dir"]
    state = _resume(SweepManifest.read(sweeps_dir, spec.name), design, cells, spec.seeds)
    while True:
        seeds = {c: state["seeds"][cell_id(c)] for c in cells}
        if dry_run:
            planned = plan_sweep(spec, overrides, seeds)
            todo = pending(planned)
            if todo:
                print(f"{len(planned)} runs planned, {len(todo)} to run before the next look:")
                for r in planned:
                    print(f"{r.key}  {'to run' if r in todo else r.store.status(r.key):10s} {' '.join(r.overrides)}")
                return state
            done = Launched(planned, [])
        else:
            done = launch_grid(spec, overrides, seeds_by_cell=seeds, sequential=state)
        store = done.runs[0].store
        infos = [{"run_key": r.key, "config": r.config, "overrides": r.overrides,
                  "cell": cell_id(tuple(o for o in r.overrides if not o.startswith(("seed=", "sweep="))))}
                 for r in done.runs]
        records = [rec for rec in (store.get(r.key) for r in done.runs) if rec is not None]
        additions = look(infos, records, state)
        if dry_run:
            return state
        write_manifest(spec, done.runs, sweeps_dir, overrides, sequential=state)
        if not additions:
            return state
        for cid, new in additions.items():
            state["seeds"][cid] = sorted(set(state["seeds"][cid]) | set(new))


def _resume(manifest: Optional[SweepManifest], design: dict, cells, seeds) -> dict:
    """The stored state of an earlier launch in rounds with the same design, or a new one."""
    old = manifest.sequential if manifest is not None else None
    if old is not None and all(cell_id(c) in old.get("seeds", {}) for c in cells):
        if old.get("design") != design:
            diff = ", ".join(f"{k}={old.get('design', {}).get(k)!r}" for k in design
                             if old.get("design", {}).get(k) != design[k])
            from ablate.errors import ConfigError

            raise ConfigError(f"this sweep was run --until-decided with {diff}; a design cannot change between "
                              "looks (it would void the error rate): relaunch with the same settings")
        return old
    return {"design": dict(design), "seeds": {cell_id(c): sorted(set(seeds)) for c in cells}}
