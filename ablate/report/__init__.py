"""Reports: table specs in ``analysis/`` turned into the paper's tables, plots and HTML pages."""
from ablate.report.spec import TableSpec, list_tables, load_table_spec
from ablate.report.table import Table, build_table

__all__ = ["Table", "TableSpec", "load_table_spec", "list_tables", "build_table"]
