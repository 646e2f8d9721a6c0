"""Every format x codec writes the edge table and reads it back with pyarrow and DuckDB."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from dpexport.config.spec import CODECS_BY_FORMAT, CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats import count_rows, open_writer, read_file
from dpexport.formats.streams import STREAM_CODECS
from tests.unit.formats.formats_cases import assert_rows_equal, edge_table

CASES = [(fmt, codec) for fmt, codecs in CODECS_BY_FORMAT.items() for codec in codecs]
DUCK_TYPES = {
    "s": "VARCHAR",
    "i": "BIGINT",
    "i32": "INTEGER",
    "f": "DOUBLE",
    "big": "DECIMAL(38,9)",
    "money": "DECIMAL(18,2)",
    "ts": "TIMESTAMP",
    "tsz": "TIMESTAMPTZ",
    "d": "DATE",
    "flag": "BOOLEAN",
    "bin": "VARCHAR",
    "tags": "VARCHAR[]",
    "rec": "STRUCT(x BIGINT, y VARCHAR)",
}


def write(path: Path, table: pa.Table, fmt: str, codec: str, **kw: Any) -> Any:
    writer = open_writer(
        path,
        table.schema,
        fmt,
        codec,
        parquet=kw.pop("parquet", ParquetOptions()),
        jsonl=JsonlOptions(),
        csv=kw.pop("csv", CsvOptions()),
        **kw,
    )
    for batch in table.to_batches(max_chunksize=4):
        writer.write_batch(batch)
    return writer.close()


def plain_copy(path: Path, codec: str, dst: Path) -> Path:
    """Decompress with Arrow so DuckDB (which has no brotli) reads the same bytes."""
    name = STREAM_CODECS[codec]
    data = path.read_bytes()
    if name is not None:
        data = pa.CompressedInputStream(pa.BufferReader(data), name).read()
    dst.write_bytes(data)
    return dst


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_roundtrip_pyarrow(tmp_path: Path, fmt: str, codec: str) -> None:
    table = edge_table()
    path = tmp_path / f"data.{fmt.lower()}"
    written = write(path, table, fmt, codec)

    data = path.read_bytes()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.stored_bytes == len(data)
    assert written.rows == table.num_rows
    assert written.uncompressed_bytes == sum(b.nbytes for b in table.to_batches(max_chunksize=4))
    assert written.encryption is None

    back = read_file(path, fmt, codec, csv=CsvOptions(), schema=table.schema)
    assert back.schema.equals(table.schema)
    want = table.to_pylist()
    assert_rows_equal(back.to_pylist(), want)
    assert count_rows(path, fmt, codec, csv=CsvOptions(), schema=table.schema) == table.num_rows
    # Without a schema the readers still parse every row.
    assert read_file(path, fmt, codec, csv=CsvOptions()).num_rows == table.num_rows


def _duck_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    rel = con.sql(sql)
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_roundtrip_duckdb(tmp_path: Path, fmt: str, codec: str) -> None:
    table = edge_table()
    path = tmp_path / "data"
    write(path, table, fmt, codec)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    want = table.to_pylist()
    if fmt == "PARQUET":
        got = _duck_rows(con, f"SELECT * FROM read_parquet('{path}')")
        assert_rows_equal(got, want)
        return
    plain = plain_copy(path, codec, tmp_path / "plain")
    columns = "{" + ", ".join(f"{k}: '{v}'" for k, v in DUCK_TYPES.items()) + "}"
    if fmt == "JSONL":
        sql = f"SELECT * FROM read_json('{plain}', format='newline_delimited', columns={columns})"
    else:
        csv_types = {**DUCK_TYPES, "tags": "VARCHAR", "rec": "VARCHAR"}
        columns = "{" + ", ".join(f"{k}: '{v}'" for k, v in csv_types.items()) + "}"
        sql = (
            f"SELECT * FROM read_csv('{plain}', header=true, delim=',', quote='\"', "
            f"escape='\\', nullstr='', allow_quoted_nulls=false, columns={columns})"
        )
    got = _duck_rows(con, sql)
    for row in got:
        row["bin"] = None if row["bin"] is None else base64.b64decode(row["bin"])
        if fmt == "CSV":
            row["tags"] = None if row["tags"] is None else json.loads(row["tags"])
            row["rec"] = None if row["rec"] is None else json.loads(row["rec"])
    assert_rows_equal(got, want)


def test_csv_exact_bytes() -> None:
    from dpexport.formats.csv import CsvDialect

    dialect = CsvDialect(CsvOptions(null_marker="\\N"))
    arr = pa.array(["a,b", 'q"', "b\\s", "", None, "\\N", "plain", "cr\r", "lf\n"])
    assert dialect.field_text(arr).to_pylist() == [
        '"a,b"',
        '"q\\""',
        '"b\\\\s"',
        '""',
        "\\N",
        '"\\\\N"',
        "plain",
        '"cr\r"',
        '"lf\n"',
    ]
    assert dialect.header(["a", "b,c"]) == b'a,"b,c"\n'


def test_csv_numbers_are_quoted_only_when_they_must_be() -> None:
    from datetime import datetime

    from dpexport.formats.csv import CsvDialect

    ints = pa.array([0, 12, None, -3])
    floats = pa.array([1.5, -0.25, None])
    times = pa.array([datetime(2025, 9, 16, 3, 4, 5)], pa.timestamp("us", "UTC"))
    plain = CsvDialect(CsvOptions())
    assert plain.field_text(ints).to_pylist() == ["0", "12", "", "-3"]
    assert plain.field_text(times).to_pylist() == ["2025-09-16T03:04:05.000000Z"]
    # a null marker equal to a number's text: that number is quoted
    zero = CsvDialect(CsvOptions(null_marker="0"))
    assert zero.field_text(ints).to_pylist() == ['"0"', "12", "0", "-3"]
    # a delimiter that numbers and times contain: they are quoted
    dot = CsvDialect(CsvOptions(delimiter="."))
    assert dot.field_text(floats).to_pylist() == ['"1.5"', '"-0.25"', ""]
    colon = CsvDialect(CsvOptions(delimiter=":"))
    assert colon.field_text(times).to_pylist() == ['"2025-09-16T03:04:05.000000Z"']
    assert colon.field_text(ints).to_pylist() == ["0", "12", "", "-3"]


def test_jsonl_exact_text(tmp_path: Path) -> None:
    table = edge_table().slice(0, 3)
    path = tmp_path / "x.jsonl"
    write(path, table, "JSONL", "NONE")
    lines = path.read_text("utf-8").splitlines()
    first = lines[0]
    assert first.startswith('{"s":"plain","i":-9223372036854775808,"i32":-2147483648,"f":-0.0,')
    # decimals are strings of their digits (a bare number reads back as a double)
    assert '"big":"99999999999999999999999999999.999999999"' in first
    assert '"money":"9999999999999999.99"' in first
    assert '"ts":"2025-09-16T14:30:22.123456Z"' in first
    assert '"d":"2025-09-16"' in first
    assert '"bin":"AP8KLA=="' in first
    assert '"big":"0.000000001"' in lines[2]  # never 1E-9
    assert '"ts":"2025-09-16T14:30:22.000000Z"' in lines[1]  # fraction always kept
    assert json.loads(lines[1])["s"] == "a,b"
    assert [list(json.loads(line)) for line in lines] == [table.schema.names] * 3


def test_unknown_codec_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="SNAPPY"):
        write(tmp_path / "x", edge_table(), "JSONL", "SNAPPY")


def test_abort_deletes_file(tmp_path: Path) -> None:
    table = edge_table()
    for fmt, codec in CASES:
        path = tmp_path / f"{fmt}.{codec}"
        writer = open_writer(
            path,
            table.schema,
            fmt,
            codec,
            parquet=ParquetOptions(),
            jsonl=JsonlOptions(),
            csv=CsvOptions(),
        )
        writer.write_batch(table.to_batches()[0])
        writer.abort()
        assert not path.exists()


def test_csv_rows_longer_than_the_counting_block_are_counted(tmp_path: Path) -> None:
    from dpexport.formats.csv import COUNT_BLOCK, count_csv

    # a 20 MB field with quotes and newlines in it, between two short rows: longer than
    # two counting blocks (Arrow carries one row over one block boundary, not two)
    long_text = ('a "quoted"\nline ' * (COUNT_BLOCK // 6))[: 20 * 1024 * 1024]
    table = pa.table({"id": [1, 2, 3], "s": ["x", long_text, "y"]})
    path = tmp_path / "long.csv.gz"
    write(path, table, "CSV", "GZIP", csv=CsvOptions())
    # the counting blocks are too small for that row on their own
    with pa.input_stream(str(path), compression="gzip") as stream, pytest.raises(pa.ArrowInvalid):
        count_csv(stream, CsvOptions())
    assert count_rows(path, "CSV", "GZIP", csv=CsvOptions()) == 3
    back = read_file(path, "CSV", "GZIP", csv=CsvOptions(), schema=table.schema)
    assert back.column("s").to_pylist() == ["x", long_text, "y"]


@pytest.mark.parametrize("options", [CsvOptions(), CsvOptions(delimiter=";", null_marker="NULL")])
@pytest.mark.parametrize("rows", [0, 1, 3])
def test_csv_column_names_holding_newlines_are_one_header(
    tmp_path: Path, options: CsvOptions, rows: int
) -> None:
    """The header is one CSV record however many lines its quoted names span (issue 18,
    case 11b: counting skipped one physical line, so a name with a newline made a row)."""
    names = ["a\nb", "c\r\nd\ne", 'f"\n', "plain"]
    table = pa.table({n: pa.array(range(rows), pa.int64()) for n in names})
    path = tmp_path / "names.csv"
    write(path, table, "CSV", "NONE", csv=options)
    assert path.read_bytes().count(b"\n") == 5 + rows
    assert count_rows(path, "CSV", "NONE", csv=options) == rows
    back = read_file(path, "CSV", "NONE", csv=options, schema=table.schema)
    assert back.column_names == names and back.num_rows == rows
