"""Benchmark: build a paper table from 10,000 run records in a run-dir store (target < 2 s).

    .venv/bin/python bench/table_10k.py [--n 10000] [--dir /tmp/ablate-bench]

Writes N ``result.json`` records (full resolved configs, as ``ablate train`` writes them: six
attention settings x widths x seeds x recipes) into a run-dir store once, then times, each
in a fresh store object (twice: the first read may hit a cold OS file cache): reading every
record, and building ``analysis/branches.yaml`` pivoted over the
extra keys (the cell filter, the pooled-settings check, statistics, deltas, rendering).
No index cache is needed: reading 10k files takes ~0.3 s with a warm OS cache; flattening
every record was the bottleneck and is avoided (``RunDirStore.records``, ``report.cells``).
"""
from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_records(n: int) -> list[dict]:
    """``n`` realistic records: every run a full resolved config (~70 keys)."""
    import random

    from ablate.config import compose, to_container
    from ablate.track.runkey import run_key

    base = to_container(compose(["tracking=disabled"]))
    kinds = [("none", "hw"), ("se", "hw"), ("cbam", "hw"), ("ca", "h"), ("ca", "w"), ("ca", "hw")]
    rng = random.Random(0)
    out = []
    for i in range(n):
        cfg = copy.deepcopy(base)
        kind, branches = kinds[i % len(kinds)]
        cfg["attention"] = {"kind": kind, "branches": branches, "reduction": 32}
        cfg["seed"] = (i // len(kinds)) % 10
        cfg["trainer"]["epochs"] = 3 + (i // (len(kinds) * 10)) % 50      # 50 recipes
        cfg["model"]["width"] = [1.0, 0.75, 0.5, 0.35][(i // (len(kinds) * 500)) % 4]
        cfg["data"]["n_train"] = 1000 * (1 + i // (len(kinds) * 2000))  # many distinct settings
        status = "completed" if i % 97 else "diverged"
        out.append({"run_key": run_key(cfg), "status": status, "top1": 60 + 5 * (kind == "ca") + rng.gauss(0, 2),
                    "top5": 99.0, "params": 30000 + 1000 * len(kind), "madds": 5e6, "latency_ms": 2.0,
                    "seconds": 10.0, "seed": cfg["seed"], "sweep": "bench", "config": cfg})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--dir", help="store dir (kept; default: a temp dir, removed)")
    args = p.parse_args()
    from ablate.report import build_table, load_table_spec
    from ablate.report.formats.md import to_markdown
    from ablate.report.formats.tex import to_latex
    from ablate.report.spec import AxisSpec
    from ablate.track.store import RunDirStore

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ablate-bench-"))
    store = RunDirStore(root)
    if len(store.keys()) < args.n:
        t0 = time.perf_counter()
        for rec in make_records(args.n):
            store.put(rec)
        print(f"wrote {args.n} records in {time.perf_counter() - t0:.1f} s (setup, not timed)")
    spec = load_table_spec("branches")
    # The branches rows, one column group per width; the recipe is fixed by the filter, so each
    # cell is one setting over 10 seeds (the pooled-settings check runs on every cell).
    spec.column_key = AxisSpec(key="model.width", values=[1.0, 0.75, 0.5, 0.35])
    spec.where = {"trainer.epochs": 3, "data.n_train": 1000}
    results = {}
    for label in ("first read", "second read"):
        t0 = time.perf_counter()
        records = list(RunDirStore(root).records())
        t1 = time.perf_counter()
        table = build_table(spec, records)
        to_markdown(table), to_latex(table)
        t2 = time.perf_counter()
        results[label] = (t1 - t0, t2 - t1)
        print(f"{label}: read {len(records)} records {t1 - t0:.2f} s + build/render table {t2 - t1:.2f} s "
              f"= {t2 - t0:.2f} s  (cells n = {sorted(set(table.values['n']))})")
    if not args.dir:
        shutil.rmtree(root)
    return 0 if sum(results["second read"]) < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
