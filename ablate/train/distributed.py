"""One run as several processes: torch DistributedDataParallel, one process per device.

``trainer.devices=N`` (and ``launcher.nodes=M`` under SLURM) trains one run as ``N x M``
processes (ranks). ``data.batch_size`` stays the global batch: every rank draws the global
``(seed, epoch)`` order and augmentation and takes its share of each batch (the loader's
``rank``/``world_size``), DDP averages the gradients, and with ``trainer.sync_bn`` (default)
BatchNorm normalises over the global batch, so a step is the 1-process step up to float
rounding. The run key does not depend on N (``ablate.track.runkey``).

Who starts the ranks:

- here (``ablate train``, the local and parallel launchers): :func:`run_parallel` re-executes
  the run under ``torch.distributed.run`` (torchrun, ``--standalone``) and waits for it;
- under SLURM: submitit starts one task per rank and :func:`export_slurm_env` turns the job's
  environment (``submitit.JobEnvironment``: ``SLURM_PROCID`` ...) into torch's.

Either way each rank calls :func:`run_parallel`, which finds itself in a world
(``ABLATE_DISTRIBUTED=1`` and torch's ``RANK``/``WORLD_SIZE``). Rank 0 alone decides whether the
run stands, holds the run lock, writes the run dir (config, metrics, checkpoint, log), W&B and
``result.json``; the other ranks train and write nothing. The checkpoint holds the plain
model's state (no ``module.`` prefix), read by rank 0 and broadcast, so it resumes on any N.

The loop (``ablate.train.engine.fit``) takes a :class:`Parallel` and asks it at a few points:
wrap the model (DDP), the step loss (a short share weighs by its size), the step losses' check
(summed over ranks: the 1-process ``train_loss``, NaN seen by every rank at once), evaluation's
sums (each rank evaluates its share of the validation set), the stop vote (a signal to any rank
stops all of them at the same step) and the epoch callback (rank 0's outcome, e.g. Optuna's
pruning, broadcast). NCCL carries the gradients on CUDA, gloo on CPU; the small control
messages (votes, objects) always go through gloo.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ablate.errors import ConfigError
from ablate.track.lock import RunLocked, lock_holder_alive
from ablate.track.record import RunRecord
from ablate.train.engine import Pruned, StepLosses, request_stop, stop_requested

log = logging.getLogger("ablate")
RunPlan = Any  # ablate.train.run.RunPlan (not imported: ablate.train.run imports this module)

ENV_FLAG = "ABLATE_DISTRIBUTED"  # set for the ranks ablate starts (torchrun here, SLURM tasks)
LOCKED_EXIT = 75                 # a rank 0 that found the run locked (EX_TEMPFAIL)


# --- where this process stands ---------------------------------------------------------------
def world_env() -> Optional[tuple[int, int, int]]:
    """``(rank, world_size, local_rank)`` when this process is a rank ablate started, else None."""
    if os.environ.get(ENV_FLAG) != "1" or "RANK" not in os.environ:
        return None
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def in_world() -> bool:
    return world_env() is not None


# --- BatchNorm over the global batch on CPU ------------------------------------------------
class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of each rank's input is the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:  # noqa: ANN001
        ctx.group = group
        y = x.clone()
        dist.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001
        grad = grad.clone(memory_format=torch.contiguous_format)  # autograd may hand in a strided view
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.SyncBatchNorm`` for CPU tensors (torch's runs on accelerators only): in training,
    mean and variance over the samples of every rank (each rank's count, mean and squared
    deviations combined exactly, Chan's formula, in one all-reduce that autograd
    differentiates), running statistics updated as BatchNorm does for the whole batch; in
    evaluation, plain BatchNorm. Same parameters and buffers as the BatchNorm it replaces."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        self._check_input_dim(x)
        world, rank = dist.get_world_size(), dist.get_rank()
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        n = x.numel() // c if c else 0
        if n:
            var, mean = torch.var_mean(x, dim=dims, correction=0)
        else:
            var = mean = x.new_zeros(c) + x.sum() * 0  # keeps the graph: an empty share adds nothing
        local = torch.stack([torch.full_like(mean, float(n)), mean, var * n])
        pack = torch.cat([x.new_zeros(rank, 3, c), local[None], x.new_zeros(world - rank - 1, 3, c)])
        pack = _AllReduceSum.apply(pack, dist.group.WORLD)
        counts, means, m2s = pack[:, 0, :1], pack[:, 1], pack[:, 2]
        total = counts.sum()
        gmean = (counts * means).sum(0) / total
        gvar = (m2s.sum(0) + (counts * (means - gmean) ** 2).sum(0)) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = gvar * (total / (total - 1).clamp(min=1))
                self.running_mean.mul_(1 - momentum).add_(gmean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach() * momentum)
        shape = (1, c, *([1] * (x.dim() - 2)))
        y = (x - gmean.view(shape)) * torch.rsqrt(gvar + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every BatchNorm replaced (parameters and buffers shared, names kept)."""
        out = module
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, cls.convert(child))
        return out


