"""Vectorized Arrow -> text, shared by the JSONL and CSV writers.

One rule per type, used by both text formats (pyarrow.compute, no per-row Python
except for the rare cases named below):

- timestamps: RFC 3339 in UTC with ``Z``; naive timestamps are taken as UTC. The
  fraction always has the column's precision (``s``: none, ``ms``: 3 digits,
  ``us``: 6, ``ns``: 9), so ``2025-09-16T14:30:22.000000Z`` keeps its zeros. JSON
  takes the other ``timestamp_format`` values of :data:`TIMESTAMP_FORMATS` through
  :class:`JsonStyle` (``+00:00`` for ``Z``, or Unix epoch numbers);
- dates ``YYYY-MM-DD``; times ``HH:MM:SS[.ffffff]``;
- integers exact; decimals exact, in plain notation (never ``1E-9``). In JSON a
  DECIMAL (at any depth) and a UINT64 are strings of those digits, as BigQuery's own
  JSON export writes NUMERIC: DuckDB, pandas, polars and pyarrow read a bare
  ``12345678901234567890.123456789`` as the double ``1.2345678901234567e+19``, and
  pyarrow turns a column holding a UINT64 above 2**63 into doubles. INT64 stays a bare
  number: all four read every 64-bit value of it exactly (measured: INT64 min and max,
  2**53 + 1), and a string would cost three of them the type. The rule goes by type, so
  every value of a column, in every file, has one JSON type (a reader meeting a number
  and then a string in one column fails or falls back to text);
- floats: the shortest text that reads back to the same value, with ``.0`` added
  to integral values so readers keep the type (``1.0``, ``-0.0``, ``1e+300``);
  NaN and ±Infinity are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` in
  JSON (it has no such numbers; BigQuery's JSON API writes FLOAT64 so, and a reader
  tells them from ``null``) and ``NaN``/``Infinity``/``-Infinity`` in CSV;
- booleans ``true``/``false``; binary as standard base64 (per-value Python);
- intervals in DuckDB's text (:mod:`dpexport.formats.intervals`), a JSON string;
- lists and structs as nested JSON; maps as JSON objects keyed by the key's text;
  types with no JSON form (unions, ...) via Python ``str`` per value;
- NULL in JSON: ``null``, or what :class:`JsonStyle` says (a string, or the key left out).
"""

from __future__ import annotations

import base64
import decimal
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dpexport.config.spec import NULL_JSON, NULL_OMIT, TIMESTAMP_FORMATS
from dpexport.formats.fidelity import json_quoted_number
from dpexport.formats.intervals import interval_text, is_interval, parse_interval

_JSON_CONTROL = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}

#: the JSON strings of NaN and ±Infinity, and the floats they stand for
NON_FINITE_JSON: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: Arrow's text of each non-finite float -> its JSON value
_JSON_NONFINITE: dict[str, str | None] = {
    "nan": '"NaN"',
    "inf": '"Infinity"',
    "-inf": '"-Infinity"',
}


@dataclass(frozen=True)
class JsonStyle:
    """How JSON text writes timestamps and NULL (spec 2.2 ``timestamp_format``,
    ``null_representation``; see :data:`dpexport.config.spec.TIMESTAMP_FORMATS`)."""

    timestamps: str = "RFC3339"
    null_representation: str = NULL_JSON

    def __post_init__(self) -> None:
        if self.timestamps not in TIMESTAMP_FORMATS:
            raise ValueError(f"unknown timestamp_format {self.timestamps!r}")

    @property
    def omit_nulls(self) -> bool:
        """A NULL field is left out of its object."""
        return self.null_representation == NULL_OMIT

    @property
    def null(self) -> str:
        """The JSON text of a NULL value (in a list, or a field that is not left out)."""
        if self.null_representation in (NULL_JSON, NULL_OMIT):
            return "null"
        return json.dumps(self.null_representation, ensure_ascii=False)


