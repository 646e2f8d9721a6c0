"""Read a time-partitioned slice one top-level folder at a time instead of sorting it whole.

The router needs each folder's rows together, so a partitioned scan is ordered by
its folder keys. For a large slice that is one big sort, which spills to disk under
the engine's memory limit and dominated the hour + sensor_type benchmark. Time
folders are ranges of the time expression, though: one query per top-level folder
(``created_at >= 03:00 AND < 04:00``) reads only that range, which DuckDB finds with
its zone maps when the table is stored roughly in time order (telemetry usually
is), and sorts only that folder's rows by the sub-partition keys, in memory.

Each per-folder query also keeps the exact key test (``strftime(...) = '2025/09/16/03'``)
so a row can never land in two folders; a row missed by a range would show as a
row-count mismatch against the slice count, which fails the export.

Used for the DuckDB engine only (a BigQuery query per folder costs a job each), and
only when the folders are few and large enough that a query each is cheaper than
one sort (:data:`MAX_FOLDERS`, :data:`MIN_ROWS_PER_FOLDER`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa

from dpexport.config.spec import Partitioning
from dpexport.engines.base import Engine, ScanRequest, column_sql
from dpexport.engines.duckdb_layout import time_sql
from dpexport.storage import layout

__all__ = [
    "MAX_FOLDERS",
    "TOPS_SQL",
    "folder_requests",
    "range_request",
    "scan_by_folder",
    "should_split",
    "worth_it",
]

#: the aggregate that lists the slice's top-level folders (NULL included)
TOPS_SQL = f'list(DISTINCT "{layout.TIME_KEY}")'
#: more top-level folders than this: one sorted scan (a query each would cost more)
MAX_FOLDERS = 400
#: fewer rows per folder than this on average: one sorted scan
MIN_ROWS_PER_FOLDER = 20_000


def worth_it(engine: Engine, partitioning: Partitioning, request: ScanRequest) -> bool:
    """Whether to list the top-level folders (and maybe scan by folder) at all.

    Not with a de-duplication or newest-row-per-key window: a folder's filter would
    run before the window and keep one row per key per folder instead of per slice."""
    return bool(
        engine.reads_by_folder
        and partitioning.time_expression
        and not request.dedupe_by
        and not request.newest_by
    )


def should_split(tops: list[str | None] | None, rows: int) -> bool:
    """Whether a query per folder beats one sorted scan for these folders."""
    if not tops or len(tops) > MAX_FOLDERS:
        return False
    return rows >= MIN_ROWS_PER_FOLDER * len(tops)


def _range_sql(expr: str, kind: pa.DataType | None, lo: datetime, hi: datetime) -> str:
    """``lo <= expr < hi`` written so DuckDB can prune row groups by the column itself
    (the engine's session is UTC, so this equals the CAST the folder key uses)."""
    a, b = f"{lo:%Y-%m-%d %H:%M:%S}", f"{hi:%Y-%m-%d %H:%M:%S}"
    if kind is not None and pa.types.is_timestamp(kind):
        if kind.tz is not None:
            return f"({expr}) >= TIMESTAMPTZ '{a}+00' AND ({expr}) < TIMESTAMPTZ '{b}+00'"
        return f"({expr}) >= TIMESTAMP '{a}' AND ({expr}) < TIMESTAMP '{b}'"
    if kind is not None and pa.types.is_date(kind) and lo.hour == 0 and hi.hour == 0:
        return f"({expr}) >= DATE '{lo:%Y-%m-%d}' AND ({expr}) < DATE '{hi:%Y-%m-%d}'"
    cast = f"CAST(({expr}) AS TIMESTAMP)"
    return f"{cast} >= TIMESTAMP '{a}' AND {cast} < TIMESTAMP '{b}'"


def folder_requests(
    request: ScanRequest,
    partitioning: Partitioning,
    schema: pa.Schema,
    tops: list[str | None],
) -> list[ScanRequest]:
    """One request per top-level folder, in folder order, each ordered by the
    sub-partition keys only."""
    expr = partitioning.time_expression
    assert expr is not None
    kind = schema.field(expr).type if expr in schema.names else None
    expr = column_sql(expr, schema.names)
    pattern = partitioning.time_layout
    key_sql = time_sql(expr, partitioning.granularity, pattern)
    order = tuple(k for k in request.order_by if k != layout.TIME_KEY)
    out: list[ScanRequest] = []
    for top in sorted(tops, key=lambda t: (t is None, t or "")):
        if top is None:
            where = f"({expr}) IS NULL"
        elif not re.fullmatch(r"[0-9A-Za-z_=/-]+", top):  # a time folder: no quote
            raise ValueError(f"unexpected time folder key {top!r}")
        else:
            lo, hi = layout.time_folder_bounds(top, partitioning.granularity, pattern)
            where = f"{_range_sql(expr, kind, lo, hi)} AND {key_sql} = '{top}'"
        combined = f"({request.filter}) AND {where}" if request.filter else where
        out.append(dataclasses.replace(request, filter=combined, order_by=order))
    return out


def range_request(
    request: ScanRequest, partitioning: Partitioning, schema: pa.Schema, lo: datetime, hi: datetime
) -> ScanRequest:
    """The request narrowed to the rows whose time expression is in ``[lo, hi)``."""
    expr = partitioning.time_expression
    assert expr is not None
    kind = schema.field(expr).type if expr in schema.names else None
    where = _range_sql(column_sql(expr, schema.names), kind, lo, hi)
    combined = f"({request.filter}) AND {where}" if request.filter else where
    return dataclasses.replace(request, filter=combined)


def scan_by_folder(engine: Engine, requests: list[ScanRequest]) -> pa.RecordBatchReader:
    """The requests' rows as one reader, one query after the other."""
    first = engine.scan(requests[0])

    def batches() -> Iterator[pa.RecordBatch]:
        reader = first
        for nxt in [*requests[1:], None]:
            try:
                yield from reader
            finally:
                reader.close()
            if nxt is not None:
                reader = engine.scan(nxt)

    return pa.RecordBatchReader.from_batches(first.schema, batches())
