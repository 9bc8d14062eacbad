"""The loop reads the loss from the device once per log interval, not per step (on CUDA each
read waits for the GPU), and still catches a NaN/inf loss: at the latest at the next interval
or the epoch's end, naming the step, before any checkpoint of that epoch."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import ablate.train.engine as engine
from ablate.track.store import RunDirStore
from ablate.train.engine import Diverged, TrainerConfig, fit

HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")


class Loader:
    """``steps`` batches per epoch; the batch at ``nan_at = (epoch, step)`` holds a NaN input.
    Counts the batches handed out (the steps the loop ran)."""

    def __init__(self, steps: int, seed: int = 0, nan_at=None) -> None:
        g = torch.Generator().manual_seed(seed)
        self.batches = [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(steps)]
        self.nan_at, self.epoch, self.served = nan_at, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for step, (x, y) in enumerate(self.batches):
            self.served += 1
            yield (torch.full_like(x, math.nan) if (self.epoch, step) == self.nan_at else x), y


def train(tmp_path, name: str, *, steps: int = 6, epochs: int = 2, device: str = "cpu", nan_at=None,
          checkpoint: bool = False, console=None, loader=None):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    files = RunDirStore(tmp_path).files(name)
    files.create({"seed": 0})
    cfg = TrainerConfig(epochs=epochs, device=device, checkpoint=checkpoint, warmup_epochs=0.0)
    loader = loader or Loader(steps, nan_at=nan_at)
    result = fit(model, loader, Loader(2, seed=1), lambda p: torch.optim.SGD(p, lr=0.1), cfg,
                 files=files, seed=0, log=lambda _: None, console=console)
    return result, loader, files


def count_host_reads(monkeypatch):
    """Count every way a tensor's value reaches the host (SGD and nn.Linear read none)."""
    calls = {"n": 0}
    for name in HOST_READS:
        real = getattr(torch.Tensor, name)

        def counting(self, *a, _real=real, **k):
            calls["n"] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls


def test_host_reads_do_not_grow_with_the_steps(tmp_path, monkeypatch):
    calls = count_host_reads(monkeypatch)
    train(tmp_path, "short", steps=6)
    short = calls["n"]
    calls["n"] = 0
    train(tmp_path, "long", steps=24)  # 4x the steps, all within one log interval
    assert calls["n"] == short > 0
    assert short <= 2 * 3  # per epoch: the loss check, one read of the evaluation's sums (x2 epochs)


def test_host_reads_grow_with_the_log_intervals_only(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "LOG_EVERY", 4)
    calls = count_host_reads(monkeypatch)
    train(tmp_path, "one", steps=4)  # one interval per epoch, ending with the epoch: one loss read
    one = calls["n"]
    calls["n"] = 0
    train(tmp_path, "three", steps=12)  # three intervals per epoch: three reads, x 2 epochs
    assert calls["n"] == one + 2 * 2


def test_the_check_interval_does_not_change_the_recorded_losses(tmp_path, monkeypatch):
    every_step = None
    for interval in (1, 4, 50):
        monkeypatch.setattr(engine, "LOG_EVERY", interval)
        result, _, _ = train(tmp_path, f"interval{interval}", steps=9)
        rows = [(r["train_loss"], r["val_loss"], r["val_top1"]) for r in result.history]
        every_step = every_step or rows
        assert rows == every_step  # bit-identical: the same floats, summed in the same order


@pytest.mark.parametrize("nan_step, interval", [(3, 50), (2, 4), (3, 4), (5, 4)])
def test_a_nan_loss_is_diverged_at_the_latest_at_the_next_check(tmp_path, monkeypatch, nan_step, interval):
    monkeypatch.setattr(engine, "LOG_EVERY", interval)
    steps = 6
    loader = Loader(steps, nan_at=(1, nan_step))
    with pytest.raises(Diverged, match=f"loss is nan at epoch 1 step {nan_step}$"):
        train(tmp_path, "nan", loader=loader, checkpoint=True)
    # the steps of epoch 1 it ran: up to the check after the NaN (an interval's end or the epoch's)
    next_check = min(steps, (nan_step // interval + 1) * interval)
    assert nan_step + 1 <= loader.served - steps <= next_check
    files = RunDirStore(tmp_path).files("nan")
    assert [r["epoch"] for r in files.read_metrics()] == [0]  # the diverged epoch is not recorded
    state = files.load_checkpoint()
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values())


class StopAfter(Loader):
    """Asks the process to stop (as SIGTERM does) once ``stop_after`` batches were handed out."""

    def __init__(self, steps: int, stop_after: int, **kw) -> None:
        super().__init__(steps, **kw)
        self.stop_after = stop_after

    def __iter__(self):
        for batch in super().__iter__():
            yield batch
            if self.served == self.stop_after:
                engine.request_stop()


def test_a_stop_after_a_nan_is_diverged_not_preempted(tmp_path):
    loader = StopAfter(6, stop_after=3, nan_at=(0, 1))  # NaN at step 1, stop asked after step 2
    try:
        with pytest.raises(Diverged, match="loss is nan at epoch 0 step 1$"):
            train(tmp_path, "stop", loader=loader)
    finally:
        engine.clear_stop()
    assert loader.served == 4  # the 4th batch was fetched, then the stop seen before training on it


def test_a_stop_without_a_nan_is_preempted(tmp_path):
    loader = StopAfter(6, stop_after=3)
    try:
        with pytest.raises(engine.Preempted, match="at epoch 0 step 3$"):
            train(tmp_path, "stop", loader=loader)
    finally:
        engine.clear_stop()


@pytest.mark.gpu
def test_cuda_syncs_do_not_grow_with_the_steps_and_nan_is_still_caught(tmp_path):
    """CUDA's own count (sync debug mode warns at every synchronizing call): the same number of
    syncs for 4x the steps; a NaN loss on the GPU still ends the run as diverged."""
    from tests.helpers import cuda_syncs

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")

    def syncs(name, steps):
        return cuda_syncs(lambda: train(tmp_path, name, steps=steps, device="cuda"))

    train(tmp_path, "warm", device="cuda")  # first-use syncs (CUDA context, allocator) are not the loop's
    assert syncs("cuda6", 6) == syncs("cuda24", 24)
    with pytest.raises(Diverged, match="loss is nan at epoch 1 step 3$"):
        train(tmp_path, "cuda-nan", device="cuda", nan_at=(1, 3))