DEFAULT_STYLE = JsonStyle()
#: digits after the point of each timestamp unit, and its ticks per second
_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_EPOCH_UNITS = {"UNIX_EPOCH_MILLIS": "ms", "UNIX_EPOCH_MICROS": "us", "UNIX_EPOCH_NANOS": "ns"}


def _join(*pieces: Any) -> pa.Array:
    """Concatenate arrays and string literals element-wise."""
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in pieces]
    return pc.binary_join_element_wise(*args, "")


def _restore_nulls(source: pa.Array, text: pa.Array, null_text: str | None) -> pa.Array:
    if source.null_count:
        text = pc.if_else(pc.is_valid(source), text, pa.scalar(None, text.type))
    return text if null_text is None else pc.fill_null(text, null_text)


def _as_string(arr: pa.Array) -> pa.Array:
    if arr.type == pa.string():
        return arr
    return pc.cast(arr, pa.string())


def timestamp_text(arr: pa.Array) -> pa.Array:
    """RFC 3339, UTC, ``Z`` (see module doc)."""
    # Stored values are UTC whatever the zone; printing them as naive is ~20x faster
    # than strftime or a zoned cast, and gives "YYYY-MM-DD HH:MM:SS[.fff]".
    return _join(_timestamp_body(arr), "Z")


def _timestamp_body(arr: pa.Array) -> pa.Array:
    """RFC 3339 text without the ``Z``."""
    naive = arr.cast(pa.timestamp(arr.type.unit)) if arr.type.tz is not None else arr
    return pc.replace_substring(pc.cast(naive, pa.string()), " ", "T", max_replacements=1)


def epoch_text(arr: pa.Array, timestamps: str) -> pa.Array:
    """A timestamp array as Unix epoch numbers: ``UNIX_EPOCH`` seconds with the
    column's digits after the point (exact: built from the integer ticks, never a
    float); the ``_MILLIS``/``_MICROS``/``_NANOS`` forms an integer in that unit, rounded
    down. Nulls stay null."""
    unit = arr.type.unit
    ticks = arr.cast(pa.timestamp(unit)).cast(pa.int64()) if arr.type.tz else arr.cast(pa.int64())
    target = _EPOCH_UNITS.get(timestamps)
    if target is None:  # UNIX_EPOCH: seconds, with a fraction when the unit has one
        digits = _UNIT_DIGITS[unit]
        if digits == 0:
            return _as_string(ticks)
        text = pc.utf8_lpad(_as_string(pc.abs(ticks)), width=digits + 1, padding="0")
        whole = _join(pc.utf8_slice_codeunits(text, 0, -digits), ".")
        text = _join(whole, pc.utf8_slice_codeunits(text, -digits))
        negative = pc.fill_null(pc.less(ticks, 0), False)
        return pc.if_else(negative, _join("-", text), text) if pc.any(negative).as_py() else text
    shift = _UNIT_DIGITS[target] - _UNIT_DIGITS[unit]
    if shift >= 0:
        return _as_string(pc.multiply_checked(ticks, 10**shift))
    scale = 10**-shift
    quotient = pc.divide(ticks, scale)  # truncates toward zero: round negatives down
    inexact = pc.less(pc.subtract(ticks, pc.multiply(quotient, scale)), 0)
    return _as_string(pc.if_else(inexact, pc.subtract(quotient, 1), quotient))


def epoch_overflow(arr: pa.Array, timestamps: str) -> int | None:
    """The first index of a timestamp array whose ``timestamps`` epoch integer does
    not fit 64 bits (year 1 in nanoseconds), or None."""
    target = _EPOCH_UNITS.get(timestamps)
    shift = _UNIT_DIGITS[target] - _UNIT_DIGITS[arr.type.unit] if target else 0
    if shift <= 0:
        return None
    ticks = arr.cast(pa.timestamp(arr.type.unit)).cast(pa.int64())
    limit = (2**63 - 1) // 10**shift
    beyond = pc.fill_null(pc.greater(pc.abs(ticks), limit), False)
    return int(pc.index(beyond, True).as_py()) if pc.any(beyond).as_py() else None


