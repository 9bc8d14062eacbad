"""``parallel``: N spawned worker processes on this machine, or K per GPU with ``runs_per_gpu``.

Each worker is a fresh interpreter (spawn: no inherited torch thread pools or CUDA state) that
claims one device slot for its life (``ablate/sweep/packing.py``) and trains runs one after
another; the CPU cores are split between the workers unless a run pins ``trainer.threads``.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ablate.sweep.launchers._base import LAUNCHERS, Launcher, PackingConfig, run_one
from ablate.sweep.packing import run_pool
from ablate.sweep.progress import Tally
from ablate.sweep.runner import PlannedRun

if TYPE_CHECKING:
    from ablate.sweep.worker import StudyJob

log = logging.getLogger("ablate")


@LAUNCHERS.register("parallel")
class ParallelLauncher(Launcher):
    """N worker processes (or K per GPU with ``runs_per_gpu``) on this machine."""

    name = "parallel"
    config_class = PackingConfig
    cfg: PackingConfig

    def launch(self, runs: list[PlannedRun]) -> list:
        records = []
        slots = self.cfg.slots(self.cfg.workers)
        tally = Tally(len(runs), parallel=len(slots))
        for i, (plan, rec) in enumerate(run_pool(run_one, [r.plan for r in runs], slots), 1):
            tally.finished(rec.get("seconds") if rec else None)
            log.info("[%d/%d] run %s %s  %s", i, len(runs), plan.key, rec["status"] if rec else "skipped", tally.eta())
            if rec:
                records.append(rec)
        return records

    def work_study(self, job: "StudyJob", workers: int) -> list:
        from ablate.sweep.worker import work

        records: list = []
        for _, recs in run_pool(work, [job.for_worker(i) for i in range(workers)], self.cfg.slots(workers)):
            records.extend(recs)
        return records
