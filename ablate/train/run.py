"""One run, wrapped: validate, skip if done, train, and always leave a ``result.json``.

``run(cfg)`` is the only reader of Hydra's DictConfig. It turns the groups into plain
arguments, checks every knob before any compute (bad input is a one-line ``ValueError``),
and wraps ``fit`` like the lightning-hydra-template's ``task_wrapper``: whatever happens,
``finally`` writes the record (completed / diverged / failed / pruned / preempted), closes
W&B and releases the run's lock.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig

from ablate.config import to_container
from ablate.errors import ConfigError
from ablate.track.lock import RunLocked, remove_stale_lock  # noqa: F401  (RunLocked re-exported: launchers catch it)
from ablate.track.record import FINAL_STATUSES, METRICS, RunRecord
from ablate.track.runkey import run_key
from ablate.track.store import RunDirStore, RunFiles
from ablate.track.wandb_mirror import TrackingConfig
from ablate.train.engine import Diverged, Preempted, Pruned, TrainerConfig

log = logging.getLogger("ablate")


@dataclass
class RunPlan:
    """Everything a run needs, validated and resolved; building it spends no compute."""

    key: str
    run_dir: Path
    config: dict
    trainer: TrainerConfig
    tracking: TrackingConfig
    model_name: str
    model_kwargs: dict
    attention: dict
    data_name: str
    data_root: Optional[str]
    data_kwargs: dict
    loader_kwargs: dict
    optim: dict
    seed: int
    sweep: Optional[str] = None
    tags: list = field(default_factory=list)
    force: bool = False
    task: Optional[dict] = None           # the task group (ablate.train.tasks); None: classification
    init_from: Optional[str] = None       # model.init_from as keyed (ablate.train.transfer)
    init_from_path: Optional[str] = None  # the checkpoint file it was given as, if any

    @property
    def store(self) -> RunDirStore:
        return RunDirStore(self.run_dir.parent)

    @property
    def files(self) -> RunFiles:
        return self.store.files(self.key)


def prepare(cfg: DictConfig) -> RunPlan:
    """Validate ``cfg`` and resolve it into a ``RunPlan`` (raises one-line ``ValueError``).

    Every knob is checked here, before any data is read: data options and files, the loader and
    its augmentation, the optimiser, the trainer, the seed, the model. A dataset read from files
    adds its content's fingerprint to the config as ``data.fingerprint``, so the run key (and
    the recorded config) identify the data, not where it lies.
    """
    from ablate.data import FINGERPRINT_KEY, check_dataset, split_config
    from ablate.train import tasks

    config = to_container(cfg)
    _check_knobs(config)
    trainer = TrainerConfig(**config["trainer"])
    if trainer.threads is None:  # a bad ABLATE_THREADS is one line now, not a failed run
        from ablate.threads import default_threads

        default_threads()
    tracking = TrackingConfig(**config["tracking"])
    data_name, data_root, data_kwargs, loader_kwargs = split_config(config["data"])
    try:  # names, options, ranges and the presence of source files: no data is read
        check_dataset(data_name, root=data_root, **data_kwargs)
    except (FileNotFoundError, ImportError) as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    _check_data(config, data_name, data_root, data_kwargs, loader_kwargs)
    task, init_from, init_from_path = _check_task_and_transfer(config, data_name)
    model = tasks.model_options(config["model"])
    model_name = config["model"]["name"]
    attention = dict(config["attention"])
    seed = config["seed"]
    # Building the model checks every architecture and attention knob (cheap, CPU, no data).
    tasks.build_model(model_name, model, attention, task, num_classes=10)
    fingerprint = _data_fingerprint(data_name, data_root, data_kwargs)
    if fingerprint is not None:
        config["data"][FINGERPRINT_KEY] = fingerprint
    key = run_key(config)
    return RunPlan(
        key=key, run_dir=Path(config["paths"]["runs_dir"]).resolve() / key, config=config,
        trainer=trainer, tracking=tracking, model_name=model_name, model_kwargs=model,
        attention=attention, data_name=data_name, data_root=data_root, data_kwargs=data_kwargs, loader_kwargs=loader_kwargs,
        optim=dict(config["optim"]), seed=seed, sweep=config.get("sweep"),
        tags=list(config.get("tags") or []), force=bool(config.get("force", False)),
        task=task, init_from=init_from, init_from_path=init_from_path,
    )


def _check_task_and_transfer(config: dict, data_name: str) -> tuple[Optional[dict], Optional[str], Optional[str]]:
    """The task group and ``model.init_from`` checked, and written into ``config`` as keyed
    (``ablate.train.tasks``, ``ablate.train.transfer``)."""
    from ablate.train import tasks, transfer

    task = tasks.check_task(config.get("task"))
    tasks.check_task_data(task, data_name)
    if "task" in config:
        config["task"] = task
    model = config["model"]
    if model.get("init_from_path") is not None and model.get("init_from") is None:
        raise ConfigError(f"model.init_from_path={model['init_from_path']!r} without model.init_from; allowed: "
                          "leave it unset (ablate records it)")
    init_from = path = None
    if model.get("init_from") is not None:
        runs_dir = Path(config["paths"]["runs_dir"]).resolve()
        init_from, path = transfer.resolve(model["init_from"], runs_dir)
        model["init_from"] = init_from
        if path is not None:
            model["init_from_path"] = path
        transfer.check_planned(config, runs_dir)
    else:
        model.pop("init_from", None)
    return (task if task["name"] != "classification" else None), init_from, path


def _check_knobs(config: dict) -> None:
    """The seed, the trainer's and tracking's keys, the optimiser (prepare's knob checks)."""
    from ablate.data import FINGERPRINT_KEY
    from ablate.train import checks

    checks.check_seed(config.get("seed"))
    checks.check_keys("trainer", config["trainer"], TrainerConfig)
    checks.check_world(config)
    checks.check_keys("tracking", config["tracking"], TrackingConfig)
    checks.check_optim(config["optim"])
    if FINGERPRINT_KEY in (config.get("data") or {}):
        raise ConfigError(f"data.{FINGERPRINT_KEY}={config['data'][FINGERPRINT_KEY]!r} is not allowed; "
                          "ablate computes it from the data's files (allowed: leave it unset)")


def _check_data(config: dict, name: str, root, data_kwargs: dict, loader_kwargs: dict) -> None:
    """The loader's keys and augmentation, and a generated dataset's root (prepare's data checks)."""
    from ablate.data import DATASETS, check_loader
    from ablate.train import checks

    check_loader(name, loader_kwargs, data_kwargs)
    data_dir = (config.get("paths") or {}).get("data_dir")
    checks.check_generated_root(name, root, data_dir, DATASETS.get(name).generated)


def _data_fingerprint(name: str, root, data_kwargs: dict) -> Optional[str]:
    """The content fingerprint of a dataset read from files (None for generated data)."""
    from ablate.data import dataset_fingerprint

    try:
        return dataset_fingerprint(name, root=root, **data_kwargs)
    except (FileNotFoundError, ImportError, OSError) as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def run(cfg: DictConfig | RunPlan, *, on_epoch_end: Optional[Callable[[int, dict], None]] = None,
        study: Optional[str] = None) -> RunRecord:
    """Train one run unless its result already stands; return its record.

    ``study``: the Optuna study asking (its trials call with their sweep name). A run that study
    pruned stays pruned for it; for anyone else a pruned run is unfinished and resumes from its
    checkpoint (pruning is a verdict of a study, not of a config).
    """
    plan = cfg if isinstance(cfg, RunPlan) else prepare(cfg)
    if plan.trainer.devices > 1 or os.environ.get("ABLATE_DISTRIBUTED") == "1":  # several processes
        from ablate.train.distributed import run_parallel

        return run_parallel(plan, standing=_standing, execute=_execute, on_epoch_end=on_epoch_end, study=study)
    done = _standing(plan, study)
    if done is not None:
        return done
    with plan.files.lock():
        return _execute(plan, plan.store, on_epoch_end)


def _standing(plan: RunPlan, study: Optional[str]) -> Optional[RunRecord]:
    """The run's record if it stands (nothing to train), else None; ``force`` sets it aside."""
    existing = plan.store.get(plan.key)
    final = existing is not None and (existing.status in FINAL_STATUSES or (
        existing.status == "pruned" and study is not None and existing.sweep == study))
    if final and not plan.force:
        log.info("run %s already %s; nothing to do (force=true re-trains)", plan.key, existing.status)
        remove_stale_lock(plan.files.lock_path)  # a file left by a trainer killed after writing the record
        return existing
    if existing and plan.force:
        log.info("force: previous run kept at %s", plan.files.set_aside())
    return None


def _execute(plan: RunPlan, store: RunDirStore, on_epoch_end, parallel=None) -> dict:
    """Train ``plan`` and record it. ``parallel`` (``ablate.train.distributed.Parallel``): this
    process is one rank of a run of several; only rank 0 writes the run dir, W&B and the record."""
    import torch

    from ablate.data import load_dataset, make_loader
    from ablate.models import count_madds, count_params
    from ablate.train import tasks
    from ablate.models.complexity import measure_latency
    from ablate.track.wandb_mirror import WandbMirror
    from ablate.train.engine import fit, install_preemption_handlers

    files = plan.files if parallel is None else parallel.files(plan.files)
    main = parallel is None or parallel.is_main
    tracking = plan.tracking if main else dataclasses.replace(plan.tracking, mode="disabled")
    try:
        files.create(plan.config)
        handler = logging.FileHandler(files.log) if main else logging.NullHandler()
    except OSError as exc:  # a full or read-only disk: nothing can be recorded, say so in one line
        raise RunNotRecorded(exc.errno, f"run {plan.key} not started, its run dir cannot be written "
                                        f"({exc.strerror or exc})", str(files.dir)) from None
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    log.addHandler(handler)
    started = time.time()
    stop: Optional[OSError] = None
    record = RunRecord(plan.key, status="failed", seed=plan.seed, sweep=plan.sweep, config=plan.config,
                       started_at=_now(), git_commit=git_commit(), host=socket.gethostname(), torch=torch.__version__)
    run_dir = files.dir
    mirror = None
    try:
        torch.set_num_threads(run_threads(plan.trainer.threads))
        # What a run's numbers depend on besides its config (tables flag cells that mix them).
        record.update(threads=torch.get_num_threads(), device=str(plan.trainer.torch_device()), cpu=cpu_model(),
                      device_kind=device_kind(plan.trainer.torch_device()))
        install_preemption_handlers()
        if parallel is not None:
            record.update(world_size=parallel.world_size)
        # The data seed (data.seed) is fixed across run seeds: seeds vary init and order, not data.
        bundle = load_dataset(plan.data_name, root=plan.data_root, **plan.data_kwargs)
        torch.manual_seed(plan.seed)
        model = tasks.build_model(plan.model_name, plan.model_kwargs, plan.attention, plan.task,
                                  num_classes=bundle.num_classes, in_chans=bundle.in_chans)
        if plan.init_from is not None:  # the source's backbone, checked (ablate.train.transfer)
            from ablate.train import transfer

            ckpt = transfer.source_checkpoint(plan.init_from, plan.init_from_path, files.dir.parent)
            transfer.load_backbone(getattr(model, "backbone", None) or model.features, ckpt, plan.init_from)
            record.update(init_from=plan.init_from)
        task = None if plan.task is None else tasks.SegmentationTask(
            bundle.num_classes, plan.task["ignore_index"], plan.trainer.label_smoothing)
        size = bundle.image_size if isinstance(bundle.image_size, (tuple, list)) else (bundle.image_size, bundle.image_size)
        input_size = (1, bundle.in_chans, *size)
        record.update(params=count_params(model), madds=count_madds(model, input_size), input_size=list(input_size))
        if parallel is not None:  # BatchNorm over the global batch (trainer.sync_bn)
            model = parallel.convert(model)
        loader = {"augment": True, **plan.loader_kwargs, "seed": plan.seed, "mean": bundle.mean, "std": bundle.std,
                  "pin_memory": plan.trainer.torch_device().type == "cuda",
                  **({} if parallel is None else parallel.shard(plan.trainer.accumulate))}
        # A training batch is one optimiser step: trainer.accumulate micro-batches of data.batch_size.
        step = {"batch_size": loader["batch_size"] * plan.trainer.accumulate} if "batch_size" in loader else {}
        train_loader = make_loader(bundle.train, shuffle=True, **{**loader, **step})
        val_loader = make_loader(bundle.val, shuffle=False, **{**loader, "augment": False, "drop_last": False})
        start_epoch, history = _resume_point(files, plan.trainer)
        mirror = WandbMirror(tracking, run_dir=run_dir, run_key=plan.key, group=plan.sweep,
                             config=plan.config, tags=plan.tags, start_epoch=start_epoch, history=history,
                             replaced=_replaced_dirs(plan))
        record.update(wandb_dir=mirror.run_path, wandb_id=mirror.id)

        def epoch_end(epoch: int, row: dict) -> None:
            mirror.log(row, step=epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)

        make_optimizer = _optimizer_factory(plan.optim)
        result = fit(model, train_loader, val_loader, make_optimizer, plan.trainer, files=files,
                     seed=plan.seed, on_epoch_end=epoch_end, log=log.info if main else log.debug,
                     console="auto" if main else None, parallel=parallel, task=task)
        record.update(top1=result.top1, top5=result.top5, loss=result.loss, epochs=result.epochs,
                      resumed_from=result.resumed_from)
        if task is not None:
            last = result.history[-1]
            record.update(miou=last["val_miou"], pixel_acc=last["val_pixel_acc"],
                          iou=[last.get(f"val_iou_{i}") for i in range(bundle.num_classes)])
        record.update(latency_ms=None if not main else measure_latency(model, input_size, device=plan.trainer.torch_device(),
                                                 repeats=plan.trainer.latency_repeats,
                                                 warmup=min(3, plan.trainer.latency_repeats)),
                      status="completed")
    except Diverged as exc:
        record.update(status="diverged", message=str(exc))
    except Pruned as exc:
        record.update(status="pruned", message=str(exc))
    except Preempted as exc:
        record.update(status="preempted", message=str(exc))
    except KeyboardInterrupt:  # Ctrl-C: a stop like SIGTERM; the checkpoint stands, a relaunch resumes
        record.update(status="preempted", message="interrupted (Ctrl-C); a relaunch resumes from the last checkpoint")
        raise
    except OSError as exc:  # a full disk, a lost mount: the environment, one line, no traceback chain
        record.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        log.error("run %s failed: %s", plan.key, exc)
        if exc.errno in DISK_ERRNOS:
            stop = exc  # every later run would fail the same way: stop the sweep after recording
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, not a crashed sweep
        record.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        log.error("run %s failed:\n%s", plan.key, traceback.format_exc())
    finally:
        if record.status != "completed":
            _last_epoch(record, files.read_metrics())
        wall = time.time() - started
        # Compute spent: wall x processes (trainer.devices x nodes, one device each; 1 for a plain run).
        record.update(seconds=wall, device_seconds=wall * int(record.get("world_size") or 1), finished_at=_now())
        try:
            if main:  # one record per run: rank 0's
                store.put(record)
        except OSError as exc:  # the earlier record (if any) is untouched: the run reads as not done
            log.error("run %s: its record could not be written (%s); a relaunch trains it again", plan.key, exc)
            record.update(status="failed", message=f"record not written: {exc}")
        if mirror is not None:
            try:
                mirror.summary({k: record.get(k) for k in ("status", *METRICS)})
                mirror.finish(record.status)
            except Exception as exc:  # noqa: BLE001 - the mirror never decides a run's outcome
                log.warning("run %s: W&B mirror: %s", plan.key, exc)
        (log.info if main else log.debug)("run %s %s  top1=%s  (%.1fs)  %s", plan.key, record.status, record.top1, record.seconds, run_dir)
        log.removeHandler(handler)
        handler.close()
    if stop is not None:
        raise stop
    return record


def run_threads(threads: Optional[int]) -> int:
    """The torch CPU threads a run trains with: ``trainer.threads``, or when null the default of
    :func:`ablate.threads.default_threads` (a launcher's share, ``OMP_NUM_THREADS``, or the cores
    this process may use: affinity and cgroup quota), logged once per process with its source."""
    from ablate import threads as cpu

    if threads:
        return threads
    n, source = cpu.default_threads()
    if (n, source, cpu.OPENMP_WAIT) not in _THREADS_LOGGED:
        _THREADS_LOGGED.add((n, source, cpu.OPENMP_WAIT))
        why = {"cores": "the cores this process may use"}.get(source, source)
        wait = {"passive": "idle threads sleep (OMP_WAIT_POLICY=PASSIVE)",
                "user": "OpenMP wait policy as set in the environment",
                "late": "idle threads spin: torch was imported before ablate (import ablate first, "
                        "or set OMP_WAIT_POLICY=PASSIVE)"}[cpu.OPENMP_WAIT]
        log.info("trainer.threads=null: %d torch thread%s (%s); %s", n, "" if n == 1 else "s", why, wait)
    return n


_THREADS_LOGGED: set = set()  # (threads, source, wait policy) already logged


# A disk that is full, over quota or read-only fails every run after this one too.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class RunNotRecorded(OSError):
    """A run whose run dir cannot be written (full or read-only disk): it did not start."""


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform`` elsewhere): numerics can differ by CPU."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_kind(device) -> str:
    """The model of a run's device: the GPU's name, or ``CPU <model>``."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model()}"


def _replaced_dirs(plan: RunPlan) -> list[Path]:
    """The run key's earlier run dirs that ``force=true`` set aside (their W&B ids are taken)."""
    from ablate.track.store._rundir import REPLACED

    return sorted((plan.run_dir.parent / REPLACED).glob(f"{plan.key}-*"))


