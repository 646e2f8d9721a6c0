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
  an interval. An interval inside a STRUCT, LIST (fixed-size too) or MAP is stored the
  same way at its depth, its field marked (Parquet keeps nested fields' metadata); one
  inside any other type (a dictionary, a union) is refused by :func:`parquet_schema`,
  naming the column, when the file is opened: before anything is committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


def _holds(t: pa.DataType) -> bool:
    """Whether ``t`` is or holds (at any depth) an interval."""
    if pa.types.is_dictionary(t):
        return _holds(t.value_type)
    return is_interval(t) or any(_holds(t.field(i).type) for i in range(t.num_fields))


def has_interval(schema: pa.Schema) -> bool:
    """Whether a column of ``schema`` is or holds an interval (Parquet stores it otherwise)."""
    return any(_holds(f.type) for f in schema)


class NestedIntervalError(ValueError):
    """An interval inside a type Parquet cannot hold rebuilt (a union, a dictionary, a
    list view); the message names the column."""


def _stored_field(f: pa.Field, column: str) -> pa.Field:
    """``f`` as Parquet stores it: an interval as :data:`PARQUET_TYPE`, marked with
    :data:`ORIGINAL_TYPE_KEY` (Parquet keeps nested fields' metadata too), at any depth."""
    t = f.type
    if is_interval(t):
        meta = {**(f.metadata or {}), ORIGINAL_TYPE_KEY: INTERVAL_NAME}
        return pa.field(f.name, PARQUET_TYPE, f.nullable, meta)
    if not _holds(t):
        return f
    if pa.types.is_struct(t):
        stored: pa.DataType = pa.struct([_stored_field(c, column) for c in t])
    elif pa.types.is_list(t):
        stored = pa.list_(_stored_field(t.value_field, column))
    elif pa.types.is_large_list(t):
        stored = pa.large_list(_stored_field(t.value_field, column))
    elif pa.types.is_fixed_size_list(t):
        stored = pa.list_(_stored_field(t.value_field, column), t.list_size)
    elif pa.types.is_map(t):
        key, item = (_stored_field(x, column) for x in (t.key_field, t.item_field))
        stored = pa.map_(key, item, t.keys_sorted)
    else:
        raise NestedIntervalError(
            f"column {column!r} holds an INTERVAL inside {t}, which dpexport cannot write to "
            "Parquet (intervals are stored as structs inside structs, lists and maps only); "
            "cast it in a transform or export the table as JSONL or CSV"
        )
    return f.with_type(stored)


def parquet_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each INTERVAL, at any depth, as :data:`PARQUET_TYPE`, marked;
    :class:`NestedIntervalError` for one inside a type that cannot be rebuilt."""
    fields = [_stored_field(f, f.name) for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _mask(arr: pa.Array) -> pa.Array | None:
    return arr.is_null() if arr.null_count else None


def _rebased(arr: pa.Array) -> tuple[pa.Array, slice]:
    """A list or map array's offsets from 0, and the slice of its children they index
    (Arrow cannot build a list with a null mask over offsets that are a slice)."""
    import pyarrow.compute as pc  # here: a Parquet run without nested intervals loads none

    offsets = arr.offsets
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    return pc.subtract(offsets, pa.scalar(first, offsets.type)), slice(first, last)


def _rebuilt(arr: pa.Array, target: pa.DataType, leaf: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``arr`` as ``target``, a type that differs from it only in its interval leaves,
    which ``leaf`` converts; offsets, children and null masks are reused. Both ways
    between a schema and its :func:`parquet_schema` go through here."""
    t = arr.type
    if t == target:
        return arr
    if len(arr) == 0:
        return pa.array([], target)
    if is_interval(t) or is_interval(target):
        return leaf(arr)
    if pa.types.is_struct(t):
        children = [_rebuilt(c, target.field(i).type, leaf) for i, c in enumerate(arr.flatten())]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=_mask(arr))
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        values = arr.values.slice(arr.offset * size, len(arr) * size)
        inner = _rebuilt(values, target.value_type, leaf)
        return pa.FixedSizeListArray.from_arrays(inner, type=target, mask=_mask(arr))
    offsets, part = _rebased(arr)
    if pa.types.is_map(t):
        keys = _rebuilt(arr.keys[part], target.key_type, leaf)
        items = _rebuilt(arr.items[part], target.item_type, leaf)
        return pa.MapArray.from_arrays(offsets, keys, items, type=target, mask=_mask(arr))
    cls = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
    inner = _rebuilt(arr.values[part], target.value_type, leaf)
    return cls.from_arrays(offsets, inner, type=target, mask=_mask(arr))


def batch_to_parquet(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with its intervals, at any depth, as :data:`PARQUET_TYPE` (``schema``:
    :func:`parquet_schema` of the batch's)."""
    columns = [_rebuilt(c, f.type, to_parquet) for c, f in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _original_field(f: pa.Field) -> pa.Field:
    """The field :func:`_stored_field` stored as ``f``."""
    meta = f.metadata or {}
    if meta.get(ORIGINAL_TYPE_KEY) == INTERVAL_NAME:
        rest = {k: v for k, v in meta.items() if k != ORIGINAL_TYPE_KEY}
        return pa.field(f.name, pa.month_day_nano_interval(), f.nullable, rest or None)
    t = f.type
    if pa.types.is_struct(t):
        return f.with_type(pa.struct([_original_field(c) for c in t]))
    if pa.types.is_list(t):
        return f.with_type(pa.list_(_original_field(t.value_field)))
    if pa.types.is_large_list(t):
        return f.with_type(pa.large_list(_original_field(t.value_field)))
    if pa.types.is_fixed_size_list(t):
        return f.with_type(pa.list_(_original_field(t.value_field), t.list_size))
    if pa.types.is_map(t):
        key, item = (_original_field(x) for x in (t.key_field, t.item_field))
        return f.with_type(pa.map_(key, item, t.keys_sorted))
    return f


def restore_parquet(table: pa.Table) -> pa.Table:
    """Columns written by :func:`parquet_schema` back as intervals, nested ones too."""
    for i, f in enumerate(table.schema):
        original = _original_field(f)
        if original.equals(f, check_metadata=True):
            continue
        column = table.column(i)
        chunks = [_rebuilt(c, original.type, from_parquet) for c in column.chunks]
        table = table.set_column(i, original, pa.chunked_array(chunks, original.type))
    return table
