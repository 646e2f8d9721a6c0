"""Which tables DuckDB may write itself (engines.duckdb_copy): each rule that keeps a
table on the streamed path, the Parquet options DuckDB is given, and the schema
comparison that catches types DuckDB stores differently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dpexport.config import load_config
from dpexport.config.spec import ResolvedConfig
from dpexport.engines.duckdb_copy import _options, copy_reason, schema_difference

CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: w.duckdb}
buckets: {exports: gs://b}
exports:
  - {source: ds.plain, destination: gs://b/plain/, format: PARQUET, compression: ZSTD}
  - {source: ds.jsonl, destination: gs://b/jsonl/, format: JSONL, compression: GZIP}
  - source: ds.pinned
    destination: gs://b/pinned/
    format: PARQUET
    optimization: {row_group_size: 64MB}
  - source: ds.encoded
    destination: gs://b/encoded/
    format: PARQUET
    optimization: {column_encoding: {id: DELTA_BINARY_PACKED}}
  - source: ds.daily
    destination: gs://b/daily/
    format: PARQUET
    partitioning: {field: created_at, granularity: daily}
  - source: ds.level
    destination: gs://b/level/
    format: PARQUET
    compression: GZIP
    optimization: {compression_level: 9}
  - source: ds.zlevel
    destination: gs://b/zlevel/
    format: PARQUET
    compression: ZSTD
    optimization: {compression_level: 9}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ResolvedConfig:
    path: Path = tmp_path_factory.mktemp("cfg") / "dpexport.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


def _reason(config: ResolvedConfig, table: str, **kw: Any) -> str | None:
    args: dict[str, Any] = {
        "transforms_needed": False,
        "client_side_encryption": False,
        "rows": 10,
    }
    args.update(kw)
    return copy_reason(config.table(table), **args)


def test_a_plain_one_folder_parquet_table_is_written_by_duckdb(config: ResolvedConfig) -> None:
    assert _reason(config, "plain") is None
    # a partitioned one too, when its folders are listed and hold enough rows
    assert _reason(config, "daily", tops=2, folders=8, rows=16_000) is None
    assert _reason(config, "zlevel") is None
    assert _options(config.table("zlevel")) == (
        "FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2, COMPRESSION_LEVEL 9"
    )


@pytest.mark.parametrize(
    ("table", "kw", "fragment"),
    [
        ("jsonl", {}, "JSONL is written by dpexport"),
        ("pinned", {}, "row group/page sizes"),
        ("encoded", {}, "row group/page sizes or encodings"),
        ("daily", {}, "time folders are not listed (de-duplication window)"),
        ("daily", {"tops": 401, "folders": 401, "rows": 10**9}, "401 time folders, over 400"),
        ("daily", {"tops": 2, "folders": 8, "rows": 8000}, "small files (~1,000 rows a folder)"),
        ("level", {}, "compression level only for ZSTD, not GZIP"),
        ("plain", {"transforms_needed": True}, "anonymized or de-duplicated"),
        ("plain", {"client_side_encryption": True}, "encrypted client-side"),
        ("plain", {"rows": 0}, "the slice is empty"),
    ],
)
def test_what_keeps_a_table_on_the_streamed_path(
    config: ResolvedConfig, table: str, kw: dict[str, Any], fragment: str
) -> None:
    reason = _reason(config, table, **kw)
    assert reason is not None and fragment in reason


def test_schema_difference_names_the_column() -> None:
    want = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")), ("u", pa.string())])
    same = pa.schema(
        [("id", pa.int64()), ("at", pa.timestamp("us", tz="Etc/UTC")), ("u", pa.string())]
    )
    assert schema_difference(want, same) is None
    other = pa.schema(
        [("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")), ("u", pa.binary(16))]
    )
    assert schema_difference(want, other) == (
        "column 'u' would be stored as fixed_size_binary[16], not string"
    )
    naive = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us")), ("u", pa.string())])
    assert "column 'at'" in (schema_difference(want, naive) or "")
