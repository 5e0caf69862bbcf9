"""Pass-rate tables (JSONL/CSV, validated) and loaders for the shared real data sets."""

from v05.data.shared import load_any, load_mmlupro, load_v0_demo
from v05.data.table import COLUMNS, PassRateTable, TableError, load_table, save_table

__all__ = ["COLUMNS", "PassRateTable", "TableError", "load_any", "load_mmlupro", "load_table", "load_v0_demo", "save_table"]
