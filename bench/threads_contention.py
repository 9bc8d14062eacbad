"""Epoch time of a CPU run next to a busy process: ablate's thread default against 1 thread and
against how runs trained before (torch's threads, libgomp spinning).

    flock /tmp/ablate-bench.lock .venv/bin/python bench/threads_contention.py [--rounds 2] [--epochs 1]

Each measurement is a fresh process (libgomp reads its wait policy once, when torch loads) that
trains one run of the small-scale recipe (``attention=ca``, 1.5k of its 3k images by default) and
reports its epochs' ``seconds`` from ``metrics.jsonl``, and its CPU time. Variants:

- ``before``: torch imported before ablate, so ``OMP_WAIT_POLICY`` is not set in time and idle
  OpenMP threads spin (libgomp's default), ``trainer.threads=null`` (torch's default count);
- ``default``: ``ablate train`` as shipped: ``OMP_WAIT_POLICY=PASSIVE``, ``trainer.threads=null``
  (:func:`ablate.threads.default_threads`: the cores this process may use);
- ``1 thread``: as shipped with ``trainer.threads=1``.

Conditions: ``as found`` (nothing started by the bench; the machine's own load is printed) and
``busy`` (plus one competing process spinning on a core for the whole run). Rounds interleave every (condition, variant), so the machine's drift hits
all alike; the table reports the median epoch time and ratios to ``default`` in the same condition.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ["attention=ca", "tracking=disabled", "trainer.latency_repeats=1", "trainer.checkpoint=false"]
CHILD = """
import sys, json, resource
{first}
from ablate.cli import main
rc = main(["train", *json.loads(sys.argv[1])])
u = resource.getrusage(resource.RUSAGE_SELF)
print("CPU", u.ru_utime + u.ru_stime)
sys.exit(rc)
"""
VARIANTS = {
    "before": ("import torch  # before ablate: OpenMP's wait policy is libgomp's default (spin)", []),
    "default": ("", []),
    "1 thread": ("", ["trainer.threads=1"]),
}
# Not run by default: "spin N" spins N iterations before sleeping (GOMP_SPINCOUNT; libgomp's
# default is 300000, PASSIVE is 0), e.g. --variants "default,spin 10000,before".


def variant(name: str) -> tuple[str, list[str]]:
    if name.startswith("spin "):
        return f"import os; os.environ['GOMP_SPINCOUNT'] = '{int(name.split()[1])}'", []
    return VARIANTS[name]


def busy() -> subprocess.Popen:
    """One process spinning on a core (a competing job)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(name: str, home: Path, data: Path, epochs: int, n: int, n_train: int) -> tuple[float, float]:
    """(median epoch seconds, CPU seconds of the whole process) of one fresh run."""
    first, extra = variant(name)
    runs = home / "runs"
    overrides = [*RUN, f"trainer.epochs={epochs}", f"data.n_train={n_train}", f"paths.data_dir={data}",
                 f"paths.runs_dir={runs}",
                 f"seed={n}", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                                                            "ABLATE_THREADS")}
    env.update(ABLATE_HOME=str(home), ABLATE_PROJECT=str(ROOT), WANDB_MODE="disabled", ABLATE_PROGRESS="plain")
    out = subprocess.run([sys.executable, "-c", CHILD.format(first=first), json.dumps(overrides)], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{name}: exit {out.returncode}\n{out.stderr[-2000:]}")
    cpu = float(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("CPU ")))
    rows = [json.loads(line) for p in runs.glob("*/metrics.jsonl") for line in p.read_text().splitlines()]
    for p in runs.glob("*"):  # next measurement trains again, never skips
        subprocess.run(["rm", "-rf", str(p)], check=True)
    return statistics.median(r["seconds"] for r in rows), cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--n-train", type=int, default=1500, help="training images (the recipe has 3000)")
    p.add_argument("--conditions", default="as found,busy")
    p.add_argument("--variants", default="before,default,1 thread", help=f"of: {', '.join(VARIANTS)}, spin N")
    args = p.parse_args()
    conditions = args.conditions.split(",")
    variants = args.variants.split(",")
    load = os.getloadavg()
    times: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home, data = Path(tmp) / "home", Path(tmp) / "data"
        measure("1 thread", home, data, 1, 0, args.n_train)  # generates and caches the data once (not timed)
        t0 = time.time()
        for r in range(args.rounds):
            for cond in conditions:
                for name in variants:
                    other = busy() if cond == "busy" else None
                    try:
                        t, c = measure(name, home, data, args.epochs, r, args.n_train)
                    finally:
                        if other is not None:
                            other.kill()
                            other.wait()
                    times.setdefault((cond, name), []).append(t)
                    cpus.setdefault((cond, name), []).append(c)
                    print(f"round {r + 1} {cond:8s} {name:10s} epoch {t:6.2f}s  cpu {c:6.1f}s", flush=True)
    print(f"\n{os.cpu_count()} cores, affinity {len(os.sched_getaffinity(0))}, {args.rounds} rounds, "
          f"{time.time() - t0:.0f}s; load average (1 min) {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{'condition':9s} {'variant':10s} {'epoch s (median)':>17s} {'x default':>10s} {'cpu s/run':>10s}")
    for cond in conditions:
        base = statistics.median(times[(cond, "default")])
        for name in variants:
            t = statistics.median(times[(cond, name)])
            print(f"{cond:9s} {name:10s} {t:17.2f} {t / base:10.2f} {statistics.median(cpus[(cond, name)]):10.1f}")


if __name__ == "__main__":
    main()
