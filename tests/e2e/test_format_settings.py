"""The spec 2.2/2.3 format settings change the bytes on disk, through the CLI (issue 17):
JSONL ``timestamp_format``, ``null_representation``, ``encoding``, ``schema_included`` and
``newline_delimited``, CSV ``encoding``; the files pass ``dpexport verify`` and read back
with DuckDB and pyarrow; a value an encoding cannot hold fails the export naming the
column and row; and ``check`` refuses each value that cannot work, at its own YAML path,
writing nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pj
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T14:30:22Z"
HEAD = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
"""
EXPORT = """\
exports:
  - source: ds.events
    destination: gs://b/events/
    format: FORMAT
    compression: CODEC
    mode: FULL_REFRESH
"""
#: rows as the warehouse holds them (``seen_at`` a naive TIMESTAMP: UTC)
ROWS = (
    "(1, 'café', TIMESTAMP '2025-09-16 14:30:22.123456', 2.5), "
    "(2, NULL, NULL, NULL), "
    "(3, 'plain', TIMESTAMP '1969-12-31 23:59:59.5', 0.0)"
)  # score is a DECIMAL(2,1): JSONL writes its digits as a string (issue 22)


def _setup(base: Path, formats: str, fmt: str, codec: str, rows: str = ROWS) -> Path:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA IF NOT EXISTS ds")
    con.execute(
        f"CREATE OR REPLACE TABLE ds.events AS SELECT * FROM (VALUES {rows}) "
        "t(id, name, seen_at, score)"
    )
    con.close()
    config = base / "dpexport.yaml"
    text = HEAD + formats + EXPORT.replace("FORMAT", fmt).replace("CODEC", codec)
    config.write_text(text, encoding="utf-8")
    return config


def _run(base: Path) -> tuple[dict[str, Any], Path]:
    """Run the export; its manifest and its one data file."""
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "out", "run", "--at", AT, "--json"
    )
    assert result.code == 0, result.out + result.err
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS", record
    [uri] = record["manifests"]
    manifest = base / "out" / "gs" / uri.removeprefix("gs://")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    [entry] = doc["files"]
    return doc, manifest.parent / entry["name"]


def _verified(base: Path, rows: int = 3) -> None:
    result = dpexport("--local-root", base / "out", "verify", "gs://b/events/")
    assert result.code == 0, result.out + result.err
    assert f"1 file(s), {rows} row(s), 0 problem(s)" in result.out, result.out


def test_jsonl_utf16_unix_epoch_and_a_null_marker(tmp_path: Path) -> None:
    formats = (
        "formats:\n  JSONL:\n    encoding: UTF-16\n    timestamp_format: UNIX_EPOCH\n"
        "    null_representation: 'NULL'\n"
    )
    _setup(tmp_path, formats, "JSONL", "GZIP")
    doc, data = _run(tmp_path)
    raw = gzip.decompress(data.read_bytes())
    assert raw.startswith(b"\xff\xfe{\x00")  # the BOM, then UTF-16LE
    assert "café".encode("utf-16-le") in raw and b"caf\xc3\xa9" not in raw
    lines = sorted(raw.decode("utf-16").splitlines())
    assert lines == [
        '{"id":1,"name":"café","seen_at":1758033022.123456,"score":"2.5"}',
        '{"id":2,"name":"NULL","seen_at":"NULL","score":"NULL"}',
        '{"id":3,"name":"plain","seen_at":-0.500000,"score":"0.0"}',
    ]
    assert doc["jsonl"] == {
        "non_finite_floats": "string",
        "encoding": "UTF-16",
        "timestamp_format": "UNIX_EPOCH",
        "null_representation": "NULL",
    }
    _verified(tmp_path)


