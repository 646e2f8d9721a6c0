"""JSONL: one JSON object a line, keys in column order (spec 2.2).

Values follow :mod:`dpexport.formats.text`: RFC 3339 ``Z`` timestamps, exact
decimals (and UINT64) as JSON strings of their digits, intervals as DuckDB's text,
NaN and ±Infinity as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
(BigQuery's JSON form of FLOAT64, distinct from ``null``), bytes as base64 strings,
``null`` for NULL. Lines are built column-wise with pyarrow.compute;
the file is one whole-file stream in the chosen codec.

The spec 2.2 settings (:class:`~dpexport.config.spec.JsonlOptions`):
``timestamp_format`` and ``null_representation`` as :class:`~dpexport.formats.text.JsonStyle`
writes them; ``encoding`` the file's text encoding (UTF-8 by default);
``schema_included`` a first record ``{"$schema": {"fields": [...]}}`` holding the
manifest's ``schema`` (``$`` is in no BigQuery column name, so no row looks like it);
``newline_delimited: false`` one JSON array, ``[`` and ``]`` on lines of their own and
a row a line, each but the last ending in ``,``. Either way no JSON text holds a raw
newline, so rows are counted by lines (:func:`extra_lines` are not rows).

Arrow's JSON reader takes a float column's value as a number only, so
:func:`read_jsonl` turns those strings back into the bare ``NaN``/``Infinity``
literals it accepts, on the lines that hold them and only where the column is a float.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dpexport.config.spec import NULL_JSON, NULL_OMIT, JsonlOptions
from dpexport.formats.encodings import Unwritable
from dpexport.formats.fidelity import json_quoted_number
from dpexport.formats.parallel import TextFileWriter
from dpexport.formats.text import (
    JsonStyle,
    binary_text,
    buffer_of,
    epoch_overflow,
    is_binary,
    is_stringy,
    json_objects,
    restore_types,
    scalar_text,
    with_non_finite,
)

if TYPE_CHECKING:
    from dpexport.security.crypto import Encryptor


#: the key of the schema record (``schema_included``)
SCHEMA_KEY = "$schema"
#: between two rows of a JSON array (``newline_delimited: false``)
_ARRAY_SEPARATOR = ",\n"


def encode_jsonl(batch: pa.RecordBatch, style: JsonStyle | None = None) -> pa.Buffer:
    """The JSONL bytes of ``batch``: one object and ``\\n`` per row."""
    lines = json_objects(batch.schema.names, list(batch.columns), style or JsonStyle())
    lines = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    return buffer_of(lines)


class JsonlEncoder:
    """Encodes a slice of rows as :class:`~dpexport.config.spec.JsonlOptions` say."""

    def __init__(self, options: JsonlOptions) -> None:
        self.style = JsonStyle(options.timestamp_format, options.null_representation)
        self.array = not options.newline_delimited
        marker = options.null_representation
        self.marker = None if marker in (NULL_JSON, NULL_OMIT) else marker

    def __call__(self, batch: pa.RecordBatch) -> pa.Buffer:
        if self.marker is not None:
            _refuse_marker(batch, self.marker)
        if self.style.timestamps.startswith("UNIX_EPOCH_"):
            _refuse_overflow(batch, self.style.timestamps)
        if not self.array:
            return encode_jsonl(batch, self.style)
        lines = json_objects(batch.schema.names, list(batch.columns), self.style)
        text = buffer_of(pc.binary_join_element_wise(lines, pa.scalar(_ARRAY_SEPARATOR), ""))
        return text.slice(0, text.size - len(_ARRAY_SEPARATOR))  # the last row's


def _marker_rows(arr: pa.Array, marker: str) -> pa.Array | None:
    """Indices of the rows of ``arr`` holding a string (at any depth) or bytes (as
    base64) equal to ``marker``; None when the type holds neither."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return _marker_rows(arr.dictionary_decode(), marker)
    if is_stringy(t) or is_binary(t) or json_quoted_number(t):
        text = binary_text(arr) if is_binary(t) else arr
        if json_quoted_number(t):  # a JSON string of its digits too
            text = scalar_text(arr, nonfinite={})
        return pc.indices_nonzero(pc.fill_null(pc.equal(text, marker), False))
    if pa.types.is_struct(t):
        found = [_marker_rows(child, marker) for child in arr.flatten()]
        hits = [f for f in found if f is not None]
        return pa.concat_arrays(hits) if hits else None
    if isinstance(arr, pa.ListArray | pa.LargeListArray | pa.FixedSizeListArray | pa.MapArray):
        inner = _marker_rows(pc.list_flatten(arr), marker)
        return None if inner is None else pc.take(pc.list_parent_indices(arr), inner)
    return None


