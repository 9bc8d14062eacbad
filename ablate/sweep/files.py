"""Sweep files: find and load ``sweeps/<name>.yaml`` (or a YAML at any path) as its kind's spec.

``kind: grid`` loads as a ``SweepSpec`` (``spec.py``), ``kind: optuna`` as a ``StudySpec``
(``study_spec.py``); a table file named by a sweep file resolves beside it.
"""
from __future__ import annotations

from pathlib import Path

from ablate.config import load_structured, load_yaml, project_root, spec_path
from ablate.errors import ConfigError
from ablate.sweep.spec import KINDS, SweepSpec
from ablate.sweep.study_spec import StudySpec

__all__ = ["list_sweeps", "load_sweep", "sweep_name", "sweeps_dir"]

SPEC_CLASSES = {"grid": SweepSpec, "optuna": StudySpec}


def sweeps_dir() -> Path:
    return project_root() / "sweeps"


def list_sweeps() -> list[str]:
    return sorted(p.stem for p in sweeps_dir().glob("*.yaml"))


def load_sweep(name: str):
    """Read and validate ``sweeps/<name>.yaml`` (a path to a YAML file works too).

    Returns a ``SweepSpec`` (``kind: grid``) or a ``StudySpec`` (``kind: optuna``).
    """
    path = spec_path(name, sweeps_dir(), "sweep")
    kind = load_yaml(path, "sweep").get("kind", "grid")
    if kind not in KINDS:
        raise ConfigError(f"sweep {path.stem!r}: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    spec = load_structured(path, SPEC_CLASSES[kind], "sweep")
    if spec.table and spec.table.endswith((".yaml", ".yml")) and not Path(spec.table).is_absolute():
        # a table file named by a sweep file is found beside it (then the working directory)
        beside = path.parent / spec.table
        spec.table = str((beside if beside.is_file() else Path(spec.table)).resolve())
    if spec.table:  # the table must exist now, not after every run has trained
        try:
            spec_path(spec.table, project_root() / "analysis", "table spec")
        except ConfigError as exc:
            raise ConfigError(f"sweep {spec.name!r}: table: {exc}") from None
    return spec


def sweep_name(name: str) -> str:
    """The sweep a command means: a name as given, or the name of the sweep file at a YAML path."""
    return load_sweep(name).name if name.endswith((".yaml", ".yml")) else name
