"""Compute spent by runs: device-seconds (wall x processes) from ``result.json``.

Records written since ``device_seconds`` exists carry it (``ablate.train.run``: wall time x the
run's processes, one device each); older records fall back to ``seconds`` x ``world_size`` (1
when unset). A table spec's ``compute: true`` adds the column ``Compute (device-h)``: per cell,
the device-hours of all its recorded runs (every seed and status: a failed run spent compute
too), and the table's footnote and the sweep's report give the total.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Optional

COMPUTE_KEY = "device_seconds"
COMPUTE_LABEL = "Compute (device-h)"


def device_seconds(rec: Mapping[str, Any]) -> Optional[float]:
    """A record's device-seconds, or None when it has no duration."""
    value = rec.get(COMPUTE_KEY)
    if value is None:
        seconds = rec.get("seconds")
        if seconds is None:
            return None
        value = float(seconds) * int(rec.get("world_size") or 1)
    value = float(value)
    return value if math.isfinite(value) else None


def total_text(records: Iterable[Mapping[str, Any]]) -> str:
    """``Compute: 1.23 device-hours over 12 runs (CPU Intel Xeon ...)``; "" without any duration."""
    values, kinds = [], set()
    for rec in records:
        s = device_seconds(rec)
        if s is not None:
            values.append(s)
            kinds.add(str(rec.get("device_kind") or rec.get("device") or "unknown device"))
    if not values:
        return ""
    return (f"Compute: {sum(values) / 3600:.3g} device-hours over {len(values)} run{'s' if len(values) != 1 else ''}"
            f" ({', '.join(sorted(kinds))})")
