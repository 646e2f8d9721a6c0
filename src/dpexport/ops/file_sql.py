"""The statements ``dpexport files`` prints (CONTRACT §13): a DuckDB view and a BigQuery
external table over exactly a table's committed files (:mod:`dpexport.ops.files`).

Each reads the files as their manifests say they were written, not as today's config
would write them: format, codec, CSV delimiter, header, quote, escape and null marker,
and the column types (the manifest's schema, so a JSONL or CSV column reads back as the
type it was exported from rather than as what a reader guesses). Files written
differently (a format or schema changed between exports) are read apart and joined by
column name. An INCREMENTAL table with a merge key is folded to the newest row per key,
as ``compact`` folds it, so the view answers with the table's current rows.

What a reader cannot read is refused with why (a :class:`~dpexport.errors.UsageError`):
client-side encrypted (``.enc``) files, BROTLI text, encodings it lacks.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from dpexport.errors import UsageError

if TYPE_CHECKING:
    from dpexport.config.spec import CsvOptions, JsonlOptions, TableSpec
    from dpexport.ops.files import TableFile

#: manifest schema types (pyarrow's names) as DuckDB types; any other type is left to
#: DuckDB's detection
_DUCKDB_TYPES = {
    "bool": "BOOLEAN",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "uint16": "USMALLINT",
    "uint32": "UINTEGER",
    "uint64": "UBIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "date32[day]": "DATE",
    "time64[us]": "TIME",
}
_DECIMAL = re.compile(r"^decimal128\((\d+), ?(\d+)\)$")
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(, tz=.+)?\]$")
#: JSONL timestamp formats DuckDB parses as timestamps (the others are numbers)
_TEXT_TIMES = ("RFC3339", "ISO8601")
_TEXT_CODECS = {"NONE": "none", "GZIP": "gzip", "ZSTD": "zstd"}
#: Python codec names (as :func:`codecs.lookup` spells them) DuckDB's CSV reader reads
_CSV_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
_BQ_FORMATS = {"PARQUET": "PARQUET", "JSONL": "NEWLINE_DELIMITED_JSON", "CSV": "CSV"}
_BQ_ENCODINGS = {"utf-8": "UTF-8", "iso8859-1": "ISO-8859-1"}


def _quote(text: str) -> str:
    """A SQL string literal (DuckDB and BigQuery both take ``''`` for ``'``)."""
    return "'" + text.replace("'", "''") + "'"


def _bq_quote(text: str) -> str:
    """A BigQuery string literal (a backslash escapes there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_quote(i) for i in items) + "]"


@dataclasses.dataclass(frozen=True)
class _Group:
    """Files one reader call reads: written alike (format, codec, options, schema)."""

    format: str
    codec: str
    csv: CsvOptions
    jsonl: JsonlOptions
    schema: tuple[tuple[str, str], ...] | None


def _groups(files: Sequence[TableFile]) -> dict[_Group, list[TableFile]]:
    out: dict[_Group, list[TableFile]] = {}
    for f in files:
        c = f.committed
        key = _Group(c.format, c.codec, c.csv, c.jsonl, f.schema)
        out.setdefault(key, []).append(f)
    return out


def _refuse_unreadable(files: Sequence[TableFile], reader: str) -> None:
    if not files:
        raise UsageError(f"no committed files yet: a {reader} statement needs at least one")
    encrypted = [f.uri for f in files if f.encrypted]
    if encrypted:
        raise UsageError(
            f"{len(encrypted)} of the files are client-side encrypted ({encrypted[0]}...), "
            f"which {reader} cannot read; `dpexport decrypt` restores one, or list them "
            "with --format uris"
        )


# -- DuckDB ----------------------------------------------------------------------------------
def duckdb_statement(spec: TableSpec, files: Sequence[TableFile], *, hive: bool) -> str:
    """``CREATE OR REPLACE VIEW {table} AS ...`` over exactly ``files``; with ``hive``,
    the ``key=value`` folders are read as columns."""
    _refuse_unreadable(files, "DuckDB")
    reads = [
        _duckdb_read(g, [f.path or f.uri for f in members], hive)
        for g, members in _groups(files).items()
    ]
    body = "\nUNION ALL BY NAME\n".join(reads)
    cursor = spec.change_column or spec.partitioning.time_expression
    if spec.mode == "INCREMENTAL" and spec.merge_key and cursor:
        keys = ", ".join(_ident(k) for k in spec.merge_key)
        body = (
            f"SELECT * FROM (\n{body}\n)\nQUALIFY row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY {_ident(cursor)} DESC) = 1"
        )
    return f"CREATE OR REPLACE VIEW {_ident(spec.table)} AS\n{body};\n"


def _duckdb_read(group: _Group, paths: list[str], hive: bool) -> str:
    options = [f"hive_partitioning = {'true' if hive else 'false'}", "union_by_name = true"]
    if group.format == "PARQUET":
        return f"SELECT * FROM read_parquet({_list(paths)}, {', '.join(options)})"
    codec = _TEXT_CODECS.get(group.codec)
    if codec is None:
        raise UsageError(
            f"DuckDB cannot read {group.codec}-compressed {group.format} files; "
            "export them with GZIP or ZSTD to read them there"
        )
    options.append(f"compression = {_quote(codec)}")
    columns = _duckdb_columns(group)
    if columns:
        options.append(
            "columns = {" + ", ".join(f"{_quote(n)}: {_quote(t)}" for n, t in columns) + "}"
        )
    if group.format == "CSV":
        options += _csv_options(group.csv)
        return f"SELECT * FROM read_csv({_list(paths)}, {', '.join(options)})"
    jsonl = group.jsonl
    if codecs.lookup(jsonl.encoding).name != "utf-8":
        raise UsageError(f"DuckDB reads JSON in UTF-8 only; these files are {jsonl.encoding}")
    shape = "newline_delimited" if jsonl.newline_delimited else "array"
    options += [f"format = {_quote(shape)}"]
    read = f"read_json({_list(paths)}, {', '.join(options)})"
    if jsonl.schema_included:  # the first record is {"$schema": ...}, not a row
        return f'SELECT * EXCLUDE ("$schema") FROM {read} WHERE "$schema" IS NULL'
    return f"SELECT * FROM {read}"


def _csv_options(csv: CsvOptions) -> list[str]:
    encoding = _CSV_ENCODINGS.get(codecs.lookup(csv.encoding).name)
    if encoding is None:
        raise UsageError(
            f"DuckDB's CSV reader cannot read {csv.encoding}; it reads "
            + ", ".join(_CSV_ENCODINGS.values())
        )
    return [
        f"header = {'true' if csv.header else 'false'}",
        f"delim = {_quote(csv.delimiter)}",
        f"quote = {_quote(csv.quote_character)}",
        f"escape = {_quote(csv.escape_character)}",
        f"nullstr = {_quote(csv.null_marker)}",
        "allow_quoted_nulls = false",  # "" is the empty string, not the null marker
        f"encoding = {_quote(encoding)}",
    ]


def _duckdb_columns(group: _Group) -> list[tuple[str, str]] | None:
    """The columns as their manifest types them, or None (left to DuckDB's detection)
    when a type has no exact DuckDB reading from text, or a CSV has no header."""
    if group.schema is None or (group.format == "CSV" and not group.csv.header):
        return None
    out = []
    for name, arrow in group.schema:
        sql = _duckdb_type(arrow)
        timestamp = sql is not None and sql.startswith("TIMESTAMP")
        if sql is None or (
            timestamp
            and group.format == "JSONL"
            and group.jsonl.timestamp_format not in _TEXT_TIMES
        ):
            return None
        out.append((name, sql))
    return out


def _duckdb_type(arrow: str) -> str | None:
    if arrow in _DUCKDB_TYPES:
        return _DUCKDB_TYPES[arrow]
    decimal = _DECIMAL.match(arrow)
    if decimal:
        return f"DECIMAL({decimal.group(1)}, {decimal.group(2)})"
    timestamp = _TIMESTAMP.match(arrow)
    if timestamp:
        return "TIMESTAMPTZ" if timestamp.group(2) else "TIMESTAMP"
    return None


# -- BigQuery --------------------------------------------------------------------------------
def bigquery_statement(spec: TableSpec, files: Sequence[TableFile], *, hive: bool) -> str:
    """``CREATE OR REPLACE EXTERNAL TABLE`` over exactly ``files`` (``gs://`` only: the
    store BigQuery reads without a connection); an INCREMENTAL table with a merge key
    also gets a ``{table}_current`` view folding it to the newest row per key."""
    _refuse_unreadable(files, "BigQuery")
    if not spec.destination.startswith("gs://"):
        raise UsageError(
            f"BigQuery reads external tables from gs:// without a connection; "
            f"{spec.table}'s destination is {spec.destination}"
        )
    groups = _groups(files)
    kinds = {(g.format, g.codec, g.csv, g.jsonl) for g in groups}
    if len(kinds) > 1:
        raise UsageError(
            "the committed files were written in more than one format or with other "
            "settings; a BigQuery external table reads one kind"
        )
    group = next(iter(groups))
    name = f"`{spec.dataset}.{spec.table}`"
    part = spec.partitioning  # BigQuery's hive layout: every folder below the prefix key=value
    hive = hive and all("=" in t for t in (part.time_layout or "").split("/"))
    hive = hive and all(s.key for s in part.sub_partitions)
    partitions = "\nWITH PARTITION COLUMNS" if hive else ""
    options = _bigquery_options(group)
    if hive:
        options.append(f"hive_partition_uri_prefix = {_bq_quote(spec.destination.rstrip('/'))}")
    options.append("uris = [" + ", ".join(_bq_quote(f.uri) for f in files) + "]")
    text = _bigquery_note(group) + (
        f"CREATE OR REPLACE EXTERNAL TABLE {name}{partitions}\nOPTIONS (\n  "
        + ",\n  ".join(options)
        + "\n);\n"
    )
    cursor = spec.change_column or spec.partitioning.time_expression
    if spec.mode == "INCREMENTAL" and spec.merge_key and cursor:
        keys = ", ".join(f"`{k}`" for k in spec.merge_key)
        text += (
            f"CREATE OR REPLACE VIEW `{spec.dataset}.{spec.table}_current` AS\n"
            f"SELECT * FROM {name}\nQUALIFY row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY `{cursor}` DESC) = 1;\n"
        )
    return text


def _bigquery_options(group: _Group) -> list[str]:
    options = [f"format = {_quote(_BQ_FORMATS[group.format])}"]
    if group.format == "PARQUET":
        return options
    if group.codec not in ("NONE", "GZIP"):
        raise UsageError(
            f"BigQuery reads {group.format} files uncompressed or GZIP; these are {group.codec}"
        )
    if group.codec == "GZIP":
        options.append("compression = 'GZIP'")
    if group.format == "JSONL":
        if not group.jsonl.newline_delimited:
            raise UsageError("BigQuery reads newline-delimited JSON; these files are a JSON array")
        return options
    csv = group.csv
    encoding = _BQ_ENCODINGS.get(codecs.lookup(csv.encoding).name)
    if encoding is None:
        raise UsageError(f"BigQuery's CSV reader cannot read {csv.encoding}")
    options += [
        f"field_delimiter = {_bq_quote(csv.delimiter)}",
        f"quote = {_bq_quote(csv.quote_character)}",
        f"null_marker = {_bq_quote(csv.null_marker)}",
        f"encoding = {_quote(encoding)}",
        f"skip_leading_rows = {1 if csv.header else 0}",
    ]
    return options


def _bigquery_note(group: _Group) -> str:
    """A comment over the statement when BigQuery may read some values otherwise."""
    csv = group.csv
    if group.format != "CSV" or csv.escape_character == csv.quote_character:
        return ""
    return (
        f"-- escape_character {csv.escape_character!r}: BigQuery reads a quote inside a "
        f"value only doubled ({csv.quote_character * 2}), so a value holding "
        f"{csv.quote_character} reads wrong; escape_character: {csv.quote_character!r} "
        "(RFC 4180) is the portable choice\n"
    )
