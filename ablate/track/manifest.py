"""``SweepManifest``: which runs make up a sweep, written when it is launched.

``<sweeps_dir>/<sweep>/manifest.json`` is how everything after a launch knows the sweep: tables
(which runs a cell expects, so a missing one is a hole, not a silent gap), ``ablate status``,
reports and resumed ``--until-decided`` rounds. One type for every kind of sweep:

- ``grid``: ``runs`` lists every planned run (run key, overrides, resolved config);
- ``optuna``: a study's trials are not known in advance, so ``runs`` is None and the manifest
  names the study (``study_name``, redacted ``storage``, ``n_trials``) and its ``objectives``
  with their ``directions``; its runs carry the sweep's name;
- ``profile``: ``ablate profile --sweep`` records (no training), one per planned run.

``sequential`` holds the design, seeds and looks of ``--until-decided``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ablate.io import read_json, write_json

__all__ = ["SweepManifest", "KINDS"]

KINDS = ("grid", "optuna", "profile")
FILENAME = "manifest.json"


@dataclass
class SweepManifest:
    """What a launched sweep is (see the module docstring for each kind's fields)."""

    sweep: str
    kind: str = "grid"
    table: Optional[str] = None                      # the sweep file's table spec (name or path)
    extra_overrides: list = field(default_factory=list)   # command-line overrides of the launch
    runs_dir: Optional[str] = None                   # the results store the runs live in
    runs: Optional[list] = None                      # grid/profile: [{run_key, overrides, config}]
    study_name: Optional[str] = None                 # optuna
    storage: Optional[str] = None                    # optuna, password redacted
    n_trials: Optional[int] = None                   # optuna
    objectives: Optional[list] = None                # optuna: result.json metrics
    directions: Optional[list] = None                # optuna: maximize/minimize per objective
    sequential: Optional[dict] = None                # --until-decided: design, seeds, looks
    extra: dict = field(default_factory=dict)        # keys of another version, kept

    @staticmethod
    def path(sweeps_dir: str | Path, sweep: str) -> Path:
        return Path(sweeps_dir) / sweep / FILENAME

    @classmethod
    def read(cls, sweeps_dir: str | Path, sweep: str) -> Optional["SweepManifest"]:
        """The manifest of ``sweep``, or None if it was never launched."""
        path = cls.path(sweeps_dir, sweep)
        if not path.exists():
            return None
        data = read_json(path)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names})

    @staticmethod
    def launched(sweeps_dir: str | Path) -> list[str]:
        """Every sweep with a manifest under ``sweeps_dir``."""
        root = Path(sweeps_dir)
        return sorted(p.parent.name for p in root.glob(f"*/{FILENAME}")) if root.is_dir() else []

    def write(self, sweeps_dir: str | Path) -> Path:
        path = self.path(sweeps_dir, self.sweep)
        write_json(path, self.to_dict())
        return path

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None or k in ("table", "runs_dir")}
        out.update(self.extra)
        return out

    def expected(self) -> Optional[list[dict]]:
        """The planned runs (run key and config), or None for a study (trials are not planned)."""
        return None if self.runs is None else [{"run_key": r["run_key"], "config": r["config"]} for r in self.runs]
