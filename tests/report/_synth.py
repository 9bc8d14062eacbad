"""Synthetic run records for report tests: any spec's cells, chosen values, holes."""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Optional

from ablate.report.spec import TableSpec


def nest(flat: dict[str, Any]) -> dict:
    """``{"attention.kind": "ca"}`` -> ``{"attention": {"kind": "ca"}}``."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def record(key: str, config: dict[str, Any], seed: int, top1: Optional[float], status: str = "completed",
           **metrics) -> dict:
    """One run record like ``ablate/train/run.py`` writes (config given as dotted keys)."""
    rec = {"run_key": key, "status": status, "seed": seed, "top1": top1, "top5": 99.0, "params": 3.95e6,
           "madds": 310.5e6, "latency_ms": 2.0, "config": nest({**config, "seed": seed})}
    rec.update(metrics)
    return rec


def cells_of(spec: TableSpec) -> list[tuple[str, Optional[str], dict]]:
    """(row label, column label, dotted config) of every cell of ``spec`` (values must be listed)."""
    rows = ([(r.label, dict(r.where)) for r in spec.rows] if spec.rows else
            [(spec.row_key.label(v), {spec.row_key.key: v}) for v in spec.row_key.values])
    cols = ([(None, {})] if spec.column_key is None else
            [(spec.column_key.label(v), {spec.column_key.key: v}) for v in spec.column_key.values])
    out = []
    for (rl, rw), (cl, cw) in itertools.product(rows, cols):
        flat = {k: v for k, v in {**spec.where, **rw, **cw}.items() if not isinstance(v, (list, tuple))}
        out.append((rl, cl, flat))
    return out


def records_for(spec: TableSpec, seeds: Iterable[int] = (0, 1, 2), top1=lambda i, seed: 60.0 + i + seed) -> list[dict]:
    """Completed records for every cell of ``spec``: cell ``i``'s top-1 is ``top1(i, seed)``."""
    recs = []
    for i, (_, _, flat) in enumerate(cells_of(spec)):
        for seed in seeds:
            recs.append(record(f"c{i}s{seed}", flat, seed, top1(i, seed)))
    return recs