def test_jsonl_latin1_array_with_schema_nulls_left_out_iso8601(tmp_path: Path) -> None:
    formats = (
        "formats:\n  JSONL:\n    format_config:\n      encoding: ISO-8859-1\n"
        "      newline_delimited: false\n      schema_included: true\n"
        "      null_representation: omit\n      timestamp_format: ISO8601\n"
    )
    _setup(tmp_path, formats, "JSONL", "NONE")
    doc, data = _run(tmp_path)
    raw = data.read_bytes()
    assert b"caf\xe9" in raw and b"\xc3" not in raw  # one byte for the é
    text = raw.decode("iso-8859-1")
    assert text.startswith('[\n{"$schema":') and text.endswith("}\n]\n")
    schema, *rows = json.loads(text)  # one JSON array
    assert schema == {"$schema": {"fields": doc["schema"]}}
    assert sorted(rows, key=lambda r: r["id"]) == [
        {"id": 1, "name": "café", "seen_at": "2025-09-16T14:30:22.123456+00:00", "score": "2.5"},
        {"id": 2},
        {"id": 3, "name": "plain", "seen_at": "1969-12-31T23:59:59.500000+00:00", "score": "0.0"},
    ]
    assert doc["jsonl"] == {
        "non_finite_floats": "string",
        "encoding": "ISO-8859-1",
        "newline_delimited": False,
        "schema_included": True,
        "null_representation": "omit",
        "timestamp_format": "ISO8601",
    }
    assert doc["statistics"]["row_count"] == 3
    _verified(tmp_path)


def test_jsonl_epoch_millis_reads_in_duckdb_and_pyarrow(tmp_path: Path) -> None:
    _setup(tmp_path, "formats:\n  JSONL: {timestamp_format: UNIX_EPOCH_MILLIS}\n", "JSONL", "NONE")
    _, data = _run(tmp_path)
    assert b'"seen_at":1758033022123,' in data.read_bytes()
    rows = (
        duckdb.connect()
        .execute(f"SELECT id, seen_at FROM read_json('{data}') ORDER BY id")
        .fetchall()
    )
    # integers, rounded down as BigQuery's UNIX_MILLIS: -0.5 s is -500 ms
    assert rows == [(1, 1758033022123), (2, None), (3, -500)]
    table = pj.read_json(data)
    assert table.schema.field("seen_at").type == pa.int64()
    assert sorted(table.column("seen_at").to_pylist(), key=str) == [-500, 1758033022123, None]
    _verified(tmp_path)


def test_csv_latin1_with_its_dialect(tmp_path: Path) -> None:
    formats = (
        "formats:\n  CSV:\n    encoding: ISO-8859-1\n    delimiter: ';'\n    null_marker: 'NULL'\n"
    )
    _setup(tmp_path, formats, "CSV", "NONE")
    doc, data = _run(tmp_path)
    raw = data.read_bytes()
    assert raw.startswith(b"id;name;seen_at;score\n")
    assert b"1;caf\xe9;2025-09-16T14:30:22.123456Z;2.5\n" in raw
    assert b"2;NULL;NULL;NULL\n" in raw
    assert doc["csv"] == {"delimiter": ";", "null_marker": "NULL", "encoding": "ISO-8859-1"}
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT id, name, seen_at::VARCHAR FROM read_csv('{data}', encoding='latin-1', "
            "header=true, delim=';', quote='\"', escape='\\', nullstr='NULL', "
            "allow_quoted_nulls=false) ORDER BY id"
        )
        .fetchall()
    )
    assert rows == [
        (1, "café", "2025-09-16T14:30:22.123456Z"),
        (2, None, None),
        (3, "plain", "1969-12-31T23:59:59.500000Z"),
    ]
    _verified(tmp_path)