def _refuse_marker(batch: pa.RecordBatch, marker: str) -> None:
    """A value written as the same JSON string as NULL would read back as NULL."""
    first: tuple[int, str] | None = None
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        rows = _marker_rows(column, marker)
        if rows is not None and len(rows):
            row = pc.min(rows).as_py()
            if first is None or row < first[0]:
                first = (row, name)
    if first is not None:
        raise Unwritable(
            first[1],
            first[0],
            f"the value is {marker!r}, which null_representation writes for NULL: a "
            "reader could not tell them apart (choose another null_representation)",
        )


def _refuse_overflow(batch: pa.RecordBatch, timestamps: str) -> None:
    """A timestamp whose epoch integer in the format's unit is past 64 bits."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            row = epoch_overflow(column, timestamps)
            if row is not None:
                raise Unwritable(name, row, f"the timestamp is beyond {timestamps}'s 64 bits")


def schema_record(schema: pa.Schema) -> str:
    """The ``schema_included`` record: the manifest's ``schema`` under :data:`SCHEMA_KEY`."""
    from dpexport.publish.manifest import manifest_schema  # the manifest's own form

    # ASCII (``\\u`` escapes): the record fits any encoding, whatever the type names hold
    fields = manifest_schema(schema, "JSONL")
    return json.dumps({SCHEMA_KEY: {"fields": fields}}, separators=(",", ":"))


def extra_lines(options: JsonlOptions) -> int:
    """Lines of a file that are not rows: ``[`` and ``]``, the schema record."""
    return (0 if options.newline_delimited else 2) + (1 if options.schema_included else 0)


class JsonlWriter(TextFileWriter):
    """Writes one JSONL file (see module doc). Implements ``FormatWriter``."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        codec: str = "NONE",
        *,
        options: JsonlOptions | None = None,
        encryptor: Encryptor | None = None,
    ) -> None:
        self.options = options = options or JsonlOptions()
        array = not options.newline_delimited
        preamble = "[\n" if array else ""
        if options.schema_included:
            preamble += schema_record(schema) + ("" if array else "\n")
        super().__init__(
            path,
            schema,
            codec,
            JsonlEncoder(options),
            encryptor=encryptor,
            preamble=preamble,
            separator=_ARRAY_SEPARATOR if array else "",
            encoding=options.encoding,
            names=schema.names,
            separate_first=array and options.schema_included,
        )

    def postamble(self) -> str:
        if self.options.newline_delimited:
            return ""
        return "\n]\n" if self.rows or self.options.schema_included else "]\n"


def _read_type(t: pa.DataType, timestamps: str = "RFC3339") -> pa.DataType:
    """The type Arrow's JSON reader should parse a column as (then cast back)."""
    if is_binary(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pa.string()
    if json_quoted_number(t) or pa.types.is_interval(t):  # strings (formats.text)
        return pa.string()
    if pa.types.is_timestamp(t):
        if timestamps == "UNIX_EPOCH":  # exact seconds with the unit's digits
            return pa.decimal128(38, {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit])
        if timestamps.startswith("UNIX_EPOCH"):
            return pa.int64()
        return pa.timestamp(t.unit, "UTC") if t.tz is not None else t
    if pa.types.is_dictionary(t):
        return _read_type(t.value_type, timestamps)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_read_type(t.value_type, timestamps))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _read_type(f.type, timestamps)) for f in t])
    return t


_EPOCH_UNIT = {"UNIX_EPOCH_MILLIS": "ms", "UNIX_EPOCH_MICROS": "us", "UNIX_EPOCH_NANOS": "ns"}


def _from_epoch(table: pa.Table, schema: pa.Schema, timestamps: str) -> pa.Table:
    """Top-level timestamp columns read as epoch numbers, back to timestamps of
    ``schema`` (nested ones are cast by :func:`restore_types`)."""
    for i, field in enumerate(schema):
        t = field.type
        if not pa.types.is_timestamp(t):
            continue
        col = table.column(i)
        if timestamps == "UNIX_EPOCH":
            # the decimal's digits without its point are the ticks of the unit
            ticks = pc.replace_substring(col.cast(pa.string()), ".", "").cast(pa.int64())
            col = ticks.cast(pa.timestamp(t.unit, t.tz))
        else:
            col = col.cast(pa.timestamp(_EPOCH_UNIT[timestamps], t.tz)).cast(t)
        table = table.set_column(i, field.name, col)
    return table


