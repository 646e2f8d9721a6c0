"""BigQuery column types as Arrow types, exactly, and batches made to match them.

=============  =======================================
BigQuery       Arrow
=============  =======================================
INT64          int64
FLOAT64        float64
NUMERIC        decimal128(38, 9)
BIGNUMERIC     decimal256(76, 38)
BOOL           bool
STRING         string
BYTES          binary
DATE           date32
TIME           time64[us]
DATETIME       timestamp[us] (no time zone: a wall-clock time)
TIMESTAMP      timestamp[us, UTC]
JSON           string (the JSON text)
GEOGRAPHY      string (WKT)
REPEATED x     list<item: x>, never NULL (an empty list instead)
RECORD/STRUCT  struct of the fields
=============  =======================================

Top-level ``REQUIRED`` and ``REPEATED`` columns are not nullable; fields inside a
RECORD are (a NULL record has NULL fields). Whatever path read the rows (Storage Read API,
REST pages), :func:`conform` casts each batch to this one schema, so a scan's schema
is :meth:`BigQueryEngine.schema` whatever the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from dpexport.errors import InvalidArgument

if TYPE_CHECKING:
    from google.cloud.bigquery import SchemaField

__all__ = [
    "arrow_field",
    "arrow_schema",
    "conform",
    "needs_sql_conversion",
    "portable_wrappers",
]

_SCALARS: dict[str, pa.DataType] = {
    "INT64": pa.int64(),
    "INTEGER": pa.int64(),
    "FLOAT64": pa.float64(),
    "FLOAT": pa.float64(),
    "NUMERIC": pa.decimal128(38, 9),
    "DECIMAL": pa.decimal128(38, 9),
    "BIGNUMERIC": pa.decimal256(76, 38),
    "BIGDECIMAL": pa.decimal256(76, 38),
    "BOOL": pa.bool_(),
    "BOOLEAN": pa.bool_(),
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "JSON": pa.string(),
    "GEOGRAPHY": pa.string(),
}

#: Types whose value must be converted in SQL to read as the Arrow type above on every
#: path: SQL function applied to the column in a query.
_PORTABLE: dict[str, str] = {
    "GEOGRAPHY": "ST_ASTEXT",
    "JSON": "TO_JSON_STRING",
}


def _type_of(field: SchemaField) -> pa.DataType:
    kind = (field.field_type or "").upper()
    if kind in ("RECORD", "STRUCT"):
        # Fields of a RECORD stay nullable: a NULL record has NULL fields.
        return pa.struct([arrow_field(f).with_nullable(True) for f in field.fields])
    try:
        return _SCALARS[kind]
    except KeyError:
        raise InvalidArgument(
            f"column {field.name!r}: unsupported BigQuery type {kind!r}"
        ) from None


def arrow_field(field: SchemaField) -> pa.Field:
    """One BigQuery column as an Arrow field (REQUIRED and REPEATED are not nullable)."""
    value = _type_of(field)
    mode = (field.mode or "NULLABLE").upper()
    if mode == "REPEATED":
        return pa.field(field.name, pa.list_(pa.field("item", value)), nullable=False)
    return pa.field(field.name, value, nullable=mode != "REQUIRED")


def arrow_schema(fields: Iterable[SchemaField]) -> pa.Schema:
    """A table's BigQuery schema as an Arrow schema, in table order."""
    return pa.schema([arrow_field(f) for f in fields])


def portable_wrappers(fields: Iterable[SchemaField]) -> dict[str, str]:
    """Top-level columns whose values must go through an SQL function in a query
    (GEOGRAPHY -> WKT, JSON -> text) to read as :data:`_SCALARS` says."""
    out: dict[str, str] = {}
    for f in fields:
        kind = (f.field_type or "").upper()
        if kind in _PORTABLE and (f.mode or "").upper() != "REPEATED":
            out[f.name] = _PORTABLE[kind]
    return out


def needs_sql_conversion(fields: Iterable[SchemaField]) -> list[str]:
    """Columns (at any depth) the Storage Read API would not hand over as
    :data:`_SCALARS` says (GEOGRAPHY arrives as WKB on some servers, JSON as an
    extension type): such scans go through a query."""
    names: list[str] = []
    for f in fields:
        kind = (f.field_type or "").upper()
        nested = kind in ("RECORD", "STRUCT") and bool(needs_sql_conversion(f.fields))
        if kind in _PORTABLE or nested:
            names.append(f.name)
    return names


def _fill_lists(array: pa.Array, target: pa.DataType) -> pa.Array:
    """NULL lists -> empty lists (BigQuery's REPEATED is never NULL)."""
    if array.null_count == 0:
        return array
    empty = pa.scalar([], type=target)
    return pc.if_else(pc.is_valid(array), array, empty)


def _conform_array(array: pa.Array, field: pa.Field) -> pa.Array:
    target = field.type
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(target) and pa.types.is_binary(array.type):
        # A GEOGRAPHY/JSON read as bytes by a server: text it is.
        array = array.cast(pa.string())
    if (
        pa.types.is_timestamp(target)
        and pa.types.is_timestamp(array.type)
        and (target.tz is None) != (array.type.tz is None)
    ):
        raise InvalidArgument(
            f"column {field.name!r}: server sent {array.type}, the table says {target}"
        )
    if array.type != target:
        array = array.cast(target)
    if pa.types.is_list(target) and not field.nullable:
        array = _fill_lists(array, target)
    return array


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns, types and nullability (by name)."""
    arrays = [_conform_array(batch.column(f.name), f) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
