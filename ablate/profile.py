"""``ablate profile``: Params, MAdds and latency of configured models, without training.

The columns the paper puts beside every accuracy (Params, M-Adds, at 224x224 and 1000
classes) come from the model alone. A profile composes ``conf/`` like ``ablate train`` (so
configs and profiles build the very same model), counts it the paper's way and times batch-1
forward passes. Records go to ``<output_dir>/profiles/<key>/result.json`` and a sweep's
profile writes a manifest, so ``ablate table`` builds tables from them like from runs.

Those records are also the cache: a model whose record was measured the same way (threads,
device, timed passes) by the same model code (``ablate/models``) is not measured again, so a
second ``ablate profile --sweep paper_models`` builds no model and imports no torch.
``--remeasure`` measures every model again (the old record is kept under ``attempts/``). The
key is the model's config, so any change to it (a knob, the input size, the classes) is a new
record, measured.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ablate.config import compose_containers
from ablate.errors import ConfigError
from ablate.track.runkey import run_key

log = logging.getLogger("ablate")


@dataclass
class ProfileSettings:
    """How to measure: input size, classes, threads, device, timed passes."""

    input_size: Optional[int] = None   # None: 224 for the imagenet stem, 32 for the small stem
    num_classes: int = 1000            # the paper counts with the ImageNet classifier
    in_chans: int = 3
    threads: int = 1                   # batch-1 latency is reported single-threaded by default
    device: str = "cpu"
    repeats: int = 20
    remeasure: bool = False            # measure again even when a record measured the same way exists

    def __post_init__(self) -> None:
        if self.input_size is not None and self.input_size < 8:
            raise ConfigError(f"--input-size {self.input_size}; allowed: >= 8")
        if self.num_classes < 1 or self.threads < 1 or self.repeats < 1:
            raise ConfigError("--num-classes, --threads and --repeats must be >= 1")


def profile_identity(config: dict, settings: ProfileSettings) -> tuple[str, dict, tuple]:
    """(key, semantic config, input size) of a profile: what it measures, without building it."""
    size = settings.input_size or (32 if config["model"].get("stem") == "small" else 224)
    input_size = (1, settings.in_chans, size, size)
    semantic = {"model": config["model"], "attention": config["attention"], "profile": {
        "input_size": list(input_size), "num_classes": settings.num_classes}}
    return run_key(semantic), semantic, input_size


def profile_config(config: dict, settings: ProfileSettings) -> dict:
    """Profile one resolved run config; returns a record like a run's (status ``completed``)."""
    from ablate import cache
    from ablate.models import create_model
    from ablate.models.complexity import profile_model

    key, semantic, input_size = profile_identity(config, settings)
    model_cfg = dict(config["model"])
    name = model_cfg.pop("name")
    model = create_model(name, num_classes=settings.num_classes, in_chans=settings.in_chans,
                         attention=dict(config["attention"]), **model_cfg)
    stats = profile_model(model, input_size, threads=settings.threads, device=settings.device,
                          repeats=settings.repeats, warmup=min(5, settings.repeats))
    return {"run_key": key, "status": "completed", "kind": "profile",
            "input_size": list(input_size), "num_classes": settings.num_classes, "threads": settings.threads,
            "device": settings.device, "repeats": settings.repeats, "model_code": cache.code_digest("models"),
            **stats, "config": {**semantic, "seed": config.get("seed", 0)}}


def cached_profile(store, key: str, settings: ProfileSettings) -> Optional[dict]:
    """The stored record of profile ``key`` if it was measured as ``settings`` asks (threads,
    device, timed passes) by the model code there is now; else None (measure it)."""
    from ablate import cache

    if settings.remeasure:
        return None
    rec = store.get(key)
    if rec is None or rec.get("status") != "completed" or rec.get("kind") != "profile":
        return None
    same = (rec.get("threads"), rec.get("device"), rec.get("repeats")) == (settings.threads, settings.device, settings.repeats)
    return dict(rec) if same and rec.get("model_code") == cache.code_digest("models") else None