# --- the ranks' side of the loop -----------------------------------------------------------
class Parallel:
    """This process's place in a multi-process run and the hooks ``fit`` calls (module doc)."""

    def __init__(self, rank: int, world_size: int, local_rank: int, *, seed: int, sync_bn: bool,
                 device: torch.device, control=None) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.seed, self.sync_bn, self.device = seed, sync_bn, device
        self.control = control  # the gloo group of votes and objects (None: the default group)
        self._vote: Optional[tuple[torch.Tensor, Any]] = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, micro_batches: int = 1) -> dict:
        """The loader arguments of this rank's share (``micro_batches``: gradient accumulation's K)."""
        return {"rank": self.rank, "world_size": self.world_size, "micro_batches": micro_batches}

    @classmethod
    def start(cls, plan: RunPlan) -> "Parallel":
        """Join the process group of the world this process is a rank of (torch's env://)."""
        rank, world, local = world_env() or (0, 1, 0)
        device = plan.trainer.torch_device()
        if device.type == "cuda":
            # Each rank its own GPU; a rank that sees a single GPU (SLURM's binding) uses it.
            torch.cuda.set_device(local % torch.cuda.device_count())
            device = torch.device("cuda", torch.cuda.current_device())
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend, rank=rank, world_size=world)
        control = dist.new_group(backend="gloo") if backend != "gloo" else None
        return cls(rank, world, local, seed=plan.seed, sync_bn=plan.trainer.sync_bn, device=device, control=control)

    def close(self) -> None:
        """Settle the last stop vote and leave the process group (quietly when a peer is gone)."""
        with contextlib.suppress(Exception):
            if self._vote is not None:
                self._vote[1].wait()
        self._vote = None
        with contextlib.suppress(Exception):
            if dist.is_initialized():
                dist.destroy_process_group()

    # objects and votes ----------------------------------------------------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def stop_requested(self) -> bool:
        """Has a signal reached any rank? Every rank calls this at every step boundary: it sends
        this rank's flag (an asynchronous all-reduce, in the background of the step) and answers
        with the vote of the previous call, so all ranks stop at the same step, one step after
        the signal, without waiting for a message in the step's path."""
        answer = False
        if self._vote is not None:
            flag, work = self._vote
            work.wait()
            answer = bool(flag.item())
        flag = torch.tensor([1 if stop_requested() else 0], dtype=torch.int32)
        self._vote = (flag, dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.control, async_op=True))
        return answer

    # the model ----------------------------------------------------------------------
    def convert(self, model: nn.Module) -> nn.Module:
        """BatchNorm over the global batch (``sync_bn``): torch's SyncBatchNorm on an
        accelerator, :class:`CpuSyncBatchNorm` on CPU; parameter and buffer names unchanged."""
        if not self.sync_bn:
            return model
        if self.device.type == "cpu":
            return CpuSyncBatchNorm.convert(model)
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model the steps run through: DDP over the plain ``model`` (which ``fit`` keeps,
        so checkpoints have no ``module.`` prefix). Without ``sync_bn`` BatchNorm statistics are
        per rank and rank 0's running statistics are broadcast before each forward."""
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        # A 1x1 conv's channels_last weight and its gradient differ in the strides of size-1
        # dims only: the same memory order, nothing to fix.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=not self.sync_bn)

    def start_epoch(self, epoch: int) -> None:
        """Random draws inside the model (dropout) come from a stream of ``(seed, epoch, rank)``:
        ranks draw independently, and a run resumed at an epoch draws what the unbroken one did."""
        state = np.random.SeedSequence([self.seed, epoch, self.rank, 0xDD9]).generate_state(2, np.uint32)
        torch.manual_seed((int(state[0]) << 31) ^ int(state[1]))

    # the numbers ----------------------------------------------------------------------
    def weigh(self, criterion: nn.Module, loader) -> nn.Module:
        """The step loss of this rank's share (see :class:`_ShareWeighted`)."""
        return _ShareWeighted(criterion, loader, self.world_size)

    def step_losses(self, epoch: int) -> StepLosses:
        return _RankStepLosses(epoch, self)

    def reduce(self, values: list[float]) -> list[float]:
        """Sums over ranks (evaluation's loss sum, hits and count; float64 on the CPU)."""
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self.control)
        return t.tolist()

    def epoch_end(self, callback: Optional[Callable[[int, dict], None]]) -> Optional[Callable[[int, dict], None]]:
        """The epoch callback as rank 0 runs it (W&B, Optuna's pruner), its outcome on every rank:
        a ``Pruned`` (or any failure) of rank 0 ends every rank the same way."""

        def call(epoch: int, row: dict) -> None:
            outcome = None
            if self.is_main and callback is not None:
                try:
                    callback(epoch, row)
                except Pruned as exc:
                    outcome = ("pruned", str(exc))
                except Exception as exc:  # noqa: BLE001 - handed to every rank, raised on rank 0 as is
                    outcome = ("error", f"{type(exc).__name__}: {exc}")
                    error = exc
            outcome = self.broadcast(outcome)
            if outcome is None:
                return
            if outcome[0] == "pruned":
                raise Pruned(outcome[1])
            if self.is_main:
                raise error
            raise RuntimeError(f"rank 0's epoch callback failed: {outcome[1]}")

        return call

    def files(self, files):
        return RankFiles(files, self)


