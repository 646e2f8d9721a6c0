"""CSV per CONTRACT §8 and spec 2.3.

A header line (when ``header``), fields joined by the delimiter, rows ended by
``\\n``. A field holding the delimiter, the quote, the escape, CR or LF is quoted,
and inside it the escape and the quote are preceded by the escape (``\\\\``,
``\\"``); when the escape is the quote itself (or empty), quotes are doubled
instead (RFC 4180). NULL is the null marker, unquoted; an empty string is ``""``;
a value equal to a non-empty null marker is quoted. Value text follows
:mod:`dpexport.formats.text` (RFC 3339 ``Z`` timestamps, exact decimals,
``NaN``/``Infinity``, base64 bytes, intervals as DuckDB's text, nested values as
JSON text). The file is in the
configured ``encoding`` (:mod:`dpexport.formats.encodings`: a value it cannot hold
fails the export, naming the column and row).

DuckDB reads the files back with ``read_csv(path, header=true, delim=',',
quote='"', escape='\\', nullstr='', allow_quoted_nulls=false)``: without
``allow_quoted_nulls=false`` DuckDB takes ``""`` for NULL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from dpexport.config.spec import CsvOptions
from dpexport.formats.intervals import interval_text, is_interval
from dpexport.formats.parallel import TextFileWriter
from dpexport.formats.text import (
    binary_text,
    buffer_of,
    is_binary,
    is_stringy,
    json_values,
    restore_types,
    scalar_text,
)

if TYPE_CHECKING:
    from dpexport.security.crypto import Encryptor

_CSV_NONFINITE: dict[str, str | None] = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
#: every character scalar_text can write (digits, signs, exponents, RFC 3339 times,
#: true/false, NaN, Infinity)
_SCALAR_CHARS = frozenset("0123456789+-.:TZeE" + "truefalsNaInfinity")


class CsvDialect:
    """The quoting rule for one set of :class:`CsvOptions`, applied to Arrow arrays."""

    def __init__(self, options: CsvOptions) -> None:
        self.options = options
        self.delimiter = options.delimiter
        self.quote = options.quote_character
        self.escape = options.escape_character or self.quote
        self.null_marker = options.null_marker
        specials = {self.quote, self.escape, "\r", "\n"}
        alternatives = [*sorted(specials), self.delimiter]
        self._pattern = "|".join(
            "".join(f"\\x{{{ord(c):x}}}" for c in alt) for alt in alternatives if alt
        )
        #: the text of numbers, booleans, dates and times cannot need quoting
        self._plain_scalars = not ({self.delimiter, *specials} & _SCALAR_CHARS)

    def field_text(self, arr: pa.Array) -> pa.Array:
        """Text of each field, quoted where needed; NULL -> the null marker."""
        t = arr.type
        if pa.types.is_dictionary(t):
            arr = arr.dictionary_decode()
            t = arr.type
        text = scalar_text(arr, nonfinite=_CSV_NONFINITE)
        if text is not None and self._plain_scalars:
            # numbers, booleans and times never hold the delimiter, a quote or a
            # newline: only a non-empty null marker equal to one needs quotes
            if self.null_marker:
                text = self._quote_where(text, pc.equal(text, self.null_marker))
            return pc.fill_null(text, self.null_marker)
        if text is None:
            if is_interval(t):
                text = interval_text(arr)
            elif is_stringy(t):
                text = arr.cast(pa.string()) if t != pa.string() else arr
            elif is_binary(t):
                text = binary_text(arr)
            else:  # nested: JSON text; json_values writes "null" for NULL, so restore it
                text = json_values(arr)
                if arr.null_count:
                    text = pc.if_else(pc.is_valid(arr), text, pa.scalar(None, pa.string()))
        return pc.fill_null(self.quote_text(text), self.null_marker)

    def quote_text(self, text: pa.Array) -> pa.Array:
        """Quote and escape the values that need it (nulls stay null)."""
        need = pc.match_substring_regex(text, self._pattern)
        need = pc.or_(need, pc.equal(text, ""))
        if self.null_marker:
            need = pc.or_(need, pc.equal(text, self.null_marker))
        return self._quote_where(text, need)

    def _quote_where(self, text: pa.Array, need: pa.Array) -> pa.Array:
        if not pc.any(need).as_py():
            return text
        escaped = text
        if self.escape != self.quote:
            escaped = pc.replace_substring(escaped, self.escape, self.escape * 2)
        escaped = pc.replace_substring(escaped, self.quote, self.escape + self.quote)
        quoted = pc.binary_join_element_wise(
            pa.scalar(self.quote), escaped, pa.scalar(self.quote), ""
        )
        return pc.if_else(need, quoted, text)

    def header_text(self, names: list[str]) -> str:
        """The header line."""
        cells = self.quote_text(pa.array(names, pa.string())).to_pylist()
        return self.delimiter.join(cells) + "\n"

    def header(self, names: list[str]) -> bytes:
        """The header line in UTF-8."""
        return self.header_text(names).encode("utf-8")

    def encode(self, batch: pa.RecordBatch) -> pa.Buffer:
        """The CSV bytes of ``batch`` (no header)."""
        pieces: list[Any] = []
        for i, col in enumerate(batch.columns):
            if i:
                pieces.append(pa.scalar(self.delimiter))
            pieces.append(self.field_text(col))
        pieces.append(pa.scalar("\n"))
        return buffer_of(pc.binary_join_element_wise(*pieces, ""))


class CsvWriter(TextFileWriter):
    """Writes one CSV file (see module doc). Implements ``FormatWriter``."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        codec: str = "NONE",
        *,
        options: CsvOptions | None = None,
        encryptor: Encryptor | None = None,
    ) -> None:
        self.dialect = CsvDialect(options or CsvOptions())
        header = self.dialect.options.header
        super().__init__(
            path,
            schema,
            codec,
            self.dialect.encode,
            encryptor=encryptor,
            preamble=self.dialect.header_text(schema.names) if header else "",
            encoding=self.dialect.options.encoding,
            names=schema.names if header else None,
        )


