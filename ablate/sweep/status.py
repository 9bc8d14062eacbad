"""``ablate status``: where a launched sweep or study stands, from files and the study's storage.

Sources, all read-only: the sweep's ``manifest.json`` (which runs make it up), each run's
``result.json`` (final status), the run lock ``<runs_dir>/.<key>.lock`` (``running`` when its
process is alive), SLURM's queue for jobs the SLURM launcher recorded (``queued`` when
pending), and for a study the Optuna storage (trial states, best trial or Pareto front).
"""
from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from ablate.errors import ConfigError
from ablate.io import read_json
from ablate.sweep.progress import eta_text, finished_since, trial_durations
from ablate.sweep.storage import redact

STATES = ("completed", "running", "queued", "failed", "diverged", "pruned", "preempted", "missing")
FINAL = ("completed", "failed", "diverged", "pruned")


def _paths(overrides: list[str] | tuple):
    from ablate.config import paths_config

    return paths_config(overrides)


def slurm_states(sweep_dir: Path) -> dict[str, str]:
    """SLURM job id -> state (PENDING, RUNNING, ...) for the jobs the SLURM launcher recorded."""
    path = sweep_dir / "slurm_jobs.json"
    if not path.exists() or shutil.which("squeue") is None:
        return {}
    jobs = read_json(path).get("jobs", [])
    arrays = sorted({str(j["job_id"]).split("_")[0] for j in jobs})
    if not arrays:
        return {}
    out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i|%T"],
                         capture_output=True, text=True, timeout=30)
    states = dict(line.split("|", 1) for line in out.stdout.split() if "|" in line)
    return {str(j["job_id"]): states[str(j["job_id"])] for j in jobs if str(j["job_id"]) in states}


def sweep_status(name: str, overrides: list[str] | tuple = (), storage: Optional[str] = None) -> dict:
    """Counts per state (``STATES``), totals, and for a study the best trial lines."""
    from ablate.track.manifest import SweepManifest
    from ablate.track.store import RunDirStore

    paths = _paths(overrides)
    manifest = SweepManifest.read(paths.sweeps_dir, name)
    if manifest is None:
        launched = SweepManifest.launched(paths.sweeps_dir)
        raise ConfigError(f"sweep {name!r} has not been launched (no manifest in {paths.sweeps_dir}); "
                         f"allowed: {', '.join(launched) or '(none launched yet)'}")
    store = RunDirStore(manifest.runs_dir or paths.runs_dir)
    sweep_dir = Path(paths.sweeps_dir) / name
    if manifest.kind == "optuna":
        return _study_status(manifest, store, storage, sweep_dir)
    return _grid_status(manifest, store, sweep_dir)


def _run_state(store, key: str) -> Optional[str]:
    from ablate.track.lock import lock_holder_alive

    if lock_holder_alive(store.files(key).lock_path):
        return "running"
    return store.status(key)


def _grid_status(manifest, store, sweep_dir: Path) -> dict:
    jobs = slurm_states(sweep_dir)
    recorded = read_json(sweep_dir / "slurm_jobs.json").get("jobs", []) if jobs else []
    job_of = {k: jobs.get(str(j["job_id"])) for j in recorded for k in j.get("run_keys", [])}
    counts: Counter = Counter()
    since = _launched_at(sweep_dir)
    durations = []
    for entry in manifest.runs:
        state = _run_state(store, entry["run_key"])
        if state is None:  # no record, no lock: is SLURM still holding or starting it?
            state = {"PENDING": "queued", "RUNNING": "running"}.get(job_of.get(entry["run_key"]), "missing")
        counts[state] += 1
        if state in FINAL:
            rec = store.get(entry["run_key"])
            if rec is not None and rec.seconds is not None and finished_since(rec.finished_at, since):
                durations.append(rec.seconds)
    status = {"sweep": manifest.sweep, "kind": "grid", "total": len(manifest.runs), "counts": dict(counts),
              "lines": []}
    return _with_eta(status, durations)


def _launched_at(sweep_dir: Path) -> Optional[float]:
    """When the sweep was last launched: its manifest is written as a launch (or round) starts."""
    try:
        return (sweep_dir / "manifest.json").stat().st_mtime
    except OSError:
        return None


def _with_eta(status: dict, durations: list[float]) -> dict:
    """Add ``eta`` (text, as the launchers print it): the mean duration of the runs finished
    since the last launch, times those not final, over the runs running now (at least one)."""
    remaining = status["total"] - done(status)
    status["eta"] = eta_text(durations, remaining, max(1, status["counts"].get("running", 0)))
    return status


