"""Plan a sweep (compose + validate every run, before any compute) and launch what is left.

Planning needs no torch when it has nothing to run: a relaunch (or ``--dry-run``) whose runs
are all final finds each run's config in the compose cache and its run key in the plan cache
(``ablate.cache``: entries stamped with conf/ and ablate's source), reads their records and
stops there. Any run that is not final, any cache miss (a new config, changed code or conf),
and any run whose data is read from files (its key holds the files' fingerprint, looked up
again on every plan) take the full path: every run prepared (``train.run.prepare``: every knob
checked, torch imported) before any compute.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ablate.errors import ConfigError
from ablate.sweep.spec import SweepSpec
from ablate.track.manifest import SweepManifest
from ablate.track.record import FINAL_STATUSES
from ablate.track.store import RunDirStore

if TYPE_CHECKING:
    from ablate.train.run import RunPlan

log = logging.getLogger("ablate")


class PlannedRun:
    """One run of a sweep: its command-line overrides, resolved config, run key and run dir,
    and its validated ``RunPlan``. A run the planner found final without preparing it
    (``plan_sweep``'s fast path) gets its plan prepared when ``plan`` is first read."""

    def __init__(self, overrides: list[str], plan: Optional["RunPlan"] = None, *, config: Optional[dict] = None,
                 key: Optional[str] = None, run_dir: Optional[Path] = None) -> None:
        self.overrides = list(overrides)
        self._plan = plan
        if plan is not None:
            config, key, run_dir = plan.config, plan.key, plan.run_dir
        if config is None or key is None or run_dir is None:
            raise TypeError("PlannedRun needs a plan, or config, key and run_dir")
        self.config, self.key, self.run_dir = config, key, Path(run_dir)

    @property
    def plan(self) -> "RunPlan":
        if self._plan is None:
            from ablate.train.run import prepare

            plan = prepare(self.config)
            if plan.key != self.key:  # the plan cache's stamp should make this impossible
                raise RuntimeError(f"run [{' '.join(self.overrides)}]: planned as {self.key} from the cache, "
                                   f"prepared as {plan.key}; rerun with ABLATE_CACHE=off and report it")
            self._plan = plan
        return self._plan

    @property
    def store(self) -> RunDirStore:
        return RunDirStore(self.run_dir.parent)

    @property
    def force(self) -> bool:
        return bool(self.config.get("force", False))

    def __repr__(self) -> str:
        return f"PlannedRun({self.key}, {' '.join(self.overrides)!r})"


def plan_sweep(spec: SweepSpec, extra: list[str] | tuple = (), seeds_by_cell: Optional[dict] = None) -> list[PlannedRun]:
    """Compose and validate every run; duplicates (same run key) are planned once.

    When every run is final (and none is forced) and the caches know each run's key, the runs
    come back unprepared (no torch); otherwise every run is prepared here, before any compute.
    """
    sets = spec.expand(extra, seeds_by_cell)
    if getattr(spec, "init_from", None):  # each run starts from its source sweep's run (sweep/depends.py)
        from ablate.sweep.depends import add_init_from, with_sources

        sets = add_init_from(spec, sets, with_sources(spec, extra, plan_sweep))
    configs = _compose(spec, sets)
    final = _final_from_cache(sets, configs)
    if final is not None:
        return final
    return _prepare_all(spec, sets, configs)


def _compose(spec: SweepSpec, sets: list[list[str]]) -> list[dict]:
    from ablate.config import compose_container, compose_containers

    try:
        return compose_containers(sets)
    except ConfigError:
        for overrides in sets:  # name the run whose overrides are bad
            try:
                compose_container(overrides)
            except ConfigError as exc:
                raise ConfigError(f"sweep {spec.name!r}, run [{' '.join(overrides)}]: {exc}") from None
        raise


def _plan_slot(config: dict) -> str:
    from ablate import cache

    return cache.digest("plan", config)


def _final_from_cache(sets: list[list[str]], configs: list[dict]) -> Optional[list[PlannedRun]]:
    """The planned runs without preparing them, if every one is final, not forced, and its key
    is in the plan cache for this code; else None (the caller prepares every run)."""
    from ablate import cache

    if cache.cache_dir() is None:
        return None
    code = cache.code_digest()
    runs, seen, stores = [], set(), {}
    for overrides, config in zip(sets, configs):
        entry = cache.read("plans", _plan_slot(config))
        if entry is None or entry.get("code") != code or "config" not in entry or config.get("force"):
            return None
        key, prepared = entry["key"], entry["config"]
        root = Path(prepared["paths"]["runs_dir"]).resolve()
        store = stores.setdefault(root, RunDirStore(root))
        if store.status(key) not in FINAL_STATUSES:
            return None
        if key not in seen:
            seen.add(key)
            runs.append(PlannedRun(overrides, config=prepared, key=key, run_dir=root / key))
    return runs


def _prepare_all(spec: SweepSpec, sets: list[list[str]], configs: list[dict]) -> list[PlannedRun]:
    """Prepare every run (every knob checked; torch imported); record in the plan cache the key
    and prepared config of each run whose data has no fingerprint (generated data: its key
    follows from the config alone; data read from files is fingerprinted on every plan)."""
    from ablate import cache
    from ablate.data import FINGERPRINT_KEY, fingerprints_memoised
    from ablate.train.run import prepare

    runs, seen = [], set()
    code = cache.code_digest()
    with fingerprints_memoised():  # one stat pass over a dataset's files per sweep, not per run
        for overrides, config in zip(sets, configs):
            try:
                plan = prepare(config)
            except ConfigError as exc:
                raise ConfigError(f"sweep {spec.name!r}, run [{' '.join(overrides)}]: {exc}") from None
            if FINGERPRINT_KEY not in (plan.config.get("data") or {}):
                cache.write("plans", _plan_slot(config), {"code": code, "key": plan.key, "config": plan.config})
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
        runs_dir=str(runs[0].run_dir.parent) if runs else None,
        runs=[{"run_key": r.key, "overrides": r.overrides, "config": r.config} for r in runs],
        sequential=sequential,
    ).merged(SweepManifest.read(sweeps_dir, spec.name)).write(sweeps_dir)


def read_manifest(sweeps_dir: str | Path, name: str) -> Optional[SweepManifest]:
    return SweepManifest.read(sweeps_dir, name)


def pending(runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs whose result does not stand yet (missing, failed, preempted, or forced)."""
    todo = []
    for r in runs:
        status = r.store.status(r.key)
        if r.force or status not in FINAL_STATUSES:
            todo.append(r)
    return todo


def remove_stale_locks(runs: list[PlannedRun], todo: list[PlannedRun]) -> int:
    """Remove the lock files of done runs (in ``runs``, not in ``todo``) that no process holds;
    returns how many. A trainer killed after writing its run's record (during the W&B finish,
    say) leaves its lock file behind, and no launch trains that run again to take it over."""
    from ablate.track.lock import remove_stale_lock

    again = {r.key for r in todo}
    return sum(remove_stale_lock(r.store.files(r.key).lock_path) for r in runs if r.key not in again)
