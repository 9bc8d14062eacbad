"""The training loop: plain arguments in, metrics out; no config objects below this line.

``fit`` trains with SGD-style optimisers under a per-step warm-up + cosine schedule, evaluates
every epoch, appends ``metrics.jsonl`` and writes an atomic ``checkpoint.pt`` through the
results store's run-dir handle (``RunFiles``) and resumes from it,
so a run killed at any point continues to the same final metrics as an unbroken one (the data
order depends only on (seed, epoch); the torch RNG state travels in the checkpoint).
"""
from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ablate.errors import ConfigError
from ablate.track.store import RunFiles
from ablate.train.progress import StepBar, bar_console

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
# trainer.precision: fp32; bf16 autocast; fp16 autocast with a gradient scaler (GradScaler),
# which skips a step whose gradients are not finite (CPU and CUDA, torch >= 2.3).
PRECISIONS = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fp16: this many steps skipped in a row (non-finite gradients at every scale the scaler tried,
# halving it each time) is a divergence, not a scale still being found.
MAX_SKIPPED_STEPS = 64
# Steps between host reads of the training loss: the losses stay on the device in between
# (on CUDA a read waits for the GPU), then one read checks them all for NaN/inf and refreshes
# the progress bar's running loss. The epoch's end is always a check too.
LOG_EVERY = 50


class Diverged(RuntimeError):
    """The loss became NaN or infinite: the run ends with status ``diverged``."""


class Pruned(RuntimeError):
    """An epoch callback (Optuna's pruner) stopped the run: status ``pruned``."""


class Preempted(RuntimeError):
    """SIGTERM/SIGUSR1 arrived: the last epoch's checkpoint stands, the run can be resumed."""


@dataclass
class TrainerConfig:
    """The ``trainer`` config group, validated (see conf/trainer/default.yaml for each key)."""

    epochs: int = 5
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.0
    label_smoothing: float = 0.1
    grad_clip: Optional[float] = None
    device: str = "auto"
    threads: Optional[int] = None
    amp: bool = False  # deprecated alias: true = precision bf16
    channels_last: bool = False
    compile: bool = False
    checkpoint: bool = True
    latency_repeats: int = 20
    devices: int = 1
    sync_bn: bool = True
    precision: str = "fp32"
    accumulate: int = 1

    def __post_init__(self) -> None:
        # Every value checked for its type too: a YAML `yes` or a typo like `maybe` is a string,
        # and a string is truthy (it would turn amp or compile on) and enters the run key.
        self._int("epochs", self.epochs, 1)
        self._number("warmup_epochs", self.warmup_epochs, 0.0, None, "a number >= 0")
        self._number("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0, "a number in [0, 1]")
        self._number("label_smoothing", self.label_smoothing, 0.0, 1.0, "a number in [0, 1)", open_hi=True)
        if self.grad_clip is not None:  # a negative max norm would reverse the gradient
            self._number("grad_clip", self.grad_clip, 0.0, None, "null (off) or a number > 0", open_lo=True)
        if self.threads is not None:
            self._int("threads", self.threads, 1, what="null or an integer >= 1")
        for key in ("amp", "channels_last", "compile", "checkpoint", "sync_bn"):
            value = getattr(self, key)
            if not isinstance(value, bool):
                raise ConfigError(f"trainer.{key}={value!r}; allowed: true, false")
        self._int("latency_repeats", self.latency_repeats, 1)
        self._int("devices", self.devices, 1, what="an integer >= 1 (processes, one per device)")
        self._int("accumulate", self.accumulate, 1)
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision={self.precision!r}; allowed: {', '.join(PRECISIONS)}")
        if self.amp:  # the old switch: bf16 autocast, the same run key as precision=bf16
            if self.precision == "fp16":
                raise ConfigError("trainer.amp=true (deprecated alias of trainer.precision=bf16) with "
                                  "trainer.precision='fp16'; allowed: one of them (drop trainer.amp)")
            warnings.warn("trainer.amp=true is deprecated; use trainer.precision=bf16 (same run key)",
                          FutureWarning, stacklevel=3)
            self.precision = "bf16"
        dev = self.device if isinstance(self.device, str) else repr(self.device)
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError(f"trainer.device={dev!r}; allowed: {', '.join(DEVICES)}")
        if self.devices > 1 and dev.startswith("cuda:"):  # each process takes its own GPU
            raise ConfigError(f"trainer.device={dev!r} with trainer.devices={self.devices}; allowed: auto, cuda, cpu")

    @staticmethod
    def _int(key: str, value: Any, lo: int, what: Optional[str] = None) -> int:
        """An integer >= ``lo`` (not a bool); else one line naming ``what``."""
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"trainer.{key}={value!r}; allowed: {what or f'an integer >= {lo}'}")
        return value

    @staticmethod
    def _number(key: str, value: Any, lo: float, hi: Optional[float], what: str, *,
                open_lo: bool = False, open_hi: bool = False) -> float:
        """A finite real number in [lo, hi] (open ends where asked); else one line naming ``what``."""
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > lo if open_lo else value >= lo)
        ok = ok and (hi is None or (value < hi if open_hi else value <= hi))
        if not ok:
            raise ConfigError(f"trainer.{key}={value!r}; allowed: {what}")
        return float(value)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={self.device!r} but CUDA is not available; allowed here: auto, cpu")
        return torch.device(self.device)

    def check_here(self) -> torch.device:
        """The run's device, checked on the machine it will run on (this one): CUDA present, and
        ``devices`` of them for a run of several processes (one line otherwise)."""
        device = self.torch_device()
        if self.devices > 1 and device.type == "cuda" and self.devices > torch.cuda.device_count():
            raise ConfigError(f"trainer.devices={self.devices} but this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s); allowed: 1 to {torch.cuda.device_count()} (or trainer.device=cpu)")
        return device


