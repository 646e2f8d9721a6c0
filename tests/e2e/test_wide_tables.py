"""A wide table exports on both DuckDB paths. Streamed, DuckDB's memory limit is
lowered to what the scan's columns need (a fixed 64MB failed "Out of Memory" past ~60
columns); DuckDB's own ``COPY`` holds a row group per thread, and when that outgrows
``memory_limit`` the rows stream instead of the export failing."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import dpexport

AT = "2025-09-16T14:30:22Z"
COLUMNS = 120
ROWS = 250_000
#: 120 columns (half 32-character strings) of 250,000 rows: DuckDB's COPY needs more than
#: 256MB for them; streaming them needs 120 columns x 2 threads x 512 KiB = 120 MiB
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb, memory_limit: 256MB, threads: 2}}
buckets: {{exports: gs://b}}
{formats}
exports:
  - source: ds.wide
    destination: gs://b/wide/
    format: PARQUET
"""
PINNED = "formats: {PARQUET: {row_group_size: 16MB, page_size: 1MB}}"
SUMMARY = "count(*), sum(c0), sum(c78), count(DISTINCT c1), max(c119), min(c41)"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wide")
    columns = ", ".join(
        f"md5((i * {k})::VARCHAR) AS c{k}" if k % 2 else f"i * {k} AS c{k}" for k in range(COLUMNS)
    )
    with duckdb.connect(str(base / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA ds")
        con.execute(f"CREATE TABLE ds.wide AS SELECT {columns} FROM range({ROWS}) t(i)")
    return base


def _export(warehouse: Path, tmp_path: Path, formats: str) -> tuple[list[Path], str]:
    """The export's data files and its debug log."""
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG.format(formats=formats), encoding="utf-8")
    (tmp_path / "warehouse.duckdb").symlink_to(warehouse / "warehouse.duckdb")
    out = tmp_path / "out"
    result = dpexport("--debug", "-c", config, "--local-root", out, "run", "--at", AT, "--json")
    assert result.code == 0, result.err[-3000:]
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS" and record["rows"] == ROWS, record
    assert not list((out / "gs" / "b" / "_staging").rglob("*.parquet*"))
    return sorted((out / "gs" / "b" / "wide").rglob("*.parquet.snappy")), result.err


def _same_rows(warehouse: Path, files: list[Path]) -> None:
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as source:
        want = source.execute(f"SELECT {SUMMARY} FROM ds.wide").fetchall()
    with duckdb.connect() as reader:
        listed = ", ".join(f"'{f}'" for f in files)
        got = reader.execute(f"SELECT {SUMMARY} FROM read_parquet([{listed}])").fetchall()
    assert got == want


def test_a_wide_table_streams_under_a_limit_sized_by_its_columns(
    warehouse: Path, tmp_path: Path
) -> None:
    files, log = _export(warehouse, tmp_path, PINNED)  # pinned sizes: dpexport's writer
    assert "the config sets Parquet row group/page sizes" in log  # it streamed
    assert "Out of Memory" not in log
    _same_rows(warehouse, files)


def test_a_wide_table_too_big_for_duckdbs_copy_streams_instead(
    warehouse: Path, tmp_path: Path
) -> None:
    files, log = _export(warehouse, tmp_path, "")
    assert "streams: DuckDB's COPY ran out of memory_limit 256MB" in log
    _same_rows(warehouse, files)