def _read_type(t: pa.DataType) -> pa.DataType:
    if is_interval(t):
        return pa.string()  # DuckDB's text, parsed afterwards
    if pa.types.is_timestamp(t):
        return pa.timestamp(t.unit, "UTC")  # the text carries Z
    if pa.types.is_dictionary(t):
        return _read_type(t.value_type)
    if pa.types.is_primitive(t) and not (pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t)):
        return t
    if pa.types.is_decimal(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return t
    return pa.string()  # binary (base64) and nested (JSON) are parsed afterwards


def _csv_options(options: CsvOptions, schema: pa.Schema | None) -> dict[str, Any]:
    dialect = CsvDialect(options)
    doubled = dialect.escape == dialect.quote
    read = pcsv.ReadOptions(
        block_size=READ_BLOCK,
        column_names=None if options.header or schema is None else schema.names,
        autogenerate_column_names=not options.header and schema is None,
    )
    parse = pcsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=dialect.quote,
        escape_char=False if doubled else dialect.escape,
        double_quote=doubled,
        newlines_in_values=True,
    )
    types = {f.name: _read_type(f.type) for f in schema} if schema is not None else None
    convert = pcsv.ConvertOptions(
        column_types=types,
        null_values=[options.null_marker],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["true"],
        false_values=["false"],
    )
    return {"read_options": read, "parse_options": parse, "convert_options": convert}


def read_csv(stream: Any, options: CsvOptions, schema: pa.Schema | None = None) -> pa.Table:
    """Read decompressed CSV bytes (an Arrow input stream) into a table of ``schema``."""
    table = pcsv.read_csv(stream, **_csv_options(options, schema))
    return table if schema is None else restore_types(table, schema)


#: Block size when reading a whole file; also the longest row dpexport can read back.
READ_BLOCK = 32 * 1024 * 1024
#: Block size when counting rows: Arrow parses several blocks at once, so 32 MB blocks
#: peaked at 490 MB over the process for a 5M-row file, 8 MB ones at 120 MB (and were
#: no slower). A row spanning more than two blocks cannot be parsed (``STRADDLES``).
COUNT_BLOCK = 8 * 1024 * 1024
STRADDLES = "straddling"


def count_csv(
    stream: Any,
    options: CsvOptions,
    schema: pa.Schema | None = None,
    *,
    block_size: int = COUNT_BLOCK,
) -> int:
    """Rows in decompressed CSV bytes: parses quoting and checks that every row has as
    many fields as the first, but converts only the first column (3x faster than all).
    ``schema`` is accepted for symmetry with :func:`read_csv` and not needed.

    The header is parsed as a record and then not counted: Arrow's ``skip_rows`` skips
    physical lines, so a quoted column name holding a newline (``"a\\nb"``) would
    leave the rest of the header to be counted as a row."""
    kwargs = _csv_options(options, None)
    read = kwargs["read_options"]
    read.block_size = block_size
    read.column_names = []
    read.autogenerate_column_names = True
    kwargs["convert_options"].include_columns = ["f0"]
    kwargs["convert_options"].column_types = {"f0": pa.string()}
    rows = 0
    try:
        reader = pcsv.open_csv(stream, **kwargs)
    except pa.ArrowInvalid as exc:
        if "Empty CSV" in str(exc):  # no record at all
            return 0
        raise
    for batch in reader:
        rows += batch.num_rows
    return max(rows - 1, 0) if options.header else rows
