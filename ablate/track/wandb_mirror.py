"""W&B as a mirror for humans: the same calls in offline, online and disabled mode.

The results store stays the source of truth; W&B gets the config, per-epoch metrics and the
final summary. ``wandb`` is imported only when tracking is on, and offline runs land in the
run dir (``<run_dir>/wandb/offline-run-*``) for a later ``wandb sync``.

One ablate run is one W&B run, whatever happens to it:

- its W&B id is its run key (``wandb_run_id``); ``force=true`` (or a run that has to start over
  from epoch 0 after W&B already holds its epochs, e.g. ``trainer.checkpoint=false``) gets the
  next attempt, ``<run_key>-1``, ``<run_key>-2``, ...;
- a relaunch that resumes from the checkpoint re-opens the same id (``resume="allow"``) and logs
  on from the resumed epoch; the W&B step is the epoch, so steps rise strictly per id. The
  epochs W&B does not have yet (a kill between checkpoint and log) are sent first from the
  checkpoint's history. Offline, each relaunch is another ``offline-run-*-<id>`` dir with the
  same id: ``wandb sync`` uploads the dirs of one id into that one run, in start order;
- it ends ``finished`` (exit code 0) when the store says completed, pruned or preempted (a
  pre-empted run is also marked preempting), and ``failed`` (exit code 1) when failed or
  diverged; the store's status is always in the summary (``status``);
- config and tags carry the run key, sweep, attention kind and seed; the W&B group is the sweep
  (``tracking.group`` wins: ``ablate train -m`` sets one per invocation).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from ablate.errors import ConfigError

MODES = ("offline", "online", "disabled")
# store status -> W&B exit code: 0 (W&B state "finished") unless the run failed or diverged
EXIT_CODES = {"completed": 0, "pruned": 0, "preempted": 0}
# <wandb dir>/offline-run-20261130_135604-<id> (offline) or run-...-<id> (online)
_SEGMENT = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(.+)$")


@dataclass
class TrackingConfig:
    """The ``tracking`` config group."""

    mode: str = "offline"
    project: str = "ablate"
    entity: Optional[str] = None
    group: Optional[str] = None   # W&B group; null: the run's sweep

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown tracking.mode {self.mode!r}; allowed: {', '.join(MODES)}")
        if self.group is not None and (not isinstance(self.group, str) or not self.group.strip()
                                       or len(self.group) > 128):
            raise ConfigError(f"tracking.group={self.group!r}; allowed: null (the sweep's name) or a "
                              "non-empty name of at most 128 characters")


def wandb_run_id(run_key: str, attempt: int = 0) -> str:
    """The W&B id of a run key's ``attempt``-th start from scratch (0: the run key itself)."""
    return run_key if attempt == 0 else f"{run_key}-{attempt}"


def _attempt_of(run_key: str, run_id: str) -> Optional[int]:
    if run_id == run_key:
        return 0
    rest = run_id[len(run_key) + 1:] if run_id.startswith(run_key + "-") else ""
    return int(rest) if rest.isdigit() else None


@dataclass(frozen=True)
class Segment:
    """One W&B run dir (one process's part of a W&B run): its id and the steps it logged."""

    path: Path
    id: str
    order: tuple
    steps: tuple


def segments(wandb_dirs: Iterable[Path]) -> list[Segment]:
    """The W&B run dirs under ``<run_dir>/wandb`` dirs, oldest first, with the steps each logged
    (read from its ``.wandb`` transaction log; a torn tail reads as its intact prefix)."""
    from ablate.track.store._wandb import parse_offline_run

    out = []
    for wdir in wandb_dirs:
        if not wdir.is_dir():
            continue
        for d in wdir.iterdir():
            m = _SEGMENT.match(d.name)
            if not m or not d.is_dir():
                continue
            logs = sorted(d.glob("run-*.wandb"))
            try:
                run = _settled(logs[0], parse_offline_run) if logs else None
            except (ValueError, OSError):  # not a log we can read: still an id in use
                run = None
            steps = tuple(r["_step"] for r in (run or {}).get("history", []) if isinstance(r.get("_step"), int))
            out.append(Segment(d, m.group(2), (m.group(1), (run or {}).get("start_time") or ""), steps))
    return sorted(out, key=lambda s: s.order)