def test_csv_utf16_gzip(tmp_path: Path) -> None:
    _setup(tmp_path, "formats:\n  CSV: {encoding: UTF-16}\n", "CSV", "GZIP")
    doc, data = _run(tmp_path)
    raw = gzip.decompress(data.read_bytes())
    assert raw.startswith(b"\xff\xfei\x00d\x00,\x00")
    assert doc["csv"] == {"encoding": "UTF-16"}
    table = pcsv.read_csv(
        pa.BufferReader(raw),
        read_options=pcsv.ReadOptions(encoding="utf-16"),
        parse_options=pcsv.ParseOptions(escape_char="\\"),
        convert_options=pcsv.ConvertOptions(
            column_types={"name": pa.string()},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    assert sorted(table.column("name").to_pylist(), key=str) == [None, "café", "plain"]
    _verified(tmp_path)


FAILING = {
    "a character ISO-8859-1 cannot hold": (
        "formats:\n  CSV: {encoding: ISO-8859-1}\n",
        "CSV",
        "(1, 'café', NULL, 1.0), (2, 'ok', NULL, 2.0), (3, '中文', NULL, 3.0)",
        ["column 'name', row 3", "'中' (U+4E2D)", "ISO-8859-1"],
    ),
    "a string equal to the null marker": (
        "formats:\n  JSONL: {null_representation: 'NULL'}\n",
        "JSONL",
        "(1, 'a', NULL, 1.0), (2, 'NULL', NULL, 2.0)",
        ["column 'name', row 2", "null_representation"],
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_a_value_the_file_cannot_hold_fails_the_export(case: str, tmp_path: Path) -> None:
    formats, fmt, rows, words = FAILING[case]
    _setup(tmp_path, formats, fmt, "NONE", rows=rows.replace("NULL, ", "NULL::TIMESTAMP, ", 1))
    result = dpexport(
        "-c", tmp_path / "dpexport.yaml", "--local-root", tmp_path / "out",
        "run", "--at", AT, "--json",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    [record] = json.loads(result.out)
    assert record["status"] == "FAILURE"
    for word in words:
        assert word in record["error"], record["error"]
    published = [p for p in (tmp_path / "out" / "gs" / "b" / "events").rglob("*") if p.is_file()]
    assert not [p for p in published if p.suffix in (".csv", ".jsonl") or p.name == "SUCCESS"]


REFUSED = {
    "two-character delimiter": ("CSV: {delimiter: ',,'}", "formats.CSV.delimiter", "mean ','"),
    "newline delimiter": ('CSV: {delimiter: "\\n"}', "formats.CSV.delimiter", "line break"),
    "empty quote": ("CSV: {quote_character: ''}", "formats.CSV.quote_character", "mean '\"'"),
    "delimiter is the quote": (
        "CSV: {delimiter: '\"'}",
        "formats.CSV.delimiter",
        "delimiter and the quote character must differ",
    ),
    "null marker is the delimiter": (
        "CSV: {null_marker: ','}",
        "formats.CSV.null_marker",
        "two empty fields",
    ),
    "null marker holding the escape": (
        # unquoted, the reader takes \N for an escaped N: a NULL would read back as 'N'
        "CSV: {null_marker: '\\N'}",
        "formats.CSV.null_marker",
        "the escape",
    ),
    "null marker the encoding cannot hold": (
        "CSV: {null_marker: 'ø', encoding: ASCII}",
        "formats.CSV.null_marker",
        "cannot be written in ASCII",
    ),
    "unknown CSV encoding": (
        "CSV: {encoding: ISO-8859-99}",
        "formats.CSV.encoding",
        "unknown text encoding",
    ),
    "unknown JSONL encoding": ("JSONL: {encoding: UTF-17}", "formats.JSONL.encoding", "UTF-16"),
    "unknown timestamp format": (
        "JSONL: {timestamp_format: UNIX_EPOK}",
        "formats.JSONL.timestamp_format",
        "mean 'UNIX_EPOCH'",
    ),
    "zero row group": (
        "PARQUET: {row_group_size: 0}",
        "formats.PARQUET.row_group_size",
        "mean '128MB'",
    ),
    "level beyond ZSTD's": (
        "PARQUET: {compression: ZSTD, compression_level: 99999}",
        "formats.PARQUET.compression_level",
        "from -131072 to 22 for ZSTD; did you mean '22'",
    ),
    "level for SNAPPY": (
        "PARQUET: {compression: SNAPPY, compression_level: 3}",
        "formats.PARQUET.compression_level",
        "SNAPPY has no compression levels",
    ),
}
#: refused values of an ``exports`` item (appended to it)
REFUSED_ITEM = {
    "zero max_file_size": ("max_file_size: 0", "exports[0].max_file_size", "mean '1GB'"),
    "level beyond GZIP's": (
        "compression: GZIP\n    optimization: {compression_level: 99999}",
        "exports[0].optimization.compression_level",
        "from 1 to 9 for GZIP; did you mean '9'",
    ),
}


def _refused_config(base: Path, case: str) -> Path:
    config = _setup(base, "", "PARQUET", "SNAPPY")
    text = config.read_text(encoding="utf-8")
    if case in REFUSED:
        text = text.replace("exports:\n", f"formats:\n  {REFUSED[case][0]}\nexports:\n")
    else:
        text = text.replace("    compression: SNAPPY\n", "") + f"    {REFUSED_ITEM[case][0]}\n"
    config.write_text(text, encoding="utf-8")
    return config


@pytest.mark.parametrize("case", sorted(REFUSED) + sorted(REFUSED_ITEM))
def test_check_refuses_a_value_that_cannot_work(case: str, tmp_path: Path) -> None:
    path, words = (REFUSED.get(case) or REFUSED_ITEM[case])[1:]
    config = _refused_config(tmp_path, case)
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert result.code == 2, (case, result.out, result.err)
    assert path in result.err, result.err
    assert words in result.err, result.err
    assert not (tmp_path / "out").exists()


def test_every_refusal_in_one_pass_and_run_writes_nothing(tmp_path: Path) -> None:
    config = _setup(tmp_path, "", "PARQUET", "GZIP")
    blocks = (
        "formats:\n"
        "  CSV: {delimiter: ',,', quote_character: '', encoding: latin-99}\n"
        "  JSONL: {encoding: UTF-17, timestamp_format: sometimes}\n"
        "  PARQUET: {row_group_size: 0MB, page_size: 0}\n"
    )
    text = config.read_text(encoding="utf-8").replace("exports:\n", blocks + "exports:\n")
    config.write_text(text + "    max_file_size: 0\n", encoding="utf-8")
    for command in ("check", "run"):
        result = dpexport("-c", config, "--local-root", tmp_path / "out", command)
        assert result.code == 2, (command, result.out, result.err)
        for path in (
            "formats.CSV.delimiter",
            "formats.CSV.quote_character",
            "formats.CSV.encoding",
            "formats.JSONL.encoding",
            "formats.JSONL.timestamp_format",
            "formats.PARQUET.row_group_size",
            "formats.PARQUET.page_size",
            "exports[0].max_file_size",
        ):
            assert path in result.err, (path, result.err)
        assert not (tmp_path / "out").exists()


def test_the_spec_spellings_are_accepted(tmp_path: Path) -> None:
    """``RFC 3339`` and YAML's bare ``null`` mean the spec's defaults: same bytes."""
    formats = "formats:\n  JSONL:\n    timestamp_format: RFC 3339\n    null_representation: null\n"
    _setup(tmp_path, formats, "JSONL", "NONE")
    doc, data = _run(tmp_path)
    assert doc["jsonl"] == {"non_finite_floats": "string"}
    lines = sorted(data.read_text(encoding="utf-8").splitlines())
    assert lines[0] == (
        '{"id":1,"name":"café","seen_at":"2025-09-16T14:30:22.123456Z","score":"2.5"}'
    )
    assert lines[1] == '{"id":2,"name":null,"seen_at":null,"score":null}'


def test_checks_that_read_the_files_back_read_them_with_the_settings(tmp_path: Path) -> None:
    """A data check that re-reads the written files (``data_minimization_verify``) reads
    UTF-16 JSONL with epoch times as written; it failed with a JSON parse error."""
    formats = "formats:\n  JSONL:\n    encoding: UTF-16\n    timestamp_format: UNIX_EPOCH\n"
    config = _setup(tmp_path, formats, "JSONL", "GZIP")
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "    validation:\n      - data_minimization_verify\n", "utf-8")
    doc, data = _run(tmp_path)
    assert [c["name"] for c in doc["validation"]["checks"]] == ["data_minimization_verify"]
    [check] = doc["validation"]["checks"]
    assert (check["status"], check["rows_checked"]) == ("passed", 3), check
    assert gzip.decompress(data.read_bytes()).startswith(b"\xff\xfe{\x00")


def test_compact_reads_each_increment_with_its_own_settings(tmp_path: Path) -> None:
    """``compact`` reads the increments as their manifests say they were written (UTF-16
    JSONL with epoch times here), not as today's config would write them."""
    formats = "formats:\n  JSONL:\n    encoding: UTF-16\n    timestamp_format: UNIX_EPOCH\n"
    config = _setup(tmp_path, formats, "JSONL", "GZIP")
    text = config.read_text(encoding="utf-8").replace("FULL_REFRESH", "INCREMENTAL")
    keys = "    change_column: seen_at\n    merge_key: id\n"
    config.write_text(text + keys, "utf-8")
    out = tmp_path / "out"
    first = dpexport("-c", config, "--local-root", out, "run", "--at", AT, "--json")
    assert first.code == 0, first.out + first.err
    # today's config writes UTF-8: the increment must still be read as UTF-16
    config.write_text(
        text.replace("UTF-16", "UTF-8") + "    change_column: id\n    merge_key: id\n"
    )
    result = dpexport(
        "-c", config, "--local-root", out, "compact", "--table", "events", "--at", AT, "--json"
    )
    assert result.code == 0, result.out + result.err
    [snap] = json.loads(result.out)
    [increment] = json.loads(first.out)
    assert increment["rows"] >= 1
    assert snap["status"] == "SUCCESS" and snap["rows"] == increment["rows"], snap
