"""An hourly + sub-partitioned export large enough to be read folder by folder
(folder_scan) publishes every row once, each in the folder of its own hour and key."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tests.e2e.cli import dpexport

CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.readings
    destination: gs://b/readings/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    partitioning: {field: ts, granularity: hourly, secondary: kind}
"""


def test_hourly_export_read_folder_by_folder(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    # 3 hours x 30,000 rows (more than folder_scan.MIN_ROWS_PER_FOLDER each), stored
    # out of time order, plus rows without a time
    con.execute(
        "CREATE TABLE ds.readings AS SELECT i AS id, "
        "TIMESTAMPTZ '2025-09-16 10:00:00+00' "
        "+ to_microseconds((i * 7919 % 90000) * 120000) AS ts, "
        "['x', 'y'][1 + i % 2] AS kind FROM range(90000) t(i) "
        "UNION ALL SELECT 90000 + i, NULL, 'x' FROM range(3) t(i)"
    )
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    root = tmp_path / "root"
    run = dpexport(
        "-c",
        tmp_path / "dpexport.yaml",
        "--local-root",
        root,
        "run",
        "--at",
        "2025-09-17T00:00:00Z",
    )
    assert run.code == 0, run.out + run.err
    seen: list[int] = []
    base = root / "gs/b/readings"
    for success in base.rglob("SUCCESS"):
        top = success.parent
        manifest = json.loads((top / json.loads(success.read_text())["manifest"]).read_text())
        for entry in manifest["files"]:
            path = top / entry["name"]
            table = pq.read_table(path)
            seen += table.column("id").to_pylist()
            kind = path.parent.name
            assert set(table.column("kind").to_pylist()) == {kind}
            folder = top.relative_to(base).as_posix()
            if folder != "_null_":
                hours = {t.strftime("%Y/%m/%d/%H") for t in table.column("ts").to_pylist()}
                assert hours == {folder}
    assert sorted(seen) == list(range(90003))
    tops = sorted(p.parent.relative_to(base).as_posix() for p in base.rglob("SUCCESS"))
    assert tops == ["2025/09/16/10", "2025/09/16/11", "2025/09/16/12", "_null_"]
    ok = dpexport("--local-root", root, "verify", "gs://b/readings/")
    assert ok.code == 0, ok.out + ok.err
