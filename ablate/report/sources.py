"""Where a table's runs come from: a results store, narrowed by the sweep's manifest.

With a manifest (``<sweeps_dir>/<sweep>/manifest.json``, written when a sweep is planned) the
table holds exactly the sweep's runs, and runs without a record show as missing. Without one
(a sweep run elsewhere, imported from W&B), the runs are those whose record names the sweep
(``sweep``, the W&B group) and match the spec's filter (so are an Optuna study's trials, whose
manifest lists no runs); a run shared by two sweeps carries
the name of the sweep that trained it first, so keep the manifest next to imported results.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

from ablate.errors import ConfigError
from ablate.report.spec import TableSpec
from ablate.track.manifest import SweepManifest
from ablate.track.store import ResultsStore, RunDirStore, get_store


def wandb_source(text: Optional[str]) -> Optional[str]:
    """``--wandb`` value -> a ``get_store`` source (``wandb:...``), or None for the local store."""
    if text is None:
        return None
    if os.path.isdir(text):
        return "wandb:" + str(Path(text).resolve())
    if text.count("/") != 1 or not all(text.split("/")):
        raise ConfigError(f"--wandb {text!r}; allowed: ENTITY/PROJECT or an existing directory with offline W&B runs")
    return "wandb:" + text


def project_paths(overrides: list[str] | tuple = ()) -> Any:
    """The ``paths`` config group (``paths.*`` overrides applied; others ignored)."""
    from ablate.config import paths_config

    return paths_config(overrides)


def read_sweep_manifest(paths: Any, sweep: Optional[str]) -> Optional[SweepManifest]:
    return SweepManifest.read(paths.sweeps_dir, sweep) if sweep else None


def sequential_state(paths: Any, sweep: Optional[str]) -> Optional[dict]:
    """The ``--until-decided`` record of a sweep (design, looks), from its manifest, or None."""
    manifest = read_sweep_manifest(paths, sweep)
    return manifest.sequential if manifest is not None else None


def open_store(source: Union[None, str, ResultsStore], paths: Any, manifest: Optional[SweepManifest] = None) -> ResultsStore:
    """``source`` None: the run-dir store (the manifest's runs dir, else ``paths.runs_dir``);
    a string: ``get_store`` (``wandb:entity/project``, ``wandb:/offline/dir``, a runs dir)."""
    if isinstance(source, ResultsStore):
        return source
    if source is None:
        return RunDirStore(manifest.runs_dir if manifest is not None and manifest.runs_dir else paths.runs_dir)
    return get_store(source)


def sweep_records(store: ResultsStore, sweep: Optional[str], manifest: Optional[SweepManifest],
                  where: Optional[dict] = None) -> tuple[list[dict], Optional[list[dict]]]:
    """(records, expected runs or None) of a sweep in ``store`` (see the module docstring)."""
    if manifest is not None and manifest.runs is not None:  # an Optuna study's manifest lists no runs
        recs = [r for r in (store.get(e["run_key"]) for e in manifest.runs) if r is not None]
        return recs, manifest.expected()
    recs = list(store.records(where or {}))
    if sweep:
        recs = [r for r in recs if r.get("sweep") == sweep]
    return recs, None


def table_records(spec: TableSpec, store: Union[None, str, ResultsStore] = None,
                  paths: Any = None) -> tuple[list[dict], Optional[list[dict]], ResultsStore]:
    """The records (and expected runs) that feed ``spec``, and the store they came from."""
    paths = paths if paths is not None else project_paths()
    manifest = read_sweep_manifest(paths, spec.sweep)
    st = open_store(store, paths, manifest)
    recs, expected = sweep_records(st, spec.sweep, manifest, spec.where)
    return recs, expected, st


def reports_dir(paths: Any) -> Path:
    """``<output_dir>/reports``: one folder per sweep report."""
    return Path(paths.output_dir) / "reports"