@dataclass
class FitResult:
    """What ``fit`` measured: final-epoch validation metrics and the per-epoch history."""

    top1: float
    top5: float
    loss: float
    epochs: int
    history: list[dict] = field(default_factory=list)
    resumed_from: Optional[int] = None


# --- pre-emption -------------------------------------------------------------------------
_STOP = threading.Event()


def request_stop(*_: Any) -> None:
    """Signal handler: stop at the next step boundary (the last checkpoint stands)."""
    _STOP.set()


def stop_requested() -> bool:
    """Has SIGTERM/SIGUSR1 (or ``request_stop``) asked this process to stop? Launchers and study
    workers check it between runs, the loop between steps."""
    return _STOP.is_set()


def clear_stop() -> None:
    """Forget a stop request (a process that goes on after handling one, and tests)."""
    _STOP.clear()


def install_preemption_handlers() -> None:
    """Turn SIGTERM and SIGUSR1 (SLURM's warning signal) into a clean ``Preempted``."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
        if sig is not None:
            signal.signal(sig, request_stop)


# --- the loop ----------------------------------------------------------------------------
def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up then cosine decay, per optimiser step."""

    def fn(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return fn


class StepLosses:
    """The training losses of the steps since the last check, kept on the device.

    ``add`` keeps a step's loss tensor (no host read); ``check`` reads all of them in one
    transfer, raises ``Diverged`` naming the first non-finite step, and adds them to the
    epoch's running sum exactly as per-step ``.item()`` reads would (the same floats, summed in
    the same order), so ``train_loss`` does not depend on how often the loop checks.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch, self.sum, self.seen = epoch, 0.0, 0
        self._losses: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._first = 0  # the step of the first pending loss

    def add(self, loss: torch.Tensor, size: int, skipped: bool = False) -> None:
        """Keep a step's loss; ``skipped``: fp16's scaler did not apply the step (its gradients
        were not finite), so its loss is neither checked nor counted in the mean."""
        self._losses.append(loss.detach())
        self._sizes.append(0 if skipped else size)

    def _read(self) -> tuple[list[float], list[int]]:
        """The pending steps' losses as floats (one host read) and their sizes."""
        return torch.stack(self._losses).tolist(), self._sizes

    def check(self) -> float:
        """Read the pending losses (one host sync), check them; the epoch's mean loss so far."""
        if self._losses:
            values, sizes = self._read()
            for i, (value, size) in enumerate(zip(values, sizes)):
                if size and not math.isfinite(value):
                    raise Diverged(f"loss is {value} at epoch {self.epoch} step {self._first + i}")
            for value, size in zip(values, sizes):
                if size:
                    self.sum += value * size
                    self.seen += size
            self._first += len(values)
            self._losses, self._sizes = [], []
        return self.sum / max(self.seen, 1)


def eval_batches(model: nn.Module, loader, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False):
    """(float32 logits, labels) of every validation batch, the model in eval mode and the
    forward pass cast as training casts it; callers run it under ``torch.no_grad``."""
    model.eval()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, precision):
            logits = model(x)
        yield logits.float(), y


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, precision: str = "fp32", channels_last: bool = False,
             reduce: Optional[Callable[[list], list]] = None) -> dict:
    """Top-1, top-5 (top-k for k = min(5, classes)) in percent and mean cross-entropy; the
    forward pass autocasts as training does (``precision`` bf16 or fp16).

    Sums stay on the device until the end: one host read per evaluation, not per batch.
    ``reduce`` (a run of several processes, each evaluating its share): the sums of every rank.
    """
    n, losses = 0, []
    c1 = torch.zeros((), dtype=torch.int64, device=device)
    c5 = torch.zeros((), dtype=torch.int64, device=device)
    for logits, y in eval_batches(model, loader, device, precision, channels_last):
        losses.append(F.cross_entropy(logits, y, reduction="sum"))
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices
        hit = topk.eq(y[:, None])
        c1 += hit[:, 0].sum()
        c5 += hit.any(dim=1).sum()
        n += y.numel()
    # Per-batch sums read as floats and added in batch order: the same number as one .item() a batch.
    loss_sum = sum(torch.stack(losses).tolist()) if losses else 0.0
    c1, c5 = (int(v) for v in torch.stack([c1, c5]).tolist())
    if reduce is not None:
        loss_sum, c1, c5, n = reduce([loss_sum, c1, c5, n])
    return {"top1": 100.0 * c1 / max(n, 1), "top5": 100.0 * c5 / max(n, 1), "loss": loss_sum / max(n, 1)}


