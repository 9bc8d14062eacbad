"""``RunRecord``: what a run leaves behind (its ``result.json``), the one place its keys are named.

The trainer fills one, the store writes and reads it, the W&B mirror sends its metrics as the
run summary, and tables know which record keys are metrics from ``METRICS``. On disk it is a
plain JSON object with these keys (older records with fewer keys read fine: missing ones are
None); keys this version does not know are kept in ``extra`` and written back unchanged.

A record is also a read-only mapping over that JSON (``rec["top1"]``, ``rec.get("status")``;
every field is always there, None when not measured), so code that reads records needs no
conversion.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

__all__ = ["RunRecord", "METRICS", "NUMERICS", "STATUSES", "FINAL_STATUSES"]

# completed: trained to the end; diverged: NaN/inf loss; failed: an exception (message);
# pruned: stopped by Optuna; preempted: SIGTERM/SIGUSR1, resumable; running: a live lock.
STATUSES = ("completed", "diverged", "failed", "pruned", "preempted", "running")
# A relaunch re-trains only runs whose last outcome may change: a failure (environment, bug
# fix) or a pre-emption (resumes from its checkpoint). Divergence is a deterministic outcome of
# the config and stays, unless `force=true`. Pruning is a verdict of the study that pruned the
# run, not of its config: only that study takes it as final; anyone else resumes the run.
FINAL_STATUSES = ("completed", "diverged")


def _metric(doc: str) -> Any:
    return field(default=None, metadata={"metric": True, "doc": doc})


@dataclass
class RunRecord(Mapping):
    """One run's outcome. Fields marked ``metric`` are numbers a table can aggregate."""

    run_key: str
    status: str = "failed"
    message: str = ""
    seed: Optional[int] = None
    sweep: Optional[str] = None
    config: dict = field(default_factory=dict)       # the resolved config
    # --- measured -------------------------------------------------------------------------
    top1: Optional[float] = _metric("validation top-1 (%) after the last epoch")
    top5: Optional[float] = _metric("validation top-5 (%)")
    loss: Optional[float] = _metric("validation cross-entropy")
    miou: Optional[float] = _metric("segmentation: validation mean IoU (%) over classes, from one confusion matrix")
    pixel_acc: Optional[float] = _metric("segmentation: validation pixel accuracy (%), ignore pixels left out")
    params: Optional[int] = _metric("parameters, BatchNorm included")
    madds: Optional[int] = _metric("multiply-adds of one image, gating multiplies included")
    latency_ms: Optional[float] = _metric("batch-1 forward time on the run's device")
    seconds: Optional[float] = _metric("wall time of the run")
    device_seconds: Optional[float] = _metric("compute: wall time x the run's processes (one device each)")
    epochs: Optional[int] = _metric("epochs trained (the last evaluated one for a stopped run)")
    input_size: Optional[list] = None
    resumed_from: Optional[int] = None               # epoch a resumed run started from
    # --- provenance -----------------------------------------------------------------------
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    git_commit: Optional[str] = None
    host: Optional[str] = None
    torch: Optional[str] = None                      # numerics: torch version, ...
    device: Optional[str] = None                     # ... device, ...
    device_kind: Optional[str] = None                # the device's model: GPU name, or "CPU <model>"
    threads: Optional[int] = None                    # ... torch CPU threads while training, ...
    cpu: Optional[str] = None                        # ... and CPU model
    wandb_dir: Optional[str] = None
    wandb_id: Optional[str] = None                   # the W&B run id (run key, or <key>-<attempt>)
    extra: dict = field(default_factory=dict)        # keys written by another version

    # --- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON object of ``result.json``: every field (unset ones as null), then ``extra``."""
        out = {name: getattr(self, name) for name in _ORDER}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        if isinstance(data, RunRecord):
            return dataclasses.replace(data, config=dict(data.config), extra=dict(data.extra))
        known = {k: v for k, v in data.items() if k in _FIELDS}
        return cls(**known, extra={k: v for k, v in data.items() if k not in _FIELDS})

    def update(self, **values: Any) -> None:
        """Set fields (an unknown key goes to ``extra``)."""
        for k, v in values.items():
            if k in _FIELDS:
                setattr(self, k, v)
            else:
                self.extra[k] = v

    # --- read-only mapping over the JSON form ---------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return getattr(self, key) if key in _FIELDS else self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from _ORDER
        yield from self.extra

    def __len__(self) -> int:
        return len(_ORDER) + len(self.extra)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_FIELDS = {f.name for f in dataclasses.fields(RunRecord)} - {"extra"}
# What a run's numbers depend on besides its config: cells that mix them say so.
NUMERICS = ("torch", "device", "threads", "cpu")
_ORDER = tuple(f.name for f in dataclasses.fields(RunRecord) if f.name != "extra")
METRICS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRecord) if f.metadata.get("metric"))
