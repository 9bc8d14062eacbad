"""Assign run records to the cells of a table, vectorised with pandas.

Records are flattened (``attention.kind`` beside ``top1``) into one DataFrame, and each cell is
a boolean mask from its ``where`` (the spec's filter, the row's keys and the column group's
keys). A cell must hold one setting: when its runs differ in a config key other than the seed
(and the keys that do not change what a run computes), building the table fails with one line
naming those keys, so different settings are never pooled into one mean.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from ablate.errors import ConfigError
from ablate.report.compute import COMPUTE_KEY, device_seconds
from ablate.report.spec import TableSpec
from ablate.track.runkey import NON_SEMANTIC_KEYS

# Keys that may differ inside one cell: the seed is what a cell averages over; the rest do not
# change what a run computes (the run key ignores them too). model.init_from: a transfer run's
# source is the source sweep's run of the same setting at that seed (sweeps' init_from), so it
# varies with the seed as the seed does.
POOLABLE = ("seed", "model.init_from", *NON_SEMANTIC_KEYS)


@dataclass
class RunFrame:
    """Flattened records (``df``) and which of its columns are config keys."""

    df: pd.DataFrame
    config_keys: list[str]

    @classmethod
    def build(cls, records: Iterable[Mapping[str, Any]]) -> "RunFrame":
        rows, cfg_keys = [], set()
        for rec in records:
            row = _flat_config(rec.get("config") or {})
            cfg_keys.update(row)
            row.update((k, v) for k, v in rec.items() if k != "config")
            if row.get(COMPUTE_KEY) is None:  # older records: seconds x world_size
                row[COMPUTE_KEY] = device_seconds(rec)
            rows.append(row)
        df = pd.DataFrame(rows) if rows else pd.DataFrame({"run_key": pd.Series(dtype=object)})
        return cls(df, sorted(cfg_keys))

    def mask(self, where: Mapping[str, Any]) -> np.ndarray:
        """Rows matching every ``key: value`` (a list means any of; null matches a missing key)."""
        m = np.ones(len(self.df), dtype=bool)
        for key, want in where.items():
            if key not in self.df.columns:
                if want is None or (isinstance(want, (list, tuple)) and None in want):
                    continue
                return np.zeros(len(self.df), dtype=bool)
            col = self.df[key]
            wants = list(want) if isinstance(want, (list, tuple)) else [want]
            hit = col.isin([w for w in wants if w is not None]).to_numpy()
            if any(w is None for w in wants):
                hit |= col.isna().to_numpy()
            m &= hit
        return m

    def values(self, key: str, mask: np.ndarray) -> list:
        """The distinct values of config key ``key`` among the masked rows, in a stable order."""
        if key not in self.df.columns:
            return []
        vals = pd.unique(self.df.loc[mask, key].dropna())
        try:
            return sorted(vals)
        except TypeError:
            return sorted(vals, key=str)


def _flat_config(node: Mapping, prefix: str = "", out: Optional[dict] = None) -> dict:
    """Dotted keys of a config, like ``store.flatten`` (lists become tuples); plain ``dict``
    checks instead of ``Mapping`` ABC checks, 10x faster over 10k records (JSON gives dicts)."""
    out = {} if out is None else out
    for k, v in node.items():
        key = f"{prefix}{k}"
        if type(v) is dict or (not isinstance(v, (str, int, float, list)) and isinstance(v, Mapping)):
            _flat_config(v, key + ".", out)
        else:
            out[key] = tuple(v) if type(v) is list else v
    return out


def _is_poolable(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in POOLABLE)


def differing_keys(frame: RunFrame, mask: np.ndarray) -> dict[str, list]:
    """Config keys (other than seed and non-semantic ones) whose values differ in ``mask``."""
    cols = [k for k in frame.config_keys if k in frame.df.columns and not _is_poolable(k)]
    sub = frame.df.loc[mask, cols]
    if len(sub) < 2:
        return {}
    try:
        nun = sub.nunique(dropna=False)
    except TypeError:  # unhashable leaves (lists of lists): compare their text
        nun = sub.astype(str).nunique(dropna=False)
    out = {}
    for key in nun[nun > 1].index:
        out[key] = sorted({_shown(v) for v in sub[key]})
    return out


def _shown(value: Any) -> str:
    """A config value as the user wrote it (a key absent from some runs reads as "(unset)";
    pandas turns integer columns with holes into floats, so 8.0 is shown as 8)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "(unset)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def check_one_setting(spec: TableSpec, cell: str, frame: RunFrame, mask: np.ndarray) -> None:
    """Raise a one-line ValueError when the runs of ``cell`` are different settings."""
    diff = differing_keys(frame, mask)
    if diff:
        shown = "; ".join(f"{k}: {', '.join(v[:4])}{', ...' if len(v) > 4 else ''}" for k, v in list(diff.items())[:6])
        raise ConfigError(
            f"table {spec.name!r}, cell {cell!r}: its runs differ in {', '.join(diff)} ({shown}); "
            "add these keys to the row's where or the spec's where, so one cell is one setting"
        )