def _study_status(manifest, store, storage: Optional[str], sweep_dir: Path) -> dict:
    import optuna

    from ablate.sweep.storage import open_storage, resolve_storage_url
    from ablate.sweep.study import best_trials, counted, describe
    from ablate.sweep.worker import SUPERSEDED

    url = storage or manifest.storage
    if "***" in url:  # the manifest never holds a password: take it from the sweep file
        url = _password_from_sweep_file(manifest, sweep_dir, url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=manifest.study_name,
                                  storage=open_storage(resolve_storage_url(url, sweep_dir), create=False))
    except KeyError:
        raise ConfigError(f"study {manifest.study_name!r} not found in {redact(url)!r}; "
                          "allowed: the storage it was launched with (--storage URL)") from None
    trials = study.get_trials(deepcopy=False)
    counts: Counter = Counter()
    finished = []
    for t in counted(trials):
        state = t.state.name
        if state == "WAITING":
            counts["queued"] += 1
        elif state == "RUNNING":
            counts["running"] += 1
        elif state == "COMPLETE":
            counts["completed"] += 1
            finished.append(t)
        elif state == "PRUNED":
            counts["pruned"] += 1
            finished.append(t)
        else:
            counts[t.user_attrs.get("status") if t.user_attrs.get("status") in ("diverged", "failed") else "failed"] += 1
            finished.append(t)
    counts["preempted"] += sum(1 for t in trials if t.user_attrs.get(SUPERSEDED))
    missing = manifest.n_trials - len(counted(trials))
    if missing > 0:
        counts["missing"] += missing
    lines = describe(study, manifest.objectives, manifest.n_trials)[1:] if best_trials(study) else []
    jobs = Counter(slurm_states(sweep_dir).values())
    if jobs:  # worker array tasks still in SLURM's queue (PENDING = queued workers)
        lines.append("  SLURM workers: " + "  ".join(f"{s} {n}" for s, n in sorted(jobs.items())))
    status = {"sweep": manifest.sweep, "kind": "optuna", "total": manifest.n_trials, "counts": dict(counts),
              "lines": lines}
    return _with_eta(status, trial_durations(finished, _launched_at(sweep_dir)))


def _password_from_sweep_file(manifest, sweep_dir: Path, redacted: str) -> str:
    """The storage URL with its password, from the sweep file that launched the study, when that
    file is there and names the same storage; otherwise a one-line error asking for --storage."""
    from ablate.sweep import load_sweep
    from ablate.sweep.storage import resolve_storage_url

    try:
        url = load_sweep(manifest.sweep).storage
    except ConfigError:
        url = None
    if url and redact(resolve_storage_url(url, sweep_dir)) == redacted:  # the manifest keeps redact(resolved)
        return resolve_storage_url(url, sweep_dir)
    raise ConfigError(f"the manifest keeps the study's storage without its password ({redacted}); "
                      f"allowed: ablate status {manifest.sweep} --storage URL")


def format_status(status: dict) -> str:
    c = status["counts"]
    head = (f"sweep {status['sweep']} ({status['kind']}, {status['total']} "
            f"{'trials' if status['kind'] == 'optuna' else 'runs'}): ")
    eta = f"  [{done(status)}/{status['total']}] {status['eta']}" if status.get("eta") else ""
    return (head + "  ".join(f"{s} {c.get(s, 0)}" for s in STATES) + eta
            + "".join("\n" + ln for ln in status["lines"]))


def done(status: dict) -> int:
    """Runs (trials) whose outcome is final."""
    return sum(status["counts"].get(s, 0) for s in FINAL)


def watch(name: str, overrides: list[str] | tuple = (), *, interval: float = 5.0, storage: Optional[str] = None,
          max_polls: Optional[int] = None) -> dict:
    """A rich live progress bar over final runs, refreshed until all are final (or Ctrl-C)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    status = sweep_status(name, overrides, storage)
    console = Console()
    columns = (TextColumn("[bold]{task.fields[sweep]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"))
    polls = 0
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("sweep", total=status["total"], sweep=name, counts="", eta="")
            while True:
                counts = " ".join(f"{s}={status['counts'][s]}" for s in STATES if status["counts"].get(s))
                progress.update(task, completed=done(status), total=status["total"], counts=counts,
                                eta=status.get("eta", ""))
                polls += 1
                if done(status) >= status["total"] or (max_polls is not None and polls >= max_polls):
                    break
                time.sleep(interval)
                status = sweep_status(name, overrides, storage)
    except KeyboardInterrupt:
        pass
    console.print(format_status(status))
    return status
