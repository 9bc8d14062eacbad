"""The ``ablate`` command: ``train``, ``sweep``, ``tune``, ``status``, ``table``, ``report``, ``profile``.

This module only parses arguments and calls ``ablate.commands`` (or ``ablate.profile``). Bad
input (an unknown sweep, table, group option or knob value) is a ``ConfigError``: ``ablate``
prints its one line as ``ablate: error: ...`` and exits 2 before any run starts. Any other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from typing import Callable, Optional

from ablate.errors import ConfigError


# The environment, not the input and not a bug: one line, exit 1 (nothing is lost: every
# record is written before the old one is retired, a relaunch resumes).
ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES)
HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--help", "-h", "--info", "--hydra-help")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"ablate {prog}", description=description)


def train_main(argv: list[str]) -> int:
    """``ablate train [overrides]``: one run. ``-m``/Hydra flags go through Hydra's own main."""
    if any(a in HYDRA_FLAGS or a.startswith("hydra/") for a in argv):
        return _hydra_main(argv)
    from ablate import commands

    return commands.train(argv)


def _hydra_main(argv: list[str]) -> int:
    import hydra

    from ablate.config import config_dir

    @hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
    def task(cfg) -> Optional[float]:
        from ablate.train.run import run

        try:
            rec = run(cfg)
        except ConfigError as exc:
            print(f"ablate: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return rec.get("top1")

    sys.argv = ["ablate train", *multirun_group(argv)]
    task()
    return 0


def multirun_group(argv: list[str]) -> list[str]:
    """``ablate train -m ...``: one W&B group for the invocation's runs (``tracking.group=
    train-m-<time>``), unless the overrides name a group or a sweep (the group then)."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return list(argv)
    if any(a.lstrip("+~").startswith(("tracking.group=", "sweep=")) for a in argv):
        return list(argv)
    from datetime import datetime

    return [*argv, f"++tracking.group=train-m-{datetime.now().strftime('%Y%m%d-%H%M%S')}"]


def sweep_main(argv: list[str]) -> int:
    """``ablate sweep NAME [overrides]``: run a sweep's missing runs, then print its table."""
    p = _parser("sweep", "Run the runs of sweeps/NAME.yaml that are not done yet.")
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
    from ablate import commands

    if args.list or not args.name:
        return commands.list_sweeps()
    until = (dict(alpha=args.alpha, max_seeds=args.max_seeds, spending=args.spending, margin=args.margin)
             if args.until_decided else None)
    return commands.sweep(args.name, args.overrides, seeds=_parse_seeds(args.seeds) if args.seeds else None,
                          dry_run=args.dry_run, table=not args.no_table, until=until, step=args.step)


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}; allowed: comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def tune_main(argv: list[str]) -> int:
    """``ablate tune NAME [overrides]``: work a ``kind: optuna`` sweep until it has n_trials."""
    p = _parser("tune", "Run an Optuna study declared in sweeps/NAME.yaml.")
    p.add_argument("name", help="a kind: optuna sweep in sweeps/ (or a path to its YAML)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every trial, e.g. launcher=parallel trainer.epochs=2")
    p.add_argument("--workers", type=int, help="concurrent workers (processes or SLURM array tasks)")
    p.add_argument("--n-trials", type=int, help="trials the study should hold when done")
    p.add_argument("--storage", help="Optuna storage URL (default: journal file in the sweep dir)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the study plan; run nothing")
    args = p.parse_intermixed_args(argv)
    from ablate import commands

    return commands.tune(args.name, args.overrides, workers=args.workers, n_trials=args.n_trials,
                         storage=args.storage, dry_run=args.dry_run)


def status_main(argv: list[str]) -> int:
    """``ablate status NAME [--watch]``: where a sweep or study stands."""
    p = _parser("status", "Counts of completed/running/failed/... runs of a sweep.")
    p.add_argument("name", help="a sweep that has been launched (a name, or the path of its sweep YAML)")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/scratch/ablate")
    p.add_argument("--watch", action="store_true", help="refresh a live progress bar until the sweep is done")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes with --watch")
    p.add_argument("--storage", help="the study's storage URL if the manifest only has it redacted")
    args = p.parse_intermixed_args(argv)
    from ablate import commands

    return commands.status(args.name, args.overrides, watch=args.watch, interval=args.interval, storage=args.storage)


def table_main(argv: list[str]) -> int:
    """``ablate table SPEC [paths.* overrides] [--format md,tex,html,csv] [--wandb SRC] [--out DIR]``."""
    p = _parser("table", "Build a paper-style table from finished runs.")
    p.add_argument("spec", nargs="?", help="a table spec in analysis/ (or a path to a spec YAML)")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/data/ablate (others are ignored)")
    p.add_argument("--list", action="store_true", help="list the table specs and exit")
    p.add_argument("--format", help="comma-separated output formats (md, tex, html, csv); default: the spec's")
    p.add_argument("--wandb", metavar="SRC", help="read runs from W&B: ENTITY/PROJECT, or a dir with offline runs")
    p.add_argument("--out", help="output directory (default: paths.tables_dir)")
    args = p.parse_intermixed_args(argv)
    from ablate import commands

    if args.list or not args.spec:
        return commands.list_tables()
    return commands.show_table(args.spec, args.overrides, formats=_parse_formats(args.format),
                               wandb=args.wandb, out=args.out)


