"""DuckDB writes a partitioned Parquet layout itself (a ``COPY`` per top-level time
folder, ``PARTITION_BY`` on the hex-encoded sub-keys) when its files are large
enough: the folders and every row in them are exactly those of the streamed path,
for NULL times, NULL and empty sub-keys and values that need escaping; a layout of
small files streams, and ``plan`` says so."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport, kill_at_step, plan_paths, run_ok

AT = "2025-09-17T06:00:00Z"
OUT = Path("gs/bench/out")
PARTITIONED = "partitioning: {field: event_time, granularity: hourly, secondary: kind}"

CONFIG = f"""\
project: bench
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://bench}}
exports:
  - source: ds.events
    destination: gs://bench/out/copied/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    {PARTITIONED}
  - source: ds.events_b
    destination: gs://bench/out/streamed/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    optimization: {{page_size: 64KB}}
    {PARTITIONED}
  - source: ds.few
    destination: gs://bench/out/few/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    {PARTITIONED}
"""

#: sub-key values DuckDB's folder names could mangle: slash, '=', '%', non-ASCII,
#: a dot-dot, the empty string and NULL
KINDS = ["plain", "a/b", "x=y", "100%", "ünï", "..", "", None]

EVENTS = """
CREATE TABLE ds.events AS
SELECT
    i AS id,
    CASE WHEN i % 997 = 0 THEN NULL
         ELSE TIMESTAMPTZ '2025-09-16 21:00:00+00' + to_microseconds((i % 10800) * 1000000)
    END AS event_time,
    kinds[1 + (i // 3) % 8] AS kind,
    (i * 0.5)::DOUBLE AS value,
    md5(i::VARCHAR) AS digest
FROM range(120000) t(i), (SELECT ? AS kinds)
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pcopy")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(EVENTS, [KINDS])
    con.execute("CREATE TABLE ds.events_b AS SELECT * FROM ds.events")
    con.execute("CREATE TABLE ds.few AS SELECT * FROM ds.events WHERE id < 3000")
    con.close()
    (root / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return root


def _run(base: Path, root: Path, *args: str) -> None:
    run_ok(base / "dpexport.yaml", root, AT, *args)


def _layout(root: Path, name: str) -> tuple[dict[str, list[int]], set[str]]:
    """Data files' rows by folder (ids), checked against manifests and checksums, and
    the writers that made them (``created_by``)."""
    base = root / OUT / name
    by_folder: dict[str, list[int]] = defaultdict(list)
    writers: set[str] = set()
    for success in base.rglob("SUCCESS"):
        top = success.parent
        manifest = json.loads((top / json.loads(success.read_text())["manifest"]).read_text())
        for entry in manifest["files"]:
            path = top / entry["name"]
            assert entry["checksum"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
            meta = pq.ParquetFile(path).metadata
            assert entry["rows"] == meta.num_rows
            writers.add(meta.created_by.split(" ")[0])
            folder = path.parent.relative_to(base).as_posix()
            by_folder[folder] += pq.read_table(path)["id"].to_pylist()
    listed = sum(len(v) for v in by_folder.values())
    on_disk = len([p for p in base.rglob("*.parquet.zst")])
    assert on_disk == sum(1 for _ in base.rglob("*.parquet.zst.metadata.json"))
    assert listed and on_disk
    return {k: sorted(v) for k, v in by_folder.items()}, writers


def test_plan_says_which_layouts_duckdb_writes(base: Path, tmp_path: Path) -> None:
    paths = plan_paths(base / "dpexport.yaml", tmp_path, AT)
    assert paths["ds.events"] == "DuckDB COPY (DuckDB writes the Parquet files)"
    assert paths["ds.events_b"].startswith("streamed: the config sets Parquet")
    few = paths["ds.few"]
    assert few.startswith("streamed: the layout makes small files (~"), few


def test_duckdb_writes_the_same_folders_and_rows_as_the_streamed_path(
    base: Path, tmp_path: Path
) -> None:
    _run(base, tmp_path)
    copied, copied_by = _layout(tmp_path, "copied")
    streamed, streamed_by = _layout(tmp_path, "streamed")
    assert copied_by == {"DuckDB"}
    assert streamed_by == {"parquet-cpp-arrow"}
    assert copied == streamed
    # 3 hours + the NULL time folder, times 8 kinds
    assert len(copied) == 32
    assert sum(len(ids) for ids in copied.values()) == 120_000
    assert {f.split("/", 4)[-1] for f in copied} == {
        "plain",
        "a%2Fb",
        "x=y",
        "100%25",
        "%C3%BCn%C3%AF",
        "%2E%2E",
        "_empty_",
        "_null_",
    }
    assert copied["_null_/_null_"] == [i for i in range(0, 120_000, 997) if (i // 3) % 8 == 7]
    # a consumer's reader sees the same rows
    con = duckdb.connect()
    glob = str(tmp_path / OUT / "copied" / "**" / "*.parquet.zst")
    row = con.execute(f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{glob}')").fetchone()
    assert row is not None
    (n, ids) = row
    assert n == ids == 120_000
    assert not any(p.is_file() for p in (tmp_path / "gs/bench/_staging").rglob("*"))
    ok = dpexport("--local-root", tmp_path, "verify", "gs://bench/out/copied/")
    assert ok.code == 0, ok.out + ok.err


def test_small_files_stream(base: Path, tmp_path: Path) -> None:
    _run(base, tmp_path, "--table", "few")
    few, writers = _layout(tmp_path, "few")
    assert writers == {"parquet-cpp-arrow"}
    assert sum(len(ids) for ids in few.values()) == 3000


def test_killed_after_duckdb_wrote_the_folders_then_rerun(base: Path, tmp_path: Path) -> None:
    kill_at_step(base / "dpexport.yaml", tmp_path, "events", AT, "move", 5)
    _run(base, tmp_path, "--table", "events")
    copied, _ = _layout(tmp_path, "copied")
    ids = [i for v in copied.values() for i in v]
    assert sorted(ids) == list(range(120_000))
    assert not any(p.is_file() for p in (tmp_path / "gs/bench/_staging").rglob("*"))
