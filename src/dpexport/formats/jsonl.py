"""JSONL: UTF-8, one JSON object a line, keys in column order (spec 2.2).

Values follow :mod:`dpexport.formats.text`: RFC 3339 ``Z`` timestamps, exact
decimals as JSON numbers, NaN/Infinity as ``null``, bytes as base64 strings,
``null`` for NULL. Lines are built column-wise with pyarrow.compute; the file is one
whole-file stream in the chosen codec.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dpexport.config.spec import JsonlOptions
from dpexport.formats.parallel import TextFileWriter
from dpexport.formats.text import buffer_of, is_binary, json_objects, restore_types

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


def read_jsonl(stream: Any, schema: pa.Schema | None = None) -> pa.Table:
    """Read decompressed JSONL bytes (an Arrow input stream) into a table of ``schema``."""
    if schema is None:
        return pj.read_json(stream)
    read_schema = pa.schema([pa.field(f.name, _read_type(f.type)) for f in schema])
    block_size = 32 * 1024 * 1024  # a row must fit in one block
    table = pj.read_json(
        stream,
        read_options=pj.ReadOptions(block_size=block_size),
        parse_options=pj.ParseOptions(
            explicit_schema=read_schema, unexpected_field_behavior="error"
        ),
    )
    return restore_types(table, schema)


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