def check_where_keys(spec: TableSpec, frame: RunFrame) -> None:
    """Every key a ``where`` (the spec's, a row's) or a pivot axis with given ``values`` names
    must be a key of at least one of the table's runs (``frame``: its records and expected runs):
    a typo would make an empty row, not an error. A key absent from some runs is fine (CA knobs
    exist only on CA runs), and so is ``key: null`` (it selects the runs without the key); with
    no runs at all there is nothing to check against. Plots, which see a subset, do not check."""
    if frame.df.empty:
        return
    have = set(frame.df.columns)
    named = [(k, want, "where") for k, want in spec.where.items()]
    named += [(k, want, f"row {r.label!r}") for r in spec.rows for k, want in r.where.items()]
    for axis, what in ((spec.row_key, "row_key"), (spec.column_key, "column_key")):
        if axis is not None and axis.values is not None:
            named.append((axis.key, axis.values, what))
    for key, want, where in named:
        if key in have or want is None or (isinstance(want, (list, tuple)) and None in want):
            continue
        close = difflib.get_close_matches(key, frame.config_keys, n=3, cutoff=0.6)
        hint = f"close: {', '.join(close)}" if close else "allowed: dotted config keys such as attention.kind"
        n = len(frame.df)
        raise ConfigError(f"table {spec.name!r}, {where}: key {key!r} matches no config key of its runs "
                          f"({n} run{'s' if n != 1 else ''}); {hint}")


def layout(spec: TableSpec, frame: RunFrame) -> tuple[list[tuple[str, Any, dict]], list[tuple[Optional[str], dict]]]:
    """Rows (label, value, where) and column groups (label, where) of ``spec`` over ``frame``."""
    base = frame.mask(spec.where)
    if spec.rows:
        rows = [(r.label, r.label, dict(r.where)) for r in spec.rows]
    else:
        ax = spec.row_key
        vals = ax.values if ax.values is not None else frame.values(ax.key, base)
        rows = [(ax.label(v), v, {ax.key: v}) for v in vals]
        if not rows:
            raise ConfigError(f"table {spec.name!r}: no runs have a value for row_key {ax.key!r}; give row_key.values")
    if spec.column_key is None:
        cols: list[tuple[Optional[str], dict]] = [(None, {})]
    else:
        ax = spec.column_key
        vals = ax.values if ax.values is not None else frame.values(ax.key, base)
        cols = [(ax.label(v), {ax.key: v}) for v in vals]
        if not cols:
            raise ConfigError(f"table {spec.name!r}: no runs have a value for column_key {ax.key!r}; give column_key.values")
    return rows, cols


def setting_labels(spec: TableSpec, records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """run key -> the label of the table cell its run falls in (``row`` or ``row / column``),
    so plots of a table name settings as the table does."""
    frame = RunFrame.build(records)
    if frame.df.empty:
        return {}
    rows, cols = layout(spec, frame)
    out: dict[str, str] = {}
    for rlabel, _, rwhere in rows:
        for clabel, cwhere in cols:
            mask = frame.mask({**spec.where, **rwhere, **cwhere})
            for key in frame.df.loc[mask, "run_key"]:
                out.setdefault(key, rlabel if clabel is None else f"{rlabel} / {clabel}")
    return out