def _parse_formats(text: Optional[str]) -> Optional[list[str]]:
    """``md,tex`` -> ["md", "tex"] (one-line error on an unknown format)."""
    if text is None:
        return None
    from ablate.report.formats import check_formats

    fmts = [f.strip() for f in text.split(",") if f.strip()]
    if not fmts:
        raise ConfigError(f"--format {text!r}; allowed: a comma-separated list such as md,tex,html,csv")
    return check_formats(fmts)


def report_main(argv: list[str]) -> int:
    """``ablate report SWEEP [--wandb SRC] [--out DIR]``: one HTML page with every table and plot."""
    p = _parser("report", "Write an HTML report (tables, plots, attention maps) of a sweep.")
    p.add_argument("sweep", help="a sweep (name or path of its YAML) with a manifest, or named by a table spec")
    p.add_argument("overrides", nargs="*", help="path overrides, e.g. paths.root=/data/ablate (others are ignored)")
    p.add_argument("--wandb", metavar="SRC", help="read runs from W&B: ENTITY/PROJECT, or a dir with offline runs")
    p.add_argument("--out", help="output directory (default: <paths.output_dir>/reports/SWEEP)")
    args = p.parse_intermixed_args(argv)
    from ablate import commands

    return commands.report(args.sweep, args.overrides, wandb=args.wandb, out=args.out)


def profile_main(argv: list[str]) -> int:
    """``ablate profile [overrides] [-m] [--sweep NAME]``: Params, MAdds, latency; no training."""
    p = _parser("profile", "Params, MAdds and latency of models, no training.")
    p.add_argument("overrides", nargs="*", help="Hydra overrides; with -m, comma lists expand to a grid")
    p.add_argument("-m", "--multirun", action="store_true", help="expand comma-separated override values")
    p.add_argument("--sweep", help="profile every model of sweeps/NAME.yaml (seeds ignored) and build its table")
    p.add_argument("--input-size", type=int, default=None, help="square input side (default 224, 32 for stem=small)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--repeats", type=int, default=20, help="timed batch-1 forward passes (median reported)")
    p.add_argument("--remeasure", action="store_true",
                   help="measure every model again (by default a model already profiled with the same threads, "
                        "device and repeats by the same model code is read from its record)")
    p.add_argument("--plan", action="store_true", help="also print each model's attention insertion plan")
    args = p.parse_intermixed_args(argv)
    from ablate.profile import ProfileSettings, profile

    settings = ProfileSettings(args.input_size, args.num_classes, 3, args.threads, args.device, args.repeats,
                               remeasure=args.remeasure)
    return profile(args.overrides, settings, multirun=args.multirun, sweep=args.sweep, plan=args.plan)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": train_main, "sweep": sweep_main, "table": table_main, "report": report_main,
    "tune": tune_main, "status": status_main, "profile": profile_main,
}


USAGE = """usage: ablate {commands} ...
       ablate --version

Ablation studies of attention modules in CNNs.

commands:
  train     one run: ablate train [overrides]; -m runs a grid through Hydra's multirun
  sweep     the runs of a sweep file that are not done yet, then its table
  tune      an Optuna study declared in a sweep file (kind: optuna)
  status    where a launched sweep or study stands; --watch refreshes it with an ETA
  table     a paper-style table from finished runs
  report    one HTML page with a sweep's tables and plots
  profile   Params, MAdds and latency of models, no training

'ablate COMMAND --help' describes a command. Bad input is one line 'ablate: error: ...' and
exit status 2, before any run starts.

environment:
  ABLATE_HOME       where outputs/ and data/ go (default: the working directory)
  ABLATE_PROGRESS   auto (a progress bar per run when stdout is a terminal), bar, or plain
  ABLATE_CACHE      off: no caches (composed configs, planned run keys, built tables,
                    decoded image folders); ABLATE_CACHE_DIR moves the command caches"""


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(commands="{" + ",".join(COMMANDS) + "}"))
        return 0
    if argv[0] in ("-V", "--version"):  # pyproject.toml's version, from the installed metadata
        from ablate import __version__

        print(f"ablate {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ablate: error: unknown command {name!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _setup_logging()
    try:
        from ablate.train.progress import progress_mode

        progress_mode()  # a bad ABLATE_PROGRESS is one line now, not after a sweep is planned
        return COMMANDS[name](rest)
    except ConfigError as exc:
        print(f"ablate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the run in progress recorded `preempted`; its checkpoint stands
        print("ablate: interrupted; relaunch the same command to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise  # anything else is a bug: keep its traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ablate: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """The ``ablate`` console script and ``python -m ablate``: ``main`` then a fast exit."""
    exit_fast(main())


def exit_fast(code: Optional[int]) -> None:
    """Exit after every exit handler ran, without the interpreter's teardown.

    Tearing down a process that imported torch takes 0.8-1.3 s on 2 cores (module and
    object finalisation), paid by every ``ablate train`` and every short command. The exit
    handlers (W&B, logging, multiprocessing) still run, and the streams are flushed; with a
    non-daemon thread still alive, the normal exit waits for it as usual.
    """
    import atexit
    import threading

    code = 0 if code is None else int(code)
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
