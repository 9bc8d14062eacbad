"""The look of ``--until-decided``: build the table, decide each comparison, ask for more seeds.

``ablate.sweep.launch_rounds`` runs a grid in rounds and calls a look after each; this one
(``SequentialLook``) builds the sweep's table over the runs so far, treats each cell's
comparison with its baseline cell as one look of the group-sequential test
(``ablate.report.sequential``), records the look in the state, and returns the seeds to add:
``step`` more (the next seed numbers, the same in every cell, so seeds stay pairable) for every
grid cell behind an undecided table cell and behind its baseline cell, up to ``max_seeds``.
An empty answer ends the rounds: every comparison decided, or undecided at the seed limit.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

from ablate.errors import ConfigError
from ablate.report.cells import setting_labels
from ablate.report.sequential import Design, Track
from ablate.report.spec import TableSpec
from ablate.report.table import build_table, decision_metric

log = logging.getLogger("ablate")

__all__ = ["CellState", "SequentialLook", "next_seeds"]


@dataclasses.dataclass
class CellState:
    """One compared table cell at a look: its seeds, the test's p, the look's level, the decision."""

    name: str
    base: str
    n: int
    n_base: int
    p: float
    level: float
    decision: str


class SequentialLook:
    """``look(runs, records, state) -> {cell_id: [seeds to add]}`` for ``launch_rounds``.

    Args:
        spec: the sweep's table (it needs a baseline and a mean ± std metric with a delta).
        design: the sequential design (alpha, max seeds, spending, margin; ``paired`` from the spec).
        step: seeds added per round to an undecided cell.
        dry_run: print each comparison's look and what would come next; record nothing.
        echo: where the dry run prints (default ``print``).
    """

    def __init__(self, spec: TableSpec, design: Design, step: int, *, dry_run: bool = False,
                 echo: Callable[[str], None] = print) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ConfigError(f"--step {step!r}; allowed: an integer >= 1")
        if spec.baseline is None or decision_metric(spec) is None:
            raise ConfigError(f"table {spec.name!r} has no baseline row or no mean_std metric with delta: true; "
                              "--until-decided needs both to decide on")
        self.spec, self.design, self.step, self.dry_run, self.echo = spec, design, step, dry_run, echo
        self.states: list[CellState] = []

    @classmethod
    def design_for(cls, spec: TableSpec, **settings) -> Design:
        """The design for ``spec``: pairing follows the table's ``pair_by_seed``."""
        return Design(**settings, paired=spec.pair_by_seed)

    def __call__(self, runs: list[dict], records: list, state: dict) -> dict:
        states, grid_of = self._look(runs, records, state)
        for st in states:  # this look joins each comparison's record
            track = Track(list(state.setdefault("tracks", {}).get(st.name, [])))
            track.record(self.design.fraction(st.n, st.n_base))
            state["tracks"][st.name] = track.fractions
        additions = next_seeds(states, grid_of, state, self.design, self.step)
        self.states = states
        if self.dry_run:
            self._print(states, grid_of, additions)
            return additions
        state.setdefault("rounds", []).append(
            {s.name: {"n": s.n, "n_base": s.n_base, "p": s.p, "level": s.level, "decision": s.decision} for s in states})
        for s in states:
            log.info("look %d: %-28s n=%-3d p=%-9.3g nominal alpha=%-8.3g %s",
                     len(state["rounds"]), s.name, s.n, s.p, s.level, s.decision)
        return additions

    def _look(self, runs: list[dict], records: list, state: dict) -> tuple[list[CellState], dict]:
        expected = [{"run_key": r["run_key"], "config": r["config"]} for r in runs]
        table = build_table(self.spec, records, expected, sequential=state)
        labels = setting_labels(self.spec, expected)
        grid_of: dict[str, set] = {}
        for r in runs:
            if r["run_key"] in labels:
                grid_of.setdefault(labels[r["run_key"]], set()).add(r["cell"])
        m = decision_metric(self.spec)
        v = table.values
        columns = v["column"] if "column" in v.columns else [None] * len(v)
        names = [r if c is None else f"{r} / {c}" for r, c in zip(v["setting"], columns)]
        n_of = dict(zip(names, v["n"]))
        states = []
        for name, (_, row) in zip(names, v.iterrows()):
            if not isinstance(row.get("decision"), str):
                continue  # the baseline, or a cell without a comparison
            base = self.spec.baseline if " / " not in name else f"{self.spec.baseline} / {name.split(' / ', 1)[1]}"
            states.append(CellState(name, base, int(row["n"]), int(n_of.get(base, 0)), float(row[f"{m.id}_p"]),
                                    float(row[f"{m.id}_alpha"]), row["decision"]))
        return states, grid_of

    def _print(self, states: list[CellState], grid_of: dict, additions: dict) -> None:
        self.echo(f"{'cell':32s} {'n':>4s} {'base n':>6s} {'p':>10s} {'nominal α':>10s}  {'decision':10s}  next")
        for s in states:
            nxt = max((len(additions.get(g, [])) for g in grid_of.get(s.name, ())), default=0)
            self.echo(f"{s.name:32s} {s.n:4d} {s.n_base:6d} {s.p:10.3g} {s.level:10.3g}  {s.decision:10s}  "
                      f"{f'+{nxt} seeds' if nxt else '-'}")


def next_seeds(states: list[CellState], grid_of: dict, state: dict, design: Design, step: int) -> dict:
    """cell id -> the seeds to add: ``step`` more (up to ``max_seeds``) for every grid cell of an
    undecided table cell and of its baseline cell; the same new seed numbers everywhere."""
    grid: set = set()
    for s in states:
        if s.decision == "undecided":
            grid |= grid_of.get(s.name, set()) | grid_of.get(s.base, set())
    used = {x for seeds in state["seeds"].values() for x in seeds}
    out = {}
    for cid in sorted(grid):
        have = set(state["seeds"].get(cid, []))
        room = design.max_seeds - len(have)
        if room > 0:
            fresh = [x for x in range(max(used) + 1, max(used) + 1 + design.max_seeds) if x not in have]
            out[cid] = fresh[:min(step, room)]
    return out


def undecided(states: list[CellState]) -> Optional[list[str]]:
    """Names of the comparisons still undecided (after the last look)."""
    return [s.name for s in states if s.decision == "undecided"]
