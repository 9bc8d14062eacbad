"""``ablate sweep NAME --until-decided``: add seeds in rounds only where a comparison is undecided.

Round 1 runs the sweep's own seeds. After each round the sweep's table is built; every cell's
comparison with the baseline cell is one look of a group-sequential test
(``ablate.report.sequential``: alpha spending, so the error rate holds over all looks). Cells
still undecided get ``step`` more seeds (the next seed numbers, the same in every cell, so seeds
stay pairable), and so does their baseline cell; decided cells get none. It stops when every
comparison is decided or every undecided cell has ``max_seeds`` seeds. The design, the seeds of
each grid cell and each comparison's looks live in the sweep manifest, so a relaunch resumes
the same procedure and ``ablate table`` / ``report`` test each cell at its own nominal level.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional

from ablate.report.sequential import Design, Track
from ablate.sweep.spec import SweepSpec

log = logging.getLogger("ablate")


@dataclasses.dataclass
class CellState:
    """One compared table cell after a round: seeds, the test's p, its look's level, the decision."""

    name: str
    base: str
    n: int
    n_base: int
    p: float
    level: float
    decision: str


def _cell_id(cell: tuple[str, ...]) -> str:
    return " ".join(cell)


def run_until_decided(spec: SweepSpec, extra: list[str], design: Design, *, step: int,
                      dry_run: bool = False) -> int:
    """Run rounds until every comparison of the sweep's table is decided; print the table."""
    from ablate.report import load_table_spec
    from ablate.report.table import decision_metric
    from ablate.sweep.launchers import get_launcher
    from ablate.sweep.runner import pending, plan_sweep, read_manifest, write_manifest

    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"--step {step!r}; allowed: an integer >= 1")
    if not spec.table:
        raise ValueError(f"sweep {spec.name!r} names no table; --until-decided needs one (table: in the sweep file)")
    table_spec = load_table_spec(spec.table)
    metric = decision_metric(table_spec)
    if table_spec.baseline is None or metric is None:
        raise ValueError(f"table {table_spec.name!r} has no baseline row or no mean_std metric with delta: true; "
                         "--until-decided needs both to decide on")
    if len(set(spec.seeds)) > design.max_seeds:
        raise ValueError(f"--max-seeds {design.max_seeds} is below the sweep's {len(set(spec.seeds))} seeds; "
                         f"allowed: --max-seeds >= {len(set(spec.seeds))}")
    design = dataclasses.replace(design, paired=table_spec.pair_by_seed)
    cells = spec.cells(extra)
    runs = plan_sweep(spec, extra)  # validates every run before any compute
    first = runs[0].plan.config
    sweeps_dir = first["paths"]["sweeps_dir"]
    state = _resume(read_manifest(sweeps_dir, spec.name), design, cells, spec.seeds, metric.id)
    launcher = get_launcher(first["launcher"])
    rnd = len(state["rounds"])
    while True:
        rnd += 1
        runs = plan_sweep(spec, extra, {c: state["seeds"][_cell_id(c)] for c in cells})
        todo = pending(runs)
        write_manifest(spec, runs, sweeps_dir, extra, sequential=state)
        log.info("sweep %s, look %d: %d runs, %d to run (--until-decided, launcher %s)",
                 spec.name, rnd, len(runs), len(todo), launcher.name)
        if dry_run and todo:
            _print_runs(runs, todo)
            return 0
        if todo:
            launcher.launch(todo)
        states, grid_of = _look(table_spec, runs, state, design)
        for st in states:  # this look joins each comparison's record
            track = Track(list(state["tracks"].get(st.name, [])))
            track.record(design.fraction(st.n, st.n_base))
            state["tracks"][st.name] = track.fractions
        additions = _next_seeds(states, grid_of, state, design, step)
        if dry_run:
            _print_decisions(states, grid_of, additions)
            return 0
        state["rounds"].append({s.name: {"n": s.n, "n_base": s.n_base, "p": s.p, "level": s.level,
                                         "decision": s.decision} for s in states})
        write_manifest(spec, runs, sweeps_dir, extra, sequential=state)
        for s in states:
            log.info("look %d: %-28s n=%-3d p=%-9.3g nominal alpha=%-8.3g %s", rnd, s.name, s.n, s.p, s.level, s.decision)
        if not additions:
            break
        for cid, new in additions.items():
            state["seeds"][cid] = sorted(set(state["seeds"][cid]) | set(new))
    undecided = [s.name for s in states if s.decision == "undecided"]
    log.info("sweep %s: %s after %d looks", spec.name,
             "every comparison decided" if not undecided else f"undecided at the seed limit: {', '.join(undecided)}", rnd)
    from ablate.cli import table_main

    return table_main([spec.table, *[o for o in extra if o.startswith("paths.")]])


