"""DuckDB's Arrow types as the DuckDB engine promises them.

DuckDB hands Arrow its own types (VARCHAR ``string``, BLOB ``binary``: 32-bit offsets,
see the engine's ``arrow_large_buffer_size``); the one spelling it differs in is UTC,
which it names ``Etc/UTC``. :func:`normalize_schema` writes ``UTC`` instead, at any
depth (lists, structs, maps), so :meth:`DuckDBEngine.schema` and the batches of
:meth:`DuckDBEngine.scan` agree with each other and with the BigQuery engine.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["normalize_schema", "normalize_type"]


def normalize_type(t: pa.DataType) -> pa.DataType:
    """DuckDB names UTC ``Etc/UTC``; we promise ``UTC`` (same instants, one spelling)."""
    if pa.types.is_timestamp(t):
        return pa.timestamp(t.unit, "UTC") if t.tz in ("Etc/UTC", "UTC") else t
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(normalize_type(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(normalize_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(normalize_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(
            t.key_field.with_type(normalize_type(t.key_type)),
            t.item_field.with_type(normalize_type(t.item_type)),
        )
    return t


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every type passed through :func:`normalize_type`."""
    return pa.schema(
        [f.with_type(normalize_type(f.type)) for f in schema], metadata=schema.metadata
    )
