"""Settings that export files the common readers misread: ``check`` warns, and runs.

They are valid (the spec names them, DuckDB reads them back), so ``check`` does not
refuse them; it says, per table, what a consumer would meet and the portable choice.
Measured with DuckDB 2.0, pandas 3.1, polars 2.1 and pyarrow 26 at their defaults
(``tests/readers/test_text_fidelity.py`` holds each claim):

- CSV with a backslash escape (the spec's ``escape_character: "\\"``, CONTRACT §8):
  pandas and pyarrow keep the backslash and end the field at the escaped quote
  (``a\\"b`` reads as ``a\\b"``), or fail, polars fails, and none of them but DuckDB
  offers it unless told (pandas ``escapechar``, pyarrow ``escape_char``; polars has no
  such option). With ``escape_character: '"'`` quotes are doubled (RFC 4180), which
  all four, BigQuery and spreadsheets read.
- JSONL or CSV in BROTLI: DuckDB, pandas, polars and pyarrow cannot open it (each fails
  on the bytes: ``tests/readers/test_reader_matrix.py``), and BigQuery loads text only
  uncompressed or in GZIP.
"""

from __future__ import annotations

from dpexport.config.spec import ResolvedConfig, TableSpec

#: the escape character that every common CSV reader reads by default
PORTABLE_ESCAPE = '"'


def reader_warnings(config: ResolvedConfig) -> list[str]:
    """One line per table setting of those above, naming table, setting and choice."""
    out: list[str] = []
    for table in config.tables:
        out += table_warnings(table)
    return out


def table_warnings(table: TableSpec) -> list[str]:
    where = f"{table.origins.get('table', table.qualified_name)} ({table.qualified_name})"
    out = []
    escape = table.csv.escape_character
    if table.format == "CSV" and escape not in ("", table.csv.quote_character):
        out.append(
            f'{where}: CSV escape_character {escape!r} escapes quotes as {escape}": pandas, '
            "pyarrow and polars misread such fields or fail at their defaults (polars "
            "cannot read them at all); escape_character: '\"' (RFC 4180, quotes doubled) "
            "is read right by DuckDB, pandas, pyarrow, polars and BigQuery"
        )
    if table.format in ("CSV", "JSONL") and table.compression == "BROTLI":
        out.append(
            f"{where}: {table.format} in BROTLI cannot be read by DuckDB, pandas, polars, "
            "pyarrow or BigQuery (each fails on the bytes); GZIP is read by all of them"
        )
    return out