class _ShareWeighted(nn.Module):
    """``criterion`` on this rank's share of a batch, times ``n_rank x world / n_global`` (1 when
    the batch splits evenly; the loader says both sizes): DDP's mean of the ranks' gradients is
    then the gradient of the global batch's mean loss, as in one process. An empty share
    contributes zero (and keeps every parameter in the graph)."""

    def __init__(self, criterion: nn.Module, loader, world_size: int) -> None:
        super().__init__()
        self.criterion, self.loader, self.world_size = criterion, loader, world_size

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.numel() == 0:
            return logits.sum() * 0.0
        loss = self.criterion(logits, y)
        share, total = self.loader.share_size, self.loader.global_size
        return loss if share * self.world_size == total else loss * (share * self.world_size / total)


class _RankStepLosses(StepLosses):
    """The step losses of every rank together: at each check the ranks' (weighted) losses are
    summed step by step (one all-reduce), so each step's value is the global batch's mean loss
    and ``train_loss`` is the 1-process one; a NaN on any rank is seen by all."""

    def __init__(self, epoch: int, parallel: Parallel) -> None:
        super().__init__(epoch)
        self._parallel = parallel

    def _read(self) -> tuple[list[float], list[int]]:
        losses = torch.stack(self._losses).to(torch.float64)
        sizes = torch.tensor(self._sizes, dtype=torch.float64, device=losses.device)
        both = torch.stack([losses, sizes])
        dist.all_reduce(both)
        values, sizes = both.tolist()
        return [v / self._parallel.world_size for v in values], [int(s) for s in sizes]


class RankFiles:
    """A run dir as one rank sees it: rank 0 reads and writes the run's ``RunFiles``; the
    checkpoint it reads is broadcast; other ranks write nothing (every other attribute is the
    run's own)."""

    def __init__(self, files, parallel: Parallel) -> None:
        self._files, self._parallel = files, parallel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._files, name)

    def load_checkpoint(self, map_location: Any = "cpu") -> Optional[dict]:
        # Loaded on the CPU: the model and the optimiser copy their state to their device.
        state = self._files.load_checkpoint(map_location="cpu") if self._parallel.is_main else None
        return self._parallel.broadcast(state)

    def _main(name: str):  # noqa: N805 - builds the write methods below
        def write(self, *args: Any, **kwargs: Any) -> None:
            if self._parallel.is_main:
                getattr(self._files, name)(*args, **kwargs)

        write.__name__ = name
        return write

    create = _main("create")
    save_checkpoint = _main("save_checkpoint")
    append_metrics = _main("append_metrics")
    rewrite_metrics = _main("rewrite_metrics")
    del _main


# --- one run, every rank -----------------------------------------------------------------
def run_parallel(plan: RunPlan, *, standing: Callable, execute: Callable, on_epoch_end=None,
                 study: Optional[str] = None) -> Optional[RunRecord]:
    """Train ``plan`` as ``trainer.devices`` processes; the record on rank 0 (and in the
    launching process), None on the other ranks.

    ``standing(plan, study)``: the run's record if it stands, else None (``force`` sets the old
    run aside); ``execute(plan, store, on_epoch_end, parallel=...)``: train and record
    (``ablate.train.run``'s). Not in a world yet: check whether the run stands, then start the
    ranks with torchrun and return what rank 0 recorded. In a world: rank 0 decides and locks,
    every rank trains.
    """
    _standing, _execute = standing, execute
    if not in_world():
        if on_epoch_end is not None:
            raise ConfigError(f"trainer.devices={plan.trainer.devices} with an epoch callback (an Optuna "
                              "trial); allowed: trainer.devices=1 for study trials")
        done = _standing(plan, study)
        if done is not None:
            return done
        return launch_local(replace(plan, force=False))  # an old run was set aside: train afresh
    par = Parallel.start(plan)
    try:
        done = par.broadcast(_standing(plan, study) if par.is_main else None)
        if done is not None:
            return done if par.is_main else None
        with contextlib.ExitStack() as stack:
            locked = None
            if par.is_main:
                try:
                    stack.enter_context(plan.files.lock())
                except RunLocked as exc:
                    locked = str(exc)
            locked = par.broadcast(locked)
            if locked is not None:
                if par.is_main:
                    raise RunLocked(locked)
                return None
            record = _execute(plan, plan.store, on_epoch_end, parallel=par)
            return record if par.is_main else None
    finally:
        par.close()


