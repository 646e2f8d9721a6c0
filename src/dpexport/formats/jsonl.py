"""JSONL: UTF-8, one JSON object a line, keys in column order (spec 2.2).

Values follow :mod:`dpexport.formats.text`: RFC 3339 ``Z`` timestamps, exact
decimals as JSON numbers, NaN and ±Infinity as the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` (BigQuery's JSON form of FLOAT64, distinct from ``null``), bytes as
base64 strings, ``null`` for NULL. Lines are built column-wise with pyarrow.compute;
the file is one whole-file stream in the chosen codec.

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

from dpexport.config.spec import JsonlOptions
from dpexport.formats.parallel import TextFileWriter
from dpexport.formats.text import (
    buffer_of,
    is_binary,
    json_objects,
    restore_types,
    with_non_finite,
)

if TYPE_CHECKING:
    from dpexport.security.crypto import Encryptor


#: Rows are encoded in slices of about this many Arrow bytes: the unit of work of the
#: encoder threads (see :mod:`dpexport.formats.parallel`); bounds memory (a few slices
#: of text in flight) and keeps every intermediate string array far under 2 GiB.
def encode_jsonl(batch: pa.RecordBatch) -> pa.Buffer:
    """The JSONL bytes of ``batch``: one object and ``\\n`` per row."""
    lines = json_objects(batch.schema.names, list(batch.columns))
    lines = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    return buffer_of(lines)


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
        self.options = options or JsonlOptions()
        super().__init__(path, schema, codec, encode_jsonl, encryptor=encryptor)


def _read_type(t: pa.DataType) -> pa.DataType:
    """The type Arrow's JSON reader should parse a column as (then cast back)."""
    if is_binary(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pa.string()
    if pa.types.is_timestamp(t) and t.tz is not None:
        return pa.timestamp(t.unit, "UTC")
    if pa.types.is_dictionary(t):
        return _read_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_read_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _read_type(f.type)) for f in t])
    return t


#: a whole JSON string value that is a non-finite float's text (never inside a string:
#: there every quote is escaped, so none follows ``:``, ``[`` or ``,`` directly)
_NON_FINITE_VALUE = re.compile(rb'(?<=[:,\[])"(?:NaN|Infinity|-Infinity)"(?=[,}\]])')
_BLOCK_SIZE = 32 * 1024 * 1024  # a row must fit in one block


def read_jsonl(stream: Any, schema: pa.Schema | None = None) -> pa.Table:
    """Read decompressed JSONL bytes (an Arrow input stream) into a table of ``schema``;
    without one, Arrow infers the types (a float column's ``"NaN"`` strings read as
    floats when the column also holds numbers)."""
    chunks = []
    while chunk := stream.read(_BLOCK_SIZE):
        chunks.append(chunk)
    data = b"".join(chunks)
    try:
        return _read(data, schema)
    except pa.ArrowInvalid:
        if _NON_FINITE_VALUE.search(data) is None:
            raise
    if schema is None:
        nulled = _NON_FINITE_VALUE.sub(b"null", data)
        floats = pj.read_json(pa.BufferReader(nulled)).schema
        return _read(_bare_non_finite(data, floats), None)
    return _read(_bare_non_finite(data, schema), schema)


def _read(data: bytes, schema: pa.Schema | None) -> pa.Table:
    if schema is None:
        return pj.read_json(pa.BufferReader(data))
    read_schema = pa.schema([pa.field(f.name, _read_type(f.type)) for f in schema])
    table = pj.read_json(
        pa.BufferReader(data),
        read_options=pj.ReadOptions(block_size=_BLOCK_SIZE),
        parse_options=pj.ParseOptions(
            explicit_schema=read_schema, unexpected_field_behavior="error"
        ),
    )
    return restore_types(table, schema)


def _bare_non_finite(data: bytes, schema: pa.Schema) -> bytes:
    """``data`` with each float value ``"NaN"``/``"Infinity"``/``"-Infinity"`` written
    as the bare literal Arrow parses; per line in Python, only on the lines holding one
    (a string column's ``"NaN"`` stays a string)."""
    row_type = pa.struct(list(schema))
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


def count_jsonl(stream: Any) -> int:
    """Rows in decompressed JSONL bytes: one per line (no JSON string holds a raw newline)."""
    rows = 0
    last = b"\n"
    while True:
        chunk = stream.read(8 * 1024 * 1024)
        if not chunk:
            break
        data = bytes(chunk)
        rows += data.count(b"\n")
        last = data[-1:]
    return rows + (0 if last == b"\n" else 1)