#: a whole JSON string value that is a non-finite float's text (never inside a string:
#: there every quote is escaped, so none follows ``:``, ``[`` or ``,`` directly)
_NON_FINITE_VALUE = re.compile(rb'(?<=[:,\[])"(?:NaN|Infinity|-Infinity)"(?=[,}\]])')
_BLOCK_SIZE = 32 * 1024 * 1024  # a row must fit in one block


def read_jsonl(
    stream: Any, schema: pa.Schema | None = None, options: JsonlOptions | None = None
) -> pa.Table:
    """Read decompressed UTF-8 JSONL bytes (an Arrow input stream) written with
    ``options`` into a table of ``schema``; without one, Arrow infers the types (a
    float column's ``"NaN"`` strings read as floats when the column also holds numbers)."""
    options = options or JsonlOptions()
    chunks = []
    while chunk := stream.read(_BLOCK_SIZE):
        chunks.append(chunk)
    data = _rows_only(b"".join(chunks), options)
    try:
        return _read(data, schema, options)
    except pa.ArrowInvalid:
        if _NON_FINITE_VALUE.search(data) is None:
            raise
    if schema is None:
        nulled = _NON_FINITE_VALUE.sub(b"null", data)
        floats = pj.read_json(pa.BufferReader(nulled)).schema
        return _read(_bare_non_finite(data, floats), None, options)
    return _read(_bare_non_finite(data, schema), schema, options)


def _rows_only(data: bytes, options: JsonlOptions) -> bytes:
    """The file's rows as plain JSONL: without the array's brackets and commas, the
    schema record, and with the NULL marker string (``null_representation``) as ``null``."""
    if not options.newline_delimited or options.schema_included:
        lines = data.split(b"\n")
        if not options.newline_delimited:
            lines = [line.removesuffix(b",") for line in lines[1:-2]]  # "[" ... "]", ""
        data = b"\n".join(lines[1:] if options.schema_included else lines)
    marker = options.null_representation
    if marker not in (NULL_JSON, NULL_OMIT):
        # a whole value only: after ``:``, ``[`` or ``,`` and before ``,``, ``}`` or ``]``
        # (inside a JSON string every quote is escaped); no string equals it (the writer
        # refuses one), so each is a NULL
        quoted = re.escape(json.dumps(marker, ensure_ascii=False).encode())
        data = re.sub(rb"(?<=[:,\[])" + quoted + rb"(?=[,}\]])", b"null", data)
    return data


def _read(data: bytes, schema: pa.Schema | None, options: JsonlOptions) -> pa.Table:
    if schema is None:
        return pj.read_json(pa.BufferReader(data))
    timestamps = options.timestamp_format
    read_schema = pa.schema([pa.field(f.name, _read_type(f.type, timestamps)) for f in schema])
    table = pj.read_json(
        pa.BufferReader(data),
        read_options=pj.ReadOptions(block_size=_BLOCK_SIZE),
        parse_options=pj.ParseOptions(
            explicit_schema=read_schema, unexpected_field_behavior="error"
        ),
    )
    if timestamps.startswith("UNIX_EPOCH"):
        table = _from_epoch(table, schema, timestamps)
    return restore_types(table, schema)


def _bare_non_finite(data: bytes, schema: pa.Schema) -> bytes:
    """``data`` with each float value ``"NaN"``/``"Infinity"``/``"-Infinity"`` written
    as the bare literal Arrow parses; per line in Python, only on the lines holding one
    (a string column's ``"NaN"`` stays a string)."""
    # as read: a decimal's string stays a string (only floats' strings become literals)
    row_type = pa.struct([pa.field(f.name, _read_type(f.type)) for f in schema])
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if _NON_FINITE_VALUE.search(line):
            row = with_non_finite(json.loads(line, parse_float=Decimal), row_type)
            lines[i] = _dump(row).encode("ascii")
    return b"\n".join(lines)


def _dump(value: Any) -> str:
    """JSON text with decimals' digits as read and non-finite floats as bare literals."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)  # str, int, bool, None; a float here is non-finite


def count_jsonl(stream: Any, options: JsonlOptions | None = None) -> int:
    """Rows in decompressed UTF-8 JSONL bytes: one per line (no JSON string holds a raw
    newline), less the :func:`extra_lines` of ``options``."""
    rows = 0
    last = b"\n"
    while True:
        chunk = stream.read(8 * 1024 * 1024)
        if not chunk:
            break
        data = bytes(chunk)
        rows += data.count(b"\n")
        last = data[-1:]
    return rows + (0 if last == b"\n" else 1) - extra_lines(options or JsonlOptions())