def launch_local(plan: RunPlan) -> RunRecord:
    """Run ``plan`` as ``trainer.devices`` ranks on this machine under torchrun and wait.

    The ranks share this process's CPU threads when ``trainer.threads`` is null. SIGTERM and
    SIGUSR1 to this process reach the ranks (as SIGTERM: a clean stop at the next step), and
    ask the launcher to start no further run. If rank 0 ended without recording (killed), a
    ``failed`` record says so, and a relaunch resumes from the last checkpoint.
    """
    from ablate.threads import THREADS_ENV, default_threads

    n = plan.trainer.devices
    threads = plan.trainer.threads or max(1, default_threads()[0] // n)
    env = {**os.environ, ENV_FLAG: "1", "OMP_NUM_THREADS": str(threads)}
    if plan.trainer.threads is None:
        env[THREADS_ENV] = str(threads)
    store = plan.store
    before = store.get(plan.key)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ablate-ranks-") as tmp:
        path = Path(tmp) / "plan.pkl"
        path.write_bytes(pickle.dumps(plan))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
               "-m", "ablate.train.rank", str(path)]
        log.info("run %s: %d processes (torchrun)", plan.key, n)
        code, interrupted = _wait(subprocess.Popen(cmd, env=env))
    record = store.get(plan.key)
    if code == LOCKED_EXIT and record == before:
        raise RunLocked(f"run {plan.key} is being trained by another process")
    if record is None or record == before:
        record = _unrecorded(plan, code, started)
    if interrupted:
        raise KeyboardInterrupt
    return record


def _wait(proc: subprocess.Popen) -> tuple[int, bool]:
    """Wait for torchrun, passing SIGTERM/SIGUSR1 on as SIGTERM; Ctrl-C waits for the ranks'
    clean stop (they get the terminal's SIGINT themselves). -> (exit code, interrupted)."""
    def forward(*_: Any) -> None:
        request_stop()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    signals = [s for s in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None]
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in signals} if main else {}
    interrupted = False
    try:
        while True:
            try:
                return proc.wait(), interrupted
            except KeyboardInterrupt:
                interrupted = True
                forward()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _unrecorded(plan: RunPlan, code: int, started: float) -> RunRecord:
    """The record of a run whose rank 0 ended without one (killed): ``failed``, with the last
    epoch it evaluated; written unless another process holds the run by now."""
    from datetime import datetime, timezone

    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = RunRecord(plan.key, status="failed", seed=plan.seed, sweep=plan.sweep, config=plan.config,
                       message=f"the {plan.trainer.devices} processes ended ({how}) before rank 0 recorded the run; "
                               "a relaunch resumes from the last checkpoint", finished_at=now)
    files = plan.files
    rows = files.read_metrics() if files.metrics.exists() else []
    if rows:  # the last evaluated epoch, as a stopped run reports it
        last = rows[-1]
        record.update(top1=last.get("val_top1"), top5=last.get("val_top5"), loss=last.get("val_loss"), epochs=len(rows))
    record.update(seconds=time.time() - started, world_size=plan.trainer.devices)
    if not lock_holder_alive(files.lock_path):
        try:
            plan.store.put(record)
        except OSError as exc:
            log.error("run %s: its record could not be written (%s)", plan.key, exc)
    log.error("run %s failed: %s", plan.key, record.message)
    return record


# --- SLURM -------------------------------------------------------------------------------
def export_slurm_env() -> Optional[int]:
    """In a SLURM job of several tasks (submitit): export torch's rendezvous variables
    (``MASTER_ADDR`` = the job's first node, ``MASTER_PORT`` from the job id, ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``) from submitit's ``JobEnvironment``, mark this process a
    rank, and return the world size (None in a job of one task: nothing to do)."""
    import submitit

    job = submitit.JobEnvironment()
    if job.num_tasks <= 1:
        return None
    # CUDA_VISIBLE_DEVICES is left as SLURM set it: Parallel.start picks the local rank's GPU.
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    os.environ[ENV_FLAG] = "1"
    return job.num_tasks
