"""Table specs (``analysis/<name>.yaml``), validated against commented dataclasses.

A spec says which runs feed the table (a sweep and/or a filter on config keys), how the runs
are laid out (explicit ``rows`` with a label and the config keys that pick each row's runs, or
a pivot: ``row_key`` values as rows and optional ``column_key`` values as column groups),
which metrics become columns and how they are aggregated over seeds (mean ± std with n, an
optional 95% CI, or the share of seeds above a threshold), the baseline row for deltas and
their significance test, and which plots a report draws. Bad values raise a one-line
``ValueError`` naming the value and the allowed ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

from ablate.config import check_spec_name, load_structured, project_root, spec_path
from ablate.errors import ConfigError
from ablate.report.compute import COMPUTE_KEY, COMPUTE_LABEL
from ablate.report.kinds import PLOT_KINDS, TABLE_FORMATS

AGGREGATES = ("mean_std", "mean", "share", "sum")
BEST = ("max", "min")
TESTS = ("auto", "welch", "mannwhitney", "ttest_rel", "wilcoxon")
PAIRED_TESTS = ("ttest_rel", "wilcoxon")
PERCENT_METRICS = ("top1", "top5")  # record metrics in percent: bounded to [0, 100]
POWER_LABEL = "Seeds for 80% power"  # header of a metric's power column ...
POWER_SHORT = "n₈₀"                   # ... and its short header (LaTeX)


@dataclass
class RowSpec:
    """One row: the setting's label and the config keys (dotted) that select its runs."""

    label: str = MISSING
    where: dict[str, Any] = field(default_factory=dict)
    note: str = ""    # what this row's setting is (e.g. a baseline's size); listed under the table


@dataclass
class AxisSpec:
    """A pivot axis: one row (or column group) per value of a dotted config key."""

    key: str = MISSING                                   # e.g. attention.reduction
    values: Optional[list[Any]] = None                  # order; null = every value found in the runs
    labels: dict[str, str] = field(default_factory=dict)  # str(value) -> label; default str(value)

    def label(self, value: Any) -> str:
        return self.labels.get(str(value), str(value))


@dataclass
class MetricSpec:
    """One column: a record key (``top1``, ``params``, ...), its header and its format."""

    key: str = MISSING
    label: str = MISSING
    scale: float = 1.0            # multiply before formatting (1e-6 for M)
    fmt: str = ".2f"              # Python format spec for the value
    aggregate: str = "mean_std"   # mean_std: "74.30 ± 0.12"; mean: "3.95" (constant over seeds);
                                  # share: "2/3" seeds with value >= threshold (bimodal outcomes);
                                  # sum: the total over every recorded run of the cell (compute)
    threshold: Optional[float] = None  # for aggregate share, on the scaled value
    best: Optional[str] = None    # max | min: bold the best cell of each column; null = none
    delta: bool = False           # show "(+1.20)" against the baseline row, with its significance
    bounds: Optional[list[float]] = None  # [lo, hi] range of the scaled value: intervals are clipped
                                  # to it; null = [0, 100] for top1/top5 (percent), else unbounded
    power: bool = False           # add a column: seeds per cell for 80% power at the observed
                                  # difference and spread (mean_std metrics with delta)
    short: str = ""               # LaTeX: a shorter column header (the full label goes in a legend
                                  # under the table); "" = the label

    @property
    def id(self) -> str:
        """Prefix of this metric's CSV columns (``top1``; ``top1_share`` for a share)."""
        return f"{self.key}_share" if self.aggregate == "share" else self.key

    @property
    def range(self) -> Optional[tuple[float, float]]:
        """The metric's (lo, hi) after scaling, or None when unbounded."""
        if self.bounds is not None:
            return float(self.bounds[0]), float(self.bounds[1])
        return (0.0, 100.0 * self.scale) if self.key in PERCENT_METRICS else None


@dataclass
class PlotSpec:
    """One plot of the report (matplotlib; PNG and PDF)."""

    kind: str = MISSING           # curves | pareto | metric_vs | attention_maps
    x: Optional[str] = None       # metric_vs: the config key on the x axis (attention.reduction)
    y: str = "top1"               # record metric (curves: the metrics.jsonl column, default val_top1)
    series: Optional[str] = None  # config key: one line per value (metric_vs, curves, pareto)
    where: dict[str, Any] = field(default_factory=dict)  # extra filter on the table's runs
    title: str = ""