def _autocast(device: torch.device, precision: str):
    """The forward pass's autocast for ``precision`` (none for fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _backward(step_model: nn.Module, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
              precision: str, scaler: Optional["torch.amp.GradScaler"], accumulate: int,
              sizes: Optional[list[int]] = None) -> torch.Tensor:
    """Forward and backward of one optimiser step's batch; returns its mean loss (not detached
    for a single pass). With ``accumulate`` K > 1 the batch runs as K micro-batches (the last
    ones a sample smaller when K does not divide it), each loss weighted by its share of the
    batch, so the summed gradient is the whole batch's mean gradient, as one pass would give
    (BatchNorm aside: it normalises each micro-batch). Under DistributedDataParallel the
    gradients are reduced once, after the last micro-batch (``no_sync`` before it)."""
    if accumulate == 1:
        with _autocast(device, precision):
            loss = criterion(step_model(x), y)
        (loss if scaler is None else scaler.scale(loss)).backward()
        return loss
    n = y.shape[0]
    size = sizes or -(-n // accumulate)  # sizes: a rank's share of each global micro-batch (may be empty)
    parts = list(zip(x.split(size), y.split(size)))
    no_sync = getattr(step_model, "no_sync", None)
    total = None
    for i, (xs, ys) in enumerate(parts):
        with (no_sync() if no_sync is not None and i < len(parts) - 1 else nullcontext()):
            with _autocast(device, precision):
                part = criterion(step_model(xs), ys) * (ys.shape[0] / max(n, 1))
            (part if scaler is None else scaler.scale(part)).backward()
        total = part.detach() if total is None else total + part.detach()
    return total


def fit(
    model: nn.Module,
    train_loader,
    val_loader,
    make_optimizer: Callable[[Any], torch.optim.Optimizer],
    cfg: TrainerConfig,
    *,
    files: RunFiles,
    seed: int,
    on_epoch_end: Optional[Callable[[int, dict], None]] = None,
    log: Callable[[str], None] = print,
    console: Any = "auto",
    parallel: Any = None,
    task: Any = None,
) -> FitResult:
    """Train ``model`` for ``cfg.epochs`` epochs, resuming from the run's checkpoint.

    ``files`` is the run dir's handle from the results store (``store.files(run_key)``): the
    loop appends ``metrics.jsonl`` and writes ``checkpoint.pt`` through it. Raises ``Diverged``
    on a non-finite loss, ``Pruned`` when ``on_epoch_end`` says so and ``Preempted`` on
    SIGTERM/SIGUSR1; the last epoch's checkpoint is kept in every case.

    Progress: one ``log`` line per epoch, always; ``console`` (a rich ``Console``; ``"auto"``:
    stdout when it is a terminal, see ``ablate.train.progress``; None: no bar) also draws a bar
    over the run's steps (it/s, ETA), fed step counts only: no tensor is read for it.

    Host syncs: the loop reads the loss every ``LOG_EVERY`` steps and at the epoch's end (one
    transfer for all pending steps, ``StepLosses``), and each evaluation once; a NaN/inf loss
    is caught at the latest there (``Diverged`` names its step; no checkpoint of that epoch is
    written), and before a stop request is honoured.

    ``parallel`` (``ablate.train.distributed.Parallel``): this process is one rank of a run of
    several; it wraps the model (DDP), weighs the step loss, sums the step losses and the
    evaluation over ranks, votes on stop requests, seeds each epoch's draws per rank and gives
    every rank rank 0's epoch callback outcome. ``model`` stays the plain model (checkpoints).

    Precision (``cfg.precision``): fp32; bf16 autocast; fp16 autocast with a ``GradScaler``,
    which skips a step whose gradients are not finite (the step's loss is then left out of
    ``train_loss``; the row records ``skipped_steps`` and ``grad_scale``): a skipped step is not
    a divergence, ``MAX_SKIPPED_STEPS`` of them in a row is. Accumulation (``cfg.accumulate``
    K): each batch of the loader is one optimiser step, run as K micro-batches (see
    ``_backward``); the loader's batch is the step's batch (K x the micro-batch).

    ``task`` (``ablate.train.tasks``; None: classification): its ``criterion()``, ``evaluate``
    and ``row(val)`` give the loss, the evaluation and the row's metrics (segmentation: mIoU).
    """
    device = cfg.torch_device()
    if parallel is not None:
        on_epoch_end = parallel.epoch_end(on_epoch_end)
    # Late in a cosine schedule, gradients and momentum buffers decay into float denormals,
    # which x86 CPUs process ~100x slower (measured: a 1.3 s epoch became 89 s). Flushing them
    # to zero changes no result that matters and keeps epochs at a steady speed.
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    model.to(device)
    if cfg.channels_last:  # NHWC: faster depthwise/1x1 convs on CPU (oneDNN) and on CUDA
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters())
    steps_per_epoch = len(train_loader)
    total = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total, int(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio)
    )
    # fp16: a gradient scaler (the loss is scaled up so small gradients survive fp16; a step
    # whose gradients overflow is skipped and the scale lowered). Its state travels in the checkpoint.
    scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
    history: list[dict] = []
    start_epoch, resumed_from = 0, None
    state = files.load_checkpoint(map_location=device) if cfg.checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        start_epoch = resumed_from = state["epoch"] + 1
        # metrics.jsonl may hold a row written after the last checkpoint: rewrite it from the
        # checkpoint's history so each epoch appears exactly once.
        files.rewrite_metrics(history)
        log(f"resumed from checkpoint after epoch {start_epoch}")
    elif files.metrics.exists():  # starting over (no or a damaged checkpoint): no stale rows
        files.rewrite_metrics([])

    step_model = model if parallel is None else parallel.wrap(model)  # DDP: model itself stays plain
    step_model = torch.compile(step_model, dynamic=False) if cfg.compile else step_model
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing) if task is None else task.criterion()
    if parallel is not None:  # a short share of a batch weighs by its size
        criterion = parallel.weigh(criterion, train_loader)
    stop = stop_requested if parallel is None else parallel.stop_requested
    scale = scaler.get_scale() if scaler is not None else None
    skipped_in_a_row = 0
    bar = StepBar(bar_console() if console == "auto" else console, total=total,
                  done=start_epoch * steps_per_epoch, epochs=cfg.epochs, label=files.key)
    with bar:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            train_loader.set_epoch(epoch)
            if parallel is not None:
                parallel.start_epoch(epoch)
            model.train()
            losses = StepLosses(epoch) if parallel is None else parallel.step_losses(epoch)
            skipped_steps = 0
            for step, (x, y) in enumerate(train_loader):
                if stop():
                    losses.check()  # a divergence before the stop is the run's outcome, as it was
                    raise Preempted(f"stop requested at epoch {epoch} step {step}")
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                loss = _backward(step_model, criterion, x, y, device, cfg.precision, scaler, cfg.accumulate,
                                 None if parallel is None else train_loader.share_parts)
                skipped = False
                if scaler is None:
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                else:  # GradScaler reads its found-inf flag on the host each step (its own sync)
                    if cfg.grad_clip:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    new_scale = scaler.get_scale()
                    skipped, scale = new_scale < scale, new_scale
                    skipped_steps += skipped
                    skipped_in_a_row = skipped_in_a_row + 1 if skipped else 0
                    if skipped_in_a_row >= MAX_SKIPPED_STEPS:
                        losses.check()
                        raise Diverged(f"fp16: {skipped_in_a_row} steps in a row skipped for non-finite gradients "
                                       f"(gradient scale now {scale:g}) at epoch {epoch} step {step}")
                if scaler is None:
                    scheduler.step()
                else:  # the schedule follows the data: a skipped step still advances it
                    with warnings.catch_warnings():  # a skipped first step is the scale search, not a misuse
                        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
                        scheduler.step()
                losses.add(loss, y.shape[0], skipped=skipped)
                bar.step()
                if (step + 1) % LOG_EVERY == 0:  # the interval's one host read: NaN check + bar
                    bar.show(loss=losses.check())
            train_loss = losses.check()  # before evaluation and checkpoint: never save a diverged model
            val = (evaluate if task is None else task.evaluate)(
                step_model, val_loader, device, cfg.precision, cfg.channels_last,
                reduce=None if parallel is None else parallel.reduce)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                **({"val_top1": val["top1"], "val_top5": val["top5"], "val_loss": val["loss"]}
                   if task is None else task.row(val)),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            if scaler is not None:  # fp16: steps the scaler skipped and the scale it ended the epoch at
                row.update(skipped_steps=skipped_steps, grad_scale=scale)
            history.append(row)
            if cfg.checkpoint:
                files.save_checkpoint({
                    "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "history": history,
                    **({"scaler": scaler.state_dict()} if scaler is not None else {}),
                })
            files.append_metrics(row)
            said = f"val top1 {val['top1']:.2f}%" if task is None else task.summary(val)
            log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  {said}  ({row['seconds']:.1f}s)")
            bar.show(epoch=min(epoch + 1, cfg.epochs - 1), loss=row["train_loss"],
                     top1=val["top1"] if task is None else task.headline(row))
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    last = history[-1]
    return FitResult(last.get("val_top1"), last.get("val_top5"), last["val_loss"], len(history), history, resumed_from)
