"""Which values the text formats write in a form other than their type's natural one,
and what the manifest's ``schema`` says about it, so a consumer can read every
digit back (issue 22).

- JSONL writes a DECIMAL (at any depth) and a UINT64 as a JSON *string* of its digits
  (:mod:`dpexport.formats.text` says why), and an INTERVAL as a string of DuckDB's text.
  Their manifest ``schema`` entries say ``"json": "string"``.
- JSONL and CSV write an INTERVAL as DuckDB's text: ``"text": "duckdb_interval"``.
- Parquet stores an INTERVAL as a struct (:mod:`dpexport.formats.intervals`):
  ``"parquet": "struct<months: int32, days: int32, nanoseconds: int64>"``.

``schema_hash`` does not cover these notes: they follow from the type and the format.

**INT64 stays a JSON number**, unlike BigQuery's JSON export, which quotes it. Measured
with pyarrow 26, polars 2.1, DuckDB 2.0 and pandas 3.1 (``tests/readers/`` holds each
claim): pyarrow's, polars' and DuckDB's JSON readers read INT64 min/max and 2**53 + 1
as bare numbers exactly at their defaults. pandas' default engine turns an integer
column holding a NULL into float64 before any ``dtype=`` applies (``Int64`` and ``str``
included), so it loses digits past 2**53; ``engine="pyarrow"`` with
``dtype_backend="numpy_nullable"`` (or ``"pyarrow"``) reads them exactly. As quoted
strings, INT64 would not help pandas at its defaults either (it coerces numeric strings
to float64 the same way; ``dtype={col: "Int64"}`` is then its way), and the other three
would read every BIGINT column as text until told its type. Decimals and UINT64s are
quoted: at their defaults pyarrow, polars, pandas and DuckDB read bare ones as doubles.
The one gap: pandas' pyarrow engine (like pyarrow's JSON reader) cannot
read a file whose float column mixes numbers with the ``"NaN"``/``"Infinity"``
strings (:mod:`dpexport.formats.jsonl`), and then pandas has no exact way to read INT64s past
2**53 in a column holding a NULL. Quoting INT64 would close it at the cost above (and
would change every JSONL consumer's BIGINT columns).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from dpexport.formats import intervals


def json_quoted_number(t: pa.DataType) -> bool:
    """A number type JSON writes as a string of its digits (see module doc)."""
    return bool(pa.types.is_decimal(t) or pa.types.is_uint64(t))


def _has(t: pa.DataType, test: Any) -> bool:
    """Whether ``t`` or a type nested in it passes ``test``."""
    if pa.types.is_dictionary(t):
        return _has(t.value_type, test)
    if test(t):
        return True
    return any(_has(t.field(i).type, test) for i in range(t.num_fields))


def field_notes(t: pa.DataType, format: str) -> dict[str, str]:
    """The keys a manifest ``schema`` entry of a column of type ``t`` gains in ``format``.

    A column holding them nested (a STRUCT, LIST or MAP of them) says so: ``"json":
    "nested decimals and UINT64s and intervals as strings"`` (what it holds),
    ``"parquet": "nested intervals as struct<...>"``.
    """
    notes: dict[str, str] = {}
    if pa.types.is_dictionary(t):
        t = t.value_type
    top_interval = intervals.is_interval(t)
    if format == "JSONL" and (json_quoted_number(t) or top_interval):
        notes["json"] = "string"
    elif format == "JSONL":
        held = [
            kind
            for kind, test in (
                ("decimals and UINT64s", json_quoted_number),
                ("intervals", intervals.is_interval),
            )
            if _has(t, test)
        ]
        if held:
            notes["json"] = f"nested {' and '.join(held)} as strings"
    holds_interval = _has(t, intervals.is_interval)
    if format in ("JSONL", "CSV") and holds_interval:
        notes["text"] = intervals.TEXT_FORM
    if format == "PARQUET" and holds_interval:
        stored = str(intervals.PARQUET_TYPE)
        notes["parquet"] = stored if top_interval else f"nested intervals as {stored}"
    return notes
