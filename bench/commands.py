"""Wall time of the commands that train nothing, against the 1 s goal.

    .venv/bin/python bench/commands.py [--rounds 5] [--home DIR] [--sweep branches] [--no-cache]
                                       [--ablate-src CHECKOUT]

Each command runs as a user runs it (``python -m ablate ...`` in a fresh interpreter, output
discarded), the commands interleaved round by round so that a busy neighbour slows them all
alike. The first round fills the caches (``ablate.cache``) and is shown apart ("first");
the median of the other rounds is what the goal is checked against. ``--no-cache`` also times
every command with ``ABLATE_CACHE=off`` in the same rounds, which is what each costs without
the caches (compose every run with Hydra, prepare every run with torch, build the table).

Without ``--home`` the sweep's runs are made up in a temporary ABLATE_HOME: planned like
``ablate sweep`` plans them, each given a completed record (no training), and the manifest
written, so ``status``, ``table``, ``sweep --dry-run`` and the relaunch see a finished sweep.
With ``--home`` the commands read that ABLATE_HOME (e.g. after ``bash scripts/main.sh``).
``--ablate-src`` times the ablate of another checkout (e.g. ``git worktree add /tmp/old HEAD~3``)
on the same runs: the before/after of a change, with the same script.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 1.0


def commands(sweep: str) -> dict[str, list[str]]:
    return {
        f"status {sweep}": ["status", sweep],
        f"table {sweep}": ["table", sweep],
        f"sweep {sweep} --dry-run": ["sweep", sweep, "--dry-run"],
        f"sweep {sweep} (relaunch, all done)": ["sweep", sweep],
        "--help": ["--help"],
        "sweep --help": ["sweep", "--help"],
    }


def make_finished_sweep(home: Path, name: str) -> int:
    """Plan ``name`` under ``home`` and give every run a completed record; returns the run count."""
    os.environ["ABLATE_HOME"] = str(home)
    from ablate.sweep import load_sweep
    from ablate.sweep.runner import plan_sweep, write_manifest

    spec = load_sweep(name)
    runs = plan_sweep(spec)
    write_manifest(spec, runs, home / "outputs" / "sweeps")
    for i, r in enumerate(runs):
        r.store.put({"run_key": r.key, "status": "completed", "seed": r.config["seed"], "sweep": name,
                     "top1": 70.0 + (i * 7919 % 300) / 10, "top5": 100.0, "loss": 1.0, "params": 8000 + 100 * i,
                     "madds": 700000 + 1000 * i, "latency_ms": 1.0, "seconds": 3.0, "config": r.config})
    return len(runs)


def time_once(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ablate", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env, cwd=env["ABLATE_HOME"], text=True)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"ablate {' '.join(argv)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after the first (default 5)")
    p.add_argument("--home", help="an ABLATE_HOME with a launched, finished sweep (default: made up in a temp dir)")
    p.add_argument("--sweep", default="branches", help="the sweep (default branches, the main job)")
    p.add_argument("--no-cache", action="store_true", help="also time each command with ABLATE_CACHE=off")
    p.add_argument("--ablate-src", help="time the ablate package (and conf/) of this checkout instead of this one")
    args = p.parse_args()
    os.environ["ABLATE_PROJECT"] = str(ROOT)
    os.environ.setdefault("WANDB_MODE", "disabled")
    tmp = None
    if args.home:
        home = Path(args.home).resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ablate-bench-commands-")
        home = Path(tmp.name)
        t0 = time.perf_counter()
        n = make_finished_sweep(home, args.sweep)
        print(f"made up {n} completed runs of sweep {args.sweep} in {home} ({time.perf_counter() - t0:.1f} s)")
    env = {**os.environ, "ABLATE_HOME": str(home)}
    if args.ablate_src:  # its package first on sys.path, its conf/, sweeps/ and analysis/
        src = str(Path(args.ablate_src).resolve())
        env.update(PYTHONPATH=src, ABLATE_PROJECT=src)
        print(f"timing the ablate in {src}")
    variants = {"cached": env}
    if args.no_cache:
        variants["no cache"] = {**env, "ABLATE_CACHE": "off"}
    cmds = commands(args.sweep)
    times: dict[tuple[str, str], list[float]] = {(c, v): [] for c in cmds for v in variants}
    for rnd in range(args.rounds + 1):
        for c, argv in cmds.items():
            for v, e in variants.items():
                times[(c, v)].append(time_once(argv, e))
        print(f"round {rnd + 1}/{args.rounds + 1} done", file=sys.stderr)
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; median of {args.rounds} rounds after the first")
    width = max(len(c) for c in cmds)
    head = f"{'command':{width}s}  " + "  ".join(f"{v + ' first':>13s} {v + ' median':>14s}" for v in variants)
    print(head + "   goal <= 1 s (cached median)")
    for c in cmds:
        cells = []
        for v in variants:
            t = times[(c, v)]
            cells.append(f"{t[0]:12.2f}s {statistics.median(t[1:]) if len(t) > 1 else t[0]:13.2f}s")
        med = statistics.median(times[(c, "cached")][1:] or times[(c, "cached")])
        print(f"{c:{width}s}  " + "  ".join(cells) + f"   {'ok' if med <= GOAL_S else 'OVER'}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