def _resume(manifest, design: Design, cells, seeds, metric: str) -> dict:
    """The stored state of an earlier --until-decided launch with the same design, or a new one."""
    want = dataclasses.asdict(design)
    old = manifest.sequential if manifest is not None else None
    if old is not None and all(_cell_id(c) in old["seeds"] for c in cells):
        if old["design"] != want:
            diff = ", ".join(f"{k}={old['design'].get(k)!r}" for k in want if old["design"].get(k) != want[k])
            raise ValueError(f"this sweep was run --until-decided with {diff}; a design cannot change between "
                             "looks (it would void the error rate): relaunch with the same settings")
        return old
    return {"design": want, "metric": metric, "seeds": {_cell_id(c): sorted(set(seeds)) for c in cells},
            "tracks": {}, "rounds": []}


def _look(table_spec, runs, state: dict, design: Design) -> tuple[list[CellState], dict]:
    """Build the table over the current runs: one CellState per compared cell, and the grid
    cells (override tuples) behind every table cell."""
    from ablate.report.cells import setting_labels
    from ablate.report.table import build_table, decision_metric

    store = runs[0].plan.store
    records = [r for r in (store.get(run.key) for run in runs) if r is not None]
    expected = [{"run_key": r.key, "config": r.plan.config} for r in runs]
    table = build_table(table_spec, records, expected, sequential=state)
    labels = setting_labels(table_spec, expected)
    grid_of: dict[str, set] = {}
    for run in runs:
        if run.key in labels:
            grid_of.setdefault(labels[run.key], set()).add(
                tuple(o for o in run.overrides if not o.startswith(("seed=", "sweep="))))
    m = decision_metric(table_spec)
    v = table.values
    names = [r if "column" not in v.columns else f"{r} / {c}" for r, c in
             zip(v["setting"], v["column"] if "column" in v.columns else [None] * len(v))]
    n_of = dict(zip(names, v["n"]))
    states = []
    for name, (_, row) in zip(names, v.iterrows()):
        if not isinstance(row.get("decision"), str):
            continue  # the baseline, or a cell without a comparison
        base = table_spec.baseline if " / " not in name else f"{table_spec.baseline} / {name.split(' / ', 1)[1]}"
        states.append(CellState(name, base, int(row["n"]), int(n_of.get(base, 0)), float(row[f"{m.id}_p"]),
                                float(row[f"{m.id}_alpha"]), row["decision"]))
    return states, grid_of


def _next_seeds(states: list[CellState], grid_of: dict, state: dict, design: Design, step: int) -> dict:
    """grid cell id -> the seeds to add: ``step`` more (up to ``max_seeds``) for every grid cell of
    an undecided table cell and of its baseline cell; the same new seed numbers everywhere."""
    grid: set = set()
    for s in states:
        if s.decision == "undecided":
            grid |= grid_of.get(s.name, set()) | grid_of.get(s.base, set())
    used = {x for seeds in state["seeds"].values() for x in seeds}
    out = {}
    for g in sorted(grid):
        cid = _cell_id(g)
        have = set(state["seeds"].get(cid, []))
        room = design.max_seeds - len(have)
        if room > 0:
            fresh = [x for x in range(max(used) + 1, max(used) + 1 + design.max_seeds) if x not in have]
            out[cid] = fresh[:min(step, room)]
    return out


def _print_runs(runs, todo) -> None:
    keys = {r.key for r in todo}
    print(f"{len(runs)} runs planned, {len(todo)} to run before the next look:")
    for r in runs:
        status = "to run" if r.key in keys else (r.plan.store.status(r.key) or "missing")
        print(f"{r.key}  {status:10s} {' '.join(r.overrides)}")


def _print_decisions(states: list[CellState], grid_of: dict, additions: dict) -> None:
    print(f"{'cell':32s} {'n':>4s} {'base n':>6s} {'p':>10s} {'nominal α':>10s}  {'decision':10s}  next")
    for s in states:
        nxt = max((len(additions.get(_cell_id(g), [])) for g in grid_of.get(s.name, ())), default=0)
        print(f"{s.name:32s} {s.n:4d} {s.n_base:6d} {s.p:10.3g} {s.level:10.3g}  {s.decision:10s}  "
              f"{f'+{nxt} seeds' if nxt else '-'}")
