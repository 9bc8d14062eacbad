"""What a sweep's runs still cost: ``ablate sweep NAME --dry-run`` prints it under the plan.

Each run not final yet is estimated one of two ways, and the line says which:

* ``from N finished run(s) of its cell``: the median wall time (``seconds`` of ``result.json``)
  of the cell's finished runs (completed or diverged; other seeds of the same grid cell, found in
  this plan and in the sweep's manifest). Runs made under the same launcher take about as long.
* ``from MAdds``: MAdds of one image x images x epochs over a throughput in MAdds/s measured
  here: a few timed forward+backward steps of the run's model at its batch shape for the
  training images, forward passes for the validation images, on the run's device with the
  threads it will train with (a run of P processes: each at its share of the batch, P at once). The measurement is cached under the command cache (``ablate.cache``, kind
  ``throughput``), keyed by the model config, batch shape, precision, device and threads, so a
  repeated dry-run does not measure again. It leaves out the run's fixed costs (start-up, data
  loading, the latency measurement), so for tiny runs it is low.

A run's device-seconds are its wall time x its processes (``trainer.devices`` x
``launcher.nodes``); the wall time of the whole sweep spreads the runs over the launcher's
parallelism (``launcher.workers``; K x GPUs when packing; SLURM's ``array_parallelism``),
longest first. This module imports torch only when some run has no finished run of its cell.
"""
from __future__ import annotations

import heapq
import math
import statistics
from dataclasses import dataclass
from typing import Optional

from ablate.sweep.progress import format_duration
from ablate.track.record import FINAL_STATUSES

SEED_PREFIXES = ("seed=", "sweep=")


def cell_of(overrides: list[str]) -> str:
    """A run's grid cell: its overrides without the seed (and the sweep name)."""
    return " ".join(o for o in overrides if not o.startswith(SEED_PREFIXES))


@dataclass
class RunCost:
    """One run's estimate: wall seconds, processes, and how it was estimated."""

    key: str
    seconds: float
    processes: int
    source: str          # "finished" | "madds"

    @property
    def device_seconds(self) -> float:
        return self.seconds * self.processes


def parallelism(launcher) -> int:
    """How many runs the launcher runs at once."""
    cfg = launcher.cfg
    workers = int(getattr(cfg, "workers", 1) or 1)
    if launcher.name == "local":
        return 1
    if launcher.name == "slurm":
        per_task = 1
        if getattr(cfg, "runs_per_gpu", None):
            per_task = cfg.runs_per_gpu * max(1, int(getattr(cfg, "gpus_per_node", 0) or 0))
        return max(1, int(cfg.array_parallelism) * per_task)
    if getattr(cfg, "runs_per_gpu", None) and hasattr(cfg, "slots"):
        return max(1, len(cfg.slots(workers)))
    return max(1, workers)


def processes(config: dict) -> int:
    """Processes (one device each) one run takes: trainer.devices x the launcher's nodes."""
    devices = int((config.get("trainer") or {}).get("devices", 1) or 1)
    nodes = int((config.get("launcher") or {}).get("nodes", 1) or 1)
    return devices * nodes


def finished_seconds(runs, manifest=None) -> dict[str, list[float]]:
    """Cell -> wall seconds of its finished runs (final status and a recorded duration), from the
    planned runs and the sweep manifest's runs (earlier launches, other seeds)."""
    seen, out = set(), {}
    entries = [(r.key, r.overrides, r.store) for r in runs]
    if manifest is not None and runs:
        store = runs[0].store
        entries += [(e["run_key"], e.get("overrides") or [], store) for e in manifest.runs]
    for key, overrides, store in entries:
        if key in seen:
            continue
        seen.add(key)
        rec = store.get(key)
        if rec is None or rec.status not in FINAL_STATUSES or not rec.seconds or not math.isfinite(rec.seconds):
            continue
        out.setdefault(cell_of(overrides), []).append(float(rec.seconds))
    return out


def estimate(todo, runs, manifest=None) -> list[RunCost]:
    """A ``RunCost`` for each run of ``todo`` (``PlannedRun``s not final yet)."""
    done = finished_seconds(runs, manifest)
    out = []
    for r in todo:
        past = done.get(cell_of(r.overrides))
        if past:
            out.append(RunCost(r.key, statistics.median(past), processes(r.config), "finished"))
        else:
            out.append(RunCost(r.key, madds_seconds(r), processes(r.config), "madds"))
    return out


def wall_seconds(costs: list[RunCost], parallel: int) -> float:
    """The sweep's wall time: runs longest first, each on the slot that frees first."""
    slots = [0.0] * max(1, min(parallel, len(costs)))
    for c in sorted(costs, key=lambda c: -c.seconds):
        heapq.heapreplace(slots, slots[0] + c.seconds)
    return max(slots) if costs else 0.0


