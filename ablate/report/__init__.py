"""Reports: table specs in ``analysis/`` turned into the paper's tables, plots and HTML pages.

Loading and listing table specs needs no pandas or scipy; ``build_table`` and ``Table`` are
imported on first use (``ablate table`` answers from its cache without them).
"""
from ablate.report.spec import TableSpec, list_tables, load_table_spec

__all__ = ["Table", "TableSpec", "load_table_spec", "list_tables", "build_table"]

_LAZY = {"Table", "build_table"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module("ablate.report.table"), name)
    raise AttributeError(f"module 'ablate.report' has no attribute {name!r}")
