"""Sweep files (``sweeps/<name>.yaml``), validated against commented dataclasses.

``kind: grid`` (``SweepSpec``) is base overrides x the cartesian product of ``grid`` axes x
``seeds``. Each axis is a Hydra override key (a config group such as ``attention`` or a value
such as ``attention.reduction``), so every run of a sweep is exactly an ``ablate train`` command
line. ``kind: optuna`` (``StudySpec`` in ``ablate/sweep/study_spec.py``) declares a search space
instead; its trials are ordinary runs too.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from ablate.config import check_spec_name
from ablate.errors import ConfigError

KINDS = ("grid", "optuna")  # ablate/sweep/files.py loads each kind's spec class
SEED_MAX = 2**63 - 1        # a run's seed is an int64 (torch, numpy)


@dataclass
class BaseSweepSpec:
    """What every sweep file has, whatever its kind (after Hydra's ``BaseQueueConf``)."""

    name: str = MISSING                         # the file's stem; also the W&B group
    kind: str = "grid"                          # grid (the paper's ablation tables) | optuna (tuning)
    description: str = ""                       # one line for `ablate sweep --list`
    table: Optional[str] = None                 # analysis/<table>.yaml built from this sweep
    overrides: list[str] = field(default_factory=list)      # applied to every run

    def __post_init__(self) -> None:
        check_spec_name("sweep", self.name)  # it names the sweep's dir and its manifest
        if self.kind not in KINDS:
            raise ConfigError(f"sweep {self.name!r}: unknown kind {self.kind!r}; allowed: {', '.join(KINDS)}")


@dataclass
class SharedCell:
    """A claim that a cell of this sweep is a cell of another sweep: the same setting, so the same
    runs (run keys) at the seeds both have. ``ablate.sweep.shares.check_shares`` verifies it."""

    cell: dict[str, Any] = field(default_factory=dict)        # this sweep's grid axis -> value
    sweep: str = MISSING                                      # the other sweep (its file name)
    sweep_cell: dict[str, Any] = field(default_factory=dict)  # that sweep's grid axis -> value


@dataclass
class SweepSpec(BaseSweepSpec):
    """A grid: which runs, and which table they feed."""

    grid: dict[str, list[Any]] = field(default_factory=dict)  # override key -> values
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one run per seed per cell
    shares: list[SharedCell] = field(default_factory=list)    # cells that are another sweep's cells
    init_from: Optional[dict[str, Any]] = None                # {sweep, match}: start from its runs (sweep/depends.py)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "grid":
            raise ConfigError(f"sweep {self.name!r}: kind {self.kind!r} is not a grid; load it with load_sweep()")
        if not self.seeds:
            raise ConfigError(f"sweep {self.name!r}: seeds is empty; allowed: a list of integers >= 0")
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
                raise ConfigError(f"sweep {self.name!r}: seed {seed!r}; allowed: integers in [0, {SEED_MAX}]")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"sweep {self.name!r}: grid axis {key!r} has no values")
        self.shares = [_shared_cell(self.name, i, s) for i, s in enumerate(self.shares)]
        if self.init_from is not None:
            self.init_from = dict(self.init_from)
            _check_init_from(self.name, self.grid, self.init_from)
        for share in self.shares:
            self.select(share.cell, f"shares[{self.shares.index(share)}].cell")

    def select(self, cell: dict[str, Any], where: str = "cell") -> tuple[str, ...]:
        """The overrides of the one grid cell ``cell`` (axis -> value, every axis named) names;
        a one-line ``ConfigError`` naming the axes or values allowed otherwise."""
        axes = list(self.grid)
        unknown = [k for k in cell if k not in self.grid]
        if unknown or sorted(cell) != sorted(axes):
            bad = f"unknown axis {unknown[0]!r}" if unknown else f"axes {', '.join(sorted(cell)) or '(none)'}"
            raise ConfigError(f"sweep {self.name!r}: {where}: {bad}; allowed: every grid axis once ({', '.join(axes)})")
        for key, value in cell.items():
            if _fmt(value) not in [_fmt(v) for v in self.grid[key]]:
                raise ConfigError(f"sweep {self.name!r}: {where}: {key}={_fmt(value)} is not on the grid; "
                                  f"allowed: {', '.join(_fmt(v) for v in self.grid[key])}")
        return (*self.overrides, *(f"{k}={_fmt(cell[k])}" for k in axes))

    def cells(self, extra: list[str] | tuple = ()) -> list[tuple[str, ...]]:
        """Every grid cell's overrides: base, then extra (command line), then the axes; no seed."""
        axes = list(self.grid.items())
        return [(*self.overrides, *extra, *(f"{k}={_fmt(v)}" for (k, _), v in zip(axes, values)))
                for values in itertools.product(*(v for _, v in axes))]

    def run_overrides(self, cell: tuple[str, ...], seed: int) -> list[str]:
        """One run of ``cell``: exactly an ``ablate train`` command line."""
        return [*cell, f"seed={seed}", f"sweep={self.name}"]

    def expand(self, extra: list[str] | tuple = (), seeds_by_cell: Optional[dict] = None) -> list[list[str]]:
        """Every run's override list: each cell x its seeds (``seeds_by_cell``, default the sweep's)."""
        return [self.run_overrides(cell, seed) for cell in self.cells(extra)
                for seed in (seeds_by_cell or {}).get(cell, self.seeds)]


def _check_init_from(name: str, grid: dict, value: Any) -> None:
    """The sweep file's ``init_from`` (one line): ``{sweep: <other sweep>, match: [grid axes]}``
    (what it does: ``ablate.sweep.depends``)."""
    if not isinstance(value, dict) or not isinstance(value.get("sweep"), str) or set(value) - {"sweep", "match"}:
        raise ConfigError(f"sweep {name!r}: init_from={value!r}; allowed: {{sweep: <another sweep>, match: [grid axes]}}")
    if value["sweep"] == name:
        raise ConfigError(f"sweep {name!r}: init_from.sweep is this sweep; allowed: another sweep")
    for axis in value.get("match") or []:
        if axis not in grid:
            raise ConfigError(f"sweep {name!r}: init_from.match axis {axis!r} is not on the grid; allowed: {', '.join(grid)}")


def _shared_cell(sweep: str, i: int, data: Any) -> SharedCell:
    share = data if isinstance(data, SharedCell) else SharedCell(**data)
    if not isinstance(share.sweep, str) or share.sweep in ("", MISSING):
        raise ConfigError(f"sweep {sweep!r}: shares[{i}]: sweep is missing; allowed: the name of another sweep file")
    if share.sweep == sweep:
        raise ConfigError(f"sweep {sweep!r}: shares[{i}]: sweep {share.sweep!r} is this sweep; allowed: another sweep")
    return share


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)
