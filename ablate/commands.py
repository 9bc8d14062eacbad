"""What each ``ablate`` command does, given its parsed arguments (``ablate/cli.py`` parses).

This is the only place that composes the side-by-side packages: a sweep launches runs
(``ablate.sweep``) and then prints its table (``ablate.report``); ``--until-decided`` runs the
sweep in rounds with the report's sequential look; ``profile`` measures models and builds a
table. Below this layer, ``sweep`` and ``report`` never import each other.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

log = logging.getLogger("ablate")


def train(overrides: list[str]) -> int:
    """One run here; its device must exist on this machine."""
    from ablate.config import compose
    from ablate.train.run import prepare, run

    plan = prepare(compose(overrides))
    plan.trainer.check_here()  # it runs here: a CUDA device (or device count) this machine lacks is bad input
    return 0 if run(plan).status == "completed" else 1


def list_sweeps() -> int:
    from ablate.sweep import list_sweeps as names, load_sweep

    for name in names():
        print(f"{name:20s} {load_sweep(name).description}")
    return 0


def sweep(name: str, overrides: list[str], *, seeds: Optional[list[int]] = None, dry_run: bool = False,
          table: bool = True, until: Optional[dict] = None, step: int = 5) -> int:
    """Run a sweep file's missing runs (grid) or its study (optuna), then print its table.

    ``until`` (the sequential design's settings) runs a grid in rounds until decided.
    """
    from ablate.sweep import launch, load_sweep

    spec = load_sweep(name)
    if seeds:
        spec.seeds = seeds
    if until is not None and spec.kind == "grid":
        return _sweep_until_decided(spec, overrides, until, step, dry_run, table)
    done = launch(spec, overrides, dry_run=dry_run)
    if spec.table and table and not dry_run and spec.kind == "grid":
        show_table(spec.table, overrides)
    return _exit_status(done.ran)


def _exit_status(ran) -> int:
    """1 when a run this launch trained did not finish (failed, or stopped to be resumed)."""
    if not ran:
        return 0
    store = ran[0].store
    bad = [(r.key, store.status(r.key)) for r in ran if store.status(r.key) not in ("completed", "diverged", "pruned")]
    if bad:
        shown = ", ".join(f"{k} {s or 'missing'}" for k, s in bad[:5]) + (", ..." if len(bad) > 5 else "")
        log.error("%d of %d runs did not finish (%s); their result.json says why, a relaunch retries them",
                  len(bad), len(ran), shown)
        return 1
    return 0


def _sweep_until_decided(spec, overrides: list[str], until: dict, step: int, dry_run: bool, table: bool) -> int:
    import dataclasses

    from ablate.errors import ConfigError
    from ablate.report import load_table_spec
    from ablate.report.until_decided import SequentialLook
    from ablate.sweep import launch_rounds

    if not spec.table:
        raise ConfigError(f"sweep {spec.name!r} names no table; --until-decided needs one (table: in the sweep file)")
    table_spec = load_table_spec(spec.table)
    design = SequentialLook.design_for(table_spec, **until)
    if len(set(spec.seeds)) > design.max_seeds:
        raise ConfigError(f"--max-seeds {design.max_seeds} is below the sweep's {len(set(spec.seeds))} seeds; "
                          f"allowed: --max-seeds >= {len(set(spec.seeds))}")
    look = SequentialLook(table_spec, design, step, dry_run=dry_run)
    launch_rounds(spec, overrides, look, design=dataclasses.asdict(design), dry_run=dry_run)
    if dry_run:
        return 0
    left = [s.name for s in look.states if s.decision == "undecided"]
    log.info("sweep %s: %s", spec.name, "every comparison decided" if not left else f"undecided at the seed limit: {', '.join(left)}")
    return show_table(spec.table, overrides) if table else 0


def tune(name: str, overrides: list[str], *, workers: Optional[int] = None, n_trials: Optional[int] = None,
         storage: Optional[str] = None, dry_run: bool = False) -> int:
    """Work a ``kind: optuna`` sweep until its study holds ``n_trials`` trials."""
    import dataclasses

    from ablate.errors import ConfigError
    from ablate.sweep import launch, load_sweep

    spec = load_sweep(name)
    if spec.kind != "optuna":
        raise ConfigError(f"sweep {spec.name!r} is kind {spec.kind!r}; `ablate tune` needs kind: optuna (use `ablate sweep`)")
    changes = {k: v for k, v in (("n_trials", n_trials), ("workers", workers), ("storage", storage)) if v is not None}
    if changes:
        data = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
        spec = type(spec)(**{**data, **changes})  # re-validated
    launch(spec, overrides, dry_run=dry_run, workers=workers)
    return 0


def status(name: str, overrides: list[str], *, watch: bool = False, interval: float = 5.0,
           storage: Optional[str] = None) -> int:
    from ablate.sweep import sweep_name
    from ablate.sweep.status import format_status, sweep_status, watch as watch_status

    name = sweep_name(name)  # `ablate status path/to/my_sweep.yaml`, as `ablate sweep` takes it
    if watch:
        watch_status(name, overrides, interval=interval, storage=storage)
    else:
        print(format_status(sweep_status(name, overrides, storage=storage)))
    return 0


def show_table(spec_name: str, overrides: list[str] | tuple = (), *, formats: Optional[list[str]] = None,
               wandb: Optional[str] = None, out: Optional[str] = None) -> int:
    """Build a table from the results store (or W&B), print it and write its formats.

    A table whose inputs have not changed since it was last built comes from the table cache
    (``ablate.report.table_cache``): printed and written the same, without pandas or scipy."""
    from ablate.report import load_table_spec
    from ablate.report import table_cache
    from ablate.report.formats import write_texts
    from ablate.report.render import print_cells
    from ablate.report.sources import project_paths

    spec = load_table_spec(spec_name)
    paths = project_paths(list(overrides))
    out_dir = out or paths.tables_dir
    planned = _grid_sweep_file(spec.sweep)
    key = table_cache.table_key(spec, planned, paths, formats, out_dir) if wandb is None else None
    hit = table_cache.lookup(key)
    if hit is not None:
        cells, texts = hit["cells"], hit["texts"]
    else:
        built = _build_table(spec, paths, planned, formats, wandb)
        if built is None:
            return 1
        cells, texts = built
        table_cache.save(key, cells, texts)
    print_cells(**cells)
    for path in write_texts(out_dir, spec.name, texts):
        print(f"wrote {path}")
    return 0


def _build_table(spec, paths, planned, formats: Optional[list[str]], wandb: Optional[str]):
    """(cells, texts) of a freshly built table, or None (said in one line) when no run of it
    has a record yet."""
    from ablate.report.sources import sequential_state, table_records, wandb_source

    records, expected, store = table_records(spec, wandb_source(wandb), paths)
    if not records:  # nothing to tabulate: say so in one line, write no empty table
        print(f"ablate: {_no_runs_yet(spec, planned, expected, store)}", file=sys.stderr)
        return None
    from ablate.report import build_table
    from ablate.report.formats import render_all
    from ablate.report.render import table_cells

    # Without a manifest (the sweep was not launched from here), the sweep file says which seeds
    # each cell should have: a cell lacking some counts them as missing.
    seeds = planned.seeds if planned is not None and expected is None else None
    table = build_table(spec, records, expected, sequential=sequential_state(paths, spec.sweep), seeds=seeds)
    return table_cells(table), render_all(table, formats)


def _grid_sweep_file(name: Optional[str]):
    """The grid sweep file a table is built from (``sweeps/<name>.yaml``), or None: no sweep, a
    study, or a sweep run elsewhere without a file here."""
    from ablate.errors import ConfigError
    from ablate.sweep import load_sweep

    if not name:
        return None
    try:
        spec = load_sweep(name)
    except ConfigError:
        return None
    return spec if spec.kind == "grid" else None


def _no_runs_yet(spec, planned, expected: Optional[list], store) -> str:
    """The line ``ablate table`` says when no run of the table has a record yet."""
    from ablate.track.store import RunDirStore

    where = f"in {store.root}" if isinstance(store, RunDirStore) else f"in {getattr(store, 'source', type(store).__name__)}"
    if spec.sweep is None:
        return f"table {spec.name!r}: no run matches it {where} yet"
    if expected is not None:
        plan = f"its manifest lists {len(expected)} run{'s' if len(expected) != 1 else ''}"
    elif planned is not None:
        cells, seeds = len(planned.cells()), len(planned.seeds)
        plan = f"sweeps/{planned.name}.yaml plans {cells * seeds}: {cells} setting{'s' if cells != 1 else ''} x {seeds} seed{'s' if seeds != 1 else ''}"
    else:
        plan = "no manifest or sweep file here says how many it has"
    return (f"table {spec.name!r}: no run of sweep {spec.sweep!r} {where} yet ({plan}); "
            f"run `ablate sweep {spec.sweep}` (`ablate status {spec.sweep}` shows its progress)")


def list_tables() -> int:
    from ablate.report import list_tables as names

    print("\n".join(names()))
    return 0


def report(sweep_arg: str, overrides: list[str], *, wandb: Optional[str] = None, out: Optional[str] = None) -> int:
    """One self-contained HTML page with every table and plot of a sweep."""
    from ablate.report.html import build_report
    from ablate.report.sources import project_paths, wandb_source
    from ablate.sweep import sweep_name

    page = build_report(sweep_name(sweep_arg), store=wandb_source(wandb), paths=project_paths(overrides),
                        out_dir=Path(out) if out else None)
    print(f"wrote {page}")
    for png in sorted((page.parent / "plots").glob("*.png")):
        print(f"wrote {png}")
    return 0
