"""Per-run and per-trial launch overhead of the local launcher (everything but the run itself).

    .venv/bin/python bench/launch_overhead.py [--n 20] [--parallel]

A run's ``result.json`` has ``seconds``: the wall time inside the run wrapper (data, model,
training, latency). Overhead per run = (wall time of the whole launch - sum of those seconds) / n:
for a grid, planning (compose + validate each run) and the launcher loop; for a study, also
creating/loading the study, claiming a trial, sampling, and telling Optuna the result.
Runs are tiny (1 epoch on 256 images) and go to a temporary ABLATE_HOME.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data.n_train=256", "data.n_val=128", "data.batch_size=64", "trainer.epochs=1",
        "trainer.latency_repeats=1", "trainer.threads=1", "tracking=disabled"]


def run_seconds(home: Path) -> float:
    return sum(json.loads(p.read_text())["seconds"] for p in (home / "outputs" / "runs").glob("*/result.json"))


def bench_grid(home: Path, n: int, launcher: str) -> tuple[float, float]:
    from ablate.cli import main

    sweep = home / "grid.yaml"
    sweep.write_text(f"grid: {{attention.reduction: [8, 16]}}\nseeds: {list(range(n // 2))}\noverrides: [attention=ca]\n")
    t0 = time.perf_counter()
    assert main(["sweep", str(sweep), "--no-table", f"launcher={launcher}", *TINY]) == 0
    wall = time.perf_counter() - t0
    return wall, run_seconds(home)


def bench_study(home: Path, n: int, launcher: str) -> tuple[float, float]:
    from ablate.cli import main

    sweep = home / "study.yaml"
    sweep.write_text("kind: optuna\noverrides: [attention=ca]\npruner: none\n"
                     f"search: {{optim.lr: {{type: float, low: 0.01, high: 0.5, log: true}}}}\nn_trials: {n}\n")
    t0 = time.perf_counter()
    assert main(["tune", str(sweep), f"launcher={launcher}", *TINY]) == 0
    wall = time.perf_counter() - t0
    return wall, run_seconds(home)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="runs / trials per measurement (even)")
    p.add_argument("--parallel", action="store_true", help="also measure the parallel launcher (2 workers)")
    args = p.parse_args()
    os.environ["ABLATE_PROJECT"] = str(ROOT)
    os.environ.setdefault("WANDB_MODE", "disabled")
    logging.basicConfig(level=logging.WARNING)
    launchers = ["local", "parallel"] if args.parallel else ["local"]
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: one-off imports are not per-run costs
        os.environ["ABLATE_HOME"] = tmp
        from ablate.config import compose
        from ablate.train.run import run

        run(compose(TINY))
    rows = []
    for launcher in launchers:
        for what, fn in (("grid run", bench_grid), ("study trial", bench_study)):
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["ABLATE_HOME"] = tmp
                with open(os.devnull, "w") as null:  # the study summary line is not the figure
                    saved, sys.stdout = sys.stdout, null
                    try:
                        wall, inside = fn(Path(tmp), args.n, launcher)
                    finally:
                        sys.stdout = saved
            workers = 2 if launcher == "parallel" else 1  # conf/launcher/parallel.yaml
            # Worker-seconds not spent inside runs (spawning, importing, planning, Optuna), per run.
            per = (wall * workers - inside) / args.n
            rows.append((launcher, what, args.n, wall, inside / args.n, per))
    print(f"{'launcher':9s} {'unit':12s} {'n':>3s} {'wall s':>7s} {'run s':>6s} {'overhead/run':>13s}")
    for launcher, what, n, wall, run_s, per in rows:
        print(f"{launcher:9s} {what:12s} {n:3d} {wall:7.2f} {run_s:6.2f} {per * 1000:10.0f} ms")


if __name__ == "__main__":
    main()