def json_timestamp(arr: pa.Array, style: JsonStyle) -> pa.Array:
    """JSON values of a timestamp array in ``style`` (quoted text or bare numbers);
    nulls stay null."""
    if style.timestamps == "RFC3339":
        return _join('"', _timestamp_body(arr), 'Z"')
    if style.timestamps == "ISO8601":
        return _join('"', _timestamp_body(arr), '+00:00"')
    return epoch_text(arr, style.timestamps)


def float_text(arr: pa.Array, *, nonfinite: dict[str, str | None]) -> pa.Array:
    """Shortest round-trip text; ``nonfinite`` maps Arrow's ``nan``/``inf``/``-inf``."""
    if arr.type == pa.float16():
        arr = arr.cast(pa.float32())
    text = _as_string(arr)
    integral = pc.invert(pc.match_substring_regex(text, r"[.en]"))  # "1", "-0", "12345"
    if pc.any(integral).as_py():  # usually few: fix only those
        fixed = _join(pc.filter(text, integral), ".0")
        text = pc.replace_with_mask(text, pc.fill_null(integral, False), fixed)
    if not pc.all(pc.is_finite(arr)).as_py():  # nulls are skipped by all()
        for raw, replacement in nonfinite.items():
            text = pc.if_else(pc.equal(text, raw), pa.scalar(replacement, pa.string()), text)
    return text


def decimal_text(arr: pa.Array) -> pa.Array:
    """Exact digits in plain notation (Arrow prints tiny values as ``1E-9``)."""
    text = _as_string(arr)
    sci = pc.fill_null(pc.match_substring(text, "E"), False)
    if pc.any(sci).as_py():
        idx = pc.indices_nonzero(sci)
        fixed = [format(decimal.Decimal(s), "f") for s in text.take(idx).to_pylist()]
        text = pc.replace_with_mask(text, sci, pa.array(fixed, pa.string()))
    return text


def binary_text(arr: pa.Array) -> pa.Array:
    """Standard base64 (per-value; Arrow has no base64 kernel)."""
    return pa.array(
        [None if v is None else base64.b64encode(v).decode("ascii") for v in arr.to_pylist()],
        pa.string(),
    )


def json_string(arr: pa.Array) -> pa.Array:
    """JSON string literals (quoted, escaped); nulls stay null."""
    return _join('"', json_string_body(arr), '"')


