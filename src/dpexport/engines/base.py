"""The Engine interface: what dpexport needs from a warehouse.

An engine answers a few questions about a table (exists, schema, rows in a slice)
and streams a slice as Arrow record batches. Everything an engine can compute
better than Python (the slice predicate, partition-key expressions, de-duplication,
newest-row-per-key, ordering) is pushed down to it as part of a ``ScanRequest``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from dpexport.errors import InvalidArgument


def quote_identifier(name: str) -> str:
    """Quote one SQL identifier (a column, table or schema name) for DuckDB.

    Any name is accepted except an empty one or one holding a NUL character; an
    embedded ``"`` is doubled, so the result always reads as exactly that one name.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidArgument(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def column_sql(expression: str, columns: Collection[str]) -> str:
    """A config expression as SQL: quoted when it is exactly one of ``columns`` (a column
    named ``at`` or ``order`` is a keyword bare), otherwise as written."""
    return quote_identifier(expression) if expression in columns else expression


@dataclass(frozen=True)
class Slice:
    """Rows with ``lower < cursor <= upper`` (either bound may be absent;
    ``lower_inclusive`` makes it ``lower <= cursor``, as INCREMENTAL's lookback asks).

    Bound values are Python values (datetime, date, int, ...) bound as query
    parameters, never pasted into SQL text.
    """

    cursor: str | None = None  # SQL expression over the source row, usually a column
    lower: Any = None  # exclusive
    upper: Any = None  # inclusive
    lower_inclusive: bool = False


@dataclass(frozen=True)
class ScanRequest:
    """One streamed read of a table.

    - ``columns``: source columns to select, in order (``None``: all, minus ``exclude``).
    - ``exclude``: columns that must never leave the warehouse (not in the SELECT).
    - ``extra``: computed columns appended after the source columns, name -> SQL
      expression over the source row (partition keys such as ``equipment_id % 100``).
    - ``slice``: the row range to read.
    - ``filter``: an additional SQL predicate (trusted: it comes from the config file).
    - ``dedupe_by``: keep the first row per key (ordered by ``slice.cursor``).
    - ``newest_by``: keep the newest row per key, newest by ``newest_order`` (desc).
    - ``order_by``: output ordering, by output column names (usually the partition keys).
    - ``batch_rows``: target rows per record batch.
    """

    dataset: str
    table: str
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    slice: Slice = field(default_factory=Slice)
    filter: str | None = None
    dedupe_by: tuple[str, ...] = ()
    newest_by: tuple[str, ...] = ()
    newest_order: str | None = None
    order_by: tuple[str, ...] = ()
    batch_rows: int = 122_880


class Engine(Protocol):
    """A warehouse dpexport can read from."""

    name: str
    #: Consecutive reads see the same rows (a read-only DuckDB file, which no process
    #: can write while it is open): what one query learns of a slice holds for the next.
    stable_reads: bool

    def table_exists(self, dataset: str, table: str) -> bool: ...

    def schema(self, dataset: str, table: str) -> pa.Schema:
        """The table's columns as Arrow types, in table order."""
        ...

    def count(self, request: ScanRequest) -> int:
        """Rows the request would return."""
        ...

    def aggregate(self, request: ScanRequest, expressions: dict[str, str]) -> dict[str, Any]:
        """Evaluate aggregate SQL expressions (``max(updated_at)``) over the request's rows."""
        ...

    def scan(self, request: ScanRequest) -> pa.RecordBatchReader:
        """Stream the request's rows; memory stays bounded whatever the table size."""
        ...

    def close(self) -> None: ...
