"""CSV: the numbers behind every cell (n, holes, mean/std/CI, delta, p-value, the test's
interval), one row per cell; docs/statistics.md names the columns."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.report.kinds import TABLE_FORMATS

if TYPE_CHECKING:
    from ablate.report.table import Table


@TABLE_FORMATS.register("csv")
def to_csv(table: "Table") -> str:
    return table.values.to_csv(index=False)
