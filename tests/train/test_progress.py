"""A run's progress: a rich bar over steps (it/s, ETA) on a terminal, plain per-epoch lines
elsewhere; the bar reads no tensor, and log lines print above it, not through it."""
from __future__ import annotations

import io
import logging
import re
import sys

import pytest
import torch
import torch.nn as nn

from ablate.track.store import RunDirStore
from ablate.train.engine import TrainerConfig, fit

STEPS, EPOCHS = 6, 2
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Loader:
    """What ``fit`` needs of a loader: batches, ``len`` and ``set_epoch``."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.batches = [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def train(tmp_path, name: str, device: str = "cpu", **kwargs):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    files = RunDirStore(tmp_path).files(name)
    files.create({"seed": 0})
    cfg = TrainerConfig(epochs=EPOCHS, device=device, checkpoint=False, warmup_epochs=0.0)
    lines: list[str] = []
    kwargs.setdefault("log", lines.append)
    result = fit(model, Loader(STEPS), Loader(2, seed=1), lambda p: torch.optim.SGD(p, lr=0.1), cfg,
                 files=files, seed=0, **kwargs)
    return result, lines


def screen(text: str) -> list[str]:
    """What a terminal shows, line by line, without colours (each redraw on its own line)."""
    return [ln for ln in re.split(r"[\r\n]", ANSI.sub("", text)) if ln.strip()]


def test_forced_terminal_draws_a_bar_with_steps_rate_and_eta(tmp_path):
    from rich.console import Console

    buf = io.StringIO()
    result, lines = train(tmp_path, "barrun", console=Console(file=buf, force_terminal=True, width=120))
    shown = screen(buf.getvalue())
    last = shown[-1]
    assert last.startswith("barrun") and f"{STEPS * EPOCHS}/{STEPS * EPOCHS}" in last, shown
    assert "it/s" in last and "eta" in last and f"ep {EPOCHS}/{EPOCHS}" in last
    # the final metrics are the loop's own host values, shown at the last epoch's end
    assert f"top1 {result.history[-1]['val_top1']:.3g}" in last
    assert len(lines) == EPOCHS  # the per-epoch lines are logged in both modes


def test_not_a_terminal_logs_plain_epoch_lines_and_draws_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ABLATE_PROGRESS", raising=False)
    result, lines = train(tmp_path, "plainrun")  # console="auto": stdout is pytest's capture, not a tty
    out = capsys.readouterr().out
    assert out == ""
    assert [ln.split("  ")[0] for ln in lines] == [f"epoch {e}/{EPOCHS}" for e in range(1, EPOCHS + 1)]
    assert f"val top1 {result.history[-1]['val_top1']:.2f}%" in lines[-1]


@pytest.mark.parametrize("mode, bar", [("bar", True), ("plain", False), ("auto", False)])
def test_ablate_progress_picks_the_mode(mode, bar, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ABLATE_PROGRESS", mode)
    train(tmp_path, f"run-{mode}")
    out = capsys.readouterr().out
    assert ("it/s" in out) is bar and (f"{STEPS * EPOCHS}/{STEPS * EPOCHS}" in out) is bar


def test_a_bad_ablate_progress_is_one_line_before_anything_runs(monkeypatch, home, capsys):
    from ablate.cli import main

    monkeypatch.setenv("ABLATE_PROGRESS", "fancy")
    assert main(["train", "trainer.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert err == "ablate: error: ABLATE_PROGRESS='fancy'; allowed: auto, bar, plain\n"
    assert not (home / "outputs").exists()


def test_the_bar_reads_no_tensor(tmp_path, monkeypatch):
    """On CUDA every host read (.item(), .tolist(), bool()) waits for the GPU: the bar adds none."""
    from rich.console import Console

    calls = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *a, _real=real, **k):
            calls["n"] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    train(tmp_path, "nobar", console=None)
    without = calls["n"]
    calls["n"] = 0
    train(tmp_path, "withbar", console=Console(file=io.StringIO(), force_terminal=True))
    assert calls["n"] == without > 0


@pytest.mark.gpu
def test_the_bar_adds_no_cuda_sync(tmp_path):
    """CUDA's own count: every synchronizing call warns under sync debug mode; the bar adds none."""
    from rich.console import Console

    from tests.helpers import cuda_syncs

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")

    def syncs(name, console):
        return cuda_syncs(lambda: train(tmp_path, name, device="cuda", console=console))

    without = syncs("cuda-nobar", None)  # > 0: the loop's own loss and evaluation reads
    assert syncs("cuda-bar", Console(file=io.StringIO(), force_terminal=True)) == without > 0


def test_log_lines_print_above_the_bar_and_handlers_get_their_stream_back(tmp_path, monkeypatch):
    from rich.console import Console

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    handler = logging.StreamHandler(buf)  # a terminal log handler, as `ablate` sets one up
    logger = logging.getLogger("ablate")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        train(tmp_path, "logged", console=Console(file=buf, force_terminal=True, width=120), log=logger.info)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert handler.stream is buf  # restored after the bar
    shown = screen(buf.getvalue())
    epoch_lines = [ln for ln in shown if "val top1" in ln]
    # whole lines of their own, never glued to a bar redraw
    assert [ln.split("  ")[0] for ln in epoch_lines] == [f"epoch {e}/{EPOCHS}" for e in range(1, EPOCHS + 1)], shown
    assert shown[-1].startswith("logged")  # the bar is redrawn below the last line
