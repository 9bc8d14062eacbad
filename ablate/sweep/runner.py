"""Plan a sweep (compose + validate every run, before any compute) and launch what is left."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ablate.config import compose
from ablate.data import fingerprints_memoised
from ablate.errors import ConfigError
from ablate.track.manifest import SweepManifest
from ablate.sweep.spec import SweepSpec
from ablate.track.record import FINAL_STATUSES
from ablate.train.run import RunPlan, prepare

log = logging.getLogger("ablate")


@dataclass
class PlannedRun:
    """One run of a sweep: its command-line overrides and its validated plan."""

    overrides: list[str]
    plan: RunPlan

    @property
    def key(self) -> str:
        return self.plan.key


def plan_sweep(spec: SweepSpec, extra: list[str] | tuple = (), seeds_by_cell: Optional[dict] = None) -> list[PlannedRun]:
    """Compose and validate every run; duplicates (same run key) are planned once."""
    runs, seen = [], set()
    with fingerprints_memoised():  # one stat pass over a dataset's files per sweep, not per run
        for overrides in spec.expand(extra, seeds_by_cell):
            try:
                plan = prepare(compose(overrides))
            except ConfigError as exc:
                raise ConfigError(f"sweep {spec.name!r}, run [{' '.join(overrides)}]: {exc}") from None
            if plan.key not in seen:
                seen.add(plan.key)
                runs.append(PlannedRun(overrides, plan))
    return runs


def write_manifest(spec: SweepSpec, runs: list[PlannedRun], sweeps_dir: str | Path, extra=(),
                   sequential: Optional[dict] = None) -> Path:
    """Record which runs make up the sweep, so tables and `ablate status` can see holes.

    A launch with the same overrides as the last one adds its runs to the list (other seeds
    accumulate); ``sequential`` (``--until-decided``) records the design and each comparison's
    looks, so a table built later tests each comparison at the level its looks allow.
    """
    return SweepManifest(
        spec.name, "grid", table=spec.table, extra_overrides=list(extra),
        runs_dir=str(runs[0].plan.run_dir.parent) if runs else None,
        runs=[{"run_key": r.key, "overrides": r.overrides, "config": r.plan.config} for r in runs],
        sequential=sequential,
    ).merged(SweepManifest.read(sweeps_dir, spec.name)).write(sweeps_dir)


def read_manifest(sweeps_dir: str | Path, name: str) -> Optional[SweepManifest]:
    return SweepManifest.read(sweeps_dir, name)


def pending(runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs whose result does not stand yet (missing, failed, preempted, or forced)."""
    todo = []
    for r in runs:
        status = r.plan.store.status(r.key)
        if r.plan.force or status not in FINAL_STATUSES:
            todo.append(r)
    return todo