def json_string_body(arr: pa.Array) -> pa.Array:
    """The escaped text between a JSON string literal's quotes; nulls stay null."""
    text = _as_string(arr)
    if not pc.any(pc.match_substring_regex(text, r'["\\\x00-\x1f]')).as_py():
        return text  # nothing to escape (the common case: one scan, no copy)
    text = pc.replace_substring(text, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            char = chr(code)
            if pc.any(pc.match_substring(text, char)).as_py():
                text = pc.replace_substring(text, char, _JSON_CONTROL.get(code, f"\\u{code:04x}"))
    return text


def is_stringy(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def is_binary(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _is_list(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    )


def scalar_text(arr: pa.Array, *, nonfinite: dict[str, str | None]) -> pa.Array | None:
    """Plain text of a non-nested, non-string value, or ``None`` if the type has none.

    Nulls stay null. Shared by JSON (unquoted numbers) and CSV (every field).
    """
    t = arr.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return _as_string(arr)
    if pa.types.is_floating(t):
        return float_text(arr, nonfinite=nonfinite)
    if pa.types.is_decimal(t):
        return decimal_text(arr)
    if pa.types.is_timestamp(t):
        return timestamp_text(arr)
    if pa.types.is_date(t):
        return _as_string(arr.cast(pa.date32()))
    if pa.types.is_time(t):
        return _as_string(arr)
    return None


def json_values(arr: pa.Array, style: JsonStyle = DEFAULT_STYLE) -> pa.Array:
    """One JSON value per element (``style.null`` for nulls); never null itself."""
    t = arr.type
    null = style.null
    if pa.types.is_dictionary(t):
        return json_values(arr.dictionary_decode(), style)
    if pa.types.is_null(t):
        return pa.array([null] * len(arr), pa.string())
    if is_stringy(t):
        return pc.fill_null(json_string(arr), null)
    if is_binary(t):
        return pc.fill_null(json_string(binary_text(arr)), null)
    if pa.types.is_timestamp(t):
        return pc.fill_null(json_timestamp(arr, style), null)
    if pa.types.is_date(t) or pa.types.is_time(t) or json_quoted_number(t):
        text = scalar_text(arr, nonfinite={})
        return pc.fill_null(_join('"', text, '"'), null)
    if is_interval(t):
        return pc.fill_null(json_string(interval_text(arr)), null)
    text = scalar_text(arr, nonfinite=_JSON_NONFINITE)
    if text is not None:
        return pc.fill_null(text, null)
    if _is_list(t):
        return _json_list(arr, style)
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        return _restore_nulls(arr, json_objects(names, arr.flatten(), style), null)
    if pa.types.is_map(t):
        return _json_map(arr, style)
    return pa.array(
        [null if v is None else json.dumps(str(v)) for v in arr.to_pylist()], pa.string()
    )


def _json_list(arr: pa.Array, style: JsonStyle) -> pa.Array:
    t = arr.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        arr = arr.cast(pa.large_list(t.value_type))
    cls = pa.LargeListArray if pa.types.is_large_list(arr.type) else pa.ListArray
    items = json_values(arr.values, style)
    rebuilt = cls.from_arrays(arr.offsets, items)
    text = _join("[", pc.binary_join(rebuilt, ","), "]")
    return _restore_nulls(arr, text, style.null)


def _json_map(arr: pa.Array, style: JsonStyle) -> pa.Array:
    keys = arr.keys
    key_text = _as_string(keys) if not is_stringy(keys.type) else keys
    entries = _join(json_string(key_text), ":", json_values(arr.items, style))
    rebuilt = pa.ListArray.from_arrays(arr.offsets, entries)
    text = _join("{", pc.binary_join(rebuilt, ","), "}")
    return _restore_nulls(arr, text, style.null)


def json_objects(
    names: list[str], columns: list[pa.Array], style: JsonStyle = DEFAULT_STYLE
) -> pa.Array:
    """``{"name": value, ...}`` per row, keys in the given order (a NULL field left
    out when ``style.omit_nulls``)."""
    if not columns:
        return pa.array(["{}"] * 0, pa.string())
    if style.omit_nulls and any(col.null_count for col in columns):
        return _objects_without_nulls(names, columns, style)
    pieces: list[Any] = []
    for i, (name, col) in enumerate(zip(names, columns, strict=True)):
        pieces.append(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        pieces.extend(_json_pieces(col, style))
    pieces.append("}")
    merged: list[Any] = []  # adjacent literals as one: fewer arguments to the join
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return _join(*merged)


def _objects_without_nulls(names: list[str], columns: list[pa.Array], style: JsonStyle) -> pa.Array:
    """``json_objects`` where a NULL field is left out: each field is ``"name":value,``
    or empty for a NULL, and the last comma goes. (``binary_join_element_wise``'s
    ``null_handling="skip"`` would say it in one call, but drops trailing rows whose
    inputs are all null: pyarrow 26.)"""
    fields = []
    for name, col in zip(names, columns, strict=True):
        text = _join(json.dumps(name, ensure_ascii=False) + ":", json_values(col, style), ",")
        fields.append(_restore_nulls(col, text, "") if col.null_count else text)
    body = pc.utf8_slice_codeunits(_join(*fields), 0, -1)
    return _join("{", body, "}")


def _json_pieces(arr: pa.Array, style: JsonStyle) -> list[Any]:
    """``json_values(arr)`` as literals and arrays to join: a column without nulls has
    its quotes (and a timestamp its ``Z``) in the literals around it, saving a pass."""
    t = arr.type
    if arr.null_count == 0:
        if is_stringy(t):
            return ['"', json_string_body(arr), '"']
        if pa.types.is_timestamp(t) and style.timestamps == "RFC3339":
            return ['"', _timestamp_body(arr), 'Z"']
        if pa.types.is_date(t) or pa.types.is_time(t) or json_quoted_number(t):
            return ['"', scalar_text(arr, nonfinite={}), '"']
    return [json_values(arr, style)]


def buffer_of(lines: pa.Array) -> pa.Buffer:
    """The concatenated bytes of a string array (zero-copy slice of its data buffer)."""
    if len(lines) == 0:
        return pa.py_buffer(b"")
    if lines.type == pa.large_string():
        width, fmt = 8, "<q"
    else:
        lines = lines.cast(pa.string()) if lines.type != pa.string() else lines
        width, fmt = 4, "<i"
    _validity, offsets, data = lines.buffers()
    first = lines.offset * width
    (start,) = struct.unpack_from(fmt, offsets, first)
    (end,) = struct.unpack_from(fmt, offsets, first + len(lines) * width)
    return data.slice(start, end - start)


def with_non_finite(value: Any, t: pa.DataType) -> Any:
    """A decoded JSON value of type ``t`` with the strings JSON text writes for what
    it has no number for turned back into values of ``t``, nested ones too: those of
    :data:`NON_FINITE_JSON` where ``t`` holds a float, a decimal's or UINT64's digits,
    an interval's text."""
    if value is None:
        return None
    if pa.types.is_dictionary(t):
        return with_non_finite(value, t.value_type)
    if isinstance(value, str):
        if pa.types.is_floating(t):
            return NON_FINITE_JSON.get(value, value)
        if json_quoted_number(t):
            return decimal.Decimal(value) if pa.types.is_decimal(t) else int(value)
        if is_interval(t):
            return parse_interval(value)
        return value
    if _is_list(t) and isinstance(value, list):
        return [with_non_finite(v, t.value_type) for v in value]
    if pa.types.is_struct(t) and isinstance(value, dict):
        fields = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
        return {k: with_non_finite(v, fields[k]) if k in fields else v for k, v in value.items()}
    if pa.types.is_map(t) and isinstance(value, dict):
        return {k: with_non_finite(v, t.item_type) for k, v in value.items()}
    return value


def _per_value(col: pa.ChunkedArray, t: pa.DataType, convert: Any) -> pa.ChunkedArray:
    """``col`` as ``t``, each non-null value through ``convert`` (what no kernel does)."""
    chunks = [
        pa.array([None if v is None else convert(v) for v in c.to_pylist()], t) for c in col.chunks
    ]
    return pa.chunked_array(chunks, t)


def _is_nested(t: pa.DataType) -> bool:
    return bool(_is_list(t) or pa.types.is_struct(t) or pa.types.is_map(t))


def restore_types(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Turn columns read back as text-friendly types into ``schema``'s types.

    Base64 text becomes binary; UTC timestamps get their zone back; JSON text
    (CSV's nested columns) is parsed; interval text is parsed; anything else is cast
    (a decimal's or UINT64's JSON string too), or, for a nested type no cast reaches
    (intervals inside), rebuilt value by value.
    """
    columns = []
    for field in schema:
        col = table.column(field.name)
        t = field.type
        if col.type == t:
            pass
        elif is_binary(t) and is_stringy(col.type):
            col = _per_value(col, t, base64.b64decode)
        elif is_interval(t) and is_stringy(col.type):
            col = _per_value(col, t, parse_interval)
        elif _is_nested(t) and is_stringy(col.type):
            col = _per_value(col, t, lambda v, t=t: with_non_finite(json.loads(v), t))
        elif _is_nested(t):
            try:
                col = col.cast(t)
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
                col = _per_value(col, t, lambda v, t=t: with_non_finite(v, t))
        else:
            col = col.cast(t)
        columns.append(col)
    return pa.table(columns, schema=schema)
