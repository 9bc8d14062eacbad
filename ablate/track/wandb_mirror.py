"""W&B as a mirror for humans: the same calls in offline, online and disabled mode.

The results store stays the source of truth; W&B gets the config, per-epoch metrics and the
final summary. ``wandb`` is imported only when tracking is on, and offline runs land in the
run dir (``<run_dir>/wandb/offline-run-*``) for a later ``wandb sync``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from ablate.errors import ConfigError

MODES = ("offline", "online", "disabled")


@dataclass
class TrackingConfig:
    """The ``tracking`` config group."""

    mode: str = "offline"
    project: str = "ablate"
    entity: Optional[str] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown tracking.mode {self.mode!r}; allowed: {', '.join(MODES)}")


class WandbMirror:
    """Opens one W&B run per ablate run; every method is a no-op when disabled."""

    def __init__(self, cfg: TrackingConfig, *, run_dir: Path, name: str, group: Optional[str],
                 config: Mapping[str, Any], tags: list[str] | tuple = ()) -> None:
        self.run = None
        if cfg.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.run = wandb.init(
            mode=cfg.mode, project=cfg.project, entity=cfg.entity, dir=str(run_dir), name=name,
            group=group, config=dict(config), tags=list(tags), reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off"),
        )

    @property
    def run_path(self) -> Optional[str]:
        """Where the offline run lives (``wandb sync <this>``), or the online run's path."""
        if self.run is None:
            return None
        return getattr(self.run, "dir", None)

    def log(self, row: Mapping[str, Any], step: Optional[int] = None) -> None:
        if self.run is not None:
            self.run.log(dict(row), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
