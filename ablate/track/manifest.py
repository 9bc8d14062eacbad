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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ablate.io import DamagedFile, read_json, set_aside, write_json

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
        """The manifest of ``sweep``, or None if it was never launched.

        ``runs_dir`` is stored relative to the manifest, so a copied or moved ``outputs/``
        still finds its runs; it comes back absolute.
        """
        path = cls.path(sweeps_dir, sweep)
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        except DamagedFile:  # kept beside it; the next launch writes a new one
            set_aside(path)
            return None
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        manifest = cls(**{k: v for k, v in data.items() if k in names},
                       extra={k: v for k, v in data.items() if k not in names})
        if manifest.runs_dir and not Path(manifest.runs_dir).is_absolute():
            manifest.runs_dir = str((path.parent / manifest.runs_dir).resolve())
        return manifest

    @staticmethod
    def launched(sweeps_dir: str | Path) -> list[str]:
        """Every sweep with a manifest under ``sweeps_dir``."""
        root = Path(sweeps_dir)
        return sorted(p.parent.name for p in root.glob(f"*/{FILENAME}")) if root.is_dir() else []

    def write(self, sweeps_dir: str | Path) -> Path:
        path = self.path(sweeps_dir, self.sweep)
        data = self.to_dict()
        if self.runs_dir:  # relative to the manifest: the outputs tree can be moved or copied
            data["runs_dir"] = os.path.relpath(Path(self.runs_dir).resolve(), path.parent.resolve())
        write_json(path, data)
        return path

    def merged(self, earlier: Optional["SweepManifest"]) -> "SweepManifest":
        """This launch's manifest, keeping the runs an earlier launch of the same study planned.

        Same command-line overrides (``extra_overrides``) = the same study: its run list grows
        (``--seeds 10,11`` adds seeds, it does not forget 0-9); other overrides are another
        study and replace it. A ``sequential`` record is kept until a launch brings its own.
        """
        if earlier is None or earlier.kind != self.kind or earlier.extra_overrides != self.extra_overrides \
                or earlier.runs is None or self.runs is None:
            return self
        have = {r["run_key"] for r in self.runs}
        runs = [r for r in earlier.runs if r["run_key"] not in have] + list(self.runs)
        return dataclasses.replace(self, runs=runs, sequential=self.sequential or earlier.sequential)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None or k in ("table", "runs_dir")}
        out.update(self.extra)
        return out

    def expected(self) -> Optional[list[dict]]:
        """The planned runs (run key and config), or None for a study (trials are not planned)."""
        return None if self.runs is None else [{"run_key": r["run_key"], "config": r["config"]} for r in self.runs]