@dataclass
class TableSpec:
    """One paper-style table."""

    name: str = MISSING
    title: str = ""
    sweep: Optional[str] = None                     # runs of this sweep (its manifest shows holes)
    where: dict[str, Any] = field(default_factory=dict)   # filter applied to every cell
    row_header: str = "Settings"
    rows: list[RowSpec] = field(default_factory=list)     # explicit rows, or ...
    row_key: Optional[AxisSpec] = None              # ... one row per value of a config key
    column_key: Optional[AxisSpec] = None           # optional column groups (pivot)
    metrics: list[MetricSpec] = field(default_factory=list)
    baseline: Optional[str] = None                  # row label (or row_key value) deltas refer to
    ci: bool = False                                # show the 95% t-interval of each mean
    test: str = "auto"                              # auto: ttest_rel if pair_by_seed else welch
    pair_by_seed: bool = False                      # runs of one seed are paired across rows
    alpha: float = 0.05                             # dagger marker where p < alpha
    contrasts: list[list[str]] = field(default_factory=list)  # extra [row, other row] pairs to test
                                                    # (e.g. CA against SE), listed under the table
    wide: bool = False                              # LaTeX: a table* across both columns of a two-column
                                                    # page (fits \\textwidth); default fits one column
    formats: list[str] = field(default_factory=lambda: ["md", "csv"])
    plots: list[PlotSpec] = field(default_factory=list)
    compute: bool = False                           # add a column: device-hours per cell (wall x processes,
                                                    # summed over its runs); the footnote gives the total

    def __post_init__(self) -> None:
        def coerce(cls, v):
            return v if isinstance(v, cls) or v is None else cls(**v)

        self.rows = [coerce(RowSpec, r) for r in self.rows]
        self.metrics = [coerce(MetricSpec, m) for m in self.metrics]
        if not isinstance(self.compute, bool):
            raise ConfigError(f"table {self.name!r}: compute={self.compute!r}; allowed: true, false")
        if self.compute and not any(m.key == COMPUTE_KEY and m.aggregate == "sum" for m in self.metrics):
            self.metrics.append(MetricSpec(key=COMPUTE_KEY, label=COMPUTE_LABEL, scale=1 / 3600, fmt=".3f",
                                           aggregate="sum", short="device-h"))
        self.plots = [coerce(PlotSpec, p) for p in self.plots]
        self.row_key, self.column_key = coerce(AxisSpec, self.row_key), coerce(AxisSpec, self.column_key)
        check_spec_name("table", self.name)  # it names the table's files (<tables_dir>/<name>.<format>)
        where = f"table {self.name!r}"
        if self.rows and self.row_key is not None:
            raise ConfigError(f"{where}: give rows or row_key, not both")
        if not self.rows and self.row_key is None:
            raise ConfigError(f"{where}: rows is empty (give rows or row_key)")
        if not self.metrics:
            raise ConfigError(f"{where}: metrics is empty")
        _choice(where, "format", self.formats, TABLE_FORMATS.names())
        _choice(where, "test", [self.test], TESTS)
        if self.test in PAIRED_TESTS and not self.pair_by_seed:
            raise ConfigError(f"{where}: test {self.test!r} is paired; set pair_by_seed: true or use one of welch, mannwhitney")
        if self.pair_by_seed and self.test in ("welch", "mannwhitney"):
            raise ConfigError(f"{where}: pair_by_seed with unpaired test {self.test!r}; allowed: auto, {', '.join(PAIRED_TESTS)}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{where}: alpha={self.alpha!r}; allowed: a number in (0, 1)")
        ids = [m.id for m in self.metrics]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{where}: metric {max(ids, key=ids.count)!r} appears twice with the same aggregate")
        for m in self.metrics:  # a short header names one column only
            taken = [self.row_header, "n", "Notes", POWER_LABEL, POWER_SHORT] + [x.label for x in self.metrics if x is not m]
            taken += [x.short for x in self.metrics if x is not m and x.short]
            if m.short and m.short in taken:
                raise ConfigError(f"{where}: metric {m.key!r}: short {m.short!r} is another column's header; "
                                  f"allowed: any header but {', '.join(repr(x) for x in dict.fromkeys(taken))}")
        for m in self.metrics:
            _choice(f"{where}: metric {m.key!r}", "aggregate", [m.aggregate], AGGREGATES)
            if m.best is not None:
                _choice(f"{where}: metric {m.key!r}", "best", [m.best], BEST)
            if (m.aggregate == "share") != (m.threshold is not None):
                raise ConfigError(f"{where}: metric {m.key!r}: threshold goes with aggregate share (and only with it)")
            if m.bounds is not None and (len(m.bounds) != 2 or not m.bounds[0] < m.bounds[1]):
                raise ConfigError(f"{where}: metric {m.key!r}: bounds={list(m.bounds)!r}; allowed: [lo, hi] with lo < hi, or null")
            if m.aggregate == "sum" and m.delta:
                raise ConfigError(f"{where}: metric {m.key!r}: delta does not go with aggregate sum; allowed: "
                                  "delta: false, or aggregate mean_std, mean or share")
            if m.power and not (m.delta and m.aggregate == "mean_std"):
                raise ConfigError(f"{where}: metric {m.key!r}: power goes with aggregate mean_std and delta: true")
            try:
                format(1.0, m.fmt)
            except ValueError:
                raise ConfigError(f"{where}: metric {m.key!r}: bad fmt {m.fmt!r}; allowed: a Python format spec such as .2f") from None
        if self.baseline is not None and str(self.baseline) not in self.row_labels_or_values():
            raise ConfigError(f"{where}: unknown baseline {self.baseline!r}; allowed: {', '.join(self.row_labels_or_values())}")
        for pair in self.contrasts:
            if len(pair) != 2 or any(str(r) not in self.row_labels_or_values() for r in pair):
                raise ConfigError(f"{where}: contrast {list(pair)!r}; allowed: two of {', '.join(self.row_labels_or_values())}")
        if self.baseline is None and any(m.delta for m in self.metrics):
            raise ConfigError(f"{where}: a metric has delta: true but baseline is not set")
        for p in self.plots:
            _choice(f"{where}: plot", "kind", [p.kind], PLOT_KINDS.names())
            if p.kind == "metric_vs" and not p.x:
                raise ConfigError(f"{where}: plot metric_vs needs x (a config key such as attention.reduction)")

    @property
    def effective_test(self) -> str:
        """The test deltas use: ``auto`` resolves to ttest_rel when paired, else welch."""
        if self.test == "auto":
            return "ttest_rel" if self.pair_by_seed else "welch"
        return self.test

    def row_labels_or_values(self) -> list[str]:
        """What ``baseline`` may name: row labels, or the row_key's values and labels."""
        if self.rows:
            return [r.label for r in self.rows]
        vals = [str(v) for v in (self.row_key.values or [])]
        return vals + [self.row_key.label(v) for v in (self.row_key.values or [])] if vals else [str(self.baseline)]

    def metric(self, key: str) -> MetricSpec:
        for m in self.metrics:
            if m.key == key:
                return m
        raise ConfigError(f"table {self.name!r}: unknown metric {key!r}; allowed: {', '.join(m.key for m in self.metrics)}")


def _choice(where: str, what: str, values: list, allowed: tuple) -> None:
    for v in values:
        if v not in allowed:
            raise ConfigError(f"{where}: unknown {what} {v!r}; allowed: {', '.join(allowed)}")


def analysis_dir() -> Path:
    return project_root() / "analysis"


def list_tables() -> list[str]:
    return sorted(p.stem for p in analysis_dir().glob("*.yaml"))


def load_table_spec(name: str) -> TableSpec:
    """Read and validate ``analysis/<name>.yaml`` (a path to a YAML file works too)."""
    return load_structured(spec_path(name, analysis_dir(), "table spec"), TableSpec, "table")


def tables_for_sweep(sweep: str) -> list[TableSpec]:
    """Every shipped spec whose ``sweep`` is ``sweep``."""
    return [s for s in (load_table_spec(n) for n in list_tables()) if s.sweep == sweep]
