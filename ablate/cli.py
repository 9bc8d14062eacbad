"""The ``ablate`` command: ``train``, ``sweep``, ``tune``, ``status``, ``table``, ``report``, ``profile``.

Bad input (an unknown sweep, table, group option or knob value) ends the command with one line
``ablate: error: ...`` and exit status 2, before any run starts.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Optional

# sub-command -> "module:function"; each function takes the argv after the sub-command.
COMMANDS: dict[str, str] = {
    "train": "ablate.cli:train_main",
    "sweep": "ablate.cli:sweep_main",
    "table": "ablate.cli:table_main",
    "report": "ablate.report.commands:report_command",
    "tune": "ablate.sweep.cli:tune_main",
    "status": "ablate.sweep.cli:status_main",
    "profile": "ablate.profile:profile_main",
}


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")


def train_main(argv: list[str]) -> int:
    """``ablate train [overrides]``: one run. ``-m``/Hydra flags go through Hydra's own main."""
    if any(a in ("-m", "--multirun", "--cfg", "-c", "--help", "-h", "--info", "--hydra-help") or a.startswith("hydra/") for a in argv):
        return _hydra_main(argv)
    from ablate.config import compose
    from ablate.train.run import prepare, run

    plan = prepare(compose(argv))
    plan.trainer.torch_device()  # it runs here: a CUDA device this machine lacks is bad input
    rec = run(plan)
    return 0 if rec["status"] == "completed" else 1


def _hydra_main(argv: list[str]) -> int:
    import hydra

    from ablate.config import config_dir

    @hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
    def task(cfg) -> Optional[float]:
        from ablate.train.run import run

        try:
            rec = run(cfg)
        except ValueError as exc:
            print(f"ablate: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return rec.get("top1")

    sys.argv = ["ablate train", *argv]
    task()
    return 0


def sweep_main(argv: list[str]) -> int:
    """``ablate sweep NAME [overrides]``: run a sweep's missing runs, then print its table."""
    p = argparse.ArgumentParser(prog="ablate sweep", description="Run the runs of sweeps/NAME.yaml that are not done yet.")
    p.add_argument("name", nargs="?", help="a sweep in sweeps/ (or a path to a sweep YAML)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run, e.g. trainer.epochs=1")
    p.add_argument("--list", action="store_true", help="list the sweeps and exit")
    p.add_argument("--dry-run", action="store_true", help="print the planned runs and their status; run nothing")
    p.add_argument("--no-table", action="store_true", help="do not print the sweep's table at the end")
    p.add_argument("--seeds", help="comma-separated seeds replacing the sweep's own, e.g. 0,1")
    seq = p.add_argument_group("sequential seeds (docs/statistics.md)")
    seq.add_argument("--until-decided", action="store_true",
                     help="after the sweep's seeds, add seeds in rounds only to cells whose comparison with the "
                          "baseline is undecided (group-sequential test: the error rate holds over all looks)")
    seq.add_argument("--max-seeds", type=int, default=20, help="seeds per cell at most (default 20)")
    seq.add_argument("--alpha", type=float, default=0.05, help="overall error rate per comparison (default 0.05)")
    seq.add_argument("--step", type=int, default=5, help="seeds added per round to an undecided cell (default 5)")
    seq.add_argument("--spending", default="obf", help="alpha spending: obf (O'Brien-Fleming-type, default) or pocock")
    seq.add_argument("--margin", type=float, default=None,
                     help="also decide 'no effect' when the interval lies within +-MARGIN (metric units)")
    args = p.parse_intermixed_args(argv)
    from ablate.sweep import list_sweeps, load_sweep

    if args.list or not args.name:
        for name in list_sweeps():
            print(f"{name:20s} {load_sweep(name).description}")
        return 0
    from ablate.sweep.launchers import get_launcher
    from ablate.sweep.runner import pending, plan_sweep, write_manifest

    spec = load_sweep(args.name)
    if spec.kind == "optuna":  # a study: `ablate tune` runs it
        from ablate.sweep.cli import tune_main

        return tune_main([args.name, *args.overrides, *(["--dry-run"] if args.dry_run else [])])
    if args.seeds:
        spec.seeds = _parse_seeds(args.seeds)
    if args.until_decided:
        from ablate.report.sequential import Design
        from ablate.sweep.until_decided import run_until_decided

        design = Design(alpha=args.alpha, max_seeds=args.max_seeds, spending=args.spending, margin=args.margin)
        return run_until_decided(spec, args.overrides, design, step=args.step, dry_run=args.dry_run)
    runs = plan_sweep(spec, args.overrides)
    todo = pending(runs)
    first = runs[0].plan.config
    launcher = get_launcher(first["launcher"])
    launcher.check_runs(todo)
    write_manifest(spec, runs, first["paths"]["sweeps_dir"], args.overrides)
    logging.getLogger("ablate").info("sweep %s: %d runs, %d to run, launcher %s", spec.name, len(runs), len(todo), launcher.name)
    if args.dry_run:
        for r in runs:
            print(f"{r.key}  {r.plan.store.status(r.key) or 'missing':10s} {' '.join(r.overrides)}")
        return 0
    launcher.launch(todo)
    if spec.table and not args.no_table:
        return table_main([spec.table, *args.overrides])
    return 0


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r}; allowed: comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def table_main(argv: list[str]) -> int:
    """``ablate table SPEC [overrides] [--format md,tex,html,csv] [--wandb SRC]``: see ablate/report/commands.py."""
    from ablate.report.commands import table_command

    return table_command(argv)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: ablate {" + ",".join(COMMANDS) + "} ...\n\n" + (__doc__ or "").strip())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ablate: error: unknown command {name!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _setup_logging()
    module, func = COMMANDS[name].split(":")
    fn: Callable[[list[str]], int] = getattr(importlib.import_module(module), func)
    try:
        return fn(rest)
    except ValueError as exc:
        print(f"ablate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
