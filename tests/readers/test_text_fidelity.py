"""Values at the edges exported by ``dpexport run`` read back exactly (issue 22): 38-digit
decimals, INT64 min/max, UINT64 max, INTERVALs, NaN/±Inf, NULLs, unicode and control
characters, through Parquet, JSONL and RFC 4180 CSV, by dpexport and by DuckDB's typed
readers; the manifest says which columns are strings."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dpexport.config.spec import CsvOptions
from dpexport.formats import read_file
from tests.e2e.cli import dpexport

AT = "2025-09-16T00:00:00Z"
ROWS = r"""
SELECT * FROM (VALUES
 (1, 99999999999999999999999999999.999999999::DECIMAL(38,9), 9223372036854775807::BIGINT,
  18446744073709551615::UBIGINT, 'nan'::DOUBLE, INTERVAL '1 year 2 months 3 days 04:05:06.789123',
  'emoji 😀 RTL שלום'),
 (2, -99999999999999999999999999999.999999999::DECIMAL(38,9), (-9223372036854775807 - 1)::BIGINT,
  0::UBIGINT, 'inf'::DOUBLE, INTERVAL '-1 month 2 days -00:00:01.5',
  'a "q", back\slash' || chr(10) || 'line' || chr(13) || chr(9) || chr(1)),
 (3, 0.000000001::DECIMAL(38,9), 9007199254740993::BIGINT, 9007199254740993::UBIGINT,
  '-inf'::DOUBLE, INTERVAL '0 seconds', ''),
 (4, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, d, i, u, f, iv, s)
"""
TYPES = (
    "{id:'INTEGER', d:'DECIMAL(38,9)', i:'BIGINT', u:'UBIGINT', f:'DOUBLE', "
    "iv:'INTERVAL', s:'VARCHAR'}"
)
CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - {source: ds.e_parquet, destination: gs://b/parquet/, format: PARQUET, compression: ZSTD,
     mode: FULL_REFRESH}
  - {source: ds.e_jsonl, destination: gs://b/jsonl/, format: JSONL, compression: GZIP,
     mode: FULL_REFRESH}
  - source: ds.e_csv
    destination: gs://b/csv/
    format: CSV
    compression: NONE
    mode: FULL_REFRESH
    csv: {escape_character: '"'}
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, Path]:
    base = tmp_path_factory.mktemp("fidelity")
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    for name in ("e_parquet", "e_jsonl", "e_csv"):
        con.execute(f"CREATE TABLE ds.{name} AS {ROWS}")
    source = con.sql("SELECT * FROM ds.e_csv ORDER BY id").to_arrow_table()
    con.close()
    (base / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    result = dpexport("-c", base / "dpexport.yaml", "--local-root", base / "out", "run", "--at", AT)
    assert result.code == 0, result.out + result.err
    return source, base / "out" / "gs" / "b"


def _files(root: Path, fmt: str) -> tuple[Path, dict]:
    folder = root / fmt / "2025" / "09" / "16"
    [manifest] = folder.glob("manifest_*.json")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    return folder / doc["files"][0]["name"], doc


@pytest.mark.parametrize(
    ("fmt", "codec"), [("parquet", "ZSTD"), ("jsonl", "GZIP"), ("csv", "NONE")]
)
def test_dpexport_reads_back_every_value(
    export: tuple[pa.Table, Path], fmt: str, codec: str
) -> None:
    source, root = export
    path, _ = _files(root, fmt)
    csv = CsvOptions(escape_character='"')
    back = read_file(path, fmt.upper(), codec, schema=source.schema, csv=csv).sort_by("id")
    assert back.schema.equals(source.schema)
    assert back.to_pylist().__repr__() == source.to_pylist().__repr__()  # NaN, -0.0 too


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_duckdb_typed_read_gets_every_digit(export: tuple[pa.Table, Path], fmt: str) -> None:
    source, root = export
    path, _ = _files(root, fmt)
    reader = (
        f"read_json('{path}', columns={TYPES})"
        if fmt == "jsonl"
        else f"read_csv('{path}', types={TYPES}, allow_quoted_nulls=false)"
    )
    rel = duckdb.sql(f"SELECT * FROM {reader} ORDER BY id")
    assert rel is not None
    got = rel.to_arrow_table()
    assert repr(got.to_pylist()) == repr(source.to_pylist())


def test_the_manifest_says_which_columns_are_strings(export: tuple[pa.Table, Path]) -> None:
    _, root = export
    schema = {f["name"]: f for f in _files(root, "jsonl")[1]["schema"]}
    assert schema["d"]["json"] == schema["u"]["json"] == schema["iv"]["json"] == "string"
    assert schema["iv"]["text"] == "duckdb_interval"
    assert "json" not in schema["i"]  # INT64 stays a number: every reader keeps it
    parquet = {f["name"]: f for f in _files(root, "parquet")[1]["schema"]}
    assert parquet["iv"]["parquet"] == "struct<months: int32, days: int32, nanoseconds: int64>"


def test_per_table_csv_escape_doubles_quotes(export: tuple[pa.Table, Path]) -> None:
    _, root = export
    text = _files(root, "csv")[0].read_text(encoding="utf-8")
    assert '"a ""q"", back\\slash' in text
