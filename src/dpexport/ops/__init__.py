"""Operations over what exports leave behind: SQL over the export logs (``logs``) and
per-table health (``status``). DuckDB and sqlglot load only when a query runs."""

from __future__ import annotations

from dpexport.ops.logs import config_stores, load_records, query, query_all
from dpexport.ops.status import TableStatus, status, table_statuses

__all__ = [
    "TableStatus",
    "config_stores",
    "load_records",
    "query",
    "query_all",
    "status",
    "table_statuses",
]