def profile(overrides: list[str], settings: ProfileSettings, *, multirun: bool = False,
            sweep: Optional[str] = None, plan: bool = False) -> int:
    """Profile the models of ``overrides`` (``-m``: a grid; ``sweep``: every model of a sweep
    file, seeds ignored), print them, write a CSV, and for a sweep its manifest and table.
    Models with a record measured the same way are not measured again (``cached_profile``)."""
    from ablate.track.store import RunDirStore

    spec = None
    if sweep:
        from ablate.sweep import load_sweep

        spec = load_sweep(sweep)
        spec.seeds = spec.seeds[:1]
        override_sets = spec.expand(overrides)
    elif multirun:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(overrides)
        override_sets = [list(b) for batch in BasicSweeper.split_arguments(parsed, None) for b in batch]
    else:
        override_sets = [overrides]
    sweep_name = spec.name if spec is not None else None
    configs = compose_containers(override_sets)  # all validated before any measuring
    paths = configs[0]["paths"]
    store = RunDirStore(Path(paths["output_dir"]) / "profiles")
    cached = [cached_profile(store, profile_identity(c, settings)[0], settings) for c in configs]
    if plan or any(rec is None for rec in cached):
        from ablate.models import create_model
        from ablate.models.insert import format_plan, insertion_plan

        for c, rec in zip(configs, cached):  # the model knobs, checked before any measurement
            if rec is not None and not plan:
                continue
            m = dict(c["model"])
            model = create_model(m.pop("name"), num_classes=settings.num_classes, attention=dict(c["attention"]), **m)
            if plan:
                print(f"{c['model']['name']} + {c['attention']['kind']}:\n{format_plan(insertion_plan(model))}")
    records = []
    for i, (o, cfg, rec) in enumerate(zip(override_sets, configs, cached), 1):
        shown = " ".join(x for x in o if not x.startswith(("seed=", "sweep=")))
        if rec is None:
            rec = profile_config(cfg, settings)
            rec["overrides"] = o
            store.put(rec)
            log.info("[%d/%d] %s", i, len(configs), shown)
        else:
            rec["overrides"] = o
            log.info("[%d/%d] %s (measured before; --remeasure measures again)", i, len(configs), shown)
        records.append(rec)
    _print(records)
    csv = Path(paths["tables_dir"]) / f"profile{'-' + sweep_name if sweep_name else ''}.csv"
    _write_csv(records, csv)
    print(f"wrote {csv}")
    if sweep_name:
        _sweep_table(sweep_name, records, store, paths)
    return 0


def _row(rec: dict) -> dict:
    m, a = rec["config"]["model"], rec["config"]["attention"]
    knobs = ",".join(f"{k}={v}" for k, v in a.items() if k == "branches")
    return {"model": m["name"], "width": m.get("width"), "stem": m.get("stem"),
            "attention": a["kind"] + (f"({knobs})" if knobs and a.get("branches") != "hw" else ""),
            "params": rec["params"], "params_M": round(rec["params"] / 1e6, 3), "madds": rec["madds"],
            "madds_M": round(rec["madds"] / 1e6, 1), "latency_ms": round(rec["latency_ms"], 2),
            "input": "x".join(str(s) for s in rec["input_size"][2:]), "run_key": rec["run_key"]}


def _print(records: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Params / MAdds (paper counting) / batch-1 latency")
    cols = ["model", "width", "attention", "input", "params", "params_M", "madds", "madds_M", "latency_ms"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("model", "attention") else "right")
    for rec in records:
        row = _row(rec)
        t.add_row(*(str(row[c]) for c in cols))
    Console(width=140).print(t)


def _write_csv(records: list[dict], path: Path) -> None:
    import csv

    from ablate.io import atomic_write

    rows = [_row(r) for r in records]

    def write(fh) -> None:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        out.writeheader()
        out.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)

    atomic_write(path, write)


def _sweep_table(name: str, records: list[dict], store, paths: dict) -> None:
    """Write the sweep's profile manifest and build its table spec if it has one."""
    from ablate.track.manifest import SweepManifest

    SweepManifest(name, "profile", runs_dir=str(store.root),
                  runs=[{"run_key": r["run_key"], "overrides": r["overrides"], "config": r["config"]} for r in records],
                  ).write(paths["sweeps_dir"])
    from ablate.report import list_tables

    if name in list_tables():
        from ablate.commands import show_table

        show_table(name)
