"""Table specs (``analysis/<name>.yaml``), validated against commented dataclasses.

A spec says which runs feed the table (a sweep and/or a filter on config keys), one row per
setting (a label and the config keys that pick its runs), which metrics become columns, and
how they are formatted. Aggregation is always over seeds: mean ± std with n.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablate.config import project_root

FORMATS = ("md", "csv")
AGGREGATES = ("mean_std", "mean")


@dataclass
class RowSpec:
    """One row: the setting's label and the config keys (dotted) that select its runs."""

    label: str = MISSING
    where: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricSpec:
    """One column: a record key (``top1``, ``params``, ...), its header and its format."""

    key: str = MISSING
    label: str = MISSING
    scale: float = 1.0            # multiply before formatting (1e-6 for M)
    fmt: str = ".2f"              # Python format spec for the value
    aggregate: str = "mean_std"   # mean_std: "74.30 ± 0.12"; mean: "3.95" (constant across seeds)


@dataclass
class TableSpec:
    """One paper-style table."""

    name: str = MISSING
    title: str = ""
    sweep: Optional[str] = None                     # runs of this sweep (its manifest shows holes)
    where: dict[str, Any] = field(default_factory=dict)   # filter applied to every row
    row_header: str = "Settings"
    rows: list[RowSpec] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    formats: list[str] = field(default_factory=lambda: ["md", "csv"])

    def __post_init__(self) -> None:
        self.rows = [r if isinstance(r, RowSpec) else RowSpec(**r) for r in self.rows]
        self.metrics = [m if isinstance(m, MetricSpec) else MetricSpec(**m) for m in self.metrics]
        if not self.rows:
            raise ValueError(f"table {self.name!r}: rows is empty")
        if not self.metrics:
            raise ValueError(f"table {self.name!r}: metrics is empty")
        for fmt in self.formats:
            if fmt not in FORMATS:
                raise ValueError(f"table {self.name!r}: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
        for m in self.metrics:
            if m.aggregate not in AGGREGATES:
                raise ValueError(f"table {self.name!r}: metric {m.key!r} aggregate {m.aggregate!r}; allowed: {', '.join(AGGREGATES)}")


def analysis_dir() -> Path:
    return project_root() / "analysis"


def list_tables() -> list[str]:
    return sorted(p.stem for p in analysis_dir().glob("*.yaml"))


def load_table_spec(name: str) -> TableSpec:
    """Read and validate ``analysis/<name>.yaml`` (a path to a YAML file works too)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else analysis_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown table spec {name!r}; allowed: {', '.join(list_tables()) or '(none in analysis/)'}")
    raw = OmegaConf.load(path)
    raw.setdefault("name", path.stem)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TableSpec), raw)
        data = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise ValueError(f"table {path.stem!r}: {str(exc).splitlines()[0]}") from None
    return TableSpec(**data)
