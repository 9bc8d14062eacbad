"""``local`` (the embedded default): runs one after another in this process, no start-up cost.

A study gets one worker here. Packing runs onto GPUs or running N at once is ``parallel``'s
job: ``local`` has no such keys, so asking it for them is an error, not a silent switch.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ablate.errors import ConfigError
from ablate.sweep.launchers._base import LAUNCHERS, Launcher, LauncherConfig, run_one
from ablate.sweep.progress import Tally
from ablate.sweep.runner import PlannedRun

if TYPE_CHECKING:
    from ablate.sweep.worker import StudyJob

log = logging.getLogger("ablate")


@LAUNCHERS.register("local")
class LocalLauncher(Launcher):
    """One run at a time in this process; stops launching after a pre-emption signal."""

    name = "local"
    config_class = LauncherConfig

    def launch(self, runs: list[PlannedRun]) -> list:
        from ablate.train.engine import stop_requested

        records = []
        tally = Tally(len(runs))
        for i, r in enumerate(runs, 1):
            if stop_requested():  # pre-empted: leave the remaining runs for the relaunch
                log.warning("stop requested: %d runs left for the relaunch", len(runs) - i + 1)
                break
            log.info("[%d/%d] run %s: %s  %s", i, len(runs), r.key, " ".join(r.overrides), tally.eta())
            rec = run_one(r.plan)
            tally.finished(rec.get("seconds") if rec is not None else None)
            if rec is not None:
                records.append(rec)
        return records

    def work_study(self, job: "StudyJob", workers: int) -> list:
        from ablate.sweep.worker import work

        if workers > 1:
            raise ConfigError(f"launcher local runs one study worker, not {workers}; "
                              "allowed: --workers 1, or launcher=parallel for several")
        return work(job)
