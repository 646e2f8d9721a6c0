"""Columns named with SQL keywords (``at``, ``order``) work as a partitioning field, a
sub-partition and an INCREMENTAL change column: dpexport quotes a config expression
that is exactly a column name, on the streamed path and when DuckDB writes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport

CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/streamed/
    format: PARQUET
    mode: INCREMENTAL
    change_column: at
    optimization: {page_size: 64KB}
    partitioning: {field: at, granularity: hourly, secondary: order}
  - source: ds.events_b
    destination: gs://b/copied/
    format: PARQUET
    mode: INCREMENTAL
    change_column: at
    partitioning: {field: at, granularity: daily, secondary: order}
"""

ROWS = """
SELECT i AS id,
       TIMESTAMPTZ '2025-09-16 00:00:00+00' + to_microseconds(i * 10000000) AS "at",
       'o' || (i % 3) AS "order"
FROM range({lo}, {hi}) t(i)
"""


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    for table in ("events", "events_b"):
        con.execute(f"CREATE TABLE ds.{table} AS " + ROWS.format(lo=0, hi=12000))
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _ids(root: Path, name: str) -> tuple[list[int], set[str], set[str]]:
    ids: list[int] = []
    folders: set[str] = set()
    writers: set[str] = set()
    for path in (root / "gs/b" / name).rglob("*.parquet.snappy"):
        table = pq.read_table(path)
        ids += table["id"].to_pylist()
        assert set(table["order"].to_pylist()) == {path.parent.name}
        folders.add(path.parent.relative_to(root / "gs/b" / name).as_posix())
        writers.add(pq.ParquetFile(path).metadata.created_by.split(" ")[0])
    return sorted(ids), folders, writers


def test_keyword_columns_partition_and_slice(base: Path) -> None:
    cfg = base / "dpexport.yaml"
    first = dpexport("-c", cfg, "--local-root", base, "run", "--at", "2025-09-17T00:00:00Z")
    assert first.code == 0, first.out + first.err
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    for table in ("events", "events_b"):
        con.execute(f"INSERT INTO ds.{table} " + ROWS.format(lo=12000, hi=12600))
    con.close()
    second = dpexport("-c", cfg, "--local-root", base, "run", "--at", "2025-09-18T00:00:00Z")
    assert second.code == 0, second.out + second.err

    # every row over both runs; INCREMENTAL reads from the watermark on (>=, CONTRACT §6),
    # so the row at the first run's watermark (09-17 00:00, id 8640) comes again
    every = sorted([*range(12600), 8640])
    streamed, folders, writers = _ids(base, "streamed")
    assert streamed == every
    assert writers == {"parquet-cpp-arrow"}
    assert "2025/09/16/00/o0" in folders and "2025/09/17/09/o2" in folders
    copied, folders, writers = _ids(base, "copied")
    assert copied == every
    # DuckDB wrote the first run (4,000 rows a folder); the 600 new rows stream (small files)
    assert writers == {"DuckDB", "parquet-cpp-arrow"}
    assert folders == {f"2025/09/{d}/o{k}" for d in (16, 17) for k in range(3)}
    plan = dpexport(
        "-c", cfg, "--local-root", base, "plan", "--at", "2025-09-18T00:00:00Z", "--json"
    )
    assert plan.code == 0, plan.err
    for item in json.loads(plan.out):
        assert item["slice"]["cursor"] == "at"  # the column's name, as configured
        assert item["window"]["to"].startswith("2025-09-17T")  # min/max ran on the quoted SQL