def summary(todo, runs, launcher, manifest=None) -> str:
    """The dry-run's cost lines: device-hours still to spend, wall time with the launcher's
    parallelism, and how the runs were estimated."""
    if not todo:
        return "compute left: none (every run is final)"
    costs = estimate(todo, runs, manifest)
    par = parallelism(launcher)
    hours = sum(c.device_seconds for c in costs) / 3600
    wall = wall_seconds(costs, par)
    by = {"finished": sum(c.source == "finished" for c in costs), "madds": sum(c.source == "madds" for c in costs)}
    how = []
    if by["finished"]:
        how.append(f"{by['finished']} from finished runs of their cell (median wall time)")
    if by["madds"]:
        how.append(f"{by['madds']} from MAdds x images x epochs at a throughput measured here")
    return (f"compute left: {len(todo)} run{'s' if len(todo) != 1 else ''}, {hours:.3g} device-hours; "
            f"wall {format_duration(wall)} on launcher {launcher.name} ({par} at once)\n"
            f"  estimated: {'; '.join(how)}")


# --- the MAdds path -------------------------------------------------------------------------
def _data_shape(plan) -> dict:
    """Training/validation images and image shape of a run's data (cached by the data config)."""
    from ablate import cache

    slot = cache.digest("datashape", plan.data_name, plan.data_root, plan.data_kwargs)
    hit = cache.read("datashape", slot)
    if hit is not None:
        return hit
    from ablate.data import load_dataset

    b = load_dataset(plan.data_name, root=plan.data_root, **plan.data_kwargs)
    size = b.image_size if isinstance(b.image_size, (tuple, list)) else (b.image_size, b.image_size)
    entry = {"n_train": len(b.train), "n_val": len(b.val), "in_chans": b.in_chans, "size": list(size),
             "num_classes": b.num_classes}
    cache.write("datashape", slot, entry)
    return entry


def _threads(plan) -> int:
    from ablate.train.run import run_threads

    return run_threads(plan.trainer.threads)


def madds_seconds(run) -> float:
    """Wall seconds of ``run`` from its MAdds, its images and epochs, and a measured throughput."""
    plan = run.plan
    shape = _data_shape(plan)
    procs = processes(run.config)
    batch = max(1, int(plan.loader_kwargs.get("batch_size", 64)) // procs)  # one process's micro-batch
    thr = throughput(plan, shape, batch)
    epochs = plan.trainer.epochs
    return epochs * (shape["n_train"] * thr["madds"] / thr["train_madds_s"]
                     + shape["n_val"] * thr["madds"] / thr["eval_madds_s"]) / procs


def throughput(plan, shape: dict, batch: int) -> dict:
    """``{"madds": MAdds of one image, "train_madds_s", "eval_madds_s"}``: forward+backward
    (training) and forward (evaluation) throughput in MAdds/s of the run's model at
    ``(batch, C, H, W)`` on its device, cached by model config, shape, precision, device, threads."""
    from ablate import cache

    device = str(plan.trainer.torch_device())
    threads = _threads(plan) if device == "cpu" else None
    image = {k: shape[k] for k in ("in_chans", "size", "num_classes")}  # not the image counts
    key = [plan.model_name, plan.model_kwargs, plan.attention, image, batch, plan.trainer.precision,
           plan.trainer.channels_last, device, threads, cache.code_digest("models")]
    slot = cache.digest("throughput", key)
    hit = cache.read("throughput", slot)
    if hit is not None:
        return hit
    entry = _measure(plan, shape, batch, device, threads)
    cache.write("throughput", slot, entry)
    return entry


def _measure(plan, shape: dict, batch: int, device: str, threads: Optional[int], budget_s: float = 1.0) -> dict:
    import time

    import torch

    from ablate.models import count_madds, create_model

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        dev = torch.device(device)
        model = create_model(plan.model_name, num_classes=shape["num_classes"], in_chans=shape["in_chans"],
                             attention=plan.attention, **plan.model_kwargs)
        madds = count_madds(model, (1, shape["in_chans"], *shape["size"]))
        model = model.to(dev)
        fmt = torch.channels_last if plan.trainer.channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        x = torch.randn(batch, shape["in_chans"], *shape["size"], device=dev).to(memory_format=fmt)
        y = torch.randint(0, shape["num_classes"], (batch,), device=dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.trainer.precision)

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        def train_step():
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def eval_step():
            with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                model(x)

        def timed(step, mode: bool) -> float:
            model.train(mode)
            step()
            step()  # warm-up
            sync()
            n, start = 0, time.perf_counter()
            while n < 3 or (time.perf_counter() - start < budget_s / 2 and n < 50):
                step()
                n += 1
            sync()
            return (time.perf_counter() - start) / n

        train_s, eval_s = timed(train_step, True), timed(eval_step, False)
    finally:
        torch.set_num_threads(before)
    return {"madds": madds, "train_madds_s": madds * batch / train_s, "eval_madds_s": madds * batch / eval_s,
            "batch": batch, "device": device, "threads": threads}
