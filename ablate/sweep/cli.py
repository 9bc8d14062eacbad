"""Sub-commands for tuning and watching sweeps: ``ablate tune`` and ``ablate status``.

Registered in ``ablate.cli.COMMANDS``; bad input raises a one-line ValueError, which ``ablate``
prints as ``ablate: error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse


def tune_main(argv: list[str]) -> int:
    """``ablate tune NAME [overrides]``: work a ``kind: optuna`` sweep until it has n_trials."""
    p = argparse.ArgumentParser(prog="ablate tune", description="Run an Optuna study declared in sweeps/NAME.yaml.")
    p.add_argument("name", help="a kind: optuna sweep in sweeps/ (or a path to its YAML)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every trial, e.g. launcher=parallel trainer.epochs=2")
    p.add_argument("--workers", type=int, help="concurrent workers (processes or SLURM array tasks)")
    p.add_argument("--n-trials", type=int, help="trials the study should hold when done")
    p.add_argument("--storage", help="Optuna storage URL (default: journal file in the sweep dir)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the study plan; run nothing")
    args = p.parse_intermixed_args(argv)
    import dataclasses

    from ablate.sweep import load_sweep
    from ablate.sweep.study import tune

    spec = load_sweep(args.name)
    if spec.kind != "optuna":
        raise ValueError(f"sweep {spec.name!r} is kind {spec.kind!r}; `ablate tune` needs kind: optuna (use `ablate sweep`)")
    changes = {k: v for k, v in (("n_trials", args.n_trials), ("workers", args.workers), ("storage", args.storage)) if v is not None}
    if changes:
        data = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
        spec = type(spec)(**{**data, **changes})  # re-validated
    tune(spec, args.overrides, workers=args.workers, dry_run=args.dry_run)
    return 0


def status_main(argv: list[str]) -> int:
    """``ablate status NAME [--watch]``: where a sweep or study stands."""
    p = argparse.ArgumentParser(prog="ablate status", description="Counts of completed/running/failed/... runs of a sweep.")
    p.add_argument("name", help="a sweep that has been launched (a name, or the path of its sweep YAML)")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/scratch/ablate")
    p.add_argument("--watch", action="store_true", help="refresh a live progress bar until the sweep is done")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes with --watch")
    p.add_argument("--storage", help="the study's storage URL if the manifest only has it redacted")
    args = p.parse_intermixed_args(argv)
    from ablate.sweep.spec import sweep_name
    from ablate.sweep.status import format_status, sweep_status, watch

    args.name = sweep_name(args.name)  # `ablate status path/to/my_sweep.yaml` as `ablate sweep` takes it
    if args.watch:
        watch(args.name, args.overrides, interval=args.interval, storage=args.storage)
    else:
        print(format_status(sweep_status(args.name, args.overrides, storage=args.storage)))
    return 0