def _resume_point(files: RunFiles, trainer: TrainerConfig) -> tuple[int, list]:
    """``(first epoch fit will train, rows of the epochs before it)``: what ``fit`` resumes from,
    read before it starts (the W&B mirror opens its run for that epoch). The checkpoint is
    memory-mapped: only its epoch and history are read. One ``fit`` cannot load (damaged) it sets
    aside and starts over: epoch 0 here too."""
    if not trainer.checkpoint or not files.checkpoint.exists():
        return 0, []
    import torch

    try:
        state = torch.load(files.checkpoint, map_location="cpu", weights_only=True, mmap=True)
        return int(state["epoch"]) + 1, [dict(r) for r in state["history"]]
    except Exception:  # noqa: BLE001 - whatever fit's load refuses, it starts over from epoch 0
        return 0, []


def _last_epoch(record: RunRecord, rows: list[dict]) -> None:
    """A run that stopped early still reports its last evaluated epoch (marked by status)."""
    if rows:
        last = rows[-1]
        record.update(top1=last.get("val_top1"), top5=last.get("val_top5"), loss=last.get("val_loss"), epochs=len(rows))
        if "val_miou" in last:
            record.update(miou=last["val_miou"], pixel_acc=last.get("val_pixel_acc"))


def _optimizer_factory(optim: dict) -> Callable:
    """``optim`` group -> ``make_optimizer(params)`` via Hydra's instantiate (third-party object)."""
    from hydra.utils import instantiate

    from ablate.train.checks import check_optim

    check_optim(optim)  # a RunPlan built without prepare() still names only a torch optimiser
    return instantiate(optim)


@lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    """The project's HEAD commit (``+dirty`` when the tree has changes), or None outside git."""
    from ablate.config import project_root

    try:
        root = project_root()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
