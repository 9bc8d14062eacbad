"""Helpers the table formats share."""
from __future__ import annotations


def flat(col) -> str:
    """A column label as one string (pivot columns are (group, metric) tuples)."""
    return " ".join(str(c) for c in col if c) if isinstance(col, tuple) else str(col)
