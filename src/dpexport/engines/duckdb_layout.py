"""The folder keys of rows, computed by the warehouse (SQL, DuckDB dialect).

A scan adds one column per folder level (``storage.layout``'s key columns:
``__dp_k0`` the time folder, ``__dp_k1``... the sub-partitions), so partition
expressions are pushed down and the data arrives grouped by folder. The folder
formats are ``storage.layout``'s; this module only writes them in SQL. BigQuery runs
the same SQL transpiled (``engines.bigquery_sql``: ``strftime`` becomes
``FORMAT_DATETIME``).
"""

from __future__ import annotations

from collections.abc import Collection

from dpexport.config.spec import Granularity, Partitioning
from dpexport.engines.base import column_sql
from dpexport.storage import layout

__all__ = ["partition_key_sql", "time_sql"]


def time_sql(expression: str, granularity: Granularity, pattern: str | None = None) -> str:
    """SQL rendering a row's time value as its time folder (:func:`layout.time_folder`'s
    text; ``pattern`` a hive-style ``path_pattern``'s format, which holds no quote)."""
    text = layout.time_format(granularity, pattern)
    return f"strftime(CAST(({expression}) AS TIMESTAMP), '{text}')"


def partition_key_sql(partitioning: Partitioning, columns: Collection[str] = ()) -> dict[str, str]:
    """The computed key columns a scan adds so rows can be routed to folders
    (:func:`layout.folder_for` reads them back). An expression that is exactly one of the
    table's ``columns`` is quoted (``at``, ``order``)."""
    keys: dict[str, str] = {}
    if partitioning.time_expression:
        expr = column_sql(partitioning.time_expression, columns)
        keys[layout.TIME_KEY] = time_sql(expr, partitioning.granularity, partitioning.time_layout)
    for i, sub in enumerate(partitioning.sub_partitions, start=1):
        keys[layout.key_column(i)] = f"CAST(({column_sql(sub.expression, columns)}) AS VARCHAR)"
    return keys
