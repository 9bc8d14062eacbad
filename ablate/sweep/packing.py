"""GPU packing: run K small runs per GPU, one worker process per (GPU, slot).

A CIFAR-size MobileNetV2 leaves most of a GPU idle, so ``launcher.runs_per_gpu=K`` starts K
workers per visible GPU, each pinned to its GPU through ``CUDA_VISIBLE_DEVICES`` (set before the
worker touches CUDA). When ``launcher.mem_per_run_gb`` is given, a K whose runs would not fit a
GPU's free memory is refused before anything starts. On a machine without GPUs the same
scheduler runs K processes on CPU, splitting the cores between them; that is what CI tests.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Iterator, Optional

from ablate.errors import ConfigError
from ablate.sweep.environment import setup_worker
from ablate.threads import THREADS_ENV, usable_cores

log = logging.getLogger("ablate")


def visible_gpus() -> list[str]:
    """Physical ids of the GPUs this process may use (honours an existing CUDA_VISIBLE_DEVICES)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [s.strip() for s in env.split(",") if s.strip() and s.strip() != "-1"]
    else:
        ids = [str(i) for i in range(_device_count())]
    return ids


def _device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install means: no GPU to pack onto
        return 0


def free_memory_gb(ids: list[str]) -> dict[str, float]:
    """Free memory per GPU id, from nvidia-smi (no CUDA context in this process), else torch."""
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            free = {}
            for line in out.stdout.strip().splitlines():
                idx, uuid, mib = (s.strip() for s in line.split(","))
                free[idx] = free[uuid] = float(mib) / 1024
            return {i: free[i] for i in ids if i in free}
    import torch

    # Without nvidia-smi: torch sees the visible devices as 0..n-1 in CUDA_VISIBLE_DEVICES order.
    return {gid: torch.cuda.mem_get_info(n)[0] / 2**30 for n, gid in enumerate(ids)}


def device_slots(runs_per_gpu: Optional[int], mem_per_run_gb: Optional[float] = None,
                 gpus: Optional[list] = None) -> list[Optional[str]]:
    """The CUDA_VISIBLE_DEVICES value of each worker (None = CPU), or [] when not packing."""
    if runs_per_gpu is None:
        return []
    if not isinstance(runs_per_gpu, int) or runs_per_gpu < 1:
        raise ConfigError(f"launcher.runs_per_gpu={runs_per_gpu!r}; allowed: null or an integer >= 1")
    ids = [str(g) for g in gpus] if gpus else visible_gpus()
    if not ids:
        log.info("packing: no GPU visible; %d worker processes on CPU", runs_per_gpu)
        return [None] * runs_per_gpu
    if mem_per_run_gb:
        free = free_memory_gb(ids)
        for gid in ids:
            have = free.get(gid)
            if have is not None and runs_per_gpu * mem_per_run_gb > have:
                fits = int(have // mem_per_run_gb)
                raise ConfigError(
                    f"launcher.runs_per_gpu={runs_per_gpu} x mem_per_run_gb={mem_per_run_gb} does not fit GPU {gid} "
                    f"({have:.1f} GB free); allowed: runs_per_gpu <= {fits}")
    log.info("packing: %d runs on each of GPUs %s", runs_per_gpu, ",".join(ids))
    # Round-robin order: with fewer runs than slots, the first workers land on different GPUs.
    return [gid for _ in range(runs_per_gpu) for gid in ids]


def _init_worker(slots, threads: int, log_level: int) -> None:
    """Pool initializer: claim one slot for the life of this worker, before any CUDA use."""
    # Spawned interpreters start without the parent's logging set-up: progress lines would vanish.
    setup_worker({}, log_level)
    slot = slots.get()
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot
    # This worker's share of the cores: what a run with trainer.threads=null trains with.
    os.environ[THREADS_ENV] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_pool(fn: Callable[[Any], Any], items: Iterable[Any], slots: list[Optional[str]]) -> Iterator[tuple[Any, Any]]:
    """Run ``fn(item)`` in ``len(slots)`` spawned workers; yields ``(item, result)`` as they finish."""
    items = list(items)
    n = max(1, min(len(slots), len(items)))
    # The cores this process may use (affinity, cgroup quota), not the machine's: a job given
    # 4 of 64 cores splits 4.
    threads = max(1, usable_cores() // n)
    # Not silent: a run without trainer.threads gets this share of the cores, and its numbers
    # can depend on it (result.json records the threads each run used; tables flag a mix).
    log.info("%d worker processes; runs that do not set trainer.threads use %d torch thread%s each",
             n, threads, "" if threads == 1 else "s")
    ctx = get_context("spawn")  # fresh interpreters: no inherited torch thread pools or CUDA state
    queue = ctx.Queue()
    for s in slots:
        queue.put(s)
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads, log.getEffectiveLevel())) as pool:
        futures = {pool.submit(fn, it): it for it in items}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
