"""The report's extension points, kept apart from their implementations so that table specs
can validate names without importing matplotlib or the table builder:

- ``TABLE_FORMATS``: ``render(table) -> str`` per output format, one module each in
  ``ablate/report/formats/`` (the name is the file extension);
- ``PLOT_KINDS``: ``draw(plot, records, store, manifest, style) -> Figure`` per plot kind, in
  ``ablate/report/figures.py`` (``style``: the report's ``plots.SettingStyle`` or None).
"""
from __future__ import annotations

from typing import Any, Callable

from ablate.registry import Registry

__all__ = ["PLOT_KINDS", "TABLE_FORMATS"]

TABLE_FORMATS: Registry[Callable[..., str]] = Registry("format", discover="ablate.report.formats")
PLOT_KINDS: Registry[Callable[..., Any]] = Registry("plot kind", discover="ablate.report.figures")
