"""A run's progress bar: rich's bar over training steps when stdout is a terminal, nothing else.

``ABLATE_PROGRESS`` picks the mode: ``auto`` (default: a bar when stdout is a terminal),
``bar`` (always, e.g. under a terminal multiplexer that hides the tty) or ``plain`` (never: the
per-epoch log lines only, as in a log file, a SLURM job or a worker of the parallel launcher).

The bar counts steps only; it never reads a tensor, so it adds no host-device sync to the loop.
Its metrics are values the loop already has on the host, refreshed at log intervals.
While the bar is live, log handlers that write to the terminal print through rich's console
(above the bar) instead of tearing through it; they get their stream back when it ends.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Optional

from ablate.errors import ConfigError

if TYPE_CHECKING:  # rich is imported where a bar is drawn: `ablate status` and friends need none of it
    from rich.console import Console
    from rich.progress import Progress

ENV = "ABLATE_PROGRESS"
MODES = ("auto", "bar", "plain")


def progress_mode() -> str:
    """``ABLATE_PROGRESS`` (default ``auto``); anything else is a one-line error."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(f"{ENV}={os.environ[ENV]!r}; allowed: {', '.join(MODES)}")
    return mode


def bar_console() -> Optional[Console]:
    """The console a run's bar draws on (stdout), or None when runs log plain lines only."""
    mode = progress_mode()
    if mode == "plain":
        return None
    from rich.console import Console

    console = Console(file=sys.stdout, force_terminal=True if mode == "bar" else None)
    return console if console.is_terminal else None


class StepBar:
    """One run's bar: epoch, steps done of all, it/s, ETA and the metrics ``show`` gives.

    A context manager; with ``console=None`` every method does nothing (plain mode).
    """

    def __init__(self, console: Optional[Console], *, total: int, done: int = 0, epochs: int = 1,
                 label: str = "train") -> None:
        self.console = console
        self._total, self._done, self._epochs, self._label = total, done, epochs, label
        self._progress: Optional[Progress] = None
        self._stack = ExitStack()

    def __enter__(self) -> "StepBar":
        if self.console is None:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Column

        self._progress = Progress(  # fits 80 columns: the bar takes what the others leave
            TextColumn("[bold]{task.description}"), TextColumn("ep {task.fields[epoch]}"), BarColumn(bar_width=None),
            MofNCompleteColumn(), rate_column()(table_column=Column(no_wrap=True)), TextColumn("eta"), TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[metrics]}"),
            console=self.console, redirect_stdout=False, redirect_stderr=False,
        )
        self._stack.enter_context(_logs_through(self.console))
        self._stack.enter_context(self._progress)
        per_epoch = max(1, self._total // max(1, self._epochs))
        self._task = self._progress.add_task(self._label, total=self._total, completed=self._done,
                                             epoch=f"{min(self._done // per_epoch + 1, self._epochs)}/{self._epochs}",
                                             metrics="")
        return self

    def __exit__(self, *exc) -> None:
        self._progress = None
        self._stack.close()  # the bar stops first, then the log handlers get their streams back

    def step(self, n: int = 1) -> None:
        """Count ``n`` steps (no tensor is read)."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def show(self, *, epoch: Optional[int] = None, **metrics: float) -> None:
        """Refresh the epoch counter and the metrics shown (host floats the loop already has)."""
        if self._progress is None:
            return
        fields = {"metrics": " ".join(f"{k} {v:.3g}" for k, v in metrics.items())} if metrics else {}
        if epoch is not None:
            fields["epoch"] = f"{epoch + 1}/{self._epochs}"
        self._progress.update(self._task, **fields)


def rate_column() -> type:
    """The ``RateColumn`` class (a rich ``ProgressColumn``; made on first use, with rich)."""
    global RateColumn
    if RateColumn is None:
        from rich.progress import ProgressColumn
        from rich.text import Text

        class _RateColumn(ProgressColumn):
            """Steps per second over rich's recent samples (``?`` until it has two)."""

            def render(self, task) -> Text:
                return Text("? it/s" if task.speed is None else f"{task.speed:.1f} it/s")

        RateColumn = _RateColumn
    return RateColumn


RateColumn: Optional[type] = None


@contextmanager
def _logs_through(console: Console):
    """Route the log handlers (root, ``ablate``, ``hydra``) that write to a terminal or to the
    bar's own stream through ``console``, so their lines print above the bar."""
    from rich.file_proxy import FileProxy

    swapped = []
    for name in (None, "ablate", "hydra"):
        for handler in logging.getLogger(name).handlers:
            if type(handler) is not logging.StreamHandler:  # files (FileHandler) keep theirs
                continue
            stream = handler.stream
            try:
                tty = stream.isatty()
            except (AttributeError, ValueError):
                tty = False
            if tty or stream is console.file:
                swapped.append((handler, handler.setStream(FileProxy(console, stream))))
    try:
        yield
    finally:
        for handler, stream in swapped:
            proxy = handler.setStream(stream)
            if proxy is not None:
                proxy.flush()