def _settled(log: Path, parse, quiet_s: float = 2.0, max_s: float = 15.0) -> dict:
    """A ``.wandb`` log's contents once its writer is done. ``run.finish()`` returns before W&B's
    service has flushed the log (offline, wandb 0.31: the history lands ~0.2 s later), so a log
    without its exit record that changed in the last ``quiet_s`` is read again until it has one
    or stays unchanged that long (a killed run's log never gets one)."""
    import time

    end = time.time() + max_s
    while True:
        run = parse(log)
        if run["exit_code"] is not None or time.time() - log.stat().st_mtime > quiet_s or time.time() > end:
            return run
        time.sleep(0.05)


def choose_run_id(run_key: str, run_dir: Path, start_epoch: int,
                  replaced: Iterable[Path] = ()) -> tuple[str, int]:
    """``(W&B id, first epoch W&B lacks)`` for a run about to train from ``start_epoch``.

    The newest id in the run dir goes on when every step it holds is before ``start_epoch``
    (a resume); otherwise (first start, or a start-over below its last step) the next attempt
    not used yet in the run dir or the run key's set-aside dirs (``replaced``: ``force=true``).
    """
    here = segments([Path(run_dir) / "wandb"])
    if here:
        current = here[-1].id
        logged = [s for seg in here if seg.id == current for s in seg.steps]
        last = max(logged, default=-1)
        if last < start_epoch:
            return current, last + 1
    used = {s.id for s in here} | {s.id for s in segments(Path(p) / "wandb" for p in replaced)}
    attempts = {a for a in (_attempt_of(run_key, i) for i in used) if a is not None}
    attempt = 0 if not attempts else max(attempts) + 1
    return wandb_run_id(run_key, attempt), 0


_SERVICE_STARTED = False


def _own_service() -> None:
    """Give this process its own wandb-core service on its first run.

    W&B hands its service to child processes through ``WANDB_SERVICE``; a run started by a
    process that inherited it streams through the parent's service, which keeps a killed
    child's run id open ("run ID ... is in use" when the run is relaunched) and ties every
    run to the parent's life. Runs of one ablate process still share the service it starts.
    """
    global _SERVICE_STARTED
    if not _SERVICE_STARTED:
        os.environ.pop("WANDB_SERVICE", None)
        _SERVICE_STARTED = True


def tags_for(run_key: str, config: Mapping[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """The run's W&B tags: its run key, sweep, attention kind and seed, then the config's tags."""
    kind = (config.get("attention") or {}).get("kind")
    found = [f"run_key:{run_key}", f"sweep:{config.get('sweep')}" if config.get("sweep") else None,
             f"attention:{kind}" if kind else None, f"seed:{config.get('seed')}", *map(str, extra)]
    return list(dict.fromkeys(t[:64] for t in found if t))


class WandbMirror:
    """Opens one W&B run per ablate run; every method is a no-op when disabled.

    ``start_epoch``: the epoch this process trains first (a resumed run's checkpoint epoch + 1);
    ``history``: the rows of the epochs before it, sent to W&B where it lacks them.
    ``replaced``: the run key's set-aside run dirs (``force=true``), whose W&B ids are taken.
    """

    def __init__(self, cfg: TrackingConfig, *, run_dir: Path, run_key: str, group: Optional[str],
                 config: Mapping[str, Any], tags: list[str] | tuple = (), start_epoch: int = 0,
                 history: Iterable[Mapping[str, Any]] = (), replaced: Iterable[Path] = ()) -> None:
        self.run = None
        self.id: Optional[str] = None
        if cfg.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        _own_service()
        import wandb

        self.id, missing_from = choose_run_id(run_key, Path(run_dir), start_epoch, replaced)
        self.run = wandb.init(
            mode=cfg.mode, project=cfg.project, entity=cfg.entity, dir=str(run_dir), id=self.id,
            resume="allow", name=run_key, group=cfg.group or config.get("sweep"),
            config={**dict(config), "run_key": run_key}, tags=tags_for(run_key, config, tags),
            reinit="finish_previous", settings=wandb.Settings(silent=True, console="off"),
        )
        for row in history:
            epoch = row.get("epoch")
            if isinstance(epoch, int) and missing_from <= epoch < start_epoch:
                self.log(row, step=epoch)

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

    def finish(self, status: str = "completed") -> None:
        """End the W&B run in the state the store's ``status`` maps to (``EXIT_CODES``)."""
        if self.run is not None:
            if status == "preempted":
                self.run.mark_preempting()
            self.run.finish(exit_code=EXIT_CODES.get(status, 1))
            self.run = None
