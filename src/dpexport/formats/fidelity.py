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
    """The keys a manifest ``schema`` entry of a column of type ``t`` gains in ``format``."""
    notes: dict[str, str] = {}
    if pa.types.is_dictionary(t):
        t = t.value_type
    if format == "JSONL" and (json_quoted_number(t) or intervals.is_interval(t)):
        notes["json"] = "string"
    elif format == "JSONL" and _has(t, json_quoted_number):
        notes["json"] = "nested decimals as strings"
    if format in ("JSONL", "CSV") and intervals.is_interval(t):
        notes["text"] = intervals.TEXT_FORM
    if format == "PARQUET" and intervals.is_interval(t):
        notes["parquet"] = str(intervals.PARQUET_TYPE)
    return notes
