"""INTERVAL values (Arrow ``month_day_nano_interval``) in the forms each format can hold.

- **Text** (JSONL, CSV): DuckDB's own text, ``1 year 2 months 3 days 04:05:06.789123``:
  what ``CAST(interval AS VARCHAR)`` prints, and what DuckDB (and PostgreSQL) cast back
  to an INTERVAL exactly; pandas' ``Timedelta`` parses it when it has no months. ISO
  8601 (``P1Y2M3DT4H5M6.789S``) was the other candidate: DuckDB 2.0 cannot cast it and
  pandas refuses it too once it has months, so it would be read back by neither. A
  fraction has up to 9 digits (Arrow keeps nanoseconds; DuckDB truncates to micro).
- **Parquet**: pyarrow 26 cannot write ``month_day_nano_interval`` ("Unhandled type for
  Arrow to Parquet schema conversion"), and Parquet's own INTERVAL (what DuckDB's COPY
  writes: 12 bytes of months, days and milliseconds) drops sub-millisecond digits and
  is read by pyarrow and polars as opaque bytes. So the column is written as
  :data:`PARQUET_TYPE`, a struct of the three components, exact and readable everywhere
  (DuckDB: ``to_months(c.months) + to_days(c.days) + to_microseconds(c.nanoseconds //
  1000)``); the field carries :data:`ORIGINAL_TYPE_KEY` so dpexport reads it back as
  an interval.
"""

from __future__ import annotations

import re

import pyarrow as pa

#: the Parquet column of an INTERVAL (see module doc)
PARQUET_TYPE = pa.struct(
    [
        pa.field("months", pa.int32()),
        pa.field("days", pa.int32()),
        pa.field("nanoseconds", pa.int64()),
    ]
)
#: field metadata naming the Arrow type a stored column stands for
ORIGINAL_TYPE_KEY = b"dpexport.arrow_type"
INTERVAL_NAME = b"month_day_nano_interval"
#: the manifest's name of the text form
TEXT_FORM = "duckdb_interval"
_PARTS = ("months", "days", "nanoseconds")
_TEXT = re.compile(
    r"(?:(?P<years>-?\d+) years?)?\s*(?:(?P<months>-?\d+) months?)?\s*"
    r"(?:(?P<days>-?\d+) days?)?\s*"
    r"(?:(?P<sign>-)?(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
)


def is_interval(t: pa.DataType) -> bool:
    return bool(pa.types.is_interval(t))


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if abs(count) == 1 else "s")


def format_interval(months: int, days: int, nanoseconds: int) -> str:
    """DuckDB's text of one interval (``-1 year -2 months 3 days -00:00:01.5``)."""
    parts = []
    years, rest = divmod(abs(months), 12)
    sign = -1 if months < 0 else 1
    if years:
        parts.append(_plural(sign * years, "year"))
    if rest:
        parts.append(_plural(sign * rest, "month"))
    if days:
        parts.append(_plural(days, "day"))
    if nanoseconds or not parts:
        seconds, fraction = divmod(abs(nanoseconds), 10**9)
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        clock = f"{'-' if nanoseconds < 0 else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            clock += "." + f"{fraction:09d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def parse_interval(text: str) -> tuple[int, int, int]:
    """(months, days, nanoseconds) of :func:`format_interval`'s text; ``ValueError`` else."""
    found = _TEXT.fullmatch(text.strip())
    if found is None or not text.strip():
        raise ValueError(f"not an interval: {text!r}")
    g = found.groupdict()
    months = int(g["years"] or 0) * 12 + int(g["months"] or 0)
    nanos = 0
    if g["h"] is not None:
        fraction = int((g["f"] or "").ljust(9, "0"))
        nanos = (int(g["h"]) * 3600 + int(g["m"]) * 60 + int(g["s"])) * 10**9 + fraction
        nanos = -nanos if g["sign"] else nanos
    return months, int(g["days"] or 0), nanos


def interval_text(arr: pa.Array) -> pa.Array:
    """DuckDB's text of each interval; nulls stay null (per value: intervals are rare)."""
    return pa.array(
        [None if v is None else format_interval(*v) for v in arr.to_pylist()], pa.string()
    )


def to_parquet(arr: pa.Array) -> pa.Array:
    """An interval array as :data:`PARQUET_TYPE` (per value, like the text forms)."""
    rows = [None if v is None else dict(zip(_PARTS, v, strict=True)) for v in arr.to_pylist()]
    return pa.array(rows, PARQUET_TYPE)


def from_parquet(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """:func:`to_parquet`'s inverse."""
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([from_parquet(c) for c in arr.chunks], pa.month_day_nano_interval())
    rows = [None if v is None else tuple(v[p] for p in _PARTS) for v in arr.to_pylist()]
    return pa.array(rows, pa.month_day_nano_interval())


def parquet_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each INTERVAL column as :data:`PARQUET_TYPE`, marked."""
    fields = []
    for f in schema:
        if is_interval(f.type):
            meta = {**(f.metadata or {}), ORIGINAL_TYPE_KEY: INTERVAL_NAME}
            f = pa.field(f.name, PARQUET_TYPE, f.nullable, meta)
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def has_interval(schema: pa.Schema) -> bool:
    return any(is_interval(f.type) for f in schema)


def batch_to_parquet(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with its INTERVAL columns as :data:`PARQUET_TYPE` (``schema``:
    :func:`parquet_schema` of the batch's)."""
    columns = [to_parquet(c) if is_interval(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def restore_parquet(table: pa.Table) -> pa.Table:
    """Columns written by :func:`parquet_schema` back as intervals."""
    for i, f in enumerate(table.schema):
        if (f.metadata or {}).get(ORIGINAL_TYPE_KEY) == INTERVAL_NAME:
            meta = {k: v for k, v in f.metadata.items() if k != ORIGINAL_TYPE_KEY}
            field = pa.field(f.name, pa.month_day_nano_interval(), f.nullable, meta or None)
            table = table.set_column(i, field, from_parquet(table.column(i)))
    return table
